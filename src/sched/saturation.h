// Saturation: whether the pool can take more work. The EPP uses IsSaturated for legacy
// admission (sheddable requests get 429 when saturated); SaturationFilter uses the per-endpoint
// utilization score. Semantics from gie-llmd.md §7.
#pragma once

#include <cstdint>
#include <span>

#include "core/clock.h"
#include "sched/endpoint.h"

namespace zumik::sched {

// GIE v1.0.0 detector defaults (SD_QUEUE_DEPTH_THRESHOLD, SD_KV_CACHE_UTIL_THRESHOLD,
// SD_METRICS_STALENESS_THRESHOLD); the RTR utilization-detector uses the same defaults.
struct SaturationThresholds {
  int64_t queue_depth = 5;
  double kv_cache_util = 0.8;
  Duration metrics_staleness = std::chrono::milliseconds(200);
};

// GIE v1.0.0: saturated iff no endpoint has fresh metrics with waiting ≤ queue_depth and
// kv usage ≤ kv_cache_util. No endpoints (or none ready) is saturated.
bool IsSaturated(std::span<const Endpoint> endpoints, Time now,
                 const SaturationThresholds& thresholds = {});

// RTR utilization-detector: max(waiting / queue_depth, kv / kv_cache_util); stale or never
// scraped metrics count as 1.0 (exactly at the threshold).
double UtilizationScore(const Endpoint& endpoint, Time now, const SaturationThresholds& thresholds);

// RTR pool saturation: the mean utilization score of ready endpoints (saturated when ≥ 1.0);
// 1.0 when there are none.
double PoolSaturation(std::span<const Endpoint> endpoints, Time now,
                      const SaturationThresholds& thresholds = {});

}  // namespace zumik::sched
