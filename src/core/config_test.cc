#include "core/config.h"

#include <gtest/gtest.h>

#include "core/status.h"

namespace zumik {
namespace {

TEST(ParseDuration, AcceptsUnitsAndBareSeconds) {
  EXPECT_EQ(*ParseDuration("250ms"), std::chrono::milliseconds(250));
  EXPECT_EQ(*ParseDuration("1.5s"), std::chrono::milliseconds(1500));
  EXPECT_EQ(*ParseDuration("2m"), std::chrono::minutes(2));
  EXPECT_EQ(*ParseDuration("100us"), std::chrono::microseconds(100));
  EXPECT_EQ(*ParseDuration("30"), std::chrono::seconds(30));
  EXPECT_FALSE(ParseDuration("fast").ok());
  EXPECT_FALSE(ParseDuration("-1s").ok());
  EXPECT_FALSE(ParseDuration("").ok());
}

TEST(FieldReader, ReadsTypedValuesAndKeepsDefaultsForAbsentKeys) {
  auto doc = ParseYaml("a: 1.5\nb: 7\nc: true\nd: hello\ne: 50ms\nf: [x, y]\nn: 1e6\n", "t.yaml");
  ASSERT_TRUE(doc.ok());
  FieldReader r(doc->root, doc->source);
  double a = 0;
  int64_t b = 0, n = 0;
  bool c = false;
  std::string d;
  Duration e{};
  std::vector<std::string> f;
  int absent = 9;
  ASSERT_TRUE(r.Read("a", &a).ok());
  ASSERT_TRUE(r.Read("b", &b).ok());
  ASSERT_TRUE(r.Read("c", &c).ok());
  ASSERT_TRUE(r.Read("d", &d).ok());
  ASSERT_TRUE(r.Read("e", &e).ok());
  ASSERT_TRUE(r.Read("f", &f).ok());
  ASSERT_TRUE(r.Read("n", &n).ok());
  ASSERT_TRUE(r.Read("zz", &absent).ok());
  EXPECT_EQ(a, 1.5);
  EXPECT_EQ(b, 7);
  EXPECT_TRUE(c);
  EXPECT_EQ(d, "hello");
  EXPECT_EQ(e, std::chrono::milliseconds(50));
  EXPECT_EQ(f, (std::vector<std::string>{"x", "y"}));
  EXPECT_EQ(n, 1000000);
  EXPECT_EQ(absent, 9);
  EXPECT_TRUE(r.Finish().ok());
}

TEST(FieldReader, ErrorsNameFileLineAndKey) {
  auto doc = ParseYaml("profile:\n  c_lin: fast\n  typo: 1\n", "p.yaml");
  ASSERT_TRUE(doc.ok());
  FieldReader r(doc->root["profile"], doc->source, "profile");
  double c_lin = 0;
  const absl::Status bad = r.Read("c_lin", &c_lin);
  EXPECT_EQ(MessageOf(bad), "p.yaml:2: key 'profile.c_lin': expected a number, got 'fast'");
  const absl::Status unknown = r.Finish();
  EXPECT_EQ(MessageOf(unknown), "p.yaml:3: unknown key 'profile.typo': the keys here are c_lin");
}

TEST(FieldReader, IntegersWrittenAsHugeOrFractionalFloatsAreErrorsThatNameTheValue) {
  // Converting a double outside int64's range is undefined behaviour: such values must be
  // rejected before any conversion (UBSan runs this test in CI).
  auto doc = ParseYaml(
      "huge: 1e30\nneg: -1e30\nhalf: 2.5\ninf: .inf\nnan: .nan\nedge: 9.3e18\n"
      "big: 4e18\n",
      "i.yaml");
  ASSERT_TRUE(doc.ok());
  FieldReader r(doc->root, doc->source);
  for (const char* key : {"huge", "neg", "half", "inf", "nan", "edge"}) {
    int64_t value = 5;
    const absl::Status status = r.Read(key, &value);
    EXPECT_FALSE(status.ok()) << key;
    EXPECT_NE(MessageOf(status).find("expected an integer"), std::string::npos)
        << MessageOf(status);
    EXPECT_EQ(value, 5) << key;  // untouched on error
  }
  int64_t big = 0;
  ASSERT_TRUE(r.Read("big", &big).ok());
  EXPECT_EQ(big, 4'000'000'000'000'000'000);
  int narrow = 0;
  const absl::Status narrowed = r.Read("big", &narrow);
  EXPECT_EQ(MessageOf(narrowed), "i.yaml:7: key 'big': integer out of range");
}

TEST(ParseYaml, ReportsSyntaxErrorsWithLine) {
  auto doc = ParseYaml("a: [1, 2\nb: 3\n", "broken.yaml");
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.status().message().find("broken.yaml:"), std::string::npos);
}

TEST(ApplyOverride, SetsNestedKeysAsTypedYaml) {
  YAML::Node root;
  ASSERT_TRUE(ApplyOverride(root, "profile.c_lin=22e-6").ok());
  ASSERT_TRUE(ApplyOverride(root, "profile.name=h100").ok());
  ASSERT_TRUE(ApplyOverride(root, "replicas=4").ok());
  EXPECT_DOUBLE_EQ(root["profile"]["c_lin"].as<double>(), 22e-6);
  EXPECT_EQ(root["profile"]["name"].as<std::string>(), "h100");
  EXPECT_EQ(root["replicas"].as<int>(), 4);
  EXPECT_FALSE(ApplyOverride(root, "novalue").ok());
  EXPECT_FALSE(ApplyOverride(root, "replicas.x=1").ok());
}

TEST(LoadYamlFile, MissingFileSaysWhichFile) {
  auto doc = LoadYamlFile("/nonexistent/zumik.yaml");
  ASSERT_FALSE(doc.ok());
  EXPECT_NE(doc.status().message().find("/nonexistent/zumik.yaml"), std::string::npos);
}

}  // namespace
}  // namespace zumik
