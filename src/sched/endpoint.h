// Endpoint snapshot: what the scheduler is told about one model-server endpoint when it picks —
// identity, labels, readiness and the scraped metrics with their scrape time. The router's own
// in-flight accounting is not part of it: the Scheduler keeps that itself, because it is fresher
// than any scrape (stale scrapes are why bursts hot-spot one pod upstream).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"

namespace zumik::sched {

// A small dense integer that names an endpoint for the lifetime of a Scheduler. The caller
// assigns it (the EPP datastore slot, the virtual fleet's replica index). Per-endpoint state is
// indexed by it, so keep ids small; an id may be reused for another address, which the
// Scheduler detects (address change) and treats as removal of the old endpoint.
using EndpointId = uint32_t;
inline constexpr EndpointId kMaxEndpointId = (1u << 20) - 1;

// Kubernetes labels of the endpoint's pod; a short vector beats a map at this size.
using Labels = std::vector<std::pair<std::string, std::string>>;
const std::string* FindLabel(const Labels& labels, std::string_view key);

// Values scraped from the model server's /metrics (vLLM names; the EPP maps other engines).
struct EndpointMetrics {
  int64_t waiting_requests = 0;  // vllm:num_requests_waiting
  int64_t running_requests = 0;  // vllm:num_requests_running
  double kv_cache_usage = 0;     // vllm:kv_cache_usage_perc, 0..1
  int64_t block_size = 0;        // vllm:cache_config_info{block_size}, tokens; 0 = unknown
  int64_t num_gpu_blocks = 0;    // vllm:cache_config_info{num_gpu_blocks}; 0 = unknown
  std::vector<std::string> running_lora_adapters;  // vllm:lora_requests_info
  std::vector<std::string> waiting_lora_adapters;
  int64_t max_lora = 0;
  bool valid = false;  // false until the first successful scrape
  Time scraped_at{};   // when the values above were read
};

struct Endpoint {
  EndpointId id = 0;
  std::string address;  // "ip:port", what the transport routes to
  std::string name;     // "namespace/pod": session tokens and logs
  Labels labels;
  bool ready = true;  // not-ready endpoints are never picked
  EndpointMetrics metrics;

  // Age of the metrics at `now`; Duration::max() when never scraped.
  Duration MetricsAge(Time now) const;
  bool HasFreshMetrics(Time now, Duration staleness) const {
    return metrics.valid && MetricsAge(now) <= staleness;
  }
};

}  // namespace zumik::sched
