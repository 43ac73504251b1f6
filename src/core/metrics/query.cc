// Sample lookups and histogram quantiles over parsed samples.
#include "core/metrics/query.h"

#include <algorithm>
#include <charconv>
#include <cmath>
#include <limits>
#include <string>

#include "core/status.h"

namespace zumik::metrics {
namespace {

constexpr std::string_view kBucketSuffix = "_bucket";

bool IsBucketOf(std::string_view sample_name, std::string_view histogram) {
  return sample_name.size() == histogram.size() + kBucketSuffix.size() &&
         sample_name.starts_with(histogram) && sample_name.ends_with(kBucketSuffix);
}

bool ParseBound(std::string_view text, double* out) {
  if (text == "+Inf" || text == "Inf" || text == "+inf" || text == "inf") {
    *out = std::numeric_limits<double>::infinity();
    return true;
  }
  if (!text.empty() && text.front() == '+') text.remove_prefix(1);
  if (text.empty()) return false;
  const auto [end, ec] = std::from_chars(text.data(), text.data() + text.size(), *out);
  return ec == std::errc() && end == text.data() + text.size() && !std::isnan(*out);
}

}  // namespace

bool Matches(const Sample& sample, std::span<const LabelMatcher> matchers) {
  return std::all_of(matchers.begin(), matchers.end(), [&](const LabelMatcher& matcher) {
    const std::optional<std::string_view> value = sample.Label(matcher.name);
    return value.has_value() && *value == matcher.value;
  });
}

const Sample* FindSample(std::span<const Sample> samples, std::string_view name,
                         std::span<const LabelMatcher> matchers) {
  for (const Sample& sample : samples) {
    if (sample.name == name && Matches(sample, matchers)) return &sample;
  }
  return nullptr;
}

std::optional<double> FindValue(std::span<const Sample> samples, std::string_view name,
                                std::span<const LabelMatcher> matchers) {
  const Sample* sample = FindSample(samples, name, matchers);
  if (sample == nullptr) return std::nullopt;
  return sample->value;
}

double SumValues(std::span<const Sample> samples, std::string_view name,
                 std::span<const LabelMatcher> matchers) {
  double sum = 0;
  for (const Sample& sample : samples) {
    if (sample.name == name && Matches(sample, matchers)) sum += sample.value;
  }
  return sum;
}

double BucketQuantile(double q, std::vector<BucketCount> buckets) {
  constexpr double kNaN = std::numeric_limits<double>::quiet_NaN();
  constexpr double kInf = std::numeric_limits<double>::infinity();
  if (std::isnan(q)) return kNaN;
  if (q < 0) return -kInf;
  if (q > 1) return kInf;
  // NaN bounds would break the sort's ordering; PromQL cannot produce them either.
  std::erase_if(buckets, [](const BucketCount& b) { return std::isnan(b.upper_bound); });
  std::sort(buckets.begin(), buckets.end(), [](const BucketCount& a, const BucketCount& b) {
    return a.upper_bound < b.upper_bound;
  });
  if (buckets.empty() || !std::isinf(buckets.back().upper_bound) ||
      buckets.back().upper_bound < 0) {
    return kNaN;
  }
  // Equal bounds (several series of one histogram, i.e. sum by (le)) add up.
  size_t kept = 0;
  for (size_t i = 0; i < buckets.size(); ++i) {
    if (kept > 0 && buckets[kept - 1].upper_bound == buckets[i].upper_bound) {
      buckets[kept - 1].cumulative_count += buckets[i].cumulative_count;
    } else {
      buckets[kept++] = buckets[i];
    }
  }
  buckets.resize(kept);
  if (buckets.size() < 2) return kNaN;
  // Counts scraped at slightly different moments can dip; PromQL makes them monotonic.
  for (size_t i = 1; i < buckets.size(); ++i) {
    buckets[i].cumulative_count =
        std::max(buckets[i].cumulative_count, buckets[i - 1].cumulative_count);
  }
  const double observations = buckets.back().cumulative_count;
  if (!(observations > 0)) return kNaN;
  double rank = q * observations;
  const auto it = std::lower_bound(
      buckets.begin(), buckets.end() - 1, rank,
      [](const BucketCount& bucket, double r) { return bucket.cumulative_count < r; });
  const size_t b = static_cast<size_t>(it - buckets.begin());
  if (b == buckets.size() - 1) return buckets[buckets.size() - 2].upper_bound;
  if (b == 0 && buckets[0].upper_bound <= 0) return buckets[0].upper_bound;
  double bucket_start = 0;
  double bucket_end = buckets[b].upper_bound;
  double count = buckets[b].cumulative_count;
  if (b > 0) {
    bucket_start = buckets[b - 1].upper_bound;
    count -= buckets[b - 1].cumulative_count;
    rank -= buckets[b - 1].cumulative_count;
  }
  return bucket_start + (bucket_end - bucket_start) * (rank / count);
}

absl::StatusOr<double> HistogramQuantile(double q, std::span<const Sample> samples,
                                         std::string_view name,
                                         std::span<const LabelMatcher> matchers) {
  std::vector<BucketCount> buckets;
  for (const Sample& sample : samples) {
    if (!IsBucketOf(sample.name, name) || !Matches(sample, matchers)) continue;
    const std::optional<std::string_view> le = sample.Label("le");
    double bound = 0;
    if (!le.has_value() || !ParseBound(*le, &bound)) {
      return Errorf(absl::StatusCode::kInvalidArgument,
                    "histogram '{}': bucket sample has a missing or invalid 'le' label", name);
    }
    buckets.push_back(BucketCount{bound, sample.value});  // BucketQuantile sums equal bounds
  }
  if (buckets.empty()) {
    return Errorf(absl::StatusCode::kNotFound, "no '{}_bucket' samples match", name);
  }
  return BucketQuantile(q, std::move(buckets));
}

}  // namespace zumik::metrics
