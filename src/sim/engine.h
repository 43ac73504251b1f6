// One simulated vLLM V1 replica: the engine loop a driver calls step by step.
//
//   Engine::Step(now) -> Scheduler::Schedule (-> KvCacheManager -> BlockPool)
//                     -> StepModel::StepTime -> apply: tokens, first tokens, finishes
//
// The engine never reads a clock. A driver passes `now` to Step; the step runs from `now` to
// `result.end` and its events are those at `result.end`. A real-time driver (HTTP server):
//
//   void Pump() {                       // after each Add(), and when the timer fires
//     if (stepping) return;
//     std::optional<Time> next = engine.NextStepTime();
//     if (!next) return;                                 // idle until the next Add()
//     if (*next > clock.Now()) { ArmTimer(*next); return; }
//     const StepResult& r = engine.Step(clock.Now());    // stepping = true
//     ArmTimer(r.end);  // then: stepping = false, deliver r's events, Pump()
//   }
//
// The virtual-time Fleet does the same with an event queue. Engine state (Stats()) reflects
// the end of a step as soon as Step() returns; a request aborted during a step may still
// appear in that step's events (drivers ignore ids they no longer track).
// t_api (HTTP + tokenization) is modelled as a delay: a request added with `arrival` joins the
// waiting queue at arrival + t_api, so it is counted once in its TTFT.
// Not thread-safe: drivers serialise calls.
#pragma once

#include <cstdint>
#include <deque>
#include <memory>
#include <optional>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/status.h"
#include "core/clock.h"
#include "sim/kv_cache_manager.h"
#include "sim/profile.h"
#include "sim/scheduler.h"
#include "sim/sequence.h"
#include "sim/step_model.h"

namespace zumik::sim {

struct EngineOptions {
  uint64_t seed = 0;               // mixed into natural stop lengths
  bool record_token_times = true;  // fill RequestResult::token_times
};

struct FirstTokenEvent {
  RequestId id = 0;
  Duration ttft{0};     // arrival -> end of the step that produced the first token
  Duration api{0};      // t_api: arrival -> waiting queue
  Duration queued{0};   // waiting queue -> first scheduled
  Duration prefill{0};  // first scheduled -> first token (all prefill chunks)
  int prompt_tokens = 0;
  int cached_tokens = 0;
};

struct TokenEvent {
  RequestId id = 0;
  int index = 0;  // 0-based output token index; 0 is the first token
  TokenId token = 0;
};

struct RequestResult {
  RequestId id = 0;
  FinishReason finish_reason = FinishReason::kLength;
  Time arrival{0};
  Time first_token{-1};  // -1 when none was produced (aborted early)
  Time finished{0};
  int prompt_tokens = 0;
  int cached_tokens = 0;           // prefix hit at first scheduling: GPU + LMCache
  int external_cached_tokens = 0;  // of which from LMCache
  int output_tokens = 0;
  int preemptions = 0;
  std::vector<Time> token_times;  // per output token (EngineOptions::record_token_times)

  Duration ttft() const { return first_token - arrival; }
  Duration e2e() const { return finished - arrival; }
};

// One step's plan size and the events at its end. Reused: valid until the next Step().
struct StepResult {
  Time start{0};
  Time end{0};
  int num_seqs = 0;  // sequences in the batch
  int64_t prefill_tokens = 0;
  int64_t decode_seqs = 0;
  int num_preempted = 0;
  std::vector<FirstTokenEvent> first_tokens;
  std::vector<TokenEvent> tokens;  // one per sequence that produced a token, first ones included
  std::vector<RequestResult> finished;

  Duration duration() const { return end - start; }
  // Nothing ran (no sequence was ready): wait for NextStepTime().
  bool idle() const { return num_seqs == 0 && num_preempted == 0; }
};

// Everything the server needs for vLLM's (and LMCache's, DCGM's) metrics. Counters are
// cumulative since construction.
struct EngineStats {
  int num_running = 0;
  int num_waiting = 0;    // vLLM's waiting queue (preempted ones included)
  int num_admitting = 0;  // still in t_api, not yet in the waiting queue
  double kv_usage = 0;    // vllm:kv_cache_usage_perc, in [0, 1]
  int num_gpu_blocks = 0;
  int num_free_blocks = 0;
  int block_size = 0;
  int64_t kv_used_bytes = 0;  // used blocks x block size x KV bytes per token (all GPUs)
  int64_t weights_bytes = 0;  // all GPUs

  int64_t prompt_tokens = 0;      // vllm:prompt_tokens_total (counted at the first token)
  int64_t generation_tokens = 0;  // vllm:generation_tokens_total
  int64_t prefix_cache_queries = 0;
  int64_t prefix_cache_hits = 0;
  int64_t preemptions = 0;
  int64_t requests_added = 0;
  int64_t finished_stop = 0;    // vllm:request_success_total{finished_reason="stop"}
  int64_t finished_length = 0;  // ... "length"
  int64_t aborted = 0;          // ... "abort"

  bool lmcache_enabled = false;
  int64_t lmcache_requested_tokens = 0;       // lmcache:num_requested_tokens_total
  int64_t lmcache_hit_tokens = 0;             // lmcache:num_hit_tokens_total
  int64_t lmcache_stored_tokens = 0;          // tokens spilled into the tier
  int64_t lmcache_size_tokens = 0;            // tokens resident in the tier
  int64_t external_prefix_cache_queries = 0;  // vllm:external_prefix_cache_queries_total
  int64_t external_prefix_cache_hits = 0;     // vllm:external_prefix_cache_hits_total

  Duration busy_time{0};  // sum of step durations: GPU utilization = busy / elapsed
  int64_t num_steps = 0;
};

class Engine {
 public:
  explicit Engine(Profile profile, EngineOptions options = {});
  Engine(const Engine&) = delete;
  Engine& operator=(const Engine&) = delete;

  // Queues a request. InvalidArgument when it cannot run here: no prompt, max_tokens < 1,
  // min_tokens > max_tokens, prompt + max_tokens over max_model_len or over the KV capacity;
  // AlreadyExists for a live id.
  absl::Status Add(RequestSpec spec);
  // What Add would answer, without adding: lets a driver add a group of requests (the n
  // samples or the prompts of one HTTP request) all or none.
  absl::Status Check(const RequestSpec& spec) const;
  // Removes a live request (client disconnect), freeing its blocks; nullopt if unknown.
  std::optional<RequestResult> Abort(RequestId id, Time now);

  bool HasWork() const { return !live_.empty(); }
  // When Step() next has work: a time <= now means "now"; nullopt when the engine is empty.
  std::optional<Time> NextStepTime() const;
  // Plans and executes one step starting at `now` (>= the previous step's end).
  const StepResult& Step(Time now);
  // The result of the last Step() (what a driver delivers at its end).
  const StepResult& last_step() const { return result_; }

  EngineStats Stats() const;
  const Profile& profile() const { return profile_; }
  int max_model_len() const { return profile_.max_model_len; }
  const KvCacheManager& kv() const { return kv_; }
  const Scheduler& scheduler() const { return scheduler_; }

 private:
  Sequence* NewSequence();
  void EmitToken(Sequence* seq, Time at);
  RequestResult MakeResult(Sequence* seq, FinishReason reason, Time at);
  void Retire(Sequence* seq);

  Profile profile_;
  EngineOptions options_;
  KvCacheManager kv_;
  Scheduler scheduler_;
  StepModel model_;
  std::deque<Sequence*> admitting_;  // ordered by ready time
  absl::flat_hash_map<RequestId, Sequence*> live_;
  std::vector<std::unique_ptr<Sequence>> storage_;
  std::vector<Sequence*> spare_;
  std::vector<Sequence*> finishing_;
  StepResult result_;
  EngineStats counters_;  // the cumulative part of Stats()
};

}  // namespace zumik::sim
