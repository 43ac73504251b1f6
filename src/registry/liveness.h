// Cluster liveness, computed on read from heartbeat age (never from a stored state, so a
// cluster whose agent is gone cannot look alive forever):
//   pending  registered, no heartbeat yet, registered less than `UnknownAfter()` ago
//   healthy  last heartbeat within UnknownAfter() (= missed_beats x interval, 60 s by default)
//   unknown  silent longer than that
//   offline  silent longer than `offline_after` (15 min)
// Two guards against blaming clusters for the registry's own faults:
// - start-up grace: after a registry (re)start no cluster turns unknown before
//   started + StartupGrace(), nor offline before started + offline_after;
// - fleet suspicion: when more than `suspect_fraction` of the clusters that were recently
//   alive are stale at once (at least `suspect_min_clusters` of them), the registry flags
//   itself and keeps reporting those clusters with their last good state (healthy).
#pragma once

#include <chrono>
#include <optional>
#include <span>
#include <string_view>
#include <vector>

#include "core/clock.h"

namespace zumik::registry {

enum class Liveness { kPending, kHealthy, kUnknown, kOffline };

std::string_view LivenessName(Liveness liveness);
std::optional<Liveness> ParseLiveness(std::string_view name);

struct LivenessPolicy {
  Duration interval = std::chrono::seconds(15);
  int missed_beats = 4;
  Duration offline_after = std::chrono::minutes(15);
  // Zero means 2 x UnknownAfter().
  Duration startup_grace = Duration::zero();
  double suspect_fraction = 0.5;
  size_t suspect_min_clusters = 3;

  Duration UnknownAfter() const { return interval * missed_beats; }
  Duration StartupGrace() const {
    return startup_grace > Duration::zero() ? startup_grace : 2 * UnknownAfter();
  }
};

// What the liveness computation needs of one cluster (unix seconds).
struct LivenessInput {
  double registered_unix = 0;
  std::optional<double> last_heartbeat_unix;
};

// The state from age alone (with the start-up grace), before fleet suspicion.
Liveness Classify(const LivenessPolicy& policy, double now_unix, double started_unix,
                  const LivenessInput& cluster);

struct FleetLiveness {
  // Per input, in order: the state to report.
  std::vector<Liveness> reported;
  // True when the registry suspects itself (see the file comment).
  bool suspect = false;
  size_t stale = 0;
  size_t recently_alive = 0;
};

FleetLiveness ClassifyFleet(const LivenessPolicy& policy, double now_unix, double started_unix,
                            std::span<const LivenessInput> clusters);

}  // namespace zumik::registry
