// Lookups over parsed samples: find a series by name and labels, and estimate a quantile from
// histogram buckets the way PromQL's histogram_quantile() does.
#pragma once

#include <initializer_list>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/metrics/parser.h"

namespace zumik::metrics {

// One required label: a sample matches when it has every listed label with exactly that value
// (other labels are ignored).
struct LabelMatcher {
  std::string_view name;
  std::string_view value;
};

// Every function taking matchers has a span form (matchers built at run time) and an
// initializer-list form (literals).
bool Matches(const Sample& sample, std::span<const LabelMatcher> matchers);

// The first sample with this name whose labels match, or nullptr / nullopt.
// FindValue(samples, "vllm:num_requests_waiting", {{"model_name", "x"}}).
const Sample* FindSample(std::span<const Sample> samples, std::string_view name,
                         std::span<const LabelMatcher> matchers);
std::optional<double> FindValue(std::span<const Sample> samples, std::string_view name,
                                std::span<const LabelMatcher> matchers);
// The sum over all matching samples (0 when none match), like PromQL's sum().
double SumValues(std::span<const Sample> samples, std::string_view name,
                 std::span<const LabelMatcher> matchers);

inline std::span<const LabelMatcher> AsSpan(std::initializer_list<LabelMatcher> matchers) {
  return {matchers.begin(), matchers.size()};
}
inline bool Matches(const Sample& sample, std::initializer_list<LabelMatcher> matchers) {
  return Matches(sample, AsSpan(matchers));
}
inline const Sample* FindSample(std::span<const Sample> samples, std::string_view name,
                                std::initializer_list<LabelMatcher> matchers = {}) {
  return FindSample(samples, name, AsSpan(matchers));
}
inline std::optional<double> FindValue(std::span<const Sample> samples, std::string_view name,
                                       std::initializer_list<LabelMatcher> matchers = {}) {
  return FindValue(samples, name, AsSpan(matchers));
}
inline double SumValues(std::span<const Sample> samples, std::string_view name,
                        std::initializer_list<LabelMatcher> matchers = {}) {
  return SumValues(samples, name, AsSpan(matchers));
}

struct BucketCount {
  double upper_bound;       // `le`
  double cumulative_count;  // observations <= upper_bound
};

// PromQL's bucketQuantile: linear interpolation inside the bucket holding rank q*count, the
// first bucket starting at 0 (unless its bound is <= 0), the +Inf bucket answering with the
// largest finite bound. NaN without a +Inf bucket, with fewer than two buckets or with no
// observations; -Inf for q < 0, +Inf for q > 1. Buckets may come in any order; buckets with
// equal bounds are summed (sum by (le)).
double BucketQuantile(double q, std::vector<BucketCount> buckets);

// histogram_quantile(q, sum by (le) (<name>_bucket{matchers})) over parsed samples. `name` is
// the histogram's name without the _bucket suffix. kNotFound when no bucket matches,
// kInvalidArgument when a bucket has a missing or non-numeric `le`.
absl::StatusOr<double> HistogramQuantile(double q, std::span<const Sample> samples,
                                         std::string_view name,
                                         std::span<const LabelMatcher> matchers);
inline absl::StatusOr<double> HistogramQuantile(double q, std::span<const Sample> samples,
                                                std::string_view name,
                                                std::initializer_list<LabelMatcher> matchers = {}) {
  return HistogramQuantile(q, samples, name, AsSpan(matchers));
}

}  // namespace zumik::metrics
