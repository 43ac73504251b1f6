// vLLM V1's scheduler (vllm/v1/core/sched/scheduler.py), FCFS policy, chunked prefill on:
// each step first serves the running sequences in order (decodes and partial prefills), then
// admits waiting sequences in FCFS order, within max_num_batched_tokens tokens and
// max_num_seqs running. When a running sequence cannot get a block, the sequence most recently
// added to running is preempted by recompute (blocks freed, computed tokens reset to 0, put at
// the front of the waiting queue) until it fits; a step that preempted admits no one. A
// waiting sequence that cannot get its blocks stays at the head and blocks those behind it.
#pragma once

#include <cstdint>
#include <deque>
#include <vector>

#include "core/clock.h"
#include "sim/kv_cache_manager.h"
#include "sim/sequence.h"
#include "sim/step_model.h"

namespace zumik::sim {

struct ScheduledChunk {
  Sequence* seq;
  int num_new_tokens;
};

// One step's plan. Valid until the next Schedule().
struct SchedulerOutput {
  std::vector<ScheduledChunk> scheduled;  // running ones first, then those admitted
  std::vector<Sequence*> preempted;
  StepWork work;
};

struct SchedulerCounters {
  // vLLM's prefix-cache counters, in tokens, for sequences admitted for the first time.
  int64_t prefix_cache_queries = 0;
  int64_t prefix_cache_hits = 0;
  // The same for the LMCache tier (vLLM's external_prefix_cache_*; LMCache's requested/hit).
  int64_t external_queries = 0;
  int64_t external_hits = 0;
  int64_t preemptions = 0;
};

class Scheduler {
 public:
  Scheduler(int max_num_batched_tokens, int max_num_seqs, KvCacheManager* kv);

  // Appends to the waiting queue.
  void AddWaiting(Sequence* seq);
  // Plans one step at `now`: allocates blocks, preempts and admits. The caller executes it.
  const SchedulerOutput& Schedule(Time now);
  // Drops sequences whose state is kFinished from the running list, keeping its order.
  void RemoveFinished();
  // Removes a sequence from whichever queue holds it (client abort).
  void Remove(Sequence* seq);

  int num_running() const { return static_cast<int>(running_.size()); }
  int num_waiting() const { return static_cast<int>(waiting_.size()); }
  const std::vector<Sequence*>& running() const { return running_; }
  const std::deque<Sequence*>& waiting() const { return waiting_; }
  const SchedulerCounters& counters() const { return counters_; }

 private:
  void Preempt(Sequence* victim);
  void Record(Sequence* seq, int num_new_tokens, int loaded_tokens);

  int max_num_batched_tokens_;
  int max_num_seqs_;
  KvCacheManager* kv_;
  std::vector<Sequence*> running_;
  std::deque<Sequence*> waiting_;
  SchedulerOutput out_;
  SchedulerCounters counters_;
};

}  // namespace zumik::sim
