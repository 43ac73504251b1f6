// The metric registry of one process (or one simulated server): registers families and
// renders them all in Prometheus text format 0.0.4 for a /metrics handler.
#pragma once

#include <atomic>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/metrics/metric.h"

namespace zumik::metrics {

struct RegistryOptions {
  // Default series limit for every family (Family::set_max_series overrides it per family).
  size_t max_series_per_family = kDefaultMaxSeries;
};

// Registration validates names per Prometheus rules and returns kInvalidArgument for a bad
// metric name, label name or bucket layout; it never aborts. Registering a name again with
// the same type, label names (and buckets) returns the existing family, so several components
// (e.g. one per engine) can share a family; any other clash is kAlreadyExists, including
// a name that collides with a histogram's _bucket/_sum/_count series.
//
// Names are exposed exactly as registered: a counter registered as "vllm:prompt_tokens_total"
// is written under that name (no suffix is added). Families are exposed in registration
// order; within a family, series are sorted by label values (byte-wise, in label-name order),
// labels are written in label-name order with `le` last.
//
// Families live as long as the registry; the returned pointers stay valid until then.
class Registry {
 public:
  Registry() : Registry(RegistryOptions{}) {}
  explicit Registry(RegistryOptions options);
  Registry(const Registry&) = delete;
  Registry& operator=(const Registry&) = delete;

  absl::StatusOr<CounterFamily*> AddCounter(std::string_view name, std::string_view help,
                                            std::vector<std::string> label_names = {});
  absl::StatusOr<GaugeFamily*> AddGauge(std::string_view name, std::string_view help,
                                        std::vector<std::string> label_names = {});
  absl::StatusOr<HistogramFamily*> AddHistogram(std::string_view name, std::string_view help,
                                                std::vector<std::string> label_names,
                                                std::vector<double> bucket_bounds);
  // Families whose values are read by callbacks at scrape time (see CallbackFamily).
  absl::StatusOr<CallbackFamily*> AddCallbackGauge(std::string_view name, std::string_view help,
                                                   std::vector<std::string> label_names = {});
  absl::StatusOr<CallbackFamily*> AddCallbackCounter(std::string_view name, std::string_view help,
                                                     std::vector<std::string> label_names = {});

  // An info-style gauge: one series with these labels (in this order) and value 1, e.g.
  // SetInfo("vllm:cache_config_info", "...", {{"block_size", "16"}, {"num_gpu_blocks", "27500"}}).
  // Calling it again with other values adds another series to the same family.
  absl::StatusOr<std::shared_ptr<Gauge>> SetInfo(
      std::string_view name, std::string_view help,
      const std::vector<std::pair<std::string, std::string>>& labels);

  // Appends every family (HELP, TYPE, samples) to `out`; reuse `out` to avoid reallocating.
  // When any family has overflowed, a final zumik_metrics_overflow_total{metric=...} counter
  // family reports by how much.
  void WriteText(std::string& out) const;
  // The whole exposition, for a /metrics response with Content-Type kContentType.
  std::string Expose() const;

  size_t FamilyCount() const;

 private:
  template <typename F, typename Make>
  absl::StatusOr<F*> GetOrAdd(std::string_view name, MetricType type,
                              const std::vector<std::string>& label_names, Make make);

  const RegistryOptions options_;
  mutable std::mutex mu_;
  std::vector<std::unique_ptr<MetricFamily>> families_;
  // Every sample name a family writes (a histogram writes four) -> that family.
  std::map<std::string, MetricFamily*, std::less<>> sample_names_;
  mutable std::atomic<size_t> last_size_{0};
};

}  // namespace zumik::metrics
