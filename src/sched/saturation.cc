// Saturation detection (see saturation.h).
#include "sched/saturation.h"

#include <algorithm>

namespace zumik::sched {

bool IsSaturated(std::span<const Endpoint> endpoints, Time now,
                 const SaturationThresholds& thresholds) {
  for (const Endpoint& e : endpoints) {
    if (!e.ready || !e.HasFreshMetrics(now, thresholds.metrics_staleness)) continue;
    if (e.metrics.waiting_requests <= thresholds.queue_depth &&
        e.metrics.kv_cache_usage <= thresholds.kv_cache_util) {
      return false;
    }
  }
  return true;
}

double UtilizationScore(const Endpoint& endpoint, Time now,
                        const SaturationThresholds& thresholds) {
  if (!endpoint.HasFreshMetrics(now, thresholds.metrics_staleness)) return 1.0;
  const double queue = thresholds.queue_depth > 0
                           ? static_cast<double>(endpoint.metrics.waiting_requests) /
                                 static_cast<double>(thresholds.queue_depth)
                           : 0.0;
  const double kv = thresholds.kv_cache_util > 0
                        ? endpoint.metrics.kv_cache_usage / thresholds.kv_cache_util
                        : 0.0;
  return std::max(queue, kv);
}

double PoolSaturation(std::span<const Endpoint> endpoints, Time now,
                      const SaturationThresholds& thresholds) {
  double sum = 0;
  int n = 0;
  for (const Endpoint& e : endpoints) {
    if (!e.ready) continue;
    sum += UtilizationScore(e, now, thresholds);
    ++n;
  }
  return n == 0 ? 1.0 : sum / n;
}

}  // namespace zumik::sched
