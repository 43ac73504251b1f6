// Number formatting and escaping of the text exposition format.
#include "core/metrics/exposition.h"

#include <gtest/gtest.h>

#include <bit>
#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>

#include "core/rng.h"

namespace zumik::metrics {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();

struct DoubleCase {
  double value;
  std::string_view expected;
};

TEST(FormatDouble, WritesPythonReprLayout) {
  const DoubleCase cases[] = {
      {0.0, "0.0"},
      {-0.0, "-0.0"},
      {3.0, "3.0"},
      {-42.0, "-42.0"},
      {1e6, "1000000.0"},
      {1234567890123456.0, "1234567890123456.0"},
      {1e15 + 0.5, "1000000000000000.5"},
      {1e16, "1e+16"},
      {1.5e16, "1.5e+16"},
      {0.1, "0.1"},
      {0.25, "0.25"},
      {0.30000000000000004, "0.30000000000000004"},
      {123.456, "123.456"},
      {1e-4, "0.0001"},
      {1.5e-4, "0.00015"},
      {1e-5, "1e-05"},
      {2.5e-5, "2.5e-05"},
      {-2.5e-5, "-2.5e-05"},
      {1.7432107371855402e+09, "1743210737.1855402"},
      {1e300, "1e+300"},
      {5e-324, "5e-324"},
      {std::numeric_limits<double>::max(), "1.7976931348623157e+308"},
      {kInf, "+Inf"},
      {-kInf, "-Inf"},
      {std::numeric_limits<double>::quiet_NaN(), "NaN"},
  };
  for (const DoubleCase& c : cases) {
    EXPECT_EQ(FormatDouble(c.value), c.expected) << "value " << c.value;
  }
}

TEST(FormatDouble, RoundTripsRandomDoublesExactly) {
  Rng rng(20240611);
  for (int i = 0; i < 20000; ++i) {
    // Random bit patterns cover every exponent; skip NaN/Inf (covered above).
    const uint64_t bits = rng.Next();
    double value;
    std::memcpy(&value, &bits, sizeof(value));
    if (!std::isfinite(value)) continue;
    const std::string text = FormatDouble(value);
    double parsed = 0;
    const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), parsed);
    ASSERT_EQ(ec, std::errc()) << text;
    ASSERT_EQ(end, text.data() + text.size()) << text;
    ASSERT_EQ(std::bit_cast<uint64_t>(parsed), bits) << text;
  }
}

TEST(FormatBucketBound, MatchesPrometheusClientLeLabels) {
  const DoubleCase cases[] = {
      {0.005, "0.005"},
      {0.1, "0.1"},
      {1.0, "1.0"},
      {2560.0, "2560.0"},
      {999999.0, "999999.0"},
      {1e6, "1e+06"},
      {2.5e6, "2.5e+06"},
      {1234567.5, "1.2345675e+06"},
      // prometheus_client pads the exponent with a literal "0", even past 9.
      {1e10, "1e+010"},
      {kInf, "+Inf"},
      {0.0, "0.0"},
      {-1.0, "-1.0"},
      {1e-5, "1e-05"},
  };
  for (const DoubleCase& c : cases) {
    EXPECT_EQ(FormatBucketBound(c.value), c.expected) << "bound " << c.value;
  }
}

struct EscapeCase {
  std::string_view input;
  std::string_view label_value;
  std::string_view help;
};

TEST(Escaping, LabelValuesEscapeQuotesAndHelpDoesNot) {
  const EscapeCase cases[] = {
      {"plain", "plain", "plain"},
      {"", "", ""},
      {R"(C:\dir)", R"(C:\\dir)", R"(C:\\dir)"},
      {R"(say "hi")", R"(say \"hi\")", R"(say "hi")"},
      {"line1\nline2", R"(line1\nline2)", R"(line1\nline2)"},
      {"\\\"\n", R"(\\\"\n)", R"(\\"\n)"},
  };
  for (const EscapeCase& c : cases) {
    std::string label;
    AppendEscapedLabelValue(label, c.input);
    EXPECT_EQ(label, c.label_value) << c.input;
    std::string help;
    AppendEscapedHelp(help, c.input);
    EXPECT_EQ(help, c.help) << c.input;
  }
}

TEST(Exposition, ContentTypeIsTextFormat004) {
  EXPECT_EQ(kContentType, "text/plain; version=0.0.4; charset=utf-8");
}

}  // namespace
}  // namespace zumik::metrics
