// The Responses API (POST /v1/responses) as vLLM's OpenAI server serves it without Harmony
// (vllm/entrypoints/openai/serving_responses.py, later responses/serving.py; protocol.py's
// ResponsesRequest / ResponsesResponse): request parsing, the chat messages a request stands
// for, and the response object and streamed events, written with a string builder like
// openai_response.h. Pure functions: no sockets, no engine, no store.
#pragma once

#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "sim/openai_error.h"
#include "sim/openai_request.h"
#include "sim/openai_response.h"

namespace zumik::sim {

struct ResponsesRequest {
  // model; max_tokens = max_output_tokens (nullopt: up to the context limit, as vLLM's
  // default_max_tokens); temperature and top_p (range-checked as chat); stream.
  GenerationParams params;
  std::optional<std::string> instructions;
  // `input` as chat messages: a string is one user message; message items keep their role and
  // their text parts joined with newlines.
  std::vector<ChatMessage> input;
  bool store = true;  // the API's default; the server ignores it without a store
  std::optional<std::string> previous_response_id;
  // As the client gave them, for the echo in the response (null when absent, as in vLLM).
  std::optional<double> temperature;
  std::optional<double> top_p;
  std::optional<int64_t> max_output_tokens;

  friend bool operator==(const ResponsesRequest&, const ResponsesRequest&) = default;
};

// Parse + validate, with openai_request.h's conventions (400 BadRequestError naming the field).
// Item types other than messages (function_call, function_call_output, reasoning, ...), content
// parts other than input_text / output_text, `tools` and `background: true` get a 400 saying
// the simulator does not support them.
ApiErrorOr<ResponsesRequest> ParseResponsesRequest(std::string_view body,
                                                   const RequestLimits& limits);

// What a stored response keeps to continue its conversation (vLLM's msg_store entry and the
// text of its output message).
struct ResponseConversation {
  std::vector<ChatMessage> messages;  // the messages its prompt was rendered from
  std::string output_text;
};

// The messages of a request, as vLLM's construct_input_messages builds them
// (entrypoints/openai/responses/utils.py): the request's instructions as a system message, then
// (with previous_response_id) the previous response's messages without their system messages
// ("instructions should NOT carry over across responses", as the OpenAI spec says; the older
// serving_responses.py still carried them) and its output text as an assistant message, then the
// new input. So a follow-up that repeats the previous instructions renders a prompt that extends
// the previous prompt and answer, and hits them in the prefix cache.
std::vector<ChatMessage> ResponsesMessages(const ResponsesRequest& request,
                                           const ResponseConversation* previous);

// "resp_<32 hex>" / "msg_<32 hex>" (vLLM: "resp_" + uuid4 hex): unique per (salt, number).
std::string MakeResponsesApiId(std::string_view prefix, uint64_t salt, uint64_t number);

enum class ResponseStatus { kInProgress, kCompleted, kIncomplete };

// One response object (ResponsesResponse): what POST returns, GET returns from the store, and
// the streamed events carry.
struct ResponseObject {
  std::string id;
  int64_t created_at = 0;
  std::string model;
  ResponseStatus status = ResponseStatus::kInProgress;
  // The output message, once finished (nullopt while in progress); "" gives the item with no
  // content part, as vLLM's fallback output item without text.
  std::string message_id;
  std::optional<std::string_view> text;
  std::optional<Usage> usage;  // null while in progress
  // Echoed request fields.
  std::optional<std::string> instructions;
  std::optional<int64_t> max_output_tokens;
  std::optional<std::string> previous_response_id;
  std::optional<double> temperature;
  std::optional<double> top_p;
  bool store = false;  // whether the server stored it
};

// {"id","object":"response","created_at","status","background":false,"error":null,
//  "incomplete_details":null|{"reason":"max_output_tokens"},"instructions","max_output_tokens",
//  "model","output":[{"id","type":"message","role":"assistant","status":"completed",
//  "content":[{"type":"output_text","text","annotations":[]}]}],"parallel_tool_calls":true,
//  "previous_response_id","store","temperature","tool_choice":"auto","tools":[],"top_p",
//  "truncation":"disabled","usage":{"input_tokens","input_tokens_details":{"cached_tokens"},
//  "output_tokens","output_tokens_details":{"reasoning_tokens":0},"total_tokens"}|null}
std::string FormatResponseObject(const ResponseObject& response);

// The events of one streamed response, each `event: <type>\ndata: <json>\n\n` with
// "sequence_number" counting from 0 (vLLM's _convert_stream_to_sse_events; no [DONE]):
//   AppendStart: response.created, response.in_progress (status in_progress, no output)
//   AppendDelta: [response.output_item.added, response.content_part.added on the first]
//                response.output_text.delta
//   AppendFinish: response.output_text.done, response.content_part.done,
//                 response.output_item.done (if any text was sent), response.completed
// vLLM sends one delta per engine step; its content_index arithmetic drifts with each event,
// here output_index and content_index stay 0 (one message, one part).
class ResponsesStreamFormatter {
 public:
  explicit ResponsesStreamFormatter(std::string message_id) : message_id_(std::move(message_id)) {}

  void AppendStart(const ResponseObject& initial, std::string* out);
  void AppendDelta(std::string_view delta, std::string* out);
  // `final` carries the whole text.
  void AppendFinish(const ResponseObject& final, std::string* out);

 private:
  // `event: type\ndata: {"type":"type","sequence_number":N` (the object left open).
  void BeginEvent(std::string_view type, std::string* out);

  std::string message_id_;
  int64_t sequence_number_ = 0;
  bool item_added_ = false;
};

}  // namespace zumik::sim
