#include "core/json_string.h"

#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <limits>
#include <string>

namespace zumik {
namespace {

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
}  // namespace zumik
