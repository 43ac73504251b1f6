// Hex digits: fixed width, minimal width, byte strings.
#include "core/hex.h"

#include <gtest/gtest.h>

#include <array>

namespace zumik {
namespace {

TEST(Hex, WritesFixedWidthZeroPadded) {
  std::array<char, 8> out{};
  char* end = WriteHex(out.data(), 0xab, 4);
  EXPECT_EQ(std::string_view(out.data(), static_cast<size_t>(end - out.data())), "00ab");
  end = WriteHex(out.data(), 0x123456789abcdef0ULL, 8);  // only the low digits
  EXPECT_EQ(std::string_view(out.data(), 8), "9abcdef0");
}

TEST(Hex, CountsDigitsWithoutLeadingZeros) {
  EXPECT_EQ(HexDigitCount(0), 1);
  EXPECT_EQ(HexDigitCount(0xf), 1);
  EXPECT_EQ(HexDigitCount(0x10), 2);
  EXPECT_EQ(HexDigitCount(0xfff), 3);
  EXPECT_EQ(HexDigitCount(UINT64_MAX), 16);
}

TEST(Hex, EncodesBytesTwoDigitsEach) {
  EXPECT_EQ(HexEncode(""), "");
  EXPECT_EQ(HexEncode(std::string_view("\x00\x0f\xa0\xff", 4)), "000fa0ff");
}

}  // namespace
}  // namespace zumik
