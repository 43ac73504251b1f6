// Test helpers for the engine model: synthetic prompts and a virtual-time driver loop.
#pragma once

#include <cstdint>
#include <memory>
#include <vector>

#include "sim/engine.h"
#include "sim/prompt.h"

namespace zumik::sim::testing {

// `n` distinct token ids starting at `first` (distinct ranges never share a block).
inline std::vector<TokenId> Tokens(int n, TokenId first) {
  std::vector<TokenId> out(n);
  for (int i = 0; i < n; ++i) out[i] = first + static_cast<TokenId>(i);
  return out;
}

inline std::vector<TokenId> Concat(std::vector<TokenId> a, const std::vector<TokenId>& b) {
  a.insert(a.end(), b.begin(), b.end());
  return a;
}

inline RequestSpec Spec(RequestId id, std::vector<TokenId> tokens, int max_tokens,
                        Time arrival = Time{0}, int block_size = 16) {
  RequestSpec spec;
  spec.id = id;
  spec.prompt = MakePrompt(std::move(tokens), block_size);
  spec.max_tokens = max_tokens;
  spec.ignore_eos = true;
  spec.arrival = arrival;
  return spec;
}

// Drives an engine in virtual time, as the fleet and the HTTP server do.
class Driver {
 public:
  explicit Driver(Engine* engine) : engine_(engine) {}

  // Runs one step (waiting for the next admission if needed); false when the engine is empty.
  bool StepOnce() {
    const std::optional<Time> next = engine_->NextStepTime();
    if (!next) return false;
    if (*next > now) now = *next;
    const StepResult& r = engine_->Step(now);
    now = r.end;
    steps.push_back(
        StepCopy{r.start, r.end, r.num_seqs, r.prefill_tokens, r.decode_seqs, r.num_preempted});
    for (const RequestResult& f : r.finished) results.push_back(f);
    return true;
  }
  void RunToCompletion() {
    while (StepOnce()) {
    }
  }
  const RequestResult* Result(RequestId id) const {
    for (const RequestResult& r : results) {
      if (r.id == id) return &r;
    }
    return nullptr;
  }

  struct StepCopy {
    Time start, end;
    int num_seqs;
    int64_t prefill_tokens, decode_seqs;
    int num_preempted;
  };
  Time now{0};
  std::vector<StepCopy> steps;
  std::vector<RequestResult> results;

 private:
  Engine* engine_;
};

}  // namespace zumik::sim::testing
