// Usage from one JSON document: a DOM-free scan with a DOM fallback (see usage_scanner.h).
#include "epp/usage_scanner.h"

#include <array>
#include <boost/json.hpp>

namespace zumik::epp {
namespace {

// Well inside boost::json's default max_depth (32).
constexpr int kMaxDepth = 16;

// Bytes a string may hold as they are: printable ASCII except the quote and the backslash.
constexpr auto kPlain = [] {
  std::array<bool, 256> plain{};
  for (int c = 0x20; c < 0x80; ++c) plain[static_cast<size_t>(c)] = c != '"' && c != '\\';
  return plain;
}();

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

class Scanner {
 public:
  explicit Scanner(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

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
    int64_t value = 0;
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') value = value * 10 + (*p_++ - '0');
    size_t count = static_cast<size_t>(p_ - digits);
    if (count == 0 || count > 18 || (digits[0] == '0' && (count > 1 || negative))) return false;
    if (p_ != end_ && (*p_ == '.' || *p_ == 'e' || *p_ == 'E')) return false;
    field.value = negative ? -value : value;
    return true;
  }

  // `{` already eaten: members up to and including `}`; `on_member` reads each value.
  template <typename OnMember>
  bool Members(int depth, OnMember&& on_member) {
    if (depth > kMaxDepth) return false;
    SkipSpace();
    if (Eat('}')) return true;
    while (true) {
      SkipSpace();
      std::string_view key;
      if (!String(&key)) return false;
      SkipSpace();
      if (!Eat(':')) return false;
      SkipSpace();
      if (!on_member(key)) return false;
      SkipSpace();
      if (Eat(',')) continue;
      return Eat('}');
    }
  }

  bool SkipValue(int depth) {
    switch (Peek()) {
      case '{':
        ++p_;
        return Members(depth + 1, [&](std::string_view) { return SkipValue(depth + 1); });
      case '[': {
        ++p_;
        if (depth + 1 > kMaxDepth) return false;
        SkipSpace();
        if (Eat(']')) return true;
        while (true) {
          SkipSpace();
          if (!SkipValue(depth + 1)) return false;
          SkipSpace();
          if (Eat(',')) continue;
          return Eat(']');
        }
      }
      case '"':
        return String(nullptr);
      case 't':
        return Literal("true");
      case 'f':
        return Literal("false");
      case 'n':
        return Literal("null");
      default:
        return Number();
    }
  }

  // A string of valid UTF-8 with simple escapes (no \u: its decoding is left to the DOM).
  // `raw` gets the bytes between the quotes, escapes undecoded; no key we look for has one.
  bool String(std::string_view* raw) {
    if (!Eat('"')) return false;
    const char* start = p_;
    while (true) {
      while (p_ != end_ && kPlain[static_cast<unsigned char>(*p_)]) ++p_;
      if (p_ == end_) return false;
      auto c = static_cast<unsigned char>(*p_);
      if (c == '"') break;
      if (c == '\\') {
        if (++p_ == end_) return false;
        switch (*p_) {
          case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
            ++p_;
            continue;
          default:
            return false;
        }
      }
      if (c < 0x80 || !Utf8Sequence()) return false;  // a control character, or bad UTF-8
    }
    if (raw != nullptr) *raw = std::string_view(start, static_cast<size_t>(p_ - start));
    ++p_;
    return true;
  }

  // One multi-byte UTF-8 sequence at p_, strictly (RFC 3629: no overlong forms, no
  // surrogates, nothing above U+10FFFF).
  bool Utf8Sequence() {
    auto byte = [&](size_t i) {
      return p_ + i < end_ ? static_cast<unsigned char>(p_[i]) : 0;
    };
    auto cont = [](unsigned char b) { return b >= 0x80 && b <= 0xbf; };
    unsigned char b0 = byte(0), b1 = byte(1);
    size_t length;
    if (b0 >= 0xc2 && b0 <= 0xdf) {
      length = 2;
      if (!cont(b1)) return false;
    } else if (b0 >= 0xe0 && b0 <= 0xef) {
      length = 3;
      unsigned char lo = b0 == 0xe0 ? 0xa0 : 0x80, hi = b0 == 0xed ? 0x9f : 0xbf;
      if (b1 < lo || b1 > hi || !cont(byte(2))) return false;
    } else if (b0 >= 0xf0 && b0 <= 0xf4) {
      length = 4;
      unsigned char lo = b0 == 0xf0 ? 0x90 : 0x80, hi = b0 == 0xf4 ? 0x8f : 0xbf;
      if (b1 < lo || b1 > hi || !cont(byte(2)) || !cont(byte(3))) return false;
    } else {
      return false;
    }
    p_ += length;
    return true;
  }

  // JSON number grammar; very long mantissas and exponents are left to the DOM.
  bool Number() {
    Eat('-');
    const char* start = p_;
    if (!Digits()) return false;
    if (*start == '0' && p_ - start > 1) return false;
    if (Eat('.') && !Digits()) return false;
    if (p_ - start > 40) return false;
    if (p_ != end_ && (*p_ == 'e' || *p_ == 'E')) {
      ++p_;
      if (!Eat('+')) Eat('-');
      const char* exponent = p_;
      if (!Digits() || p_ - exponent > 2) return false;
    }
    return true;
  }

  bool Digits() {
    const char* start = p_;
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    return p_ != start;
  }

  bool Literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() ||
        std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  char Peek() const { return p_ != end_ ? *p_ : '\0'; }
  bool Eat(char c) {
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }
  void SkipSpace() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

  const char* p_;
  const char* end_;
};

namespace json = boost::json;

int64_t IntField(const json::object& object, std::string_view key) {
  const json::value* v = object.if_contains(key);
  if (v == nullptr) return -1;
  if (v->is_int64()) return v->get_int64();
  if (v->is_uint64()) return static_cast<int64_t>(v->get_uint64());
  if (v->is_double()) return static_cast<int64_t>(v->get_double());
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
