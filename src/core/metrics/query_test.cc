// Sample lookups and PromQL-compatible histogram quantiles.
#include "core/metrics/query.h"

#include <gtest/gtest.h>

#include <cmath>
#include <limits>

#include "core/metrics/vllm_payload_testdata.h"

namespace zumik::metrics {
namespace {

constexpr double kInf = std::numeric_limits<double>::infinity();
constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();

std::vector<Sample> VllmSamples() {
  absl::StatusOr<std::vector<Sample>> samples = ParseText(testdata::kVllmPayload);
  EXPECT_TRUE(samples.ok()) << samples.status();
  return *std::move(samples);
}

struct QuantileCase {
  std::string_view description;
  double q;
  std::vector<BucketCount> buckets;
  double expected;  // NaN: expect NaN
};

TEST(BucketQuantile, FollowsPromQLHistogramQuantile) {
  const std::vector<BucketCount> simple = {{1, 10}, {2, 20}, {4, 40}, {kInf, 40}};
  const QuantileCase cases[] = {
      {"median interpolates inside a bucket", 0.5, simple, 2},
      {"first bucket starts at zero", 0.1, simple, 0.4},
      {"upper end of a bucket", 0.75, simple, 3},
      {"q=1 is the last finite bound", 1, simple, 4},
      {"rank in +Inf answers the largest finite bound", 0.99, {{1, 10}, {2, 20}, {kInf, 40}}, 2},
      {"q < 0", -0.1, simple, -kInf},
      {"q > 1", 1.1, simple, kInf},
      {"q NaN", kNaN, simple, kNaN},
      {"no +Inf bucket", 0.5, {{1, 10}, {2, 20}}, kNaN},
      {"only +Inf", 0.5, {{kInf, 5}}, kNaN},
      {"no observations", 0.5, {{1, 0}, {kInf, 0}}, kNaN},
      {"unsorted input", 0.5, {{kInf, 40}, {4, 40}, {1, 10}, {2, 20}}, 2},
      {"non-monotonic counts are fixed up",
       0.5,
       {{1, 10}, {2, 8}, {4, 40}, {kInf, 40}},
       2 + 2.0 * 10 / 30},
      {"negative first bound is returned as is", 0.1, {{-1, 10}, {1, 20}, {kInf, 20}}, -1},
      {"equal bounds are summed",
       0.5,
       {{1, 5}, {1, 5}, {2, 10}, {2, 10}, {kInf, 20}, {kInf, 20}},
       2},
  };
  for (const QuantileCase& c : cases) {
    const double got = BucketQuantile(c.q, c.buckets);
    if (std::isnan(c.expected)) {
      EXPECT_TRUE(std::isnan(got)) << c.description << ": got " << got;
    } else {
      EXPECT_DOUBLE_EQ(got, c.expected) << c.description;
    }
  }
}

TEST(HistogramQuantile, ComputesTtftQuantilesPerEngine) {
  const std::vector<Sample> samples = VllmSamples();
  const std::string_view model = testdata::kVllmModel;
  const auto quantile = [&](double q) {
    return HistogramQuantile(q, samples, "vllm:time_to_first_token_seconds",
                             {{"model_name", model}, {"engine", "0"}})
        .value();
  };
  // Engine 0 cumulative counts: 0.08 -> 40, 0.1 -> 55, 0.25 -> 80, 0.5 -> 92, 1 -> 98, 2.5 -> 100.
  EXPECT_DOUBLE_EQ(quantile(0.5), 0.08 + 0.02 * 10 / 15);
  EXPECT_DOUBLE_EQ(quantile(0.9), 0.25 + 0.25 * 10 / 12);
  EXPECT_DOUBLE_EQ(quantile(0.99), 1.0 + 1.5 * 1 / 2);
}

TEST(HistogramQuantile, SumsSeriesByLeAcrossEngines) {
  const std::vector<Sample> samples = VllmSamples();
  // Both engines: 0.08 -> 60, 0.1 -> 85 of 150 observations.
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.5, samples, "vllm:time_to_first_token_seconds").value(),
                   0.08 + 0.02 * 15 / 25);
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.5, samples, "vllm:e2e_request_latency_seconds").value(),
                   2.5 + 2.5 * 30 / 41);
}

TEST(HistogramQuantile, MissingHistogramIsNotFound) {
  const std::vector<Sample> samples = VllmSamples();
  EXPECT_EQ(HistogramQuantile(0.5, samples, "vllm:nope").status().code(),
            absl::StatusCode::kNotFound);
  EXPECT_EQ(HistogramQuantile(0.5, samples, "vllm:time_to_first_token_seconds", {{"engine", "7"}})
                .status()
                .code(),
            absl::StatusCode::kNotFound);
  // A name that only shares a prefix is not the histogram.
  EXPECT_EQ(HistogramQuantile(0.5, samples, "vllm:time_to_first_token").status().code(),
            absl::StatusCode::kNotFound);
}

TEST(HistogramQuantile, BadLeLabelIsInvalidArgument) {
  const std::vector<Sample> samples = {{"h_bucket", {{"le", "abc"}}, 1, {}}};
  EXPECT_EQ(HistogramQuantile(0.5, samples, "h").status().code(),
            absl::StatusCode::kInvalidArgument);
  const std::vector<Sample> no_le = {{"h_bucket", {}, 1, {}}};
  EXPECT_EQ(HistogramQuantile(0.5, no_le, "h").status().code(), absl::StatusCode::kInvalidArgument);
}

TEST(FindValue, MatchesASubsetOfLabels) {
  const std::vector<Sample> samples = VllmSamples();
  EXPECT_EQ(FindValue(samples, "vllm:num_requests_waiting", {{"engine", "0"}}), 7);
  EXPECT_EQ(FindValue(samples, "vllm:num_requests_waiting", {{"engine", "1"}}), 0);
  EXPECT_EQ(FindValue(samples, "vllm:num_requests_waiting", {{"engine", "0"}, {"x", "y"}}),
            std::nullopt);
  // Without matchers: the first series of that name.
  EXPECT_EQ(FindValue(samples, "vllm:num_requests_running"), 3);
  EXPECT_EQ(FindValue(samples, "vllm:missing"), std::nullopt);
}

TEST(FindValue, AcceptsMatchersBuiltAtRunTime) {
  const std::vector<Sample> samples = VllmSamples();
  const std::string engine = "1";
  const std::vector<LabelMatcher> matchers = {{"engine", engine}};
  EXPECT_EQ(FindValue(samples, "vllm:num_requests_running", matchers), 5);
  EXPECT_EQ(SumValues(samples, "vllm:num_requests_running", matchers), 5);
  EXPECT_DOUBLE_EQ(
      HistogramQuantile(0.5, samples, "vllm:time_to_first_token_seconds", matchers).value(),
      0.08 + 0.02 * 5 / 10);
}

TEST(SumValues, AddsEveryMatchingSeries) {
  const std::vector<Sample> samples = VllmSamples();
  EXPECT_EQ(SumValues(samples, "vllm:prompt_tokens_total"), 1834210 + 920077);
  EXPECT_EQ(SumValues(samples, "vllm:request_success_total", {{"engine", "0"}}), 100);
  EXPECT_EQ(SumValues(samples, "vllm:missing"), 0);
}

}  // namespace
}  // namespace zumik::metrics
