// Parsing of OpenAI-style request bodies for the EPP, once per request: model, stream flag,
// and the bytes hashed for prefix affinity (completions `prompt`, chat `messages` rendered in
// the GIE v1.0 template, embeddings `input`, responses `instructions` + `input` rendered as
// chat messages). Pure; never throws.
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

namespace zumik::epp {

enum class ApiKind {
  kCompletions,
  kChatCompletions,
  kEmbeddings,
  kResponses,
  kResponseRetrieve,  // GET /v1/responses/{id}: no body, to the replica that stored it
  kResponseCancel,    // POST /v1/responses/{id}/cancel: likewise
  kModels,            // GET /v1/models: no body, proxied to any endpoint
  kHealth,            // GET /health, /ready: no body
  kUnknown,
};

// Longest-suffix match of the request path (query string ignored), as the RTR parsers do;
// `/v1/responses/{id}` and `/v1/responses/{id}/cancel` by their shape.
ApiKind ApiKindOfPath(std::string_view path);
// The {id} of a kResponseRetrieve or kResponseCancel path ("" for any other path).
std::string_view ResponseIdOfPath(std::string_view path);
// Whether requests of `kind` carry no body to parse (models, health, stored responses).
bool IsBodiless(ApiKind kind);
// The model server's (vLLM's) own path for requests of `kind`, without a query; `response_id`
// fills a stored response's path. "" for kUnknown.
std::string ModelServerPath(ApiKind kind, std::string_view response_id);

struct ParsedBody {
  std::string model;
  std::string prompt;  // hashed for prefix affinity: read it through Prompt()
  // Instead of `prompt`, with ParseBody's borrow_prompt: a completions prompt or embeddings
  // input that needs no decoding, as it stands in the request body (valid while that is).
  std::string_view borrowed_prompt;
  std::string_view Prompt() const {
    return borrowed_prompt.data() != nullptr ? borrowed_prompt : std::string_view(prompt);
  }
  std::string cache_salt;
  std::string previous_response_id;  // responses: the stored response this one continues
  bool stream = false;
  bool include_usage = false;
  // Completions and chat: samples per prompt, the request's `n` when it is an integer from 1
  // to kMaxSamples (larger ones count as kMaxSamples); 1 otherwise (the backend judges it).
  uint32_t n = 1;
  static constexpr uint32_t kMaxSamples = 1024;
  // Completions and embeddings: prompts in a batch (`prompt` or `input` as an array of strings
  // or of token-id arrays), up to kMaxPrompts (larger batches count as kMaxPrompts); 1
  // otherwise.
  uint32_t prompts = 1;
  static constexpr uint32_t kMaxPrompts = 1024;
  // Completions batch of strings: bytes of the prompts after the first, which is the one hashed
  // (an id-array batch is hashed whole). Their prefill counts wherever the batch goes.
  uint64_t batch_bytes = 0;
  // The requests the engine runs for this one: vLLM serves each prompt of a batch, and each
  // of its n samples, as a request of its own.
  uint32_t Sequences() const { return n * prompts; }
};

struct BodyError {
  int http_status = 400;
  std::string message;
  std::string param;  // the offending field, "" when none
};

// Errors: empty body, invalid UTF-8 or JSON (message names the byte offset), not an object,
// missing/non-string model, missing or mistyped prompt/messages, non-boolean stream.
// `ok` false means `error` is set.
struct BodyParseResult {
  bool ok = false;
  ParsedBody body;
  BodyError error;
};
// With `borrow_prompt`, a prompt that needs no decoding is not copied out of `body` (see
// ParsedBody::borrowed_prompt): the result's Prompt() is then valid only while `body` is.
BodyParseResult ParseBody(ApiKind kind, std::string_view body, bool borrow_prompt = false);

// The two readings behind ParseBody, exposed for tests and the fuzzer. ScanBody reads the
// common shapes (string prompt/input, chat messages with string, null or text-part content)
// without a DOM and returns false whenever it is unsure, errors included; ParseBody then
// runs ParseBodyWithDom, the authoritative reading. When ScanBody returns true, `out` is what
// ParseBodyWithDom gives.
bool ScanBody(ApiKind kind, std::string_view body, ParsedBody& out, bool borrow_prompt = false);
BodyParseResult ParseBodyWithDom(ApiKind kind, std::string_view body);

}  // namespace zumik::epp
