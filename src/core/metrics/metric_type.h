// The Prometheus metric types, shared by the instrumentation side and the text parser.
#pragma once

#include <string_view>

namespace zumik::metrics {

enum class MetricType { kCounter, kGauge, kHistogram, kSummary, kUntyped };

// The keyword used on `# TYPE` lines.
constexpr std::string_view MetricTypeName(MetricType type) {
  switch (type) {
    case MetricType::kCounter:
      return "counter";
    case MetricType::kGauge:
      return "gauge";
    case MetricType::kHistogram:
      return "histogram";
    case MetricType::kSummary:
      return "summary";
    case MetricType::kUntyped:
      break;
  }
  return "untyped";
}

}  // namespace zumik::metrics
