// vLLM V1 FCFS scheduler (see scheduler.h).
#include "sim/scheduler.h"

#include <algorithm>

namespace zumik::sim {

Scheduler::Scheduler(int max_num_batched_tokens, int max_num_seqs, KvCacheManager* kv)
    : max_num_batched_tokens_(max_num_batched_tokens), max_num_seqs_(max_num_seqs), kv_(kv) {
  running_.reserve(max_num_seqs);
  out_.scheduled.reserve(max_num_seqs);
}

void Scheduler::AddWaiting(Sequence* seq) {
  seq->state = SequenceState::kWaiting;
  waiting_.push_back(seq);
}

void Scheduler::Record(Sequence* seq, int num_new_tokens, int loaded_tokens) {
  out_.scheduled.push_back({seq, num_new_tokens});
  const bool decode =
      num_new_tokens == 1 && seq->num_output > 0 && seq->num_computed + 1 == seq->num_tokens();
  if (decode) {
    out_.work.AddDecode(seq->num_tokens());
  } else {
    out_.work.AddPrefillChunk(num_new_tokens, seq->num_computed);
  }
  out_.work.loaded_tokens += loaded_tokens;
}

void Scheduler::Preempt(Sequence* victim) {
  kv_->Free(*victim, /*will_retry=*/true);
  victim->num_computed = 0;
  victim->state = SequenceState::kWaiting;
  ++victim->preemptions;
  ++counters_.preemptions;
  waiting_.push_front(victim);
  out_.preempted.push_back(victim);
}

const SchedulerOutput& Scheduler::Schedule(Time now) {
  out_.scheduled.clear();
  out_.preempted.clear();
  out_.work = StepWork{};
  int budget = max_num_batched_tokens_;

  // Running sequences, in order: decodes and the next chunks of partial prefills.
  for (size_t i = 0; i < running_.size() && budget > 0;) {
    Sequence* seq = running_[i];
    const int n = std::min(seq->num_tokens() - seq->num_computed, budget);
    if (n <= 0) {
      ++i;
      continue;
    }
    bool allocated = kv_->Allocate(*seq, n);
    while (!allocated) {
      Sequence* victim = running_.back();
      running_.pop_back();
      Preempt(victim);
      if (victim == seq) break;
      allocated = kv_->Allocate(*seq, n);
    }
    if (!allocated) break;
    Record(seq, n, 0);
    budget -= n;
    ++i;
  }
  if (!out_.preempted.empty()) return out_;

  // Waiting sequences, FCFS; the head blocks the rest when it does not fit.
  while (!waiting_.empty() && budget > 0 && static_cast<int>(running_.size()) < max_num_seqs_) {
    Sequence* seq = waiting_.front();
    const PrefixHit hit = kv_->FindCachedPrefix(*seq);
    const int n = std::min(seq->num_tokens() - hit.total(), budget);
    if (!kv_->Allocate(*seq, n, &hit)) break;
    waiting_.pop_front();
    running_.push_back(seq);
    seq->state = SequenceState::kRunning;
    seq->num_computed = hit.total();
    if (seq->cached_tokens < 0) {  // first admission (not a resumed preemption)
      seq->cached_tokens = hit.total();
      seq->external_cached_tokens = hit.external_tokens;
      seq->first_scheduled = now;
      counters_.prefix_cache_queries += seq->num_tokens();
      counters_.prefix_cache_hits += hit.local_tokens;
      if (kv_->tier() != nullptr) {
        counters_.external_queries += seq->num_tokens();
        counters_.external_hits += hit.external_tokens;
      }
    }
    Record(seq, n, hit.external_tokens);
    budget -= n;
  }
  return out_;
}

void Scheduler::RemoveFinished() {
  std::erase_if(running_, [](const Sequence* s) { return s->state == SequenceState::kFinished; });
}

void Scheduler::Remove(Sequence* seq) {
  if (auto it = std::find(running_.begin(), running_.end(), seq); it != running_.end()) {
    running_.erase(it);
  } else if (auto w = std::find(waiting_.begin(), waiting_.end(), seq); w != waiting_.end()) {
    waiting_.erase(w);
  }
}

}  // namespace zumik::sim
