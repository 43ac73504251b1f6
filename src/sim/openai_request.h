// Parsing and validation of POST /v1/completions and /v1/chat/completions bodies, with the
// statuses, error types and params vLLM's OpenAI server gives, and the chat prompt template.
// Pure functions: no sockets, no engine; never throw.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sim/openai_error.h"
#include "sim/tokenizer.h"

namespace zumik::sim {

enum class Endpoint { kCompletions, kChatCompletions };

// What the served model allows; checked while parsing.
struct RequestLimits {
  // max_tokens (or max_completion_tokens) above this is rejected; 0 disables the check.
  int64_t max_model_len = 0;
  // Token-id prompts must use ids below this; 0: any 32-bit id (the simulator's tokenizer has
  // no vocabulary, its ids span the uint32 range).
  int64_t vocab_size = 0;
};

// vLLM's bounds on how many engine requests one HTTP request fans out into: `n` up to
// VLLM_MAX_N_SEQUENCES (default 16384, vllm/envs.py, checked in SamplingParams._verify_args)
// and a completions `prompt` list up to VLLM_MAX_COMPLETION_PROMPTS (default 1024, checked in
// CompletionRequest.validate_prompt_list_length). vLLM bounds each alone; the simulator also
// bounds their product (prompts x n), so that one request cannot queue 16 million sequences.
inline constexpr int64_t kMaxN = 16384;
inline constexpr int64_t kMaxCompletionPrompts = 1024;
inline constexpr int64_t kMaxEngineRequests = 16384;

// vLLM's default max_tokens for /v1/completions when the request gives none.
inline constexpr int64_t kDefaultCompletionMaxTokens = 16;

// The request fields both endpoints share, validated.
struct GenerationParams {
  std::string model;
  // Completions: max_tokens, 16 when absent (vLLM's default). Chat: max_completion_tokens,
  // else max_tokens, else nullopt = "up to the context limit" (see ResolveMaxTokens).
  std::optional<int64_t> max_tokens;
  int64_t min_tokens = 0;
  bool ignore_eos = false;
  std::optional<int64_t> seed;
  double temperature = 1.0;  // accepted and range-checked; the simulator does not sample
  double top_p = 1.0;
  bool stream = false;
  // stream_options.include_usage (true when stream_options is given without it, as in vLLM).
  bool include_usage = false;
  std::vector<std::string> stop;  // a single string becomes one element
  std::string user;
  // Samples per prompt: vLLM V1 fans a request out into n child requests that share the
  // prompt (vllm/v1/engine/parallel_sampling.py).
  int64_t n = 1;

  friend bool operator==(const GenerationParams&, const GenerationParams&) = default;
};

// One prompt of /v1/completions: text (tokenized by the simulator), or token ids used as is.
struct CompletionPrompt {
  std::string text;                // when !is_token_ids
  std::vector<TokenId> token_ids;  // when is_token_ids
  bool is_token_ids = false;

  friend bool operator==(const CompletionPrompt&, const CompletionPrompt&) = default;
};

struct CompletionRequest {
  GenerationParams params;
  // As vLLM's `prompt`: a string, a list of strings, a list of token ids, or a list of lists
  // of token ids. Each prompt is its own engine request (n of them with n > 1); choice
  // `index` i * n + j is sample j of prompt i.
  std::vector<CompletionPrompt> prompts;

  friend bool operator==(const CompletionRequest&, const CompletionRequest&) = default;
};

enum class ChatRole { kSystem, kUser, kAssistant, kTool, kDeveloper };
std::string_view ChatRoleName(ChatRole role);

struct ChatMessage {
  ChatRole role = ChatRole::kUser;
  std::string content;  // text parts concatenated; "" for an assistant message without content

  friend bool operator==(const ChatMessage&, const ChatMessage&) = default;
};

struct ChatRequest {
  GenerationParams params;
  std::vector<ChatMessage> messages;
  std::string prompt;  // RenderChatPrompt(messages): what the engine tokenizes

  friend bool operator==(const ChatRequest&, const ChatRequest&) = default;
};

// Parse + validate a body. Errors are 400 BadRequestError with `param` naming the field
// (dotted/indexed for nested fields, e.g. "messages[2].content"): invalid UTF-8, malformed
// JSON (message gives line, column and byte offset), a non-object body, a missing or
// mistyped field, out-of-range values (n, best_of, token ids, the limits above). Unknown fields
// are ignored, as vLLM does. Bodies of several MB are fine.
ApiErrorOr<CompletionRequest> ParseCompletionRequest(std::string_view body,
                                                     const RequestLimits& limits);
ApiErrorOr<ChatRequest> ParseChatRequest(std::string_view body, const RequestLimits& limits);

// Renders messages with a Llama-3-style template, ending with the assistant header:
//   <|begin_of_text|>(<|start_header_id|>ROLE<|end_header_id|>\n\nCONTENT<|eot_id|>)*
//   <|start_header_id|>assistant<|end_header_id|>\n\n
// Deterministic, and append-only: the prompt for messages M is a prefix of the prompt for
// M + [assistant reply] + more turns, which is what makes prefix caching hit in multi-turn chat.
std::string RenderChatPrompt(std::span<const ChatMessage> messages);

// The tokens of RenderChatPrompt(messages) as the engine sees them: each special token
// (<|begin_of_text|>, <|start_header_id|>, <|end_header_id|>, <|eot_id|>) is one token with
// Llama 3's id, and every text piece between them (role, "\n\n", content) is tokenized on its
// own, as a real tokenizer never merges across special tokens. So an assistant message carrying
// a previous answer's text tokenizes to the very tokens the engine generated (and cached) for
// it, wherever its template header left the byte alignment. Append-only, like the text.
std::vector<TokenId> TokenizeChatPrompt(std::span<const ChatMessage> messages);

// The number of tokens to generate once the prompt is tokenized, or the 400 vLLM gives when
// prompt + completion exceed max_model_len (ContextLengthExceeded). A request without
// max_tokens gets the rest of the context (at least one token must fit).
ApiErrorOr<int64_t> ResolveMaxTokens(std::optional<int64_t> max_tokens, int64_t prompt_tokens,
                                     const RequestLimits& limits);

}  // namespace zumik::sim
