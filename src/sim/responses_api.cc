#include "sim/responses_api.h"

#include <utility>

#include "core/json_string.h"
#include "fmt/format.h"
#include "sim/openai_body.h"

namespace zumik::sim {
namespace {

// The shared readers (openai_body.h).
using namespace body;  // NOLINT(google-build-using-namespace)
namespace json = boost::json;

ApiError Unsupported(std::string message, std::string param) {
  return BadRequest(std::move(message), std::move(param));
}

MaybeError ReadInput(const json::object& object, std::vector<ChatMessage>* input) {
  const json::value* value = Find(object, "input");
  if (value == nullptr) return MissingField("input");
  if (value->is_string()) {
    input->push_back(
        {.role = ChatRole::kUser,
         .content = std::string(value->get_string().data(), value->get_string().size())});
    return std::nullopt;
  }
  if (!value->is_array()) return TypeError("input", "a string or an array of input items", *value);
  const json::array& items = value->get_array();
  input->reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string param = fmt::format("input[{}]", i);
    if (!items[i].is_object()) return TypeError(param, "an object", items[i]);
    const json::object& item = items[i].get_object();
    if (const json::value* type = Find(item, "type")) {
      std::string type_name;
      ZUMIK_RETURN_IF_API_ERROR(ReadString(*type, param + ".type", &type_name));
      if (type_name != "message") {
        return Unsupported(fmt::format("Input item type '{}' is not supported by the simulator "
                                       "(only 'message')",
                                       type_name),
                           param + ".type");
      }
    }
    ChatMessage& message = input->emplace_back();
    constexpr ChatRole kRoles[] = {ChatRole::kUser, ChatRole::kAssistant, ChatRole::kSystem,
                                   ChatRole::kDeveloper};
    ZUMIK_RETURN_IF_API_ERROR(ReadRole(item, param, kRoles, &message.role));
    const json::value* content = Find(item, "content");
    if (content == nullptr) return MissingField(param + ".content");
    constexpr std::string_view kPartTypes[] = {"input_text", "output_text"};
    ZUMIK_RETURN_IF_API_ERROR(
        ReadTextContent(*content, param + ".content", kPartTypes, &message.content));
  }
  return std::nullopt;
}

// What the simulator refuses instead of silently ignoring: tools (vLLM without Harmony refuses
// them too) and background mode (it needs a task runner the simulator does not model).
MaybeError CheckUnsupported(const json::object& object) {
  bool background = false;
  ZUMIK_RETURN_IF_API_ERROR(ReadOptional(object, "background", ReadBool, &background));
  if (background) {
    return Unsupported("Background mode (`background: true`) is not supported by the simulator",
                       "background");
  }
  if (const json::value* tools = Find(object, "tools")) {
    if (!tools->is_array()) return TypeError("tools", "an array", *tools);
    if (!tools->get_array().empty()) {
      return Unsupported("Tool use is not supported in Responses API without Harmony", "tools");
    }
  }
  return std::nullopt;
}

}  // namespace

ApiErrorOr<ResponsesRequest> ParseResponsesRequest(std::string_view body,
                                                   const RequestLimits& limits) {
  BodyDocument document;
  ZUMIK_RETURN_IF_API_ERROR(document.Parse(body));
  const json::object& object = document.object();

  ResponsesRequest request;
  GenerationParams& params = request.params;
  const json::value* model = Find(object, "model");
  if (model == nullptr) return MissingField("model");
  ZUMIK_RETURN_IF_API_ERROR(ReadString(*model, "model", &params.model));
  ZUMIK_RETURN_IF_API_ERROR(CheckUnsupported(object));
  ZUMIK_RETURN_IF_API_ERROR(ReadInput(object, &request.input));
  ZUMIK_RETURN_IF_API_ERROR(
      ReadOptional(object, "instructions", ReadString, &request.instructions));
  ZUMIK_RETURN_IF_API_ERROR(
      ReadOptional(object, "previous_response_id", ReadString, &request.previous_response_id));
  ZUMIK_RETURN_IF_API_ERROR(ReadOptional(object, "store", ReadBool, &request.store));
  ZUMIK_RETURN_IF_API_ERROR(ReadOptional(object, "stream", ReadBool, &params.stream));
  ZUMIK_RETURN_IF_API_ERROR(ReadOptional(object, "user", ReadString, &params.user));
  ZUMIK_RETURN_IF_API_ERROR(ReadOptional(object, "temperature", ReadNumber, &request.temperature));
  ZUMIK_RETURN_IF_API_ERROR(ReadOptional(object, "top_p", ReadNumber, &request.top_p));
  params.temperature = request.temperature.value_or(params.temperature);
  params.top_p = request.top_p.value_or(params.top_p);
  ZUMIK_RETURN_IF_API_ERROR(CheckParamRanges(params));
  ZUMIK_RETURN_IF_API_ERROR(
      ReadOptional(object, "max_output_tokens", ReadInt, &request.max_output_tokens));
  params.max_tokens = request.max_output_tokens;
  ZUMIK_RETURN_IF_API_ERROR(CheckMaxTokens(params, "max_output_tokens", limits));
  return request;
}

std::vector<ChatMessage> ResponsesMessages(const ResponsesRequest& request,
                                           const ResponseConversation* previous) {
  std::vector<ChatMessage> messages;
  messages.reserve(request.input.size() + 1 + (previous ? previous->messages.size() + 1 : 0));
  if (request.instructions && !request.instructions->empty()) {
    messages.push_back({.role = ChatRole::kSystem, .content = *request.instructions});
  }
  if (previous != nullptr) {
    for (const ChatMessage& message : previous->messages) {
      if (message.role != ChatRole::kSystem) messages.push_back(message);
    }
    if (!previous->output_text.empty()) {
      messages.push_back({.role = ChatRole::kAssistant, .content = previous->output_text});
    }
  }
  messages.insert(messages.end(), request.input.begin(), request.input.end());
  return messages;
}

std::string MakeResponsesApiId(std::string_view prefix, uint64_t salt, uint64_t number) {
  // splitmix64 of the salted number for the random-looking half; the number itself for the
  // other, so one salt never repeats an id.
  uint64_t x = salt + number * 0x9e3779b97f4a7c15ULL;
  x = (x ^ (x >> 30)) * 0xbf58476d1ce4e5b9ULL;
  x = (x ^ (x >> 27)) * 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return fmt::format("{}{:016x}{:016x}", prefix, x, number ^ salt);
}

namespace {

std::string_view StatusName(ResponseStatus status) {
  switch (status) {
    case ResponseStatus::kInProgress:
      return "in_progress";
    case ResponseStatus::kCompleted:
      return "completed";
    case ResponseStatus::kIncomplete:
      return "incomplete";
  }
  return "completed";
}

void AppendOptionalString(const std::optional<std::string>& value, std::string* out) {
  if (value) {
    AppendJsonString(*value, out);
  } else {
    out->append("null");
  }
}

void AppendOptionalNumber(const std::optional<double>& value, std::string* out) {
  if (value) {
    fmt::format_to(std::back_inserter(*out), "{}", *value);
  } else {
    out->append("null");
  }
}

// {"type":"output_text","text":...,"annotations":[]}
void AppendTextPart(std::string_view text, std::string* out) {
  out->append(R"({"type":"output_text","text":)");
  AppendJsonString(text, out);
  out->append(R"(,"annotations":[]})");
}

// The output message item; `text` nullopt: in progress, no content yet.
void AppendMessageItem(std::string_view id, std::optional<std::string_view> text,
                       std::string* out) {
  out->append(R"({"id":)");
  AppendJsonString(id, out);
  out->append(R"(,"type":"message","role":"assistant","status":)");
  out->append(text ? R"("completed","content":[)" : R"("in_progress","content":[)");
  if (text && !text->empty()) AppendTextPart(*text, out);
  out->append("]}");
}

void AppendResponsesUsage(const Usage& usage, std::string* out) {
  out->append(R"({"input_tokens":)");
  AppendInt(usage.prompt_tokens, out);
  out->append(R"(,"input_tokens_details":{"cached_tokens":)");
  AppendInt(usage.cached_tokens, out);
  out->append(R"(},"output_tokens":)");
  AppendInt(usage.completion_tokens, out);
  out->append(R"(,"output_tokens_details":{"reasoning_tokens":0},"total_tokens":)");
  AppendInt(usage.prompt_tokens + usage.completion_tokens, out);
  out->push_back('}');
}

void AppendResponseObject(const ResponseObject& r, std::string* out) {
  out->append(R"({"id":)");
  AppendJsonString(r.id, out);
  out->append(R"(,"object":"response","created_at":)");
  AppendInt(r.created_at, out);
  out->append(R"(,"status":")");
  out->append(StatusName(r.status));
  out->append(R"(","background":false,"error":null,"incomplete_details":)");
  out->append(r.status == ResponseStatus::kIncomplete ? R"({"reason":"max_output_tokens"})"
                                                      : "null");
  out->append(R"(,"instructions":)");
  AppendOptionalString(r.instructions, out);
  out->append(R"(,"max_output_tokens":)");
  if (r.max_output_tokens) {
    AppendInt(*r.max_output_tokens, out);
  } else {
    out->append("null");
  }
  out->append(R"(,"model":)");
  AppendJsonString(r.model, out);
  out->append(R"(,"output":[)");
  if (r.text) AppendMessageItem(r.message_id, r.text, out);
  out->append(R"(],"parallel_tool_calls":true,"previous_response_id":)");
  AppendOptionalString(r.previous_response_id, out);
  out->append(R"(,"store":)");
  out->append(r.store ? "true" : "false");
  out->append(R"(,"temperature":)");
  AppendOptionalNumber(r.temperature, out);
  out->append(R"(,"tool_choice":"auto","tools":[],"top_p":)");
  AppendOptionalNumber(r.top_p, out);
  out->append(R"(,"truncation":"disabled","usage":)");
  if (r.usage) {
    AppendResponsesUsage(*r.usage, out);
  } else {
    out->append("null");
  }
  out->push_back('}');
}

}  // namespace

std::string FormatResponseObject(const ResponseObject& response) {
  std::string out;
  out.reserve(640 + (response.text ? response.text->size() + response.text->size() / 8 : 0));
  AppendResponseObject(response, &out);
  return out;
}

void ResponsesStreamFormatter::BeginEvent(std::string_view type, std::string* out) {
  out->append("event: ");
  out->append(type);
  out->append("\ndata: {\"type\":\"");
  out->append(type);
  out->append("\",\"sequence_number\":");
  AppendInt(sequence_number_++, out);
}

void ResponsesStreamFormatter::AppendStart(const ResponseObject& initial, std::string* out) {
  for (std::string_view type : {"response.created", "response.in_progress"}) {
    BeginEvent(type, out);
    out->append(R"(,"response":)");
    AppendResponseObject(initial, out);
    out->append("}\n\n");
  }
}

namespace {
// ,"output_index":0,"item_id":ID,"content_index":0
void AppendPosition(std::string_view item_id, std::string* out) {
  out->append(R"(,"output_index":0,"item_id":)");
  AppendJsonString(item_id, out);
  out->append(R"(,"content_index":0)");
}
}  // namespace

void ResponsesStreamFormatter::AppendDelta(std::string_view delta, std::string* out) {
  if (delta.empty()) return;
  if (!item_added_) {
    item_added_ = true;
    BeginEvent("response.output_item.added", out);
    out->append(R"(,"output_index":0,"item":)");
    AppendMessageItem(message_id_, std::nullopt, out);
    out->append("}\n\n");
    BeginEvent("response.content_part.added", out);
    AppendPosition(message_id_, out);
    out->append(R"(,"part":)");
    AppendTextPart("", out);
    out->append("}\n\n");
  }
  BeginEvent("response.output_text.delta", out);
  AppendPosition(message_id_, out);
  out->append(R"(,"delta":)");
  AppendJsonString(delta, out);
  out->append(R"(,"logprobs":[]})");
  out->append("\n\n");
}

void ResponsesStreamFormatter::AppendFinish(const ResponseObject& final, std::string* out) {
  if (item_added_) {
    const std::string_view text = final.text.value_or("");
    BeginEvent("response.output_text.done", out);
    AppendPosition(message_id_, out);
    out->append(R"(,"text":)");
    AppendJsonString(text, out);
    out->append(R"(,"logprobs":[]})");
    out->append("\n\n");
    BeginEvent("response.content_part.done", out);
    AppendPosition(message_id_, out);
    out->append(R"(,"part":)");
    AppendTextPart(text, out);
    out->append("}\n\n");
    BeginEvent("response.output_item.done", out);
    out->append(R"(,"output_index":0,"item":)");
    AppendMessageItem(message_id_, text, out);
    out->append("}\n\n");
  }
  // vLLM ends every stream with response.completed, whatever the final status.
  BeginEvent("response.completed", out);
  out->append(R"(,"response":)");
  AppendResponseObject(final, out);
  out->append("}\n\n");
}

}  // namespace zumik::sim
