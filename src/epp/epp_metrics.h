// The EPP's own Prometheus metrics, named after the upstream EPP's canonical `llm_d_epp_*`
// set (gie-llmd.md §6.2). Label cardinality is bounded: at most kMaxModelNames distinct model
// names per label, of at most kMaxModelNameBytes each; the rest are reported as "other".
// Clients choose model names, so names no model server has yet answered with a success
// ("unconfirmed": typos, probes, junk) get at most kMaxUnconfirmedModelNames of those labels:
// a flood of made-up names cannot take the labels of the models actually served.
#pragma once

#include <atomic>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <utility>

#include "absl/status/statusor.h"
#include "core/metrics/registry.h"

namespace zumik::epp {

class Datastore;

class EppMetrics {
 public:
  static constexpr size_t kMaxModelNames = 100;
  // A longer name is "other" (and takes no place among the kMaxModelNames): one request with
  // a megabyte-long model name must not put a megabyte into every line of every scrape.
  static constexpr size_t kMaxModelNameBytes = 256;
  static constexpr size_t kMaxUnconfirmedModelNames = 20;
  static constexpr size_t kMaxEndpointSeries = 1024;

  // `pool_name` is the value of the pool gauges' `name` label.
  static absl::StatusOr<std::unique_ptr<EppMetrics>> Create(std::string pool_name);

  metrics::Registry& registry() { return registry_; }

  // Pool gauges (average KV, queue, running, ready endpoints, per-endpoint queue) are read
  // from the datastore's snapshot at scrape time; the prefix indexer gauges from `stats`.
  struct SchedulerGauges {
    int64_t prefix_index_entries = 0;
    int64_t prefix_index_bytes = 0;
    double prefix_hit_ratio = 0;
    int64_t in_flight = 0;
  };
  void WatchPool(const Datastore& datastore, std::function<SchedulerGauges()> scheduler_stats);

  // The model label value: the name if it already has a label, or if there is room for one
  // (kMaxModelNames in all, kMaxUnconfirmedModelNames of them unconfirmed) and it is at most
  // kMaxModelNameBytes long; else "other". "" (no model: bodiless requests) is itself.
  std::string BoundModel(std::string_view model);
  // A model server answered a request for `model` with a success: the name is confirmed (it
  // gets a label if there is room among kMaxModelNames, and frees its unconfirmed place).
  void ConfirmModel(std::string_view model);

  // By label values: for requests refused at admission, which have no series yet.
  void RequestStarted(const std::string& model, const std::string& target);
  void RequestError(const std::string& model, const std::string& target, int code);
  void SchedulerDuration(double seconds, bool success);
  // llm_d_epp_model_rewrite_decisions_total: `rule` (an InferenceModelRewrite's name) sent a
  // request for `model` to `target`.
  void RewriteDecision(std::string_view rule, std::string_view model, std::string_view target);

  // A series made on first use (so /metrics shows only what was observed), then kept.
  template <typename Child>
  struct LazySeries {
    std::once_flag once;
    std::shared_ptr<Child> child;
  };
  // The series of one (model_name, target_model_name) label pair, looked up once per request
  // instead of once per observation. Labels are bounded as BoundModel does, so there are at
  // most (kMaxModelNames + 1)^2 of these. Valid as long as this EppMetrics.
  struct ModelSeries {
    std::string model, target;  // the label values
    // Both label values are confirmed names: a success needs no ConfirmModel.
    std::atomic<bool> confirmed{false};
    LazySeries<metrics::Counter> requests;
    LazySeries<metrics::Gauge> running;
    LazySeries<metrics::Histogram> duration, request_size, response_size;
    LazySeries<metrics::Histogram> input_tokens, output_tokens, cached_tokens;
    LazySeries<metrics::Histogram> ttft[2];  // streaming "false", "true"
  };
  // `target` "" = the model's own label (no rewrite).
  ModelSeries& Series(std::string_view model, std::string_view target);
  // An admitted request's observations, through its cached series.
  void RequestStarted(ModelSeries& s);
  // A success for the request's `model` (and `target`, "" = model) served through `s`.
  void RequestSucceeded(ModelSeries& s, std::string_view model, std::string_view target);
  void RequestError(ModelSeries& s, int code);
  void RequestFinished(ModelSeries& s, double seconds, int64_t request_bytes,
                       int64_t response_bytes);
  void RequestRunning(ModelSeries& s, int delta);
  void Ttft(ModelSeries& s, bool streaming, double seconds);
  void Tokens(ModelSeries& s, int64_t input, int64_t output, int64_t cached);
  void ScrapeError() { scrape_errors_->With({})->Inc(); }

 private:
  EppMetrics() = default;
  absl::Status Init(std::string pool_name);
  std::string_view BoundModelLocked(std::string_view model);  // requires mu_
  // ConfirmModel under mu_; true when `model` has a confirmed label of its own.
  bool ConfirmModelLocked(std::string_view model);

  metrics::Registry registry_;
  std::string pool_name_;
  std::mutex mu_;
  std::map<std::string, bool, std::less<>> models_;  // name → confirmed; guarded by mu_
  size_t unconfirmed_ = 0;                           // of models_; guarded by mu_
  struct PairLess {
    using is_transparent = void;
    template <typename A, typename B>
    bool operator()(const A& a, const B& b) const {
      return std::pair<std::string_view, std::string_view>(a.first, a.second) <
             std::pair<std::string_view, std::string_view>(b.first, b.second);
    }
  };
  std::map<std::pair<std::string, std::string>, std::unique_ptr<ModelSeries>, PairLess>
      series_;  // guarded by mu_
  LazySeries<metrics::Histogram> scheduler_e2e_series_;
  LazySeries<metrics::Counter> scheduler_success_, scheduler_failure_;

  metrics::CounterFamily* request_total_ = nullptr;
  metrics::CounterFamily* request_error_total_ = nullptr;
  metrics::HistogramFamily* request_duration_ = nullptr;
  metrics::HistogramFamily* request_size_ = nullptr;
  metrics::HistogramFamily* response_size_ = nullptr;
  metrics::HistogramFamily* input_tokens_ = nullptr;
  metrics::HistogramFamily* output_tokens_ = nullptr;
  metrics::HistogramFamily* cached_tokens_ = nullptr;
  metrics::GaugeFamily* request_running_ = nullptr;
  metrics::HistogramFamily* ttft_ = nullptr;
  metrics::HistogramFamily* scheduler_e2e_ = nullptr;
  metrics::CounterFamily* scheduler_attempts_ = nullptr;
  metrics::CounterFamily* scrape_errors_ = nullptr;
  metrics::CounterFamily* rewrite_decisions_ = nullptr;
  metrics::CallbackFamily* pool_kv_ = nullptr;
  metrics::CallbackFamily* pool_queue_ = nullptr;
  metrics::CallbackFamily* pool_running_ = nullptr;
  metrics::CallbackFamily* ready_endpoints_ = nullptr;
  metrics::CallbackFamily* per_endpoint_queue_ = nullptr;
  metrics::CallbackFamily* prefix_size_ = nullptr;
  metrics::CallbackFamily* prefix_hit_ratio_ = nullptr;
  metrics::CallbackFamily* in_flight_ = nullptr;
  std::vector<metrics::CallbackHandle> handles_;
};

}  // namespace zumik::epp
