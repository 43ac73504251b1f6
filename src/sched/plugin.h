// The plugin model (Envoy-style: small interfaces, one self-contained class per upstream plugin
// `type`, registered by name in registry.cc). A profile runs filters → weighted scorers → one
// picker; a profile handler chooses the profiles; producers prepare shared per-request data
// (the prefix match). Hooks let plugins keep state across requests: PreRequest after a pick is
// committed, OnPrefillDone at the first token, OnComplete at the end, OnEndpointRemoved.
// Plugins are owned by one Scheduler and called from one thread at a time.
#pragma once

#include <algorithm>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "core/clock.h"
#include "core/rng.h"
#include "sched/endpoint.h"
#include "sched/request.h"

namespace zumik::sched {

// Router-side load of one endpoint, kept by the Scheduler from its own picks and completions.
// Counts are sequences, as the engine counts them: a request adds its InferenceRequest::sequences
// (its n, times the prompts of a completions or embeddings batch).
struct EndpointLoad {
  int64_t requests = 0;          // picked and not completed
  int64_t prefill_requests = 0;  // of those, still before their first token
  int64_t prefill_tokens = 0;    // uncached prompt tokens of prefill_requests (estimate)
  int64_t decoding() const { return requests - prefill_requests; }
};

// One endpoint considered in a pick.
struct Candidate {
  const Endpoint* endpoint = nullptr;  // in the caller's snapshot
  const EndpointLoad* load = nullptr;  // the Scheduler's fresh accounting for it
  uint32_t index = 0;                  // position in the snapshot
  int32_t prefix_blocks = 0;           // leading request blocks cached there (prefix index)
  int64_t uncached_tokens = 0;         // request tokens it would have to prefill
  EndpointId id() const { return endpoint->id; }
};

// A cold request: no candidate holds any block of its prompt (prefix_blocks all 0).
inline bool NoCandidateHoldsPrefix(std::span<const Candidate> candidates) {
  return std::none_of(candidates.begin(), candidates.end(),
                      [](const Candidate& c) { return c.prefix_blocks > 0; });
}

// Facts of the current pick shared by every plugin.
struct CycleState {
  const InferenceRequest* request = nullptr;
  Time now{};
  Rng* rng = nullptr;
  int64_t prompt_tokens = 0;
  bool prefix_matched = false;  // a prefix producer ran: Candidate::prefix_blocks is meaningful
  int32_t total_blocks = 0;     // hashed blocks of the request
  int32_t block_tokens = 0;     // tokens per hashed block
  int64_t batch_tokens = 0;     // InferenceRequest::batch_tokens: uncached wherever it goes

  // Tokens an endpoint holding the request's first `prefix_blocks` hashed blocks would prefill.
  int64_t UncachedTokens(int32_t prefix_blocks) const {
    return std::max<int64_t>(0, prompt_tokens - int64_t{prefix_blocks} * block_tokens) +
           batch_tokens;
  }
};

// A request between its pick and its completion, as the hooks see it.
struct InFlightRequest {
  EndpointId endpoint = 0;
  Time picked_at{};
  int64_t prompt_tokens = 0;         // every prompt's, a batch's included
  int64_t uncached_tokens = 0;       // charged to the endpoint's prefill load
  int64_t prefill_ahead_tokens = 0;  // router-known prefill tokens queued there at pick time
  int64_t decoding_at_pick = 0;      // router-known decoding requests there at pick time
  int32_t prefix_blocks = 0;
  int32_t sequences = 1;  // InferenceRequest::sequences: what the request adds to in-flight counts
  bool prefill_done = false;
  // Served by another endpoint than the one picked (the proxy fell back; Scheduler::OnServedBy):
  // `endpoint` and the load fields now describe that endpoint, and the request's timings
  // include the failed attempt, so they teach nothing about either endpoint's speed.
  bool reassigned = false;
};

using Headers = std::vector<std::pair<std::string, std::string>>;

enum class PluginKind { kFilter, kScorer, kPicker, kProfileHandler, kProducer };
std::string_view KindName(PluginKind kind);

class Plugin {
 public:
  Plugin(std::string type, std::string name) : type_(std::move(type)), name_(std::move(name)) {}
  virtual ~Plugin() = default;
  Plugin(const Plugin&) = delete;
  Plugin& operator=(const Plugin&) = delete;

  virtual PluginKind kind() const = 0;
  const std::string& type() const { return type_; }
  const std::string& name() const { return name_; }

  // Whether the plugin reads Candidate::prefix_blocks; the Scheduler then runs the prefix index.
  virtual bool NeedsPrefixMatch() const { return false; }

  // After a pick is committed, with its primary target; may add response headers.
  virtual void PreRequest(const CycleState& /*cycle*/, const Candidate& /*primary*/,
                          Headers& /*response_headers*/) {}
  // Once per request when its prefill has ended: at the first token (ttft measured), or at
  // completion for transports that never reported one (ttft as reported, maybe none).
  virtual void OnPrefillDone(const InFlightRequest& /*request*/, std::optional<Duration> /*ttft*/) {
  }
  virtual void OnComplete(const InFlightRequest& /*request*/, Time /*now*/,
                          const Completion& /*completion*/) {}
  virtual void OnEndpointRemoved(EndpointId /*endpoint*/) {}

 private:
  std::string type_;
  std::string name_;
};

class Filter : public Plugin {
 public:
  using Plugin::Plugin;
  PluginKind kind() const final { return PluginKind::kFilter; }
  // Removes candidates in place, keeping order. Leaving none fails the profile.
  virtual void Apply(const CycleState& cycle, std::vector<Candidate>& candidates) = 0;
};

class Scorer : public Plugin {
 public:
  using Plugin::Plugin;
  PluginKind kind() const final { return PluginKind::kScorer; }
  // One score per candidate; the Scheduler clamps it to [0, 1] (NaN counts as 0).
  virtual void Score(const CycleState& cycle, std::span<const Candidate> candidates,
                     std::span<double> out) = 0;
};

class Picker : public Plugin {
 public:
  Picker(std::string type, std::string name, int max_endpoints)
      : Plugin(std::move(type), std::move(name)), max_endpoints_(max_endpoints) {}
  PluginKind kind() const final { return PluginKind::kPicker; }
  // Appends up to max_endpoints() distinct indices into `candidates`, primary first.
  // `candidates` is never empty; `scores` are the weighted totals.
  virtual void Pick(const CycleState& cycle, std::span<const Candidate> candidates,
                    std::span<const double> scores, std::vector<uint32_t>& chosen) = 0;
  int max_endpoints() const { return max_endpoints_; }

 private:
  int max_endpoints_;
};

struct WeightedScorer {
  Scorer* scorer = nullptr;
  double weight = 1;
};

struct Profile {
  std::string name;
  std::vector<Filter*> filters;
  std::vector<WeightedScorer> scorers;
  Picker* picker = nullptr;
};

// The outcome of running one profile in a cycle.
struct ProfileRun {
  int profile = 0;
  bool ok = false;
  std::vector<Candidate> targets;  // primary first
  std::string failure;             // why the run picked nothing
};

class ProfileHandler : public Plugin {
 public:
  using Plugin::Plugin;
  PluginKind kind() const final { return PluginKind::kProfileHandler; }
  // Appends to `next` the profiles to run given the runs so far; appending none ends the cycle.
  virtual void PickProfiles(const CycleState& cycle, std::span<const Profile> profiles,
                            std::span<const ProfileRun> runs, std::vector<int>& next) = 0;
  // Index into `runs` of the run that decides the destination, or -1.
  virtual int PrimaryRun(std::span<const Profile> profiles, std::span<const ProfileRun> runs) = 0;
};

}  // namespace zumik::sched
