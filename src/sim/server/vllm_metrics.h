// The metrics one simulated replica exposes on GET /metrics, under the names, types, labels and
// buckets real vLLM (V1 engine) uses, plus LMCache's hit counters when the CPU tier is on and
// per-GPU DCGM exporter gauges, so dashboards and routers work against the simulator unchanged.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "core/metrics/registry.h"
#include "sim/engine.h"
#include "sim/profile.h"

namespace zumik::sim {

// vLLM's histogram buckets (vllm/v1/metrics/loggers.py).
extern const std::vector<double> kTtftBuckets;
extern const std::vector<double> kItlBuckets;
extern const std::vector<double> kRequestLatencyBuckets;

class ReplicaMetrics {
 public:
  // `stats` is called at scrape time and must be safe to call from any thread.
  static absl::StatusOr<std::unique_ptr<ReplicaMetrics>> Create(const Profile& profile,
                                                                int replica_index,
                                                                const Clock& clock,
                                                                std::function<EngineStats()> stats);

  // Observations, called by the replica's driver as the engine's events are delivered.
  void ObserveFirstToken(const FirstTokenEvent& event);
  void ObserveInterTokenLatency(Duration itl);
  void ObserveFinished(const RequestResult& result);
  // Ours: how late streamed tokens reach the client's socket relative to the model's step end.
  void ObserveDeliveryLag(Duration lag) { delivery_lag_->Observe(ToSeconds(lag)); }
  // Ours: the change of one stream's delivery lag between consecutive writes (absolute).
  void ObservePacingError(Duration change) {
    pacing_error_->Observe(ToSeconds(change < Duration::zero() ? -change : change));
  }

  std::string Expose() const { return registry_.Expose(); }
  metrics::Registry& registry() { return registry_; }

 private:
  ReplicaMetrics(const Profile& profile, int replica_index, const Clock& clock,
                 std::function<EngineStats()> stats);
  absl::Status Register();
  // GPU utilization in percent over the last sampling window (DCGM samples about once a
  // second): busy time of the engine's steps over elapsed time.
  double GpuUtilPercent(const EngineStats& stats) const;

  const Profile profile_;
  const int replica_index_;
  const Clock& clock_;
  std::function<EngineStats()> stats_;
  metrics::Registry registry_;

  std::vector<metrics::CallbackHandle> handles_;
  std::vector<std::shared_ptr<metrics::Histogram>> held_histograms_;
  std::shared_ptr<metrics::Gauge> info_;
  metrics::Histogram* delivery_lag_ = nullptr;
  metrics::Histogram* pacing_error_ = nullptr;
  metrics::Histogram* ttft_ = nullptr;
  metrics::Histogram* itl_ = nullptr;
  metrics::Histogram* e2e_ = nullptr;
  metrics::Histogram* queue_time_ = nullptr;
  metrics::Histogram* prefill_time_ = nullptr;
  metrics::Histogram* decode_time_ = nullptr;
  metrics::Histogram* prompt_tokens_hist_ = nullptr;
  metrics::Histogram* generation_tokens_hist_ = nullptr;

  mutable std::mutex util_mu_;
  mutable Time util_window_start_{0};
  mutable Duration util_busy_start_{0};
  mutable double util_percent_ = 0;
};

}  // namespace zumik::sim
