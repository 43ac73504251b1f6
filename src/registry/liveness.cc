// Liveness classification and the registry's self-suspicion rule.
#include "registry/liveness.h"

#include <algorithm>

namespace zumik::registry {

std::string_view LivenessName(Liveness liveness) {
  switch (liveness) {
    case Liveness::kPending:
      return "pending";
    case Liveness::kHealthy:
      return "healthy";
    case Liveness::kUnknown:
      return "unknown";
    case Liveness::kOffline:
      return "offline";
  }
  return "unknown";
}

std::optional<Liveness> ParseLiveness(std::string_view name) {
  for (Liveness l :
       {Liveness::kPending, Liveness::kHealthy, Liveness::kUnknown, Liveness::kOffline}) {
    if (LivenessName(l) == name) return l;
  }
  return std::nullopt;
}

Liveness Classify(const LivenessPolicy& policy, double now_unix, double started_unix,
                  const LivenessInput& cluster) {
  const double unknown_after = ToSeconds(policy.UnknownAfter());
  const double offline_after = ToSeconds(policy.offline_after);
  const double last_seen = cluster.last_heartbeat_unix.value_or(cluster.registered_unix);
  // The start-up grace moves the floor of "last seen" so that the first verdicts after a
  // restart come StartupGrace() (unknown) and offline_after (offline) after the start.
  const double unknown_floor = started_unix + ToSeconds(policy.StartupGrace()) - unknown_after;
  const double unknown_age = now_unix - std::max(last_seen, unknown_floor);
  const double offline_age = now_unix - std::max(last_seen, started_unix);
  if (offline_age > offline_after) return Liveness::kOffline;
  if (unknown_age > unknown_after) return Liveness::kUnknown;
  return cluster.last_heartbeat_unix ? Liveness::kHealthy : Liveness::kPending;
}

FleetLiveness ClassifyFleet(const LivenessPolicy& policy, double now_unix, double started_unix,
                            std::span<const LivenessInput> clusters) {
  FleetLiveness fleet;
  fleet.reported.reserve(clusters.size());
  for (const LivenessInput& cluster : clusters) {
    const Liveness state = Classify(policy, now_unix, started_unix, cluster);
    fleet.reported.push_back(state);
    if (!cluster.last_heartbeat_unix) continue;
    // "Recently alive": heartbeated and not (yet) offline. Those now unknown went stale
    // within the same offline window, i.e. "at once" on the scale that matters.
    if (state == Liveness::kHealthy || state == Liveness::kUnknown) ++fleet.recently_alive;
    if (state == Liveness::kUnknown) ++fleet.stale;
  }
  fleet.suspect = fleet.stale >= policy.suspect_min_clusters &&
                  static_cast<double>(fleet.stale) >
                      policy.suspect_fraction * static_cast<double>(fleet.recently_alive);
  if (fleet.suspect) {
    for (size_t i = 0; i < clusters.size(); ++i) {
      if (fleet.reported[i] == Liveness::kUnknown && clusters[i].last_heartbeat_unix) {
        fleet.reported[i] = Liveness::kHealthy;
      }
    }
  }
  return fleet;
}

}  // namespace zumik::registry
