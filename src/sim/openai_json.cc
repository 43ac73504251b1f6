#include "sim/openai_json.h"

#include <array>
#include <charconv>
#include <cstring>

#include "core/hex.h"

namespace zumik::sim {
namespace {

constexpr uint64_t kHighBits = 0x8080808080808080ULL;

// Length of the well-formed UTF-8 sequence starting at text[i] (a byte >= 0x80), or 0.
size_t Utf8SequenceLength(std::string_view text, size_t i) {
  const auto byte = [&](size_t k) { return static_cast<unsigned char>(text[k]); };
  const size_t left = text.size() - i;
  const unsigned char b0 = byte(i);
  const auto cont = [&](size_t k) { return (byte(i + k) & 0xC0) == 0x80; };
  if (b0 >= 0xC2 && b0 <= 0xDF) {
    return left >= 2 && cont(1) ? 2 : 0;
  }
  if (b0 >= 0xE0 && b0 <= 0xEF) {
    if (left < 3) return 0;
    const unsigned char b1 = byte(i + 1);
    // E0 needs A0..BF (no overlong); ED needs 80..9F (no surrogates).
    if (b0 == 0xE0 && b1 < 0xA0) return 0;
    if (b0 == 0xED && b1 > 0x9F) return 0;
    return cont(1) && cont(2) ? 3 : 0;
  }
  if (b0 >= 0xF0 && b0 <= 0xF4) {
    if (left < 4) return 0;
    const unsigned char b1 = byte(i + 1);
    // F0 needs 90..BF (no overlong); F4 needs 80..8F (nothing above U+10FFFF).
    if (b0 == 0xF0 && b1 < 0x90) return 0;
    if (b0 == 0xF4 && b1 > 0x8F) return 0;
    return cont(1) && cont(2) && cont(3) ? 4 : 0;
  }
  return 0;  // 80..C1 (continuation or overlong lead) and F5..FF never start a sequence.
}

bool EightAscii(const char* p) {
  uint64_t word;
  std::memcpy(&word, p, sizeof(word));
  return (word & kHighBits) == 0;
}

// Which ASCII bytes need escaping: '"', '\\' and control characters.
constexpr std::array<bool, 128> MakeEscapeTable() {
  std::array<bool, 128> table{};
  for (int c = 0; c < 0x20; ++c) table[c] = true;
  table['"'] = true;
  table['\\'] = true;
  return table;
}
constexpr std::array<bool, 128> kNeedsEscape = MakeEscapeTable();

void AppendEscaped(unsigned char c, std::string* out) {
  switch (c) {
    case '"':
      out->append("\\\"");
      return;
    case '\\':
      out->append("\\\\");
      return;
    case '\n':
      out->append("\\n");
      return;
    case '\r':
      out->append("\\r");
      return;
    case '\t':
      out->append("\\t");
      return;
    case '\b':
      out->append("\\b");
      return;
    case '\f':
      out->append("\\f");
      return;
    default:
      break;
  }
  char escaped[6] = {'\\', 'u', '0', '0'};
  WriteHex(escaped + 4, c, 2);
  out->append(escaped, sizeof(escaped));
}

}  // namespace

std::optional<size_t> FindInvalidUtf8(std::string_view text) {
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    if (i + 8 <= n && EightAscii(text.data() + i)) {
      i += 8;
      continue;
    }
    if (static_cast<unsigned char>(text[i]) < 0x80) {
      ++i;
      continue;
    }
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) return i;
    i += length;
  }
  return std::nullopt;
}

void AppendJsonString(std::string_view text, std::string* out) {
  out->reserve(out->size() + text.size() + 2);
  out->push_back('"');
  size_t run_start = 0;  // bytes [run_start, i) are copied verbatim in one append
  size_t i = 0;
  const size_t n = text.size();
  while (i < n) {
    const auto c = static_cast<unsigned char>(text[i]);
    if (c < 0x80) {
      if (kNeedsEscape[c]) {
        out->append(text.data() + run_start, i - run_start);
        AppendEscaped(c, out);
        run_start = i + 1;
      }
      ++i;
      continue;
    }
    const size_t length = Utf8SequenceLength(text, i);
    if (length == 0) {
      out->append(text.data() + run_start, i - run_start);
      out->append("\xEF\xBF\xBD");  // U+FFFD REPLACEMENT CHARACTER
      run_start = i + 1;
      ++i;
      continue;
    }
    i += length;
  }
  out->append(text.data() + run_start, n - run_start);
  out->push_back('"');
}

void AppendInt(int64_t value, std::string* out) {
  char buffer[24];
  const auto result = std::to_chars(buffer, buffer + sizeof(buffer), value);
  out->append(buffer, result.ptr);
}

}  // namespace zumik::sim
