// Lowercase hexadecimal, by hand: these run per request (request ids, chunk-size lines), where
// a format string parsed at run time costs more than the digits.
#pragma once

#include <cstddef>
#include <cstdint>
#include <string>
#include <string_view>

namespace zumik {

inline constexpr std::string_view kHexDigits = "0123456789abcdef";

// Writes the low `digits` hex digits of `value` at `out` (zero-padded); returns the end.
constexpr char* WriteHex(char* out, uint64_t value, int digits) {
  for (int i = digits - 1; i >= 0; --i) {
    out[i] = kHexDigits[value & 0xf];
    value >>= 4;
  }
  return out + digits;
}

// How many hex digits `value` needs, without leading zeros (1 for zero).
constexpr int HexDigitCount(uint64_t value) {
  int digits = 1;
  for (value >>= 4; value != 0; value >>= 4) ++digits;
  return digits;
}

// Two digits per byte.
inline std::string HexEncode(std::string_view bytes) {
  std::string out(bytes.size() * 2, '0');
  char* at = out.data();
  for (unsigned char byte : bytes) at = WriteHex(at, byte, 2);
  return out;
}

}  // namespace zumik
