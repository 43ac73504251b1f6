// The replica engine loop (see engine.h).
#include "sim/engine.h"

#include <algorithm>

#include "core/status.h"

namespace zumik::sim {

Engine::Engine(Profile profile, EngineOptions options)
    : profile_(std::move(profile)),
      options_(options),
      kv_(profile_.num_gpu_blocks(), profile_.block_size,
          profile_.lmcache.enabled ? profile_.lmcache_capacity_tokens() : 0,
          profile_.lmcache.chunk_size),
      scheduler_(profile_.max_num_batched_tokens, profile_.max_num_seqs, &kv_),
      model_(profile_) {
  counters_.lmcache_enabled = kv_.tier() != nullptr;
}

Sequence* Engine::NewSequence() {
  if (spare_.empty()) {
    storage_.push_back(std::make_unique<Sequence>());
    return storage_.back().get();
  }
  Sequence* seq = spare_.back();
  spare_.pop_back();
  return seq;
}

absl::Status Engine::Check(const RequestSpec& spec) const {
  auto invalid = [&](std::string_view why) {
    return Errorf(absl::StatusCode::kInvalidArgument, "request {}: {}", spec.id, why);
  };
  if (spec.prompt == nullptr || spec.prompt->tokens.empty()) return invalid("empty prompt");
  if (spec.max_tokens < 1) return invalid("max_tokens must be at least 1");
  if (spec.min_tokens < 0 || spec.min_tokens > spec.max_tokens) {
    return invalid("min_tokens must be between 0 and max_tokens");
  }
  const int64_t total = static_cast<int64_t>(spec.prompt->size()) + spec.max_tokens;
  if (total > profile_.max_model_len) {
    return invalid(fmt::format("prompt ({} tokens) + max_tokens ({}) exceeds max_model_len {}",
                               spec.prompt->size(), spec.max_tokens, profile_.max_model_len));
  }
  const int bs = profile_.block_size;
  if ((total + bs - 1) / bs > profile_.num_gpu_blocks()) {
    return invalid(fmt::format("needs {} tokens of KV, more than the replica's {}", total,
                               static_cast<int64_t>(profile_.num_gpu_blocks()) * bs));
  }
  if (live_.contains(spec.id)) {
    return Errorf(absl::StatusCode::kAlreadyExists, "request {} is already running", spec.id);
  }
  return absl::OkStatus();
}

absl::Status Engine::Add(RequestSpec spec) {
  RETURN_IF_ERROR(Check(spec));
  const int bs = profile_.block_size;
  Sequence* seq = NewSequence();
  // Reset every field but keep the vectors' capacity (sequences are recycled).
  seq->state = SequenceState::kAdmitting;
  seq->stream = OutputStream(spec);
  seq->prompt_len = spec.prompt->size();
  if (spec.ignore_eos) {
    seq->target_output = spec.max_tokens;
    seq->target_reason = FinishReason::kLength;
  } else {
    const int natural = NaturalStopLength(seq->stream, options_.seed, spec.min_tokens,
                                          profile_.natural_output_mean);
    seq->target_output = std::min(natural, spec.max_tokens);
    seq->target_reason = natural <= spec.max_tokens ? FinishReason::kStop : FinishReason::kLength;
  }
  seq->ready = spec.arrival + FromSeconds(profile_.t_api);
  seq->first_scheduled = Time{-1};
  seq->first_token = Time{-1};
  seq->num_computed = 0;
  seq->num_output = 0;
  if (spec.prompt->block_size == bs) {
    seq->prompt_hashes = spec.prompt->block_hashes;
    seq->own_prompt_hashes.clear();
  } else {
    ComputeBlockHashes(spec.prompt->tokens, bs, &seq->own_prompt_hashes);
    seq->prompt_hashes = seq->own_prompt_hashes;
  }
  seq->output_hashes.clear();
  seq->blocks.clear();  // recycled sequences keep their capacity; queued ones reserve nothing
  seq->num_cached_blocks = 0;
  seq->last_hit.clear();
  seq->cached_tokens = -1;
  seq->external_cached_tokens = 0;
  seq->preemptions = 0;
  seq->token_times.clear();
  seq->spec = std::move(spec);

  live_.emplace(seq->spec.id, seq);
  ++counters_.requests_added;
  // Arrivals come in time order, so this is a push_back in practice.
  auto pos = std::upper_bound(admitting_.begin(), admitting_.end(), seq->ready,
                              [](Time t, const Sequence* s) { return t < s->ready; });
  admitting_.insert(pos, seq);
  return absl::OkStatus();
}

std::optional<Time> Engine::NextStepTime() const {
  if (scheduler_.num_running() > 0 || scheduler_.num_waiting() > 0) return Time::min();
  if (!admitting_.empty()) return admitting_.front()->ready;
  return std::nullopt;
}

RequestResult Engine::MakeResult(Sequence* seq, FinishReason reason, Time at) {
  RequestResult r;
  r.id = seq->spec.id;
  r.finish_reason = reason;
  r.arrival = seq->spec.arrival;
  r.first_token = seq->first_token;
  r.finished = at;
  r.prompt_tokens = seq->prompt_len;
  r.cached_tokens = std::max(seq->cached_tokens, 0);
  r.external_cached_tokens = seq->external_cached_tokens;
  r.output_tokens = seq->num_output;
  r.preemptions = seq->preemptions;
  r.token_times = std::move(seq->token_times);
  seq->token_times = {};
  return r;
}

void Engine::Retire(Sequence* seq) {
  live_.erase(seq->spec.id);
  seq->spec.prompt.reset();
  seq->prompt_hashes = {};
  spare_.push_back(seq);
}

void Engine::EmitToken(Sequence* seq, Time at) {
  const int index = seq->num_output++;
  ++counters_.generation_tokens;
  if (options_.record_token_times) {
    if (index == 0) seq->token_times.reserve(seq->target_output);
    seq->token_times.push_back(at);
  }
  result_.tokens.push_back({seq->spec.id, index, seq->token(seq->prompt_len + index)});
  if (index == 0) {
    seq->first_token = at;
    counters_.prompt_tokens += seq->prompt_len;
    result_.first_tokens.push_back({seq->spec.id, at - seq->spec.arrival,
                                    seq->ready - seq->spec.arrival,
                                    seq->first_scheduled - seq->ready, at - seq->first_scheduled,
                                    seq->prompt_len, std::max(seq->cached_tokens, 0)});
  }
  if (seq->num_output >= seq->target_output) {
    kv_.Free(*seq);
    seq->state = SequenceState::kFinished;
    finishing_.push_back(seq);
    ++(seq->target_reason == FinishReason::kStop ? counters_.finished_stop
                                                 : counters_.finished_length);
    result_.finished.push_back(MakeResult(seq, seq->target_reason, at));
  }
}

const StepResult& Engine::Step(Time now) {
  result_.start = result_.end = now;
  result_.num_seqs = 0;
  result_.prefill_tokens = result_.decode_seqs = 0;
  result_.num_preempted = 0;
  result_.first_tokens.clear();
  result_.tokens.clear();
  result_.finished.clear();

  while (!admitting_.empty() && admitting_.front()->ready <= now) {
    scheduler_.AddWaiting(admitting_.front());
    admitting_.pop_front();
  }
  const SchedulerOutput& plan = scheduler_.Schedule(now);
  result_.num_seqs = static_cast<int>(plan.scheduled.size());
  result_.num_preempted = static_cast<int>(plan.preempted.size());
  result_.prefill_tokens = plan.work.prefill_tokens;
  result_.decode_seqs = plan.work.decode_seqs;
  if (plan.scheduled.empty()) return result_;

  const Duration duration = model_.StepTime(plan.work);
  result_.end = now + duration;
  counters_.busy_time += duration;
  ++counters_.num_steps;

  // The step's tokens are computed; a sequence whose known tokens are all in KV samples one.
  for (const ScheduledChunk& chunk : plan.scheduled) {
    Sequence* seq = chunk.seq;
    seq->num_computed += chunk.num_new_tokens;
    if (seq->num_computed >= seq->num_tokens()) EmitToken(seq, result_.end);
  }
  if (!finishing_.empty()) {
    scheduler_.RemoveFinished();
    for (Sequence* seq : finishing_) Retire(seq);
    finishing_.clear();
  }
  return result_;
}

std::optional<RequestResult> Engine::Abort(RequestId id, Time now) {
  auto it = live_.find(id);
  if (it == live_.end()) return std::nullopt;
  Sequence* seq = it->second;
  if (seq->state == SequenceState::kAdmitting) {
    admitting_.erase(std::find(admitting_.begin(), admitting_.end(), seq));
  } else {
    scheduler_.Remove(seq);
    kv_.Free(*seq);
  }
  seq->state = SequenceState::kFinished;
  ++counters_.aborted;
  RequestResult result = MakeResult(seq, FinishReason::kAbort, now);
  Retire(seq);
  return result;
}

EngineStats Engine::Stats() const {
  EngineStats s = counters_;
  s.num_running = scheduler_.num_running();
  s.num_waiting = scheduler_.num_waiting();
  s.num_admitting = static_cast<int>(admitting_.size());
  const BlockPool& pool = kv_.pool();
  s.kv_usage = pool.Usage();
  s.num_gpu_blocks = pool.num_blocks();
  s.num_free_blocks = pool.num_free_blocks();
  s.block_size = pool.block_size();
  s.kv_used_bytes = static_cast<int64_t>(pool.num_used_blocks()) * pool.block_size() *
                    profile_.kv_bytes_per_token;
  s.weights_bytes = profile_.weights_bytes();
  const SchedulerCounters& c = scheduler_.counters();
  s.prefix_cache_queries = c.prefix_cache_queries;
  s.prefix_cache_hits = c.prefix_cache_hits;
  s.preemptions = c.preemptions;
  s.external_prefix_cache_queries = c.external_queries;
  s.external_prefix_cache_hits = c.external_hits;
  s.lmcache_requested_tokens = c.external_queries;
  s.lmcache_hit_tokens = c.external_hits;
  if (const LmcacheTier* tier = kv_.tier(); tier != nullptr) {
    s.lmcache_stored_tokens = tier->stored_tokens();
    s.lmcache_size_tokens = tier->size_tokens();
  }
  return s;
}

}  // namespace zumik::sim
