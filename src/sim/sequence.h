// One request as the engine sees it: what a client asked for (RequestSpec), how it ended
// (FinishReason), and its in-engine progress (Sequence), vLLM V1's Request with the fields the
// scheduler and the KV cache manager need.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "core/clock.h"
#include "sim/finish_reason.h"
#include "sim/prompt.h"

namespace zumik::sim {

using RequestId = uint64_t;

struct RequestSpec {
  RequestId id = 0;  // unique among the engine's live requests
  std::shared_ptr<const Prompt> prompt;
  int max_tokens = 16;
  int min_tokens = 0;
  // true: generate exactly max_tokens. false: stop at a natural length (see NaturalStopLength).
  bool ignore_eos = false;
  uint64_t seed = 0;
  Time arrival{0};  // when the request reached the server (the driver's time base)
  // Output token `index`'s id; null: OutputTokenId(stream, index). The HTTP server sets it to
  // the tokenizer's id of the text it sends for that token, so a client that sends the answer
  // back (the next turn of a chat) presents the very blocks the answer filled, as with vLLM.
  TokenId (*output_token)(uint64_t seed, int index) = nullptr;
};

// Output token `index` of a request whose output stream is `stream` (a mix of its seed and
// prompt). Deterministic, so a preempted request recomputes the same blocks and identical
// seeded requests share generated blocks, as in vLLM.
TokenId OutputTokenId(uint64_t stream, int index);

// The output length at which a request emits EOS. Once min_tokens are out, the model emits
// EOS with a constant probability 1/mean per token (a memoryless model of natural stops), so
// the length is min_tokens + a geometric draw >= 1 with mean `mean`. The draw is a function
// of (stream, engine_seed) only.
int NaturalStopLength(uint64_t stream, uint64_t engine_seed, int min_tokens, double mean);

// A request's output stream id: its seed mixed with its prompt's content.
uint64_t OutputStream(const RequestSpec& spec);

enum class SequenceState : uint8_t { kAdmitting, kWaiting, kRunning, kFinished };

struct Sequence {
  RequestSpec spec;
  SequenceState state = SequenceState::kAdmitting;
  uint64_t stream = 0;

  int prompt_len = 0;
  int target_output = 0;  // tokens to generate before finishing
  FinishReason target_reason = FinishReason::kLength;
  Time ready{0};  // arrival + t_api: joins the waiting queue
  Time first_scheduled{-1};
  Time first_token{-1};

  int num_computed = 0;  // tokens whose KV is in (or being written to) GPU blocks
  int num_output = 0;
  int num_tokens() const { return prompt_len + num_output; }

  // Chained hashes of full blocks: the prompt's (shared) then the request's own beyond it.
  std::span<const uint64_t> prompt_hashes;
  std::vector<uint64_t> own_prompt_hashes;  // used when the prompt was hashed for another size
  std::vector<uint64_t> output_hashes;      // full blocks past the prompt's full blocks
  int num_hashed() const { return static_cast<int>(prompt_hashes.size() + output_hashes.size()); }
  uint64_t block_hash(int k) const {
    const size_t n = prompt_hashes.size();
    return static_cast<size_t>(k) < n ? prompt_hashes[k] : output_hashes[k - n];
  }
  TokenId token(int position) const {
    if (position < prompt_len) return spec.prompt->tokens[position];
    return spec.output_token ? spec.output_token(spec.seed, position - prompt_len)
                             : OutputTokenId(stream, position - prompt_len);
  }

  std::vector<int32_t> blocks;  // GPU block table
  int num_cached_blocks = 0;    // leading blocks registered in the prefix cache
  // The GPU prefix hit found when this sequence last waited at the head of the queue: a
  // blocked head is looked up every step, and re-validating these ids is cheaper than
  // re-probing the cache map.
  std::vector<int32_t> last_hit;

  int cached_tokens = -1;  // prefix hit at first scheduling (local + external), -1 before
  int external_cached_tokens = 0;
  int preemptions = 0;
  std::vector<Time> token_times;  // end of the step that produced each output token
};

}  // namespace zumik::sim
