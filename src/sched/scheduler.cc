// The Scheduler's request path: picks, commits, completions (see scheduler.h; building a
// policy is in scheduler_build.cc).
#include "sched/scheduler.h"

#include <algorithm>
#include <cmath>
#include <utility>

#include "core/status.h"
#include "fmt/format.h"
#include "sched/hashing.h"
#include "sched/plugins/prefix_producer.h"

namespace zumik::sched {
namespace {

double Clamp01(double score) {
  if (!(score > 0)) return 0;  // also NaN
  return score < 1 ? score : 1;
}

}  // namespace

Scheduler::Scheduler(PolicyConfig config, Rng& rng) : config_(std::move(config)), rng_(rng) {}

Scheduler::~Scheduler() = default;

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::Create(const PolicyConfig& config, Rng& rng) {
  std::unique_ptr<Scheduler> scheduler(new Scheduler(config, rng));
  RETURN_IF_ERROR(scheduler->Build());
  return scheduler;
}

absl::StatusOr<std::unique_ptr<Scheduler>> Scheduler::FromPolicy(std::string_view name_or_file,
                                                                 Rng& rng) {
  ASSIGN_OR_RETURN(PolicyConfig config, LoadPolicy(name_or_file));
  return Create(config, rng);
}

Plugin* Scheduler::FindPlugin(std::string_view name) const {
  for (const auto& plugin : plugins_) {
    if (plugin->name() == name) return plugin.get();
  }
  return nullptr;
}

const PrefixIndex* Scheduler::prefix_index() const {
  return producer_ ? &producer_->index() : nullptr;
}

void Scheduler::PrepareRequest(InferenceRequest& request) const {
  if (producer_ != nullptr) producer_->Hash(request);
}

absl::Status Scheduler::Bind(std::span<const Endpoint> endpoints, Time now) {
  ++pick_seq_;
  for (const Endpoint& e : endpoints) {
    if (e.id > kMaxEndpointId) {
      return Errorf(absl::StatusCode::kInvalidArgument,
                    "endpoint '{}' has id {}: ids must be small dense integers (≤ {})", e.address,
                    e.id, kMaxEndpointId);
    }
    if (e.id >= states_.size()) {
      states_.resize(e.id + size_t{1});
      seen_.resize(e.id + size_t{1}, 0);
    }
    if (seen_[e.id] == pick_seq_) {
      return Errorf(absl::StatusCode::kInvalidArgument,
                    "endpoint id {} appears twice in the snapshot ('{}')", e.id, e.address);
    }
    seen_[e.id] = pick_seq_;
    EndpointState& state = states_[e.id];
    if (state.bound && state.address != e.address) RemoveEndpoint(e.id);  // id reused
    if (!state.bound) {
      state.address = e.address;
      state.bound = true;
    }
    state.last_seen = now;
  }
  PurgeInactive(now);
  return absl::OkStatus();
}

void Scheduler::PurgeInactive(Time now) {
  if (now < next_purge_) return;
  next_purge_ = now + kInactiveEndpointTtl / 4;
  for (EndpointId id = 0; id < states_.size(); ++id) {
    if (states_[id].bound && now - states_[id].last_seen > kInactiveEndpointTtl) {
      RemoveEndpoint(id);
    }
  }
}

void Scheduler::RunProfile(int index, const CycleState& cycle, ProfileRun& run,
                           Decision* decision) {
  const Profile& profile = profiles_[static_cast<size_t>(index)];
  run.profile = index;
  run.ok = false;
  run.targets = all_;
  std::vector<Candidate>& candidates = run.targets;
  if (decision != nullptr) {
    decision->profile = profile.name;
    decision->considered.clear();
    for (const Candidate& c : candidates) decision->considered.push_back(c.id());
  }
  for (Filter* filter : profile.filters) {
    filter->Apply(cycle, candidates);
    if (decision != nullptr) {
      FilterTrace& trace = decision->filters.emplace_back();
      trace.name = filter->name();
      trace.type = filter->type();
      for (const Candidate& c : candidates) trace.kept.push_back(c.id());
    }
    if (candidates.empty()) {
      run.failure = fmt::format("profile '{}': filter '{}' rejected every endpoint", profile.name,
                                filter->name());
      return;
    }
  }
  const size_t n = candidates.size();
  totals_.assign(n, 0.0);
  scores_.resize(n);
  if (decision != nullptr) {
    decision->candidates.clear();
    decision->prefix_blocks.clear();
    for (const Candidate& c : candidates) {
      decision->candidates.push_back(c.id());
      decision->prefix_blocks.push_back(c.prefix_blocks);
    }
  }
  for (const WeightedScorer& ws : profile.scorers) {
    std::fill(scores_.begin(), scores_.end(), 0.0);
    ws.scorer->Score(cycle, candidates, scores_);
    for (size_t i = 0; i < n; ++i) {
      scores_[i] = Clamp01(scores_[i]);
      totals_[i] += scores_[i] * ws.weight;
    }
    if (decision != nullptr) {
      decision->scorers.push_back({ws.scorer->name(), ws.scorer->type(), ws.weight, scores_});
    }
  }
  if (decision != nullptr) decision->totals = totals_;
  chosen_.clear();
  profile.picker->Pick(cycle, candidates, totals_, chosen_);
  if (chosen_.empty()) {
    run.failure = fmt::format("profile '{}': picker '{}' chose no endpoint", profile.name,
                              profile.picker->name());
    return;
  }
  // Keep only the chosen candidates, in pick order.
  std::vector<Candidate> picked;
  picked.reserve(chosen_.size());
  for (uint32_t i : chosen_) picked.push_back(candidates[i]);
  candidates = std::move(picked);
  run.ok = true;
}

absl::StatusOr<PickResult> Scheduler::Pick(InferenceRequest& request,
                                           std::span<const Endpoint> endpoints, Time now,
                                           const PickOptions& options) {
  if (endpoints.empty()) {
    ++failures_;
    return absl::UnavailableError("no endpoints in the pool");
  }
  if (absl::Status bound = Bind(endpoints, now); !bound.ok()) {
    ++failures_;
    return bound;
  }
  CycleState cycle;
  cycle.request = &request;
  cycle.now = now;
  cycle.rng = &rng_;
  cycle.prompt_tokens = request.PromptTokens();
  cycle.batch_tokens = std::max<int64_t>(request.batch_tokens, 0);
  all_.clear();
  for (uint32_t i = 0; i < endpoints.size(); ++i) {
    const Endpoint& e = endpoints[i];
    if (!e.ready) continue;
    all_.push_back(Candidate{&e, &states_[e.id].load, i, 0, cycle.UncachedTokens(0)});
  }
  if (all_.empty()) {
    ++failures_;
    return Errorf(absl::StatusCode::kUnavailable, "none of the {} endpoints is ready",
                  endpoints.size());
  }
  if (producer_ != nullptr) {
    producer_->Prepare(request, endpoints, cycle);
    producer_->Match(cycle, all_);
  }

  PickResult result;
  Decision* decision = nullptr;
  if (options.explain) decision = &result.decision.emplace();
  runs_.clear();
  for (int rounds = 0; rounds < 8; ++rounds) {  // bounded: a handler cannot loop forever
    next_.clear();
    handler_->PickProfiles(cycle, profiles_, runs_, next_);
    if (next_.empty()) break;
    for (int profile : next_) {
      if (profile < 0 || static_cast<size_t>(profile) >= profiles_.size()) continue;
      RunProfile(profile, cycle, runs_.emplace_back(), decision);
    }
  }
  const int primary = handler_->PrimaryRun(profiles_, runs_);
  if (primary < 0 || !runs_[static_cast<size_t>(primary)].ok) {
    ++failures_;
    std::string why = "no profile ran";
    if (primary >= 0) why = runs_[static_cast<size_t>(primary)].failure;
    return absl::ResourceExhaustedError(why);
  }
  const ProfileRun& run = runs_[static_cast<size_t>(primary)];
  for (const Candidate& c : run.targets) {
    result.targets.push_back(c.id());
    result.target_indices.push_back(c.index);
  }
  const Candidate& chosen = run.targets.front();
  result.prefix_blocks = chosen.prefix_blocks;
  result.total_blocks = cycle.total_blocks;
  result.uncached_tokens = chosen.uncached_tokens;
  if (!options.dry_run) result.handle = Commit(cycle, chosen, result);
  ++picks_;
  return result;
}

PickHandle Scheduler::Commit(const CycleState& cycle, const Candidate& primary,
                             PickResult& result) {
  EndpointState& state = states_[primary.id()];
  uint32_t slot_index;
  if (!free_slots_.empty()) {
    slot_index = free_slots_.back();
    free_slots_.pop_back();
  } else {
    slot_index = static_cast<uint32_t>(in_flight_.size());
    in_flight_.emplace_back();
  }
  InFlightSlot& slot = in_flight_[slot_index];
  slot.live = true;
  slot.epoch = state.epoch;
  slot.request = InFlightRequest{.endpoint = primary.id(),
                                 .picked_at = cycle.now,
                                 .prompt_tokens = cycle.prompt_tokens + cycle.batch_tokens,
                                 .uncached_tokens = primary.uncached_tokens,
                                 .prefill_ahead_tokens = state.load.prefill_tokens,
                                 .decoding_at_pick = state.load.decoding(),
                                 .prefix_blocks = primary.prefix_blocks,
                                 .sequences = std::max(cycle.request->sequences, int32_t{1}),
                                 .prefill_done = false};
  slot.chain.kept = false;
  if (producer_ != nullptr && cycle.prefix_matched) {
    const InferenceRequest& request = *cycle.request;
    PromptChain& chain = slot.chain;
    chain.kept = true;
    chain.blocks.assign(request.hashes.blocks.begin(), request.hashes.blocks.end());
    chain.block_bytes = request.hashes.block_bytes;
    chain.max_blocks = request.hashes.max_blocks;
    chain.tail.clear();
    chain.seed = 0;
    if (producer_->options().index_responses) {
      // At the cap nothing can follow (and the bytes past it may be long): no tail then.
      const bool capped = request.hashes.max_blocks > 0 &&
                          chain.blocks.size() >= static_cast<size_t>(request.hashes.max_blocks);
      const size_t full = chain.blocks.size() * static_cast<size_t>(request.hashes.block_bytes);
      chain.tail.assign(capped ? std::string_view()
                               : request.prompt.substr(std::min(full, request.prompt.size())));
      chain.seed = PrefixHashSeed(request.TargetModel(), request.cache_salt);
    }
  }
  state.load.requests += slot.request.sequences;
  state.load.prefill_requests += slot.request.sequences;
  state.load.prefill_tokens += primary.uncached_tokens;
  ++live_in_flight_;
  for (const auto& plugin : plugins_) plugin->PreRequest(cycle, primary, result.response_headers);
  return (static_cast<PickHandle>(slot.generation) << 32) | (slot_index + PickHandle{1});
}

Scheduler::InFlightSlot* Scheduler::Lookup(PickHandle handle) {
  const uint64_t low = handle & 0xffffffffu;
  if (low == 0 || low > in_flight_.size()) return nullptr;
  InFlightSlot& slot = in_flight_[low - 1];
  if (!slot.live || slot.generation != static_cast<uint32_t>(handle >> 32)) return nullptr;
  return &slot;
}

void Scheduler::EndPrefill(InFlightSlot& slot, std::optional<Duration> ttft) {
  InFlightRequest& r = slot.request;
  if (r.prefill_done) return;
  r.prefill_done = true;
  EndpointState& state = states_[r.endpoint];
  if (state.epoch == slot.epoch) {
    state.load.prefill_requests -= r.sequences;
    state.load.prefill_tokens -= r.uncached_tokens;
  }
  for (const auto& plugin : plugins_) plugin->OnPrefillDone(r, ttft);
}

bool Scheduler::OnFirstToken(PickHandle handle, Time now) {
  InFlightSlot* slot = Lookup(handle);
  if (slot == nullptr) return false;
  EndPrefill(*slot, now - slot->request.picked_at);
  return true;
}

bool Scheduler::OnServedBy(PickHandle handle, const Endpoint& served) {
  InFlightSlot* slot = Lookup(handle);
  if (slot == nullptr) return false;
  if (served.id >= states_.size() || !states_[served.id].bound ||
      states_[served.id].address != served.address) {
    return false;
  }
  InFlightRequest& r = slot->request;
  EndpointState& to = states_[served.id];
  if (served.id == r.endpoint && to.epoch == slot->epoch) return true;
  EndpointState& from = states_[r.endpoint];
  if (from.epoch == slot->epoch) {
    from.load.requests -= r.sequences;
    if (!r.prefill_done) {
      from.load.prefill_requests -= r.sequences;
      from.load.prefill_tokens -= r.uncached_tokens;
    }
  }
  r.endpoint = served.id;
  r.uncached_tokens = r.prompt_tokens;
  r.prefix_blocks = 0;
  r.prefill_ahead_tokens = to.load.prefill_tokens;
  r.decoding_at_pick = to.load.decoding();
  r.reassigned = true;
  slot->epoch = to.epoch;
  to.load.requests += r.sequences;
  if (!r.prefill_done) {
    to.load.prefill_requests += r.sequences;
    to.load.prefill_tokens += r.uncached_tokens;
  }
  const PromptChain& chain = slot->chain;
  if (producer_ != nullptr && chain.kept && chain.block_bytes == producer_->block_bytes() &&
      chain.max_blocks == producer_->max_blocks()) {
    producer_->RecordServed(served, chain.blocks);
  }
  return true;
}

bool Scheduler::OnComplete(PickHandle handle, Time now, const Completion& completion) {
  InFlightSlot* slot = Lookup(handle);
  if (slot == nullptr) return false;
  EndPrefill(*slot, completion.ttft);
  const InFlightRequest& r = slot->request;
  EndpointState& state = states_[r.endpoint];
  if (state.epoch == slot->epoch) state.load.requests -= r.sequences;
  const PromptChain& chain = slot->chain;
  if (chain.kept && producer_->options().index_responses && completion.success &&
      state.epoch == slot->epoch && chain.block_bytes == producer_->block_bytes() &&
      chain.max_blocks == producer_->max_blocks()) {
    for (std::string_view text : completion.response_texts) {
      if (text.empty()) continue;
      producer_->RecordResponse(r.endpoint, chain.blocks, chain.tail, chain.seed, text);
    }
  }
  for (const auto& plugin : plugins_) plugin->OnComplete(r, now, completion);
  slot->live = false;
  ++slot->generation;
  if (slot->generation == 0) slot->generation = 1;
  free_slots_.push_back(static_cast<uint32_t>(slot - in_flight_.data()));
  --live_in_flight_;
  return true;
}

void Scheduler::RemoveEndpoint(EndpointId endpoint) {
  if (endpoint >= states_.size()) return;
  EndpointState& state = states_[endpoint];
  ++state.epoch;
  state.load = EndpointLoad{};
  state.bound = false;
  state.address.clear();
  for (const auto& plugin : plugins_) plugin->OnEndpointRemoved(endpoint);
}

bool Scheduler::WantsResponseText() const {
  return producer_ != nullptr && producer_->options().index_responses;
}

EndpointLoad Scheduler::LoadOf(EndpointId endpoint) const {
  return endpoint < states_.size() ? states_[endpoint].load : EndpointLoad{};
}

SchedulerStats Scheduler::Stats() const {
  SchedulerStats stats;
  stats.picks = picks_;
  stats.failures = failures_;
  stats.in_flight = live_in_flight_;
  if (producer_ != nullptr) {
    stats.prefix_index_entries = producer_->index().size();
    stats.prefix_index_bytes = producer_->index().MemoryBytes();
    stats.prefix_hit_blocks = producer_->hit_blocks();
    stats.prefix_looked_up_blocks = producer_->looked_up_blocks();
  }
  return stats;
}

}  // namespace zumik::sched
