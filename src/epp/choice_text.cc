// The choices' generated texts: a DOM-free scan with a DOM fallback (see choice_text.h).
#include "epp/choice_text.h"

#include <boost/json.hpp>
#include <utility>

#include "absl/container/inlined_vector.h"
#include "epp/json_scan.h"

namespace zumik::epp {
namespace bj = boost::json;
namespace {

// A member that may hold the text: absent, a string (its raw bytes, decoded only if chosen), or
// something else (which the DOM reading also ignores).
struct Field {
  enum class State { kAbsent, kString, kOther };
  State state = State::kAbsent;
  std::string_view raw;
};

// `delta` or `message`: whether it is an object, and its `content`.
struct Part {
  bool seen = false;
  bool object = false;
  Field content;
};

// An index no tracked choice has: not an integer, or too large to matter.
constexpr size_t kUntracked = static_cast<size_t>(-1);

struct Choice {
  bool index_seen = false;
  size_t index = 0;  // absent counts as 0
  Field text;
  Part delta, message;

  // What the DOM reading takes: `text` if present, else the first object part with `content`.
  const Field* Text() const {
    if (text.state != Field::State::kAbsent) return &text;
    for (const Part* part : {&delta, &message}) {
      if (part->object && part->content.state != Field::State::kAbsent) return &part->content;
    }
    return nullptr;
  }
};

class Scanner : public json_scan::Cursor {
 public:
  using Cursor::Cursor;
  using Chosen = absl::InlinedVector<std::pair<bool, Field>, 4>;

  ScanResult Scan(std::vector<std::string>* texts) {
    bool choices_seen = false;
    // Per tracked index: whether its choice was seen, and its text field. Inline for the usual
    // few choices: this runs on every streamed event.
    Chosen chosen(texts->size());
    SkipSpace();
    if (!Eat('{')) return ScanResult::kUnsure;  // not an object: let the DOM decide
    bool ok = Members(1, [&](std::string_view key) {
      if (key != "choices") return SkipValue(1);
      if (choices_seen) return false;  // a repeated key: the DOM decides which counts
      choices_seen = true;
      return Choices(chosen);
    });
    if (!ok || !AtEnd()) return ScanResult::kUnsure;
    for (size_t i = 0; i < chosen.size(); ++i) {
      if (chosen[i].second.state == Field::State::kString) {
        AppendDecoded(chosen[i].second.raw, (*texts)[i]);
      }
    }
    return ScanResult::kFound;
  }

 private:
  // The `choices` value: when an array, each object is read, and the first with a tracked
  // index fills that index's slot of `chosen`; other elements are validated.
  bool Choices(Chosen& chosen) {
    if (Peek() != '[') return SkipValue(1);
    ++p_;
    SkipSpace();
    if (Eat(']')) return true;
    while (true) {
      SkipSpace();
      if (Peek() == '{') {
        ++p_;
        Choice choice;
        if (!Members(3, [&](std::string_view key) { return Member(choice, key); })) return false;
        if (choice.index < chosen.size() && !chosen[choice.index].first) {
          chosen[choice.index].first = true;
          if (const Field* text = choice.Text()) chosen[choice.index].second = *text;
        }
      } else if (!SkipValue(2)) {
        return false;
      }
      SkipSpace();
      if (Eat(',')) continue;
      return Eat(']');
    }
  }

  bool Member(Choice& choice, std::string_view key) {
    if (key == "index") return Index(choice);
    if (key == "text") return ReadField(choice.text, 3);
    if (key == "delta") return ReadPart(choice.delta);
    if (key == "message") return ReadPart(choice.message);
    return SkipValue(3);
  }

  // Only a plain unsigned integer is read; anything else the DOM might still call an integer
  // (-0, 1.0, 1e0) sends the document to it.
  bool Index(Choice& choice) {
    if (choice.index_seen) return false;
    choice.index_seen = true;
    if (Peek() < '0' || Peek() > '9') {
      if (Peek() == '-') return false;
      choice.index = kUntracked;  // a string, null, ...: not an integer
      return SkipValue(3);
    }
    std::string_view digits;
    if (!PlainDigits(digits)) return false;
    // Past 9 digits it is no tracked index, whatever integer type the DOM gives it.
    choice.index = digits.size() > 9 ? kUntracked : std::stoul(std::string(digits));
    return true;
  }

  bool ReadField(Field& field, int depth) {
    if (field.state != Field::State::kAbsent) return false;  // repeated key
    if (Peek() == '"') {
      field.state = Field::State::kString;
      return String(&field.raw);
    }
    field.state = Field::State::kOther;
    return SkipValue(depth);
  }

  bool ReadPart(Part& part) {
    if (part.seen) return false;  // repeated key
    part.seen = true;
    if (Peek() != '{') return SkipValue(3);
    ++p_;
    part.object = true;
    return Members(4, [&](std::string_view key) {
      return key == "content" ? ReadField(part.content, 4) : SkipValue(4);
    });
  }
};

}  // namespace

void ParseChoiceTexts(std::string_view json, std::vector<std::string>* texts) {
  boost::system::error_code ec;
  const bj::value root = bj::parse(bj::string_view(json.data(), json.size()), ec);
  if (ec || !root.is_object()) return;
  const bj::value* choices = root.get_object().if_contains("choices");
  if (choices == nullptr || !choices->is_array()) return;
  std::vector<bool> taken(texts->size());
  for (const bj::value& c : choices->get_array()) {
    if (!c.is_object()) continue;
    const bj::object& choice = c.get_object();
    const bj::value* index = choice.if_contains("index");
    // n > 1 streams interleave choices; a missing index is the only choice.
    size_t i = kUntracked;
    if (index == nullptr) {
      i = 0;
    } else if (index->is_int64() && index->get_int64() >= 0) {
      i = static_cast<size_t>(index->get_int64());
    } else if (index->is_uint64()) {
      i = static_cast<size_t>(index->get_uint64());
    }
    if (i >= texts->size() || taken[i]) continue;
    taken[i] = true;
    const bj::value* text = choice.if_contains("text");
    for (std::string_view key : {"delta", "message"}) {
      if (text != nullptr) break;
      const bj::value* part = choice.if_contains(key);
      if (part != nullptr && part->is_object()) text = part->get_object().if_contains("content");
    }
    if (text == nullptr || !text->is_string()) continue;
    const bj::string& s = text->get_string();
    (*texts)[i].append(s.data(), s.size());
  }
}

ScanResult ScanChoiceTexts(std::string_view json, std::vector<std::string>* texts) {
  return Scanner(json).Scan(texts);
}

void AppendChoiceTexts(std::string_view json, std::vector<std::string>* texts) {
  if (ScanChoiceTexts(json, texts) == ScanResult::kUnsure) ParseChoiceTexts(json, texts);
}

void AppendResponsesText(std::string_view json, std::string* out) {
  const bool delta = json.find("\"response.output_text.delta\"") != std::string_view::npos;
  if (!delta && json.find("\"output_text\"") == std::string_view::npos) return;
  boost::system::error_code ec;
  const bj::value root = bj::parse(bj::string_view(json.data(), json.size()), ec);
  if (!ec) AppendResponsesText(root, out);
}

void AppendResponsesText(const bj::value& root, std::string* out) {
  if (!root.is_object()) return;
  const bj::object& doc = root.get_object();
  auto string_of = [](const bj::object& o, std::string_view key) -> const bj::string* {
    const bj::value* v = o.if_contains(key);
    return v != nullptr && v->is_string() ? &v->get_string() : nullptr;
  };
  if (const bj::string* type = string_of(doc, "type"); type != nullptr) {
    if (*type != "response.output_text.delta") return;
    if (const bj::string* text = string_of(doc, "delta")) out->append(text->data(), text->size());
    return;
  }
  const bj::string* object = string_of(doc, "object");
  const bj::value* output = doc.if_contains("output");
  if (object == nullptr || *object != "response" || output == nullptr || !output->is_array()) {
    return;
  }
  for (const bj::value& item : output->get_array()) {
    if (!item.is_object()) continue;
    const bj::string* item_type = string_of(item.get_object(), "type");
    const bj::value* content = item.get_object().if_contains("content");
    if (item_type == nullptr || *item_type != "message" || content == nullptr ||
        !content->is_array()) {
      continue;
    }
    for (const bj::value& part : content->get_array()) {
      if (!part.is_object()) continue;
      const bj::string* part_type = string_of(part.get_object(), "type");
      const bj::string* text = string_of(part.get_object(), "text");
      if (part_type != nullptr && *part_type == "output_text" && text != nullptr) {
        out->append(text->data(), text->size());
      }
    }
  }
}

}  // namespace zumik::epp
