// Usage from one JSON document: a DOM-free scan with a DOM fallback (see usage_scanner.h).
#include "epp/usage_scanner.h"

#include <boost/json.hpp>

#include "epp/json_scan.h"

namespace zumik::epp {
namespace {

// One integer field of the usage object: absent (-1, as the DOM reading gives for a missing
// or non-numeric field) until a value is read; `seen` catches repeated keys.
struct Field {
  int64_t value = -1;
  bool seen = false;
};

struct UsageFields {
  Field prompt, input, completion, output;
  Field prompt_cached, input_cached;  // (prompt|input)_tokens_details.cached_tokens
  bool prompt_details_seen = false, input_details_seen = false;
};

// What a container (the root, or the Responses API `response` object) says about `usage`.
struct Container {
  bool usage_seen = false;
  bool has_usage = false;  // `usage` is an object
  UsageFields usage;
};

class Scanner : public json_scan::Cursor {
 public:
  using Cursor::Cursor;

  ScanResult Scan(Usage& found) {
    Container root, response;
    bool response_seen = false, has_response = false;
    SkipSpace();
    if (!Eat('{')) return ScanResult::kUnsure;  // not an object: let the DOM decide
    bool ok = Members(1, [&](std::string_view key) {
      if (key == "usage") return ContainerUsage(root, 1);
      if (key == "response") {
        if (response_seen) return false;
        response_seen = true;
        if (Peek() != '{') return SkipValue(1);
        has_response = true;
        ++p_;
        return Members(2, [&](std::string_view inner) {
          return inner == "usage" ? ContainerUsage(response, 2) : SkipValue(2);
        });
      }
      return SkipValue(1);
    });
    if (!ok) return ScanResult::kUnsure;
    SkipSpace();
    if (p_ != end_) return ScanResult::kUnsure;  // trailing bytes: invalid JSON
    const Container& c = has_response ? response : root;
    found = Usage{};
    if (c.has_usage) Fill(c.usage, found);
    return ScanResult::kFound;
  }

 private:
  static void Fill(const UsageFields& u, Usage& found) {
    int64_t prompt = u.prompt.value >= 0 ? u.prompt.value : u.input.value;
    int64_t completion = u.completion.value >= 0 ? u.completion.value : u.output.value;
    if (prompt >= 0) found.prompt_tokens = prompt;
    if (completion >= 0) found.completion_tokens = completion;
    if (u.prompt_cached.value >= 0) found.cached_tokens = u.prompt_cached.value;
    if (u.input_cached.value >= 0) found.cached_tokens = u.input_cached.value;
  }

  // The value of a `usage` key in a container.
  bool ContainerUsage(Container& c, int depth) {
    if (c.usage_seen) return false;
    c.usage_seen = true;
    if (Peek() != '{') return SkipValue(depth);
    c.has_usage = true;
    ++p_;
    UsageFields& u = c.usage;
    return Members(depth + 1, [&](std::string_view key) {
      if (key == "prompt_tokens") return IntValue(u.prompt, depth + 1);
      if (key == "input_tokens") return IntValue(u.input, depth + 1);
      if (key == "completion_tokens") return IntValue(u.completion, depth + 1);
      if (key == "output_tokens") return IntValue(u.output, depth + 1);
      if (key == "prompt_tokens_details") {
        return Details(u.prompt_details_seen, u.prompt_cached, depth + 1);
      }
      if (key == "input_tokens_details") {
        return Details(u.input_details_seen, u.input_cached, depth + 1);
      }
      return SkipValue(depth + 1);
    });
  }

  bool Details(bool& seen, Field& cached, int depth) {
    if (seen) return false;
    seen = true;
    if (Peek() != '{') return SkipValue(depth);
    ++p_;
    return Members(depth + 1, [&](std::string_view key) {
      return key == "cached_tokens" ? IntValue(cached, depth + 1) : SkipValue(depth + 1);
    });
  }

  // A usage field: a plain integer is read; any other number is left to the DOM; a
  // non-number reads as absent.
  bool IntValue(Field& field, int depth) {
    if (field.seen) return false;
    field.seen = true;
    char c = Peek();
    if (c != '-' && (c < '0' || c > '9')) return SkipValue(depth);
    bool negative = Eat('-');
    const char* digits = p_;
    // At most kMaxDigits digits are accumulated (10^18 - 1 fits an int64); a longer number is
    // read to its end and left to the DOM.
    constexpr ptrdiff_t kMaxDigits = 18;
    int64_t value = 0;
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') {
      if (p_ - digits < kMaxDigits) value = value * 10 + (*p_ - '0');
      ++p_;
    }
    const ptrdiff_t count = p_ - digits;
    if (count == 0 || count > kMaxDigits || (digits[0] == '0' && (count > 1 || negative))) {
      return false;
    }
    if (p_ != end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;
    field.value = negative ? -value : value;
    return true;
  }
};

namespace json = boost::json;

int64_t IntField(const json::object& object, std::string_view key) {
  const json::value* v = object.if_contains(key);
  if (v == nullptr) return -1;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
  if (v->is_double()) {
    // Only a double an int64 can hold converts; casting a larger one is undefined.
    const double d = v->get_double();
    return d > -9.2e18 && d < 9.2e18 ? static_cast<int64_t>(d) : -1;
  }
  return -1;
}

}  // namespace

ScanResult ScanUsage(std::string_view json, Usage& found) { return Scanner(json).Scan(found); }

void ParseUsage(std::string_view text, Usage& found) {
  found = Usage{};
  boost::system::error_code ec;
  json::value root = json::parse(json::string_view(text.data(), text.size()), ec);
  if (ec || !root.is_object()) return;
  const json::object* object = &root.get_object();
  if (const json::value* response = object->if_contains("response");
      response != nullptr && response->is_object()) {
    object = &response->get_object();
  }
  const json::value* usage = object->if_contains("usage");
  if (usage == nullptr || !usage->is_object()) return;
  const json::object& u = usage->get_object();
  int64_t prompt = IntField(u, "prompt_tokens");
  if (prompt < 0) prompt = IntField(u, "input_tokens");
  int64_t completion = IntField(u, "completion_tokens");
  if (completion < 0) completion = IntField(u, "output_tokens");
  if (prompt >= 0) found.prompt_tokens = prompt;
  if (completion >= 0) found.completion_tokens = completion;
  for (std::string_view details : {"prompt_tokens_details", "input_tokens_details"}) {
    const json::value* d = u.if_contains(details);
    if (d != nullptr && d->is_object()) {
      int64_t cached = IntField(d->get_object(), "cached_tokens");
      if (cached >= 0) found.cached_tokens = cached;
    }
  }
}

}  // namespace zumik::epp
