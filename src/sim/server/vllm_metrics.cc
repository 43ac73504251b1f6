#include "sim/server/vllm_metrics.h"

#include <algorithm>

#include "core/status.h"
#include "fmt/format.h"

namespace zumik::sim {

const std::vector<double> kTtftBuckets = {0.001, 0.005, 0.01, 0.02,  0.04,  0.06,  0.08, 0.1,
                                          0.25,  0.5,   0.75, 1.0,   2.5,   5.0,   7.5,  10.0,
                                          20.0,  40.0,  80.0, 160.0, 640.0, 2560.0};
const std::vector<double> kItlBuckets = {0.01, 0.025, 0.05, 0.075, 0.1, 0.15, 0.2,  0.3,  0.4, 0.5,
                                         0.75, 1.0,   2.5,  5.0,   7.5, 10.0, 20.0, 40.0, 80.0};
const std::vector<double> kRequestLatencyBuckets = {
    0.3,  0.5,  0.8,  1.0,  1.5,   2.0,   2.5,   5.0,   10.0,   15.0,  20.0,
    30.0, 40.0, 50.0, 60.0, 120.0, 240.0, 480.0, 960.0, 1920.0, 7680.0};

namespace {
// vLLM's token-count histograms use 1-2-5 steps up to the model's context length.
std::vector<double> TokenBuckets(int max_model_len) {
  std::vector<double> buckets;
  for (double exponent = 1; buckets.empty() || buckets.back() < max_model_len; exponent *= 10) {
    for (double m : {1.0, 2.0, 5.0}) {
      if (m * exponent > max_model_len) break;
      buckets.push_back(m * exponent);
    }
    if (exponent > 1e9) break;
  }
  return buckets;
}

constexpr double kMiB = 1024.0 * 1024.0;
}  // namespace

ReplicaMetrics::ReplicaMetrics(const Profile& profile, int replica_index, const Clock& clock,
                               std::function<EngineStats()> stats)
    : profile_(profile), replica_index_(replica_index), clock_(clock), stats_(std::move(stats)) {
  util_window_start_ = clock_.Now();
}

absl::StatusOr<std::unique_ptr<ReplicaMetrics>> ReplicaMetrics::Create(
    const Profile& profile, int replica_index, const Clock& clock,
    std::function<EngineStats()> stats) {
  std::unique_ptr<ReplicaMetrics> metrics(
      new ReplicaMetrics(profile, replica_index, clock, std::move(stats)));
  RETURN_IF_ERROR(metrics->Register());
  return metrics;
}

absl::Status ReplicaMetrics::Register() {
  const std::vector<std::string> labels = {"model_name", "engine"};
  const std::string_view model = profile_.served_model_name;
  const std::string_view engine = "0";
  // One series {model_name, engine} of a gauge or counter read from the engine at scrape time.
  auto callback = [&](bool is_counter, std::string_view name, std::string_view help,
                      std::function<double(const EngineStats&)> read) -> absl::Status {
    ASSIGN_OR_RETURN(auto* family, is_counter ? registry_.AddCallbackCounter(name, help, labels)
                                              : registry_.AddCallbackGauge(name, help, labels));
    ASSIGN_OR_RETURN(auto handle, family->Add({model, engine}, [this, read = std::move(read)] {
      return read(stats_());
    }));
    handles_.push_back(std::move(handle));
    return absl::OkStatus();
  };
  auto gauge = [&](std::string_view name, std::string_view help,
                   std::function<double(const EngineStats&)> read) {
    return callback(false, name, help, std::move(read));
  };
  auto counter = [&](std::string_view name, std::string_view help,
                     std::function<double(const EngineStats&)> read) {
    return callback(true, name, help, std::move(read));
  };
  auto histogram = [&](std::string_view name, std::string_view help,
                       const std::vector<double>& buckets) -> absl::StatusOr<metrics::Histogram*> {
    ASSIGN_OR_RETURN(auto* family, registry_.AddHistogram(name, help, labels, buckets));
    held_histograms_.push_back(family->With({model, engine}));
    return held_histograms_.back().get();
  };

  RETURN_IF_ERROR(gauge("vllm:num_requests_running",
                        "Number of requests in model execution batches.",
                        [](const EngineStats& s) { return s.num_running; }));
  RETURN_IF_ERROR(gauge("vllm:num_requests_waiting", "Number of requests waiting to be processed.",
                        [](const EngineStats& s) { return s.num_waiting + s.num_admitting; }));
  RETURN_IF_ERROR(gauge("vllm:kv_cache_usage_perc", "KV-cache usage. 1 means 100 percent usage.",
                        [](const EngineStats& s) { return s.kv_usage; }));
  ASSIGN_OR_RETURN(
      auto info,
      registry_.SetInfo("vllm:cache_config_info", "Information of the LLMEngine CacheConfig",
                        {{"block_size", std::to_string(profile_.block_size)},
                         {"cache_dtype", "auto"},
                         {"enable_prefix_caching", "True"},
                         {"engine", std::string(engine)},
                         {"gpu_memory_utilization", "0.9"},
                         {"num_gpu_blocks", std::to_string(profile_.num_gpu_blocks())}}));
  info_ = std::move(info);

  RETURN_IF_ERROR(counter("vllm:prefix_cache_queries_total",
                          "Prefix cache queries, in terms of number of queried tokens.",
                          [](const EngineStats& s) { return double(s.prefix_cache_queries); }));
  RETURN_IF_ERROR(counter("vllm:prefix_cache_hits_total",
                          "Prefix cache hits, in terms of number of cached tokens.",
                          [](const EngineStats& s) { return double(s.prefix_cache_hits); }));
  RETURN_IF_ERROR(counter("vllm:prompt_tokens_total", "Number of prefill tokens processed.",
                          [](const EngineStats& s) { return double(s.prompt_tokens); }));
  RETURN_IF_ERROR(counter("vllm:generation_tokens_total", "Number of generation tokens processed.",
                          [](const EngineStats& s) { return double(s.generation_tokens); }));
  RETURN_IF_ERROR(counter("vllm:num_preemptions_total",
                          "Cumulative number of preemption from the engine.",
                          [](const EngineStats& s) { return double(s.preemptions); }));
  {
    ASSIGN_OR_RETURN(auto* family,
                     registry_.AddCallbackCounter("vllm:request_success_total",
                                                  "Count of successfully processed requests.",
                                                  {"model_name", "engine", "finished_reason"}));
    for (std::string_view reason : {"stop", "length", "abort"}) {
      ASSIGN_OR_RETURN(auto handle, family->Add({model, engine, reason}, [this, reason] {
        const EngineStats s = stats_();
        return double(reason == "stop"     ? s.finished_stop
                      : reason == "length" ? s.finished_length
                                           : s.aborted);
      }));
      handles_.push_back(std::move(handle));
    }
  }

  ASSIGN_OR_RETURN(ttft_, histogram("vllm:time_to_first_token_seconds",
                                    "Histogram of time to first token in seconds.", kTtftBuckets));
  ASSIGN_OR_RETURN(itl_, histogram("vllm:inter_token_latency_seconds",
                                   "Histogram of inter-token latency in seconds.", kItlBuckets));
  ASSIGN_OR_RETURN(
      e2e_, histogram("vllm:e2e_request_latency_seconds",
                      "Histogram of e2e request latency in seconds.", kRequestLatencyBuckets));
  ASSIGN_OR_RETURN(queue_time_, histogram("vllm:request_queue_time_seconds",
                                          "Histogram of time spent in WAITING phase for request.",
                                          kRequestLatencyBuckets));
  ASSIGN_OR_RETURN(prefill_time_, histogram("vllm:request_prefill_time_seconds",
                                            "Histogram of time spent in PREFILL phase for request.",
                                            kRequestLatencyBuckets));
  ASSIGN_OR_RETURN(decode_time_, histogram("vllm:request_decode_time_seconds",
                                           "Histogram of time spent in DECODE phase for request.",
                                           kRequestLatencyBuckets));
  const std::vector<double> token_buckets = TokenBuckets(profile_.max_model_len);
  ASSIGN_OR_RETURN(prompt_tokens_hist_,
                   histogram("vllm:request_prompt_tokens", "Number of prefill tokens processed.",
                             token_buckets));
  ASSIGN_OR_RETURN(generation_tokens_hist_,
                   histogram("vllm:request_generation_tokens",
                             "Number of generation tokens processed.", token_buckets));

  ASSIGN_OR_RETURN(
      delivery_lag_,
      histogram("zumik_sim_token_delivery_lag_seconds",
                "Simulator only: time from the model's step end to the streamed "
                "tokens being written to the client socket.",
                // Fine around the 5 ms pacing target, so quantiles read from the
                // buckets are within 0.5 ms there.
                {0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.0035, 0.004, 0.0045, 0.005, 0.006,
                 0.0075, 0.01,  0.015,  0.02,  0.03,   0.05,  0.1,    0.25,  0.5,    1.0}));
  ASSIGN_OR_RETURN(
      pacing_error_,
      histogram("zumik_sim_token_pacing_error_seconds",
                "Simulator only: how unevenly one stream's tokens are paced, the "
                "change of its delivery lag from one write to the next (client gap "
                "minus model gap), absolute.",
                {0.0005, 0.001, 0.0015, 0.002, 0.0025, 0.003, 0.0035, 0.004, 0.0045, 0.005, 0.006,
                 0.0075, 0.01,  0.015,  0.02,  0.03,   0.05,  0.1,    0.25,  0.5,    1.0}));

  if (profile_.lmcache.enabled) {
    RETURN_IF_ERROR(
        counter("vllm:external_prefix_cache_queries_total",
                "External prefix cache queries from KV connector cross-instance "
                "cache sharing, in terms of number of queried tokens.",
                [](const EngineStats& s) { return double(s.external_prefix_cache_queries); }));
    RETURN_IF_ERROR(
        counter("vllm:external_prefix_cache_hits_total",
                "External prefix cache hits from KV connector cross-instance cache "
                "sharing, in terms of number of cached tokens.",
                [](const EngineStats& s) { return double(s.external_prefix_cache_hits); }));
    const std::vector<std::string> lm_labels = {"model_name", "worker_id"};
    auto lmcache = [&](std::string_view name, std::string_view help, bool is_counter,
                       const std::function<double(const EngineStats&)>& read) -> absl::Status {
      ASSIGN_OR_RETURN(auto* family, is_counter
                                         ? registry_.AddCallbackCounter(name, help, lm_labels)
                                         : registry_.AddCallbackGauge(name, help, lm_labels));
      ASSIGN_OR_RETURN(auto handle,
                       family->Add({model, "0"}, [this, read] { return read(stats_()); }));
      handles_.push_back(std::move(handle));
      return absl::OkStatus();
    };
    RETURN_IF_ERROR(lmcache(
        "lmcache:num_requested_tokens_total", "Total number of tokens requested from lmcache", true,
        [](const EngineStats& s) { return double(s.lmcache_requested_tokens); }));
    RETURN_IF_ERROR(lmcache("lmcache:num_hit_tokens_total", "Total number of tokens hit in lmcache",
                            true,
                            [](const EngineStats& s) { return double(s.lmcache_hit_tokens); }));
    RETURN_IF_ERROR(lmcache("lmcache:num_stored_tokens_total",
                            "Total number of tokens stored in lmcache", true,
                            [](const EngineStats& s) { return double(s.lmcache_stored_tokens); }));
    const double bytes_per_token = static_cast<double>(profile_.kv_bytes_per_token);
    RETURN_IF_ERROR(lmcache("lmcache:local_cache_usage", "Local cache usage (bytes) of lmcache",
                            false, [bytes_per_token](const EngineStats& s) {
                              return double(s.lmcache_size_tokens) * bytes_per_token;
                            }));
  }

  // DCGM exporter gauges, one series per simulated GPU of this replica.
  const std::vector<std::string> dcgm_labels = {"gpu", "UUID", "device", "modelName", "Hostname"};
  const std::string hostname = fmt::format("sim-node-{}", replica_index_);
  struct GpuLabels {
    std::string gpu, uuid, device;
  };
  auto gpus = std::make_shared<std::vector<GpuLabels>>();
  for (int g = 0; g < profile_.gpus_per_replica; ++g) {
    gpus->push_back({std::to_string(g),
                     fmt::format("GPU-5a1d0000-{:04x}-{:04x}-0000-000000000000", replica_index_, g),
                     fmt::format("nvidia{}", g)});
  }
  const std::string product = profile_.gpu_product;
  auto dcgm = [&](std::string_view name, std::string_view help,
                  const std::function<double(const EngineStats&, int gpus)>& read) -> absl::Status {
    ASSIGN_OR_RETURN(auto* family, registry_.AddCallbackGauge(name, help, dcgm_labels));
    handles_.push_back(family->AddCollector(
        [this, gpus, product, hostname, read](metrics::CallbackFamily::Emitter& out) {
          const EngineStats s = stats_();
          const int n = static_cast<int>(gpus->size());
          for (const GpuLabels& gpu : *gpus) {
            out.Emit({gpu.gpu, gpu.uuid, gpu.device, product, hostname}, read(s, n));
          }
        }));
    return absl::OkStatus();
  };
  const double total_mib = static_cast<double>(profile_.gpu_memory_mib);
  RETURN_IF_ERROR(dcgm("DCGM_FI_DEV_GPU_UTIL", "GPU utilization (in %).",
                       [this](const EngineStats& s, int) { return GpuUtilPercent(s); }));
  RETURN_IF_ERROR(dcgm("DCGM_FI_PROF_GR_ENGINE_ACTIVE",
                       "Ratio of time the graphics engine is active.",
                       [this](const EngineStats& s, int) { return GpuUtilPercent(s) / 100.0; }));
  auto used_mib = [total_mib](const EngineStats& s, int n) {
    const double used = double(s.weights_bytes + s.kv_used_bytes) / n / kMiB;
    return std::min(used, total_mib);
  };
  RETURN_IF_ERROR(dcgm("DCGM_FI_DEV_FB_USED", "Framebuffer memory used (in MiB).", used_mib));
  RETURN_IF_ERROR(dcgm("DCGM_FI_DEV_FB_FREE", "Framebuffer memory free (in MiB).",
                       [total_mib, used_mib](const EngineStats& s, int n) {
                         return std::max(0.0, total_mib - used_mib(s, n));
                       }));
  return absl::OkStatus();
}

double ReplicaMetrics::GpuUtilPercent(const EngineStats& stats) const {
  std::lock_guard lock(util_mu_);
  const Time now = clock_.Now();
  const Duration elapsed = now - util_window_start_;
  if (elapsed >= std::chrono::seconds(1)) {
    const Duration busy = stats.busy_time - util_busy_start_;
    util_percent_ = std::clamp(100.0 * ToSeconds(busy) / ToSeconds(elapsed), 0.0, 100.0);
    util_window_start_ = now;
    util_busy_start_ = stats.busy_time;
  }
  return util_percent_;
}

void ReplicaMetrics::ObserveFirstToken(const FirstTokenEvent& event) {
  ttft_->Observe(ToSeconds(event.ttft));
  queue_time_->Observe(ToSeconds(event.queued));
  prefill_time_->Observe(ToSeconds(event.prefill));
  prompt_tokens_hist_->Observe(event.prompt_tokens);
}

void ReplicaMetrics::ObserveInterTokenLatency(Duration itl) { itl_->Observe(ToSeconds(itl)); }

void ReplicaMetrics::ObserveFinished(const RequestResult& result) {
  e2e_->Observe(ToSeconds(result.e2e()));
  generation_tokens_hist_->Observe(result.output_tokens);
  if (result.first_token.count() >= 0) {
    decode_time_->Observe(ToSeconds(result.finished - result.first_token));
  }
}

}  // namespace zumik::sim
