// A validating, allocation-free JSON cursor for the EPP's fast paths (usage_scanner.cc,
// body_parser.cc). It accepts a strict subset of what boost::json's default parser accepts:
// valid UTF-8, no \u escapes, no number with a long mantissa or exponent, nesting up to
// kMaxDepth. Anything outside it fails like invalid JSON, so a caller that gets `false`
// falls back to the DOM, which gives the authoritative answer (or error).
#pragma once

#include <array>
#include <cstdint>
#include <string>
#include <string_view>

#if defined(__SSE2__)
#include <emmintrin.h>
#endif

#include "core/utf8.h"

namespace zumik::epp::json_scan {

// Well inside boost::json's default max_depth (32).
inline constexpr int kMaxDepth = 16;

// Bytes a string may hold as they are: printable ASCII except the quote and the backslash.
inline constexpr auto kPlain = [] {
  std::array<bool, 256> plain{};
  for (int c = 0x20; c < 0x80; ++c) plain[static_cast<size_t>(c)] = c != '"' && c != '\\';
  return plain;
}();

// The escapes a string may hold (after the backslash), and the byte each decodes to; 0 for
// any other byte (\u escapes are left to the DOM).
inline constexpr auto kUnescaped = [] {
  std::array<char, 256> unescaped{};
  unescaped['"'] = '"';
  unescaped['\\'] = '\\';
  unescaped['/'] = '/';
  unescaped['b'] = '\b';
  unescaped['f'] = '\f';
  unescaped['n'] = '\n';
  unescaped['r'] = '\r';
  unescaped['t'] = '\t';
  return unescaped;
}();

class Cursor {
 public:
  explicit Cursor(std::string_view text) : p_(text.data()), end_(text.data() + text.size()) {}

  // Whitespace, then the end of the text.
  bool AtEnd() {
    SkipSpace();
    return p_ == end_;
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
    if (!ScanStringBody([](const char*, char) {})) return false;
    if (raw != nullptr) *raw = std::string_view(start, static_cast<size_t>(p_ - 1 - start));
    return true;
  }

  // The rest of a string whose opening quote is eaten, validated up to and past its closing
  // quote (the rules String states). Each escape is shown to on_escape(backslash, decoded byte)
  // before it is passed: String ignores them, DecodedString copies around them.
  template <typename OnEscape>
  bool ScanStringBody(OnEscape&& on_escape) {
    while (true) {
      SkipPlainBlocks();
      while (p_ != end_ && kPlain[static_cast<unsigned char>(*p_)]) ++p_;
      if (p_ == end_) return false;
      const auto c = static_cast<unsigned char>(*p_);
      if (c == '"') {
        ++p_;
        return true;
      }
      if (c == '\\') {
        if (p_ + 1 == end_) return false;
        const char decoded = kUnescaped[static_cast<unsigned char>(p_[1])];
        if (decoded == 0) return false;
        on_escape(p_, decoded);
        p_ += 2;
        continue;
      }
      if (c < 0x80 || !Utf8Sequence()) return false;  // a control character, or bad UTF-8
    }
  }

  // Past plain bytes (kPlain) sixteen at a time, up to the first other byte or the last 15
  // bytes of the text; the bytewise loop in String() does the rest. Prompts are long runs of
  // plain text: a 32 KB one scans 2-3x faster than byte by byte (bench/RESULTS.md).
  void SkipPlainBlocks() {
#if defined(__SSE2__)
    const __m128i quote = _mm_set1_epi8('"');
    const __m128i backslash = _mm_set1_epi8('\\');
    const __m128i space = _mm_set1_epi8(0x20);
    const char* q = p_;
    while (end_ - q >= 16) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(q));
      // A signed compare: bytes from 0x80 up are negative, so "below 0x20" takes them too.
      const __m128i other =
          _mm_or_si128(_mm_or_si128(_mm_cmpeq_epi8(bytes, quote), _mm_cmpeq_epi8(bytes, backslash)),
                       _mm_cmplt_epi8(bytes, space));
      const auto mask = static_cast<unsigned>(_mm_movemask_epi8(other));
      if (mask != 0) {
        q += __builtin_ctz(mask);
        break;
      }
      q += 16;
    }
    p_ = q;
#endif
  }

  // The first backslash of `raw` at or after `from` (raw.size() if none). Inline, sixteen
  // bytes at a time: prompts escape a newline every line, and a call to memchr per line
  // cost more than the search.
  static size_t FindBackslash(std::string_view raw, size_t from) {
    size_t i = from;
#if defined(__SSE2__)
    const __m128i backslash = _mm_set1_epi8('\\');
    for (; raw.size() - i >= 16; i += 16) {
      const __m128i bytes = _mm_loadu_si128(reinterpret_cast<const __m128i*>(raw.data() + i));
      const auto mask = static_cast<unsigned>(_mm_movemask_epi8(_mm_cmpeq_epi8(bytes, backslash)));
      if (mask != 0) return i + static_cast<size_t>(__builtin_ctz(mask));
    }
#endif
    for (; i < raw.size(); ++i) {
      if (raw[i] == '\\') return i;
    }
    return raw.size();
  }

  // One multi-byte UTF-8 sequence at p_, strictly (core/utf8.h).
  bool Utf8Sequence() {
    const size_t length =
        Utf8SequenceLength(std::string_view(p_, static_cast<size_t>(end_ - p_)), 0);
    p_ += length;
    return length != 0;
  }

  // A string value decoded into `out` (escapes are the simple ones String accepts), in one
  // pass: the plain runs between escapes are appended as the scan passes them. At the first
  // escape, `out` reserves what is left of the text, the most the rest of the string can
  // decode to, so a long prompt is copied once; the excess is returned when it is large.
  // With `borrowed`, a string without escapes is not copied at all: `borrowed` gets its bytes
  // in the text and `out` is left empty (otherwise `borrowed` is left as it was).
  bool DecodedString(std::string& out, std::string_view* borrowed = nullptr) {
    if (!Eat('"')) return false;
    out.clear();
    bool reserved = false;
    const char* run = p_;
    const bool ok = ScanStringBody([&](const char* backslash, char decoded) {
      if (!reserved) {
        out.reserve(static_cast<size_t>(end_ - run));
        reserved = true;
      }
      out.append(run, static_cast<size_t>(backslash - run));
      out.push_back(decoded);
      run = backslash + 2;
    });
    if (!ok) return false;
    const std::string_view tail(run, static_cast<size_t>(p_ - 1 - run));  // p_ is past the quote
    if (!reserved && borrowed != nullptr) {
      *borrowed = tail;  // no escapes: the text is the decoding
      return true;
    }
    out.append(tail);
    if (reserved && out.capacity() > 2 * out.size() + 4096) out.shrink_to_fit();
    return true;
  }

  // Appends the decoding of `raw`, the bytes between a string's quotes as String accepted them.
  static void AppendDecoded(std::string_view raw, std::string& out) {
    for (size_t i = 0; i < raw.size(); ++i) {
      if (raw[i] != '\\') {
        const size_t next = FindBackslash(raw, i);
        out.append(raw.data() + i, next - i);
        i = next - 1;
        continue;
      }
      out.push_back(kUnescaped[static_cast<unsigned char>(raw[++i])]);
    }
  }

  // true or false.
  bool Bool(bool& value) {
    if (Peek() == 't') return value = true, Literal("true");
    value = false;
    return Literal("false");
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

  // A number written as plain digits (no sign, fraction or exponent): its digits. False for
  // any other number (-0, 1.0, 1e0), which the DOM may still read as an integer.
  bool PlainDigits(std::string_view& digits) {
    const char* start = p_;
    if (!Number()) return false;
    digits = std::string_view(start, static_cast<size_t>(p_ - start));
    return digits.find_first_not_of("0123456789") == std::string_view::npos;
  }

  bool Digits() {
    const char* start = p_;
    while (p_ != end_ && *p_ >= '0' && *p_ <= '9') ++p_;
    return p_ != start;
  }

  bool Literal(std::string_view word) {
    if (static_cast<size_t>(end_ - p_) < word.size() || std::string_view(p_, word.size()) != word) {
      return false;
    }
    p_ += word.size();
    return true;
  }

  // The next byte, or '\0' at the end.
  char Peek() const { return p_ != end_ ? *p_ : '\0'; }
  bool Eat(char c) {
    if (p_ == end_ || *p_ != c) return false;
    ++p_;
    return true;
  }
  void SkipSpace() {
    while (p_ != end_ && (*p_ == ' ' || *p_ == '\n' || *p_ == '\r' || *p_ == '\t')) ++p_;
  }

 protected:
  const char* p_;
  const char* end_;
};

}  // namespace zumik::epp::json_scan
