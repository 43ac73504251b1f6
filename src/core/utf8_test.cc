#include "core/utf8.h"

#include <gtest/gtest.h>

#include <optional>
#include <string>

namespace zumik {
namespace {

struct Utf8Case {
  std::string name;
  std::string text;
  std::optional<size_t> invalid_at;
};

class FindInvalidUtf8Test : public testing::TestWithParam<Utf8Case> {};

TEST_P(FindInvalidUtf8Test, ReportsTheFirstIllFormedByte) {
  EXPECT_EQ(FindInvalidUtf8(GetParam().text), GetParam().invalid_at);
}

INSTANTIATE_TEST_SUITE_P(
    Table, FindInvalidUtf8Test,
    testing::Values(
        Utf8Case{"Empty", "", std::nullopt},
        Utf8Case{"Ascii", "hello, world: {\"a\": 1}", std::nullopt},
        Utf8Case{"LongAscii", std::string(1000, 'x'), std::nullopt},
        Utf8Case{"TwoByte", "caf\xC3\xA9", std::nullopt},
        Utf8Case{"ThreeByte", "\xE2\x82\xAC 5", std::nullopt},
        Utf8Case{"FourByteEmoji", "ok \xF0\x9F\x98\x80", std::nullopt},
        Utf8Case{"MaxCodePoint", "\xF4\x8F\xBF\xBF", std::nullopt},
        Utf8Case{"LastBeforeSurrogates", "\xED\x9F\xBF", std::nullopt},
        Utf8Case{"FirstAfterSurrogates", "\xEE\x80\x80", std::nullopt},
        Utf8Case{"OverlongSlash", "ab\xC0\xAF", 2}, Utf8Case{"OverlongC1", "\xC1\xBF", 0},
        Utf8Case{"OverlongThreeByte", "\xE0\x80\xAF", 0},
        Utf8Case{"OverlongFourByte", "\xF0\x80\x80\xAF", 0},
        Utf8Case{"HighSurrogate", "x\xED\xA0\x80", 1}, Utf8Case{"LowSurrogate", "\xED\xBF\xBF", 0},
        Utf8Case{"AboveMaxCodePoint", "\xF4\x90\x80\x80", 0},
        Utf8Case{"F5Lead", "\xF5\x80\x80\x80", 0}, Utf8Case{"LoneContinuation", "abc\x80", 3},
        Utf8Case{"TruncatedTwoByte", "abc\xC3", 3}, Utf8Case{"TruncatedThreeByte", "\xE2\x82", 0},
        Utf8Case{"TruncatedFourByte", "12345678\xF0\x9F\x98", 8},
        Utf8Case{"BadContinuation", "\xE2\x28\xA1", 0}, Utf8Case{"FFByte", "\xFF", 0},
        Utf8Case{"InvalidAfterLongAsciiRun", std::string(17, 'a') + "\xC3\x28", 17}),
    [](const auto& case_info) { return case_info.param.name; });
}  // namespace
}  // namespace zumik
