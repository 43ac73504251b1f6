// Prometheus naming rules.
#include "core/metrics/names.h"

#include <algorithm>

#include "core/status.h"

namespace zumik::metrics {

bool IsValidMetricName(std::string_view name) {
  return !name.empty() && IsMetricNameStart(name.front()) &&
         std::all_of(name.begin(), name.end(), IsMetricNameChar);
}

bool IsValidLabelName(std::string_view name) {
  return !name.empty() && IsLabelNameStart(name.front()) &&
         std::all_of(name.begin(), name.end(), IsLabelNameChar);
}

absl::Status ValidateMetricName(std::string_view name) {
  if (!IsValidMetricName(name)) {
    return Errorf(absl::StatusCode::kInvalidArgument,
                  "invalid metric name '{}': must match [a-zA-Z_:][a-zA-Z0-9_:]*", name);
  }
  return absl::OkStatus();
}

absl::Status ValidateLabelNames(std::string_view metric, MetricType type,
                                std::span<const std::string> label_names) {
  for (size_t i = 0; i < label_names.size(); ++i) {
    const std::string& label = label_names[i];
    if (!IsValidLabelName(label)) {
      return Errorf(absl::StatusCode::kInvalidArgument,
                    "metric '{}': invalid label name '{}': must match [a-zA-Z_][a-zA-Z0-9_]*",
                    metric, label);
    }
    if (label.starts_with("__")) {
      return Errorf(absl::StatusCode::kInvalidArgument,
                    "metric '{}': label name '{}' is reserved (names starting with '__' are "
                    "internal to Prometheus)",
                    metric, label);
    }
    if ((type == MetricType::kHistogram && label == "le") ||
        (type == MetricType::kSummary && label == "quantile")) {
      return Errorf(absl::StatusCode::kInvalidArgument,
                    "metric '{}': label name '{}' is reserved for {} series", metric, label,
                    MetricTypeName(type));
    }
    if (const auto before = label_names.first(i);
        std::find(before.begin(), before.end(), label) != before.end()) {
      return Errorf(absl::StatusCode::kInvalidArgument, "metric '{}': duplicate label name '{}'",
                    metric, label);
    }
  }
  return absl::OkStatus();
}

}  // namespace zumik::metrics
