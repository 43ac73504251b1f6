#include "sim/openai_json.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <limits>
#include <string>

namespace zumik::sim {
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

std::string Quoted(std::string_view text) {
  std::string out;
  AppendJsonString(text, &out);
  return out;
}

struct EscapeCase {
  std::string name;
  std::string input;
  std::string expected;
};

class AppendJsonStringTest : public testing::TestWithParam<EscapeCase> {};

TEST_P(AppendJsonStringTest, EscapesExactly) {
  EXPECT_EQ(Quoted(GetParam().input), GetParam().expected);
}

INSTANTIATE_TEST_SUITE_P(
    Table, AppendJsonStringTest,
    testing::Values(EscapeCase{"Plain", "abc", "\"abc\""}, EscapeCase{"Empty", "", "\"\""},
                    EscapeCase{"Quote", "say \"hi\"", R"("say \"hi\"")"},
                    EscapeCase{"Backslash", "C:\\x", R"("C:\\x")"},
                    EscapeCase{"NamedControls", "\n\r\t\b\f", R"("\n\r\t\b\f")"},
                    EscapeCase{"OtherControls", std::string("\x00\x01\x1f", 3),
                               R"("\u0000\u0001\u001f")"},
                    EscapeCase{"Delete", "\x7f", "\"\x7f\""},
                    EscapeCase{"SlashNotEscaped", "a/b", "\"a/b\""},
                    EscapeCase{"UnicodePassesThrough", "\xE2\x80\x94 \xF0\x9F\x98\x80",
                               "\"\xE2\x80\x94 \xF0\x9F\x98\x80\""},
                    EscapeCase{"InvalidBytesReplaced",
                               "a\xFF"
                               "b\xED\xA0\x80",
                               "\"a\xEF\xBF\xBD"
                               "b\xEF\xBF\xBD\xEF\xBF\xBD\xEF\xBF\xBD\""}),
    [](const auto& case_info) { return case_info.param.name; });

TEST(AppendJsonString, EveryByteValueRoundTripsThroughAJsonParser) {
  std::string all;
  for (int c = 0; c < 128; ++c) all.push_back(static_cast<char>(c));
  all += "\xC3\xA9\xE2\x82\xAC\xF0\x9F\x98\x80";
  const std::string quoted = Quoted(all);
  boost::system::error_code ec;
  const boost::json::value parsed = boost::json::parse(quoted, ec);
  ASSERT_FALSE(ec) << ec.message();
  ASSERT_TRUE(parsed.is_string());
  EXPECT_EQ(std::string(parsed.get_string()), all);
}

TEST(AppendJsonString, AppendsToExistingContent) {
  std::string out = "x=";
  AppendJsonString("y", &out);
  EXPECT_EQ(out, "x=\"y\"");
}

TEST(AppendInt, WritesDecimal) {
  std::string out;
  AppendInt(0, &out);
  out.push_back(' ');
  AppendInt(-42, &out);
  out.push_back(' ');
  AppendInt(std::numeric_limits<int64_t>::max(), &out);
  out.push_back(' ');
  AppendInt(std::numeric_limits<int64_t>::min(), &out);
  EXPECT_EQ(out, "0 -42 9223372036854775807 -9223372036854775808");
}

}  // namespace
}  // namespace zumik::sim
