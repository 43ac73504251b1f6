// Prometheus naming rules.
#include "core/metrics/names.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <vector>

#include "core/status.h"

namespace zumik::metrics {
namespace {

TEST(Names, MetricNamesFollowPrometheusRulesIncludingColons) {
  for (std::string_view good :
       {"a", "_a", ":a", "vllm:num_requests_running", "http_requests_total", "a1_:b2", "A"}) {
    EXPECT_TRUE(IsValidMetricName(good)) << good;
    EXPECT_TRUE(ValidateMetricName(good).ok()) << good;
  }
  for (std::string_view bad : {"", "1a", "a-b", "a b", "a.b", "é", "a{", "a\n"}) {
    EXPECT_FALSE(IsValidMetricName(bad)) << bad;
    EXPECT_EQ(ValidateMetricName(bad).code(), absl::StatusCode::kInvalidArgument) << bad;
  }
}

TEST(Names, LabelNamesRejectColonsAndLeadingDigits) {
  for (std::string_view good : {"a", "_a", "model_name", "le", "A9"}) {
    EXPECT_TRUE(IsValidLabelName(good)) << good;
  }
  for (std::string_view bad : {"", "1a", "a:b", "a-b", "a b"}) {
    EXPECT_FALSE(IsValidLabelName(bad)) << bad;
  }
}

struct LabelSetCase {
  MetricType type;
  std::vector<std::string> labels;
  std::string_view error;  // empty: valid
};

TEST(Names, ValidateLabelNamesRejectsReservedAndDuplicates) {
  const LabelSetCase cases[] = {
      {MetricType::kCounter, {}, ""},
      {MetricType::kCounter, {"model_name", "engine"}, ""},
      {MetricType::kGauge, {"le"}, ""},
      {MetricType::kHistogram, {"model_name", "le"}, "reserved for histogram series"},
      {MetricType::kSummary, {"quantile"}, "reserved for summary series"},
      {MetricType::kCounter, {"__name__"}, "reserved"},
      {MetricType::kCounter, {"a", "b", "a"}, "duplicate label name 'a'"},
      {MetricType::kCounter, {"bad-name"}, "invalid label name 'bad-name'"},
  };
  for (const LabelSetCase& c : cases) {
    const absl::Status status = ValidateLabelNames("m", c.type, c.labels);
    if (c.error.empty()) {
      EXPECT_TRUE(status.ok()) << status;
    } else {
      EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(MessageOf(status)), testing::HasSubstr(std::string(c.error)));
    }
  }
}

}  // namespace
}  // namespace zumik::metrics
