// Response bodies of the OpenAI-compatible API in vLLM's shapes: non-streaming completions and
// chat completions, server-sent-event chunks for streaming, and GET /v1/models. Written with a
// string builder (no JSON DOM) because streaming formats one chunk per token per stream.
#pragma once

#include <cstdint>
#include <span>
#include <string>
#include <string_view>

#include "sim/finish_reason.h"
#include "sim/openai_error.h"
#include "sim/openai_request.h"

namespace zumik::sim {

struct Usage {
  int64_t prompt_tokens = 0;
  int64_t completion_tokens = 0;
  int64_t cached_tokens = 0;  // prompt tokens served from the prefix cache
};

// What every object of one response repeats.
struct ResponseMeta {
  std::string id;       // MakeResponseId(...)
  int64_t created = 0;  // unix seconds
  std::string model;
};

// "cmpl-<32 hex>" or "chatcmpl-<32 hex>" from a per-server request number.
std::string MakeResponseId(Endpoint endpoint, uint64_t request_number);

// One choice of a non-streaming response; its `index` is its position in the list (vLLM numbers
// choices i * n + j: sample j of prompt i).
struct ChoiceOutput {
  std::string_view text;
  FinishReason finish = FinishReason::kLength;
};

// {"id","object":"text_completion","created","model","choices":[{"index","text",
//  "logprobs":null,"finish_reason","stop_reason":null}, ...],"usage":{...}}
std::string FormatCompletionResponse(const ResponseMeta& meta,
                                     std::span<const ChoiceOutput> choices, const Usage& usage);
// {"id","object":"chat.completion","created","model","choices":[{"index","message":
//  {"role":"assistant","content"},"logprobs":null,"finish_reason","stop_reason":null}, ...],
//  "usage":{...}}
std::string FormatChatResponse(const ResponseMeta& meta, std::span<const ChoiceOutput> choices,
                               const Usage& usage);

// One choice (index 0).
inline std::string FormatCompletionResponse(const ResponseMeta& meta, std::string_view text,
                                            FinishReason finish, const Usage& usage) {
  const ChoiceOutput choice{text, finish};
  return FormatCompletionResponse(meta, std::span(&choice, 1), usage);
}
inline std::string FormatChatResponse(const ResponseMeta& meta, std::string_view text,
                                      FinishReason finish, const Usage& usage) {
  const ChoiceOutput choice{text, finish};
  return FormatChatResponse(meta, std::span(&choice, 1), usage);
}

// The SSE end-of-stream event.
inline constexpr std::string_view kSseDone = "data: [DONE]\n\n";

// Formats the events of one streamed response; each Append* call appends one or more complete
// `data: {json}\n\n` events to `out`. The JSON prefix shared by every chunk is built once.
// A stream is: [AppendRole (chat)] AppendText* AppendFinish [AppendUsage] AppendDone, with
// `index` naming the choice each chunk belongs to (vLLM interleaves the choices' chunks as the
// engine produces their tokens; each choice gets its own finish chunk).
class StreamFormatter {
 public:
  StreamFormatter(Endpoint endpoint, const ResponseMeta& meta, bool include_usage);

  // Chat: the first chunk of a choice, delta {"role":"assistant","content":""} as vLLM sends it.
  // Completions: appends nothing (vLLM sends no such chunk).
  void AppendRole(std::string* out, int64_t index = 0) const;
  // One content delta (usually one token).
  void AppendText(std::string_view text, std::string* out, int64_t index = 0) const;
  // The last delta (may be empty) with the finish reason.
  void AppendFinish(std::string_view text, FinishReason finish, std::string* out,
                    int64_t index = 0) const;
  // With include_usage: the extra chunk with "choices":[] and the usage. Otherwise nothing.
  void AppendUsage(const Usage& usage, std::string* out) const;
  static void AppendDone(std::string* out) { out->append(kSseDone); }

  bool include_usage() const { return include_usage_; }

 private:
  void AppendChunk(std::string_view text, const FinishReason* finish, int64_t index,
                   std::string* out) const;

  Endpoint endpoint_;
  bool include_usage_;
  std::string prefix_;  // data: {"id":...,"object":...,"created":...,"model":...,
};

// An error after the stream started (vLLM's shape): `data: {"error":{...}}\n\n`. vLLM follows
// it with kSseDone.
void AppendStreamError(const ApiError& error, std::string* out);

// One served model for GET /v1/models.
struct ModelCard {
  std::string id;    // the served model name
  std::string root;  // the model path/name it was loaded from
  int64_t created = 0;
  int64_t max_model_len = 0;
};

// {"object":"list","data":[{"id","object":"model","created","owned_by":"vllm","root",
//  "parent":null,"max_model_len","permission":[{...model_permission...}]}]}
std::string FormatModelList(std::span<const ModelCard> models);

}  // namespace zumik::sim
