// Scorers with memory of earlier picks:
//   session-affinity-scorer  1 to the endpoint the request's session is bound to, 0 to others.
//     strategy encoded_endpoint_header (default): the session key is the base64 of the
//       endpoint's "namespace/name", written back as a response header (stateless);
//     strategy session_id: the key is an opaque id bound server-side at each pick, expiring
//       after evictionTtlSeconds (300) unused, swept every evictionSweepSeconds (10).
//   no-hit-lru-scorer  for cold requests (no candidate holds any of the prompt): endpoints
//     that never took a cold request score highest, then least recently used; warm requests
//     score 0.5 everywhere. Spreads new prefixes, so caches grow evenly. lruSize 1024.
#pragma once

#include <memory>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "sched/params.h"
#include "sched/plugin.h"

namespace zumik::sched {

class SessionAffinityScorer final : public Scorer {
 public:
  static constexpr std::string_view kType = "session-affinity-scorer";
  enum class Strategy { kEncodedEndpointHeader, kSessionId };
  struct Options {
    Strategy strategy = Strategy::kEncodedEndpointHeader;
    std::string header_name;  // default: x-session-token / x-session-id by strategy
    Duration ttl = std::chrono::seconds(300);
    Duration sweep = std::chrono::seconds(10);
  };
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  SessionAffinityScorer(std::string name, Options options);

  const std::string& header_name() const { return options_.header_name; }
  void Score(const CycleState& cycle, std::span<const Candidate> candidates,
             std::span<double> out) override;
  void PreRequest(const CycleState& cycle, const Candidate& primary, Headers& headers) override;
  void OnEndpointRemoved(EndpointId endpoint) override;
  size_t bound_sessions() const { return bindings_.size(); }

 private:
  struct Binding {
    EndpointId endpoint;
    Time last_used;
  };
  void Sweep(Time now);

  Options options_;
  std::unordered_map<std::string, Binding> bindings_;
  Time next_sweep_{};
};

class NoHitLruScorer final : public Scorer {
 public:
  static constexpr std::string_view kType = "no-hit-lru-scorer";
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  NoHitLruScorer(std::string name, size_t lru_size)
      : Scorer(std::string(kType), std::move(name)), lru_size_(lru_size) {}

  bool NeedsPrefixMatch() const override { return true; }
  void Score(const CycleState& cycle, std::span<const Candidate> candidates,
             std::span<double> out) override;
  void PreRequest(const CycleState& cycle, const Candidate& primary, Headers& headers) override;
  void OnEndpointRemoved(EndpointId endpoint) override;

 private:
  size_t lru_size_;
  std::vector<EndpointId> lru_;  // endpoints that took cold requests, oldest first
  bool last_cold_ = false;       // whether the cycle being committed was cold
};

}  // namespace zumik::sched
