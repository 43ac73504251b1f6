// The Scheduler: a policy (EndpointPickerConfig) turned into plugins, run against an endpoint
// snapshot for each request: filters (sequential; one that leaves no endpoint fails the pick)
// → weighted scorers (Σ clamp(score, 0, 1) · weight, not normalised) → picker (primary plus an
// ordered fallback list). It owns everything that outlives a request: the prefix index, the
// router-side in-flight counts, sessions, learned rates.
//
// Pure and single-threaded: no sockets, threads or clock (time comes in as `now`, randomness
// from the injected Rng, so a seed replays exactly). It is NOT thread-safe: the EPP serialises
// Pick/OnFirstToken/OnComplete per Scheduler (one strand, or one Scheduler per shard).
//
// Use:
//   Rng rng(seed);
//   ASSIGN_OR_RETURN(auto scheduler, Scheduler::FromPolicy("zumik-default", rng));
//   InferenceRequest request{.model = "m", .prompt = body_prompt};
//   ASSIGN_OR_RETURN(PickResult pick, scheduler->Pick(request, snapshot, now));
//   ... route to pick.targets (primary first) ...
//   scheduler->OnFirstToken(pick.handle, now);             // streaming: first chunk seen
//   scheduler->OnComplete(pick.handle, now, completion);   // always, also on errors
// Errors from Pick: kUnavailable (no endpoints / none ready: HTTP 503), kResourceExhausted (a
// filter rejected every endpoint: 429), kInvalidArgument (bad snapshot: duplicate or too large
// endpoint id).
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "core/rng.h"
#include "sched/config.h"
#include "sched/endpoint.h"
#include "sched/plugin.h"
#include "sched/prefix_index.h"
#include "sched/request.h"

namespace zumik::sched {

class ApproxPrefixCacheProducer;

using PickHandle = uint64_t;
inline constexpr PickHandle kNoPickHandle = 0;

// (Set fields by assignment or name both in a designated initializer: GCC's -Wextra flags
// designated initializers that leave a field out.)
struct PickOptions {
  bool dry_run = false;  // decide only: no in-flight record, no index update, no plugin state
  bool explain = false;  // fill PickResult::decision
};

// Per-plugin detail of a decision (debugging, tests, --emit-endpoint-scores).
struct FilterTrace {
  std::string name;
  std::string type;
  std::vector<EndpointId> kept;
};
struct ScorerTrace {
  std::string name;
  std::string type;
  double weight = 1;
  std::vector<double> scores;  // clamped, aligned with Decision::candidates
};
struct Decision {
  std::string profile;
  std::vector<EndpointId> considered;  // ready endpoints entering the profile
  std::vector<FilterTrace> filters;
  std::vector<EndpointId> candidates;  // after the filters
  std::vector<int32_t> prefix_blocks;  // aligned with candidates
  std::vector<ScorerTrace> scorers;
  std::vector<double> totals;  // Σ weight · score, aligned with candidates
};

struct PickResult {
  std::vector<EndpointId> targets;       // primary first, then fallbacks
  std::vector<uint32_t> target_indices;  // the same, as positions in the snapshot
  PickHandle handle = kNoPickHandle;     // for OnFirstToken / OnComplete (none on dry runs)
  int32_t prefix_blocks = 0;             // blocks of the request cached on the primary
  int32_t total_blocks = 0;              // blocks hashed
  int64_t uncached_tokens = 0;           // prompt tokens the primary has to prefill
  Headers response_headers;              // to add to the response (e.g. a session token)
  std::optional<Decision> decision;      // with PickOptions::explain
  EndpointId primary() const { return targets.front(); }
};

struct SchedulerStats {
  int64_t picks = 0;  // successful Pick calls (dry runs included)
  int64_t failures = 0;
  int64_t in_flight = 0;
  int64_t prefix_index_entries = 0;
  int64_t prefix_index_bytes = 0;
  int64_t prefix_hit_blocks = 0;        // summed over committed picks (primary)
  int64_t prefix_looked_up_blocks = 0;  // hit ratio = hit / looked up
};

class Scheduler {
 public:
  // Builds the plugins and applies the upstream defaulting rules: no profile ⇒ one `default`
  // profile with every filter, scorer and picker; a profile without picker gets
  // max-score-picker; one profile and no handler ⇒ single-profile-handler. Plugins that need
  // the prefix match get an approx-prefix-cache-producer if none is declared. `rng` supplies
  // every random choice (tie-breaks, random pickers, exploration) and must outlive the
  // Scheduler; the same seed and inputs give the same picks.
  static absl::StatusOr<std::unique_ptr<Scheduler>> Create(const PolicyConfig& config, Rng& rng);
  // A built-in policy name (builtin_policies.h) or an EndpointPickerConfig file path.
  static absl::StatusOr<std::unique_ptr<Scheduler>> FromPolicy(std::string_view name_or_file,
                                                               Rng& rng);
  ~Scheduler();
  Scheduler(const Scheduler&) = delete;
  Scheduler& operator=(const Scheduler&) = delete;

  // Picks targets for the request among the ready endpoints of the snapshot (which must stay
  // valid during the call) and, unless a dry run, commits it: in-flight + the request's sequences,
  // prefix index updated for the primary, plugin PreRequest hooks. Hashes the prompt once if
  // needed.
  absl::StatusOr<PickResult> Pick(InferenceRequest& request, std::span<const Endpoint> endpoints,
                                  Time now, const PickOptions& options = {});
  // The first response byte/token arrived: ends the request's prefill (its tokens leave the
  // endpoint's prefill load) and teaches the TTFT model. False for an unknown handle.
  bool OnFirstToken(PickHandle handle, Time now);
  // The proxy reports that another endpoint than the primary served the request (it walked
  // the fallback list: the gateway's retry, Envoy's x-gateway-destination-endpoint-served).
  // The request's in-flight load moves to `served`, its prompt is recorded in the prefix
  // index for `served` (the primary keeps its entries until they age out), and its completion
  // (and indexed response) counts there. Its prefill is charged in full: what `served` already
  // held is not known here. False for an unknown handle or an endpoint no snapshot bound.
  bool OnServedBy(PickHandle handle, const Endpoint& served);
  // The response ended (any outcome): in-flight −1. Every handle must be completed once.
  bool OnComplete(PickHandle handle, Time now, const Completion& completion = {});
  // Forgets an endpoint that left the pool: prefix entries, load, sessions, learned rates.
  // Endpoints absent from every snapshot for kInactiveEndpointTtl are forgotten by Pick too
  // (as GIE purges inactive pods), in case the transport never says they left.
  void RemoveEndpoint(EndpointId endpoint);
  static constexpr Duration kInactiveEndpointTtl = std::chrono::minutes(2);
  // Hashes the request's prompt with the current settings (optional: Pick does it too).
  void PrepareRequest(InferenceRequest& request) const;

  EndpointLoad LoadOf(EndpointId endpoint) const;
  SchedulerStats Stats() const;
  const PolicyConfig& config() const { return config_; }
  const std::string& policy_name() const { return config_.name; }
  // The request header whose value the transport puts in InferenceRequest::session_key
  // (a session-affinity-scorer's headerName), or "" when the policy has none.
  const std::string& SessionHeaderName() const { return session_header_; }
  // Whether OnComplete reads Completion::response_texts (the policy's prefix producer has
  // indexResponses on); a transport collects the response text only then.
  bool WantsResponseText() const;
  const PrefixIndex* prefix_index() const;
  const std::vector<Profile>& profiles() const { return profiles_; }
  // The plugin instance with this name (introspection and tests); null if none.
  Plugin* FindPlugin(std::string_view name) const;

 private:
  struct EndpointState {
    std::string address;
    bool bound = false;
    Time last_seen{};
    uint32_t epoch = 0;  // bumped on removal: completions of older picks are ignored
    EndpointLoad load;
  };
  // The prompt's hash chain as recorded at the pick, kept whenever the prompt was hashed: for
  // OnServedBy, and for indexResponses to continue the chain over the response (the vectors
  // are reused with the slot).
  struct PromptChain {
    bool kept = false;
    std::vector<uint64_t> blocks;  // the prompt's hashes as recorded at the pick
    std::string tail;              // prompt bytes after the last full block
    uint64_t seed = 0;             // the chain's seed (prompts shorter than one block)
    int32_t block_bytes = 0;       // settings the hashes were made with
    int32_t max_blocks = 0;
  };
  struct InFlightSlot {
    InFlightRequest request;
    uint32_t epoch = 0;
    uint32_t generation = 1;
    bool live = false;
    PromptChain chain;
  };

  Scheduler(PolicyConfig config, Rng& rng);
  absl::Status Build();
  absl::Status Bind(std::span<const Endpoint> endpoints, Time now);
  void PurgeInactive(Time now);
  void RunProfile(int index, const CycleState& cycle, ProfileRun& run, Decision* decision);
  PickHandle Commit(const CycleState& cycle, const Candidate& primary, PickResult& result);
  InFlightSlot* Lookup(PickHandle handle);
  void EndPrefill(InFlightSlot& slot, std::optional<Duration> ttft);

  PolicyConfig config_;
  Rng& rng_;
  std::vector<std::unique_ptr<Plugin>> plugins_;  // declaration order, then implicit ones
  ApproxPrefixCacheProducer* producer_ = nullptr;
  ProfileHandler* handler_ = nullptr;
  std::vector<Profile> profiles_;
  std::string session_header_;

  std::vector<EndpointState> states_;  // by EndpointId
  std::vector<InFlightSlot> in_flight_;
  std::vector<uint32_t> free_slots_;
  int64_t live_in_flight_ = 0;
  int64_t picks_ = 0;     // successful
  int64_t failures_ = 0;  // errors returned by Pick
  uint64_t pick_seq_ = 0;
  Time next_purge_{};

  // Per-pick scratch, reused to keep the hot path free of allocations.
  std::vector<uint64_t> seen_;  // by EndpointId: pick number that last saw it
  std::vector<Candidate> all_;
  std::vector<ProfileRun> runs_;
  std::vector<int> next_;
  std::vector<double> scores_;
  std::vector<double> totals_;
  std::vector<uint32_t> chosen_;
};

}  // namespace zumik::sched
