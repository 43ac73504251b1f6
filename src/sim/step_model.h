// The step-time model of docs/specs/sim-calibration.md:
//   t_step = t0 + max(t_w, c_lin * (prefill_tokens + decode_seqs))
//          + c_kv  * sum of the decoding sequences' context lengths
//          + c_att * sum over prefill chunks of n_i * (c_i + n_i / 2)
//          + c_load * tokens loaded from the LMCache tier
// n_i: new tokens of chunk i; c_i: tokens already in KV for that request (cached or computed).
#pragma once

#include <cstdint>

#include "core/clock.h"
#include "sim/profile.h"

namespace zumik::sim {

// What one step computes: the inputs of the formula, accumulated by the scheduler.
struct StepWork {
  int64_t prefill_tokens = 0;
  int64_t decode_seqs = 0;
  int64_t decode_context = 0;  // sum of context lengths of decoding sequences
  double attention_pairs = 0;  // sum of n_i * (c_i + n_i / 2)
  int64_t loaded_tokens = 0;   // external (LMCache) tokens loaded this step

  void AddPrefillChunk(int64_t new_tokens, int64_t tokens_in_kv) {
    prefill_tokens += new_tokens;
    attention_pairs += static_cast<double>(new_tokens) *
                       (static_cast<double>(tokens_in_kv) + static_cast<double>(new_tokens) / 2);
  }
  void AddDecode(int64_t context) {
    ++decode_seqs;
    decode_context += context;
  }
  bool empty() const { return prefill_tokens == 0 && decode_seqs == 0; }
};

class StepModel {
 public:
  explicit StepModel(const Profile& profile);
  // Zero for an empty step (nothing runs on the GPU).
  Duration StepTime(const StepWork& work) const;
  double StepSeconds(const StepWork& work) const;

 private:
  double t0_, t_w_, c_lin_, c_kv_, c_att_, c_load_;
};

}  // namespace zumik::sim
