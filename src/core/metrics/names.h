// Prometheus naming rules for metric and label names, used at registration and by the parser.
#pragma once

#include <span>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "core/metrics/metric_type.h"

namespace zumik::metrics {

constexpr bool IsAsciiLetter(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
constexpr bool IsAsciiDigit(char c) { return c >= '0' && c <= '9'; }

// Metric names: [a-zA-Z_:][a-zA-Z0-9_:]*  (':' is allowed, vLLM uses a `vllm:` prefix).
constexpr bool IsMetricNameStart(char c) { return IsAsciiLetter(c) || c == '_' || c == ':'; }
constexpr bool IsMetricNameChar(char c) { return IsMetricNameStart(c) || IsAsciiDigit(c); }
// Label names: [a-zA-Z_][a-zA-Z0-9_]*
constexpr bool IsLabelNameStart(char c) { return IsAsciiLetter(c) || c == '_'; }
constexpr bool IsLabelNameChar(char c) { return IsLabelNameStart(c) || IsAsciiDigit(c); }

bool IsValidMetricName(std::string_view name);
bool IsValidLabelName(std::string_view name);

// kInvalidArgument naming the bad name and the rule it breaks.
absl::Status ValidateMetricName(std::string_view name);
// Each name valid, not reserved ("__" prefix; "le" on histograms, "quantile" on summaries)
// and not repeated.
absl::Status ValidateLabelNames(std::string_view metric, MetricType type,
                                std::span<const std::string> label_names);

}  // namespace zumik::metrics
