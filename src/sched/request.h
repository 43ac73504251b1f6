// The request as the scheduler sees it: parsed once by the transport (EPP or the virtual fleet),
// its prompt's chained block hashes computed once and carried along, plus what the transport
// learns when the response arrives (Completion).
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/clock.h"

namespace zumik::sched {

// Bytes per token assumed when only bytes are known (GIE's estimate; the simulator's tokenizer
// stand-in uses the same ratio).
inline constexpr int64_t kBytesPerToken = 4;
inline int64_t TokensOfBytes(size_t bytes) {
  return (static_cast<int64_t>(bytes) + kBytesPerToken - 1) / kBytesPerToken;
}

// The prompt's chained block hashes (see hashing.h), with the parameters they were made with so
// that a change of block size (auto-tuned from vllm:cache_config_info) triggers a recompute.
struct PromptHashes {
  std::vector<uint64_t> blocks;
  int32_t block_bytes = 0;  // 0: not computed yet
  int32_t max_blocks = 0;   // cap used (0 = none)
};

struct InferenceRequest {
  std::string request_id;
  std::string model;         // as sent by the client
  std::string target_model;  // after any rewrite; empty means `model`. Seeds the hash chain.
  // The bytes hashed for prefix affinity: the completions `prompt`, or the chat messages
  // rendered with AppendChatMessage. Not owned: it must stay valid during Pick (the EPP points
  // it into the request body, the fleet into its generated prompt), so no prompt is copied.
  std::string_view prompt;
  std::string cache_salt;   // optional, mixed into the hash seed (vLLM cache_salt)
  int priority = 0;         // from the InferenceObjective; < 0 is sheddable (admission, not here)
  std::string session_key;  // value of the header named by Scheduler::SessionHeaderName()
  double slo_ttft_ms = 0;   // x-llm-d-slo-ttft-ms; 0 = none
  // Prompt length in tokens when known (tokenized upstream); -1 derives it from the bytes.
  int64_t prompt_tokens = -1;
  // Sequences the engine runs for this request: its `n`, times the prompts of a completions
  // or embeddings batch. vLLM runs each sample of each prompt as a request of its own
  // (vllm:num_requests_running counts them all), so the router's in-flight counts add this
  // many; the hashed prompt's uncached tokens are charged once.
  int32_t sequences = 1;
  // A completions batch's prompts after the first, in tokens. Only the first is hashed (the
  // batch goes where that prompt is cached), so the scheduler charges these as uncached
  // prefill wherever the batch goes. 0 for a single prompt.
  int64_t batch_tokens = 0;

  // Filled by the Scheduler on first use (or Scheduler::PrepareRequest), then reused.
  PromptHashes hashes;

  const std::string& TargetModel() const { return target_model.empty() ? model : target_model; }
  int64_t PromptTokens() const {
    if (prompt_tokens >= 0) return prompt_tokens;
    return TokensOfBytes(prompt.size());
  }
};

// Appends one chat message in the GIE v1.0 template, `<|im_start|>{role}\n{content}<|im_end|>\n`,
// so chat prompts with a common history share hashed prefixes.
void AppendChatMessage(std::string& out, std::string_view role, std::string_view content);

// What the transport reports when a response ends (success or not).
struct Completion {
  bool success = true;
  int64_t prompt_tokens = -1;  // usage.prompt_tokens; -1 unknown
  int64_t cached_tokens = -1;  // usage.prompt_tokens_details.cached_tokens; -1 unknown
  int64_t output_tokens = -1;  // usage.completion_tokens; -1 unknown
  // Observed time to first token, for transports that did not call OnFirstToken.
  std::optional<Duration> ttft;
  // The generated texts as a follow-up prompt carries one right after this request's prompt
  // (completions: the completion text; chat: the rendered assistant message), one per sample
  // (a request with n > 1 has several; the engine caches each after the shared prompt), none
  // when the transport does not know them; empty ones are skipped. Not owned: valid during
  // OnComplete only. Read when the approx-prefix-cache-producer has indexResponses on (the
  // engine caches what it decoded).
  std::vector<std::string_view> response_texts;
};

}  // namespace zumik::sched
