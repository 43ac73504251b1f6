#include "core/json_string.h"

#include <array>
#include <charconv>
#include <cstring>

#include "core/hex.h"
#include "core/utf8.h"

namespace zumik {
namespace {

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

}  // namespace zumik
