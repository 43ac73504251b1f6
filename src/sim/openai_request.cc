#include "sim/openai_request.h"

#include <algorithm>
#include <boost/json.hpp>
#include <utility>

#include "core/json_string.h"
#include "fmt/format.h"
#include "sim/openai_body.h"

namespace zumik::sim {
namespace {

// The shared readers (openai_body.h).
using namespace body;  // NOLINT(google-build-using-namespace)
namespace json = boost::json;

MaybeError ReadStop(const json::object& object, std::vector<std::string>* out) {
  const json::value* value = Find(object, "stop");
  if (value == nullptr) return std::nullopt;
  if (value->is_string()) {
    out->emplace_back(value->get_string().data(), value->get_string().size());
    return std::nullopt;
  }
  if (!value->is_array()) return TypeError("stop", "a string or an array of strings", *value);
  const json::array& items = value->get_array();
  out->reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    ZUMIK_RETURN_IF_API_ERROR(
        ReadString(items[i], fmt::format("stop[{}]", i), &out->emplace_back()));
  }
  return std::nullopt;
}

MaybeError ReadStreamOptions(const json::object& object, GenerationParams* params) {
  const json::value* value = Find(object, "stream_options");
  if (value == nullptr) return std::nullopt;
  if (!value->is_object()) return TypeError("stream_options", "an object", *value);
  const json::object& options = value->get_object();
  // vLLM rejects only a non-empty stream_options without stream=true.
  if (!options.empty() && !params->stream) {
    return BadRequest("Stream options can only be defined when `stream=True`.", "stream_options");
  }
  // As in vLLM, include_usage defaults to true once stream_options is given; an explicit null
  // means false.
  params->include_usage = true;
  if (const json::value* include = options.if_contains("include_usage")) {
    if (include->is_null()) {
      params->include_usage = false;
    } else {
      ZUMIK_RETURN_IF_API_ERROR(
          ReadBool(*include, "stream_options.include_usage", &params->include_usage));
    }
  }
  return std::nullopt;
}

// n, and best_of against it, with vLLM's messages: SamplingParams._verify_args bounds n by
// VLLM_MAX_N_SEQUENCES and requires best_of >= n; V1's processor then refuses any best_of > 1
// ("vLLM V1 does not yet support best_of.", vllm/v1/engine/processor.py, 0.8 to 0.11; later
// versions dropped the field, so the refusal is what a V1 server that knows it answers).
MaybeError ReadN(const json::object& object, int64_t* n) {
  ZUMIK_RETURN_IF_API_ERROR(ReadOptional(object, "n", ReadInt, n));
  if (*n < 1) return BadRequest(fmt::format("n must be at least 1, got {}.", *n), "n");
  if (*n > kMaxN) return BadRequest(fmt::format("n must be at most {}, got {}.", kMaxN, *n), "n");
  std::optional<int64_t> best_of;
  ZUMIK_RETURN_IF_API_ERROR(ReadOptional(object, "best_of", ReadInt, &best_of));
  if (best_of && *best_of < *n) {
    return BadRequest(fmt::format("best_of must be greater than or equal to n, got n={} and "
                                  "best_of={}.",
                                  *n, *best_of),
                      "best_of");
  }
  if (best_of && *best_of > 1) {
    return BadRequest("vLLM V1 does not yet support best_of.", "best_of");
  }
  return std::nullopt;
}

// Fields common to both endpoints, except max_tokens (whose field differs).
MaybeError ReadCommon(const json::object& object, GenerationParams* params) {
  const json::value* model = Find(object, "model");
  if (model == nullptr) return MissingField("model");
  ZUMIK_RETURN_IF_API_ERROR(ReadString(*model, "model", &params->model));

  ZUMIK_RETURN_IF_API_ERROR(ReadOptional(object, "min_tokens", ReadInt, &params->min_tokens));
  ZUMIK_RETURN_IF_API_ERROR(ReadOptional(object, "ignore_eos", ReadBool, &params->ignore_eos));
  ZUMIK_RETURN_IF_API_ERROR(ReadOptional(object, "seed", ReadInt, &params->seed));
  ZUMIK_RETURN_IF_API_ERROR(ReadOptional(object, "temperature", ReadNumber, &params->temperature));
  ZUMIK_RETURN_IF_API_ERROR(ReadOptional(object, "top_p", ReadNumber, &params->top_p));
  ZUMIK_RETURN_IF_API_ERROR(ReadOptional(object, "stream", ReadBool, &params->stream));
  ZUMIK_RETURN_IF_API_ERROR(ReadStreamOptions(object, params));
  ZUMIK_RETURN_IF_API_ERROR(ReadStop(object, &params->stop));
  ZUMIK_RETURN_IF_API_ERROR(ReadOptional(object, "user", ReadString, &params->user));

  ZUMIK_RETURN_IF_API_ERROR(ReadN(object, &params->n));

  return CheckParamRanges(*params);
}

constexpr std::string_view kEmptyPrompt =
    "Either prompt or prompt_embeds must be provided and non-empty.";

constexpr std::string_view kPromptShapes =
    "a string, an array of strings, an array of token ids or an array of arrays of token ids";

bool IsNumber(const json::value& value) {
  return value.is_int64() || value.is_uint64() || value.is_double();
}

// The 400 for a `prompt` that matches none of vLLM's shapes (pydantic rejects the union).
ApiError PromptShapeError(const std::string& where, const json::value& got) {
  return BadRequest(
      fmt::format("'prompt' must be {}; '{}' is {}", kPromptShapes, where, KindName(got)),
      "prompt");
}

MaybeError ReadTextPrompt(const json::value& value, const std::string& param,
                          CompletionPrompt* prompt) {
  ZUMIK_RETURN_IF_API_ERROR(ReadString(value, param, &prompt->text));
  if (prompt->text.empty()) return BadRequest(std::string(kEmptyPrompt), "prompt");
  return std::nullopt;
}

// A token-id prompt as vLLM takes it: pydantic's list[Annotated[int, Field(ge=0)]] (an integral
// float such as 7.0 is an integer), non-empty ("The decoder prompt cannot be empty"), and every
// id in the vocabulary ("Token id N is out of vocabulary", V1's InputProcessor).
MaybeError ReadTokenIdPrompt(const json::array& items, const std::string& param,
                             const RequestLimits& limits, CompletionPrompt* prompt) {
  if (items.empty()) return BadRequest("The decoder prompt cannot be empty", "prompt");
  const int64_t vocab_size = limits.vocab_size > 0 ? limits.vocab_size : int64_t{1} << 32;
  prompt->is_token_ids = true;
  prompt->token_ids.reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string item_param = fmt::format("{}[{}]", param, i);
    if (!IsNumber(items[i])) return PromptShapeError(item_param, items[i]);
    int64_t id = 0;
    ZUMIK_RETURN_IF_API_ERROR(ReadInt(items[i], item_param, &id));
    if (id < 0) {
      return BadRequest(
          fmt::format("'{}' must be a token id greater than or equal to 0, got {}", item_param, id),
          item_param);
    }
    if (id >= vocab_size) {
      return BadRequest(fmt::format("Token id {} is out of vocabulary", id), item_param);
    }
    prompt->token_ids.push_back(static_cast<TokenId>(id));
  }
  return std::nullopt;
}

// `prompt`: a string, [strings], [token ids] (one prompt) or [[token ids]] (a batch), as
// vLLM's CompletionRequest types it; a list of prompts holds at most kMaxCompletionPrompts.
MaybeError ReadPrompts(const json::object& object, const RequestLimits& limits,
                       std::vector<CompletionPrompt>* prompts) {
  const json::value* value = Find(object, "prompt");
  if (value == nullptr) return BadRequest(std::string(kEmptyPrompt), "prompt");
  if (value->is_string()) return ReadTextPrompt(*value, "prompt", &prompts->emplace_back());
  if (!value->is_array()) return PromptShapeError("prompt", *value);
  const json::array& items = value->get_array();
  if (items.empty()) return BadRequest(std::string(kEmptyPrompt), "prompt");
  if (IsNumber(items[0])) {
    return ReadTokenIdPrompt(items, "prompt", limits, &prompts->emplace_back());
  }
  if (static_cast<int64_t>(items.size()) > kMaxCompletionPrompts) {
    return BadRequest(fmt::format("prompt list length {} exceeds the maximum allowed count of {}.",
                                  items.size(), kMaxCompletionPrompts),
                      "prompt");
  }
  const bool texts = items[0].is_string();
  if (!texts && !items[0].is_array()) return PromptShapeError("prompt[0]", items[0]);
  prompts->reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string param = fmt::format("prompt[{}]", i);
    if (texts ? !items[i].is_string() : !items[i].is_array()) {
      return PromptShapeError(param, items[i]);
    }
    ZUMIK_RETURN_IF_API_ERROR(
        texts ? ReadTextPrompt(items[i], param, &prompts->emplace_back())
              : ReadTokenIdPrompt(items[i].get_array(), param, limits, &prompts->emplace_back()));
  }
  return std::nullopt;
}

MaybeError ReadMessages(const json::object& object, std::vector<ChatMessage>* messages) {
  const json::value* value = Find(object, "messages");
  if (value == nullptr) return MissingField("messages");
  if (!value->is_array()) return TypeError("messages", "an array", *value);
  const json::array& items = value->get_array();
  if (items.empty()) {
    return BadRequest("'messages' must contain at least one message", "messages");
  }
  messages->reserve(items.size());
  for (size_t i = 0; i < items.size(); ++i) {
    const std::string param = fmt::format("messages[{}]", i);
    if (!items[i].is_object()) return TypeError(param, "an object", items[i]);
    const json::object& item = items[i].get_object();
    ChatMessage& message = messages->emplace_back();

    constexpr ChatRole kRoles[] = {ChatRole::kSystem, ChatRole::kUser, ChatRole::kAssistant,
                                   ChatRole::kTool, ChatRole::kDeveloper};
    ZUMIK_RETURN_IF_API_ERROR(ReadRole(item, param, kRoles, &message.role));

    const json::value* content = Find(item, "content");
    if (content == nullptr) {
      // An assistant turn may carry only tool calls.
      if (message.role == ChatRole::kAssistant) continue;
      return MissingField(param + ".content");
    }
    constexpr std::string_view kPartTypes[] = {"text"};
    ZUMIK_RETURN_IF_API_ERROR(
        ReadTextContent(*content, param + ".content", kPartTypes, &message.content));
  }
  return std::nullopt;
}

}  // namespace

std::string_view ChatRoleName(ChatRole role) {
  switch (role) {
    case ChatRole::kSystem:
      return "system";
    case ChatRole::kUser:
      return "user";
    case ChatRole::kAssistant:
      return "assistant";
    case ChatRole::kTool:
      return "tool";
    case ChatRole::kDeveloper:
      return "developer";
  }
  return "user";
}

ApiErrorOr<CompletionRequest> ParseCompletionRequest(std::string_view body,
                                                     const RequestLimits& limits) {
  BodyDocument document;
  ZUMIK_RETURN_IF_API_ERROR(document.Parse(body));
  const json::object& object = document.object();

  CompletionRequest request;
  ZUMIK_RETURN_IF_API_ERROR(ReadCommon(object, &request.params));
  ZUMIK_RETURN_IF_API_ERROR(ReadPrompts(object, limits, &request.prompts));
  const int64_t engine_requests = static_cast<int64_t>(request.prompts.size()) * request.params.n;
  if (engine_requests > kMaxEngineRequests) {
    return BadRequest(
        fmt::format("{} prompts x n={} is {} sequences, more than the {} one request "
                    "may start",
                    request.prompts.size(), request.params.n, engine_requests, kMaxEngineRequests),
        "n");
  }
  request.params.max_tokens = kDefaultCompletionMaxTokens;
  ZUMIK_RETURN_IF_API_ERROR(
      ReadOptional(object, "max_tokens", ReadInt, &request.params.max_tokens));
  ZUMIK_RETURN_IF_API_ERROR(CheckMaxTokens(request.params, "max_tokens", limits));
  return request;
}

ApiErrorOr<ChatRequest> ParseChatRequest(std::string_view body, const RequestLimits& limits) {
  BodyDocument document;
  ZUMIK_RETURN_IF_API_ERROR(document.Parse(body));
  const json::object& object = document.object();

  ChatRequest request;
  ZUMIK_RETURN_IF_API_ERROR(ReadCommon(object, &request.params));
  ZUMIK_RETURN_IF_API_ERROR(ReadMessages(object, &request.messages));
  // max_completion_tokens supersedes the deprecated max_tokens.
  std::string max_tokens_param = "max_completion_tokens";
  ZUMIK_RETURN_IF_API_ERROR(
      ReadOptional(object, "max_completion_tokens", ReadInt, &request.params.max_tokens));
  if (!request.params.max_tokens) {
    max_tokens_param = "max_tokens";
    ZUMIK_RETURN_IF_API_ERROR(
        ReadOptional(object, "max_tokens", ReadInt, &request.params.max_tokens));
  }
  ZUMIK_RETURN_IF_API_ERROR(CheckMaxTokens(request.params, max_tokens_param, limits));
  request.prompt = RenderChatPrompt(request.messages);
  return request;
}

namespace {

// A special token of the Llama 3 template: its text, and its id in Meta's Llama 3 tokenizer
// (128000 + its position in the special-token list).
struct SpecialToken {
  std::string_view text;
  TokenId id;
};
constexpr SpecialToken kBeginOfText{"<|begin_of_text|>", 128000};
constexpr SpecialToken kStartHeader{"<|start_header_id|>", 128006};
constexpr SpecialToken kEndHeader{"<|end_header_id|>", 128007};
constexpr SpecialToken kEndOfTurn{"<|eot_id|>", 128009};

// The template, once for both readings: `special` gets each special token, `text` each text
// piece between them (role, blank line, content), in order.
template <typename Special, typename Text>
void VisitChatTemplate(std::span<const ChatMessage> messages, Special&& special, Text&& text) {
  auto header = [&](ChatRole role) {
    special(kStartHeader);
    text(ChatRoleName(role));
    special(kEndHeader);
    text("\n\n");
  };
  special(kBeginOfText);
  for (const ChatMessage& message : messages) {
    header(message.role);
    text(message.content);
    special(kEndOfTurn);
  }
  header(ChatRole::kAssistant);
}

}  // namespace

std::string RenderChatPrompt(std::span<const ChatMessage> messages) {
  constexpr size_t kPerMessage =
      kStartHeader.text.size() + kEndHeader.text.size() + kEndOfTurn.text.size() + 11;
  size_t size = kBeginOfText.text.size() + kPerMessage;
  for (const ChatMessage& message : messages) size += kPerMessage + message.content.size();
  std::string prompt;
  prompt.reserve(size);
  VisitChatTemplate(
      messages, [&](const SpecialToken& token) { prompt.append(token.text); },
      [&](std::string_view piece) { prompt.append(piece); });
  return prompt;
}

std::vector<TokenId> TokenizeChatPrompt(std::span<const ChatMessage> messages) {
  std::vector<TokenId> out;
  std::vector<TokenId> piece;
  VisitChatTemplate(
      messages, [&](const SpecialToken& token) { out.push_back(token.id); },
      [&](std::string_view text) {
        TokenizeInto(text, &piece);
        out.insert(out.end(), piece.begin(), piece.end());
      });
  return out;
}

ApiErrorOr<int64_t> ResolveMaxTokens(std::optional<int64_t> max_tokens, int64_t prompt_tokens,
                                     const RequestLimits& limits) {
  if (limits.max_model_len <= 0) return max_tokens.value_or(kDefaultCompletionMaxTokens);
  if (!max_tokens) {
    const int64_t rest = limits.max_model_len - prompt_tokens;
    if (rest >= 1) return rest;
    return ContextLengthExceeded(limits.max_model_len, prompt_tokens, 1);
  }
  if (*max_tokens > limits.max_model_len - prompt_tokens) {
    return ContextLengthExceeded(limits.max_model_len, prompt_tokens, *max_tokens);
  }
  return *max_tokens;
}

}  // namespace zumik::sim
