#include "sim/openai_request.h"

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <limits>
#include <memory>
#include <utility>

#include "fmt/format.h"
#include "sim/openai_json.h"

namespace zumik::sim {
namespace {

namespace json = boost::json;

// Early-returns the error of an expression yielding std::optional<ApiError>.
#define ZUMIK_RETURN_IF_API_ERROR(expr) \
  do {                                  \
    if (auto api_error_ = (expr)) {     \
      return std::move(*api_error_);    \
    }                                   \
  } while (false)

using MaybeError = std::optional<ApiError>;

std::string_view KindName(const json::value& value) {
  switch (value.kind()) {
    case json::kind::null:
      return "null";
    case json::kind::bool_:
      return "a boolean";
    case json::kind::int64:
    case json::kind::uint64:
      return "an integer";
    case json::kind::double_:
      return "a number";
    case json::kind::string:
      return "a string";
    case json::kind::array:
      return "an array";
    case json::kind::object:
      return "an object";
  }
  return "a value";
}

ApiError TypeError(const std::string& param, std::string_view expected, const json::value& got) {
  return BadRequest(fmt::format("'{}' must be {}, got {}", param, expected, KindName(got)), param);
}

ApiError MissingField(std::string_view param) {
  return BadRequest(fmt::format("Missing required field '{}'", param), std::string(param));
}

// The field's value, or nullptr when it is absent or null (both mean "not given", as for
// pydantic's Optional fields).
const json::value* Find(const json::object& object, std::string_view name) {
  const json::value* value = object.if_contains(name);
  return value == nullptr || value->is_null() ? nullptr : value;
}

// Where a body's DOM lives. Each thread keeps one parser (its internal stack keeps its
// capacity) and one arena buffer across calls, so a multi-MB body is parsed in one linear pass
// without fresh allocations and page faults each time. Bodies above kMaxRetainedBody get
// their own one-off parser and heap arena instead, so no thread pins more than that.
class BodyDocument {
 public:
  static constexpr size_t kMaxRetainedBody = 8 << 20;

  // Parses `body` (validating UTF-8 first); on success object() is the top-level object.
  MaybeError Parse(std::string_view body);
  const json::object& object() const { return value_.get_object(); }

 private:
  struct ThreadScratch {
    json::parser parser{json::storage_ptr(), Options()};
    std::unique_ptr<unsigned char[]> buffer;
    size_t capacity = 0;
  };
  static json::parse_options Options() {
    json::parse_options options;
    options.max_depth = 64;
    return options;
  }

  std::optional<json::monotonic_resource> resource_;
  std::optional<json::parser> own_parser_;
  json::value value_;  // destroyed before resource_, which owns its memory
};

MaybeError BodyDocument::Parse(std::string_view body) {
  if (const auto bad = FindInvalidUtf8(body)) {
    return BadRequest(
        fmt::format("Request body is not valid UTF-8 (invalid byte 0x{:02x} at byte "
                    "offset {})",
                    static_cast<unsigned char>(body[*bad]), *bad));
  }
  json::parser* parser = nullptr;
  if (body.size() <= kMaxRetainedBody) {
    thread_local ThreadScratch scratch;
    // The DOM takes somewhat more than the body: strings plus per-value overhead.
    const size_t wanted = body.size() + body.size() / 2 + 4096;
    if (scratch.capacity < wanted) {
      scratch.buffer = std::make_unique<unsigned char[]>(wanted);
      scratch.capacity = wanted;
    }
    resource_.emplace(scratch.buffer.get(), scratch.capacity);
    parser = &scratch.parser;
  } else {
    resource_.emplace();
    parser = &own_parser_.emplace(json::storage_ptr(), Options());
  }
  parser->reset(json::storage_ptr(&*resource_));

  boost::system::error_code ec;
  size_t consumed = parser->write_some(body.data(), body.size(), ec);
  std::string problem;
  if (ec) {
    problem = ec.message();
  } else {
    // write_some stops after one complete value; anything but whitespace after it is an error.
    const size_t rest = body.find_first_not_of(" \t\r\n", consumed);
    if (rest != std::string_view::npos) {
      consumed = rest;
      problem = "unexpected data after the JSON value";
    }
  }
  if (!problem.empty()) {
    parser->reset();  // drop partial state (and any reference to resource_)
    consumed = std::min(consumed, body.size());
    const std::string_view before = body.substr(0, consumed);
    const size_t line = 1 + static_cast<size_t>(std::count(before.begin(), before.end(), '\n'));
    const size_t last_newline = before.rfind('\n');
    const size_t column =
        last_newline == std::string_view::npos ? consumed + 1 : consumed - last_newline;
    return BadRequest(fmt::format("Invalid JSON body: {} at line {}, column {} (byte offset {})",
                                  problem, line, column, consumed));
  }
  value_ = parser->release();
  parser->reset();  // the thread's parser must not keep a reference to this call's arena
  if (!value_.is_object()) {
    return BadRequest(fmt::format("Request body must be a JSON object, got {}", KindName(value_)));
  }
  return std::nullopt;
}

MaybeError ReadString(const json::value& value, const std::string& param, std::string* out) {
  if (!value.is_string()) return TypeError(param, "a string", value);
  const json::string& s = value.get_string();
  out->assign(s.data(), s.size());
  return std::nullopt;
}

MaybeError ReadBool(const json::value& value, const std::string& param, bool* out) {
  if (!value.is_bool()) return TypeError(param, "a boolean", value);
  *out = value.get_bool();
  return std::nullopt;
}

// Integers; like pydantic, a float with no fractional part (16.0) is accepted.
MaybeError ReadInt(const json::value& value, const std::string& param, int64_t* out) {
  constexpr double kTwo63 = 9223372036854775808.0;
  switch (value.kind()) {
    case json::kind::int64:
      *out = value.get_int64();
      return std::nullopt;
    case json::kind::uint64:
      if (value.get_uint64() > static_cast<uint64_t>(std::numeric_limits<int64_t>::max())) {
        return BadRequest(fmt::format("'{}' is out of range (must fit in a signed 64-bit "
                                      "integer), got {}",
                                      param, value.get_uint64()),
                          param);
      }
      *out = static_cast<int64_t>(value.get_uint64());
      return std::nullopt;
    case json::kind::double_: {
      const double d = value.get_double();
      if (std::isfinite(d) && d == std::trunc(d) && d >= -kTwo63 && d < kTwo63) {
        *out = static_cast<int64_t>(d);
        return std::nullopt;
      }
      return BadRequest(fmt::format("'{}' must be an integer, got {}", param, d), param);
    }
    default:
      return TypeError(param, "an integer", value);
  }
}

MaybeError ReadNumber(const json::value& value, const std::string& param, double* out) {
  switch (value.kind()) {
    case json::kind::int64:
      *out = static_cast<double>(value.get_int64());
      break;
    case json::kind::uint64:
      *out = static_cast<double>(value.get_uint64());
      break;
    case json::kind::double_:
      *out = value.get_double();
      break;
    default:
      return TypeError(param, "a number", value);
  }
  if (!std::isfinite(*out)) {
    return BadRequest(fmt::format("'{}' must be a finite number", param), param);
  }
  return std::nullopt;
}

// Optional-field wrappers: leave *out unchanged when the field is absent or null.
template <typename T, typename Reader>
MaybeError ReadOptional(const json::object& object, const char* name, Reader reader, T* out) {
  const json::value* value = Find(object, name);
  if (value == nullptr) return std::nullopt;
  return reader(*value, std::string(name), out);
}

template <typename T, typename Reader>
MaybeError ReadOptional(const json::object& object, const char* name, Reader reader,
                        std::optional<T>* out) {
  const json::value* value = Find(object, name);
  if (value == nullptr) return std::nullopt;
  T parsed{};
  ZUMIK_RETURN_IF_API_ERROR(reader(*value, std::string(name), &parsed));
  *out = std::move(parsed);
  return std::nullopt;
}

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
  if (best_of && *best_of > 1)
    return BadRequest("vLLM V1 does not yet support best_of.", "best_of");
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

  // Ranges as vLLM's SamplingParams checks them.
  if (params->temperature < 0) {
    return BadRequest(fmt::format("temperature must be non-negative, got {}.", params->temperature),
                      "temperature");
  }
  if (!(params->top_p > 0 && params->top_p <= 1)) {
    return BadRequest(fmt::format("top_p must be in (0, 1], got {}.", params->top_p), "top_p");
  }
  if (params->min_tokens < 0) {
    return BadRequest(
        fmt::format("min_tokens must be greater than or equal to 0, got {}.", params->min_tokens),
        "min_tokens");
  }
  return std::nullopt;
}

// Validates the resolved max_tokens (read from field `param`) against the limits.
MaybeError CheckMaxTokens(const GenerationParams& params, const std::string& param,
                          const RequestLimits& limits) {
  if (!params.max_tokens) return std::nullopt;
  const int64_t max_tokens = *params.max_tokens;
  if (max_tokens < 1) {
    return BadRequest(fmt::format("max_tokens must be at least 1, got {}.", max_tokens), param);
  }
  if (limits.max_model_len > 0 && max_tokens > limits.max_model_len) {
    return BadRequest(fmt::format("'max_tokens' or 'max_completion_tokens' is too large: {}. This "
                                  "model's maximum context length is {} tokens.",
                                  max_tokens, limits.max_model_len),
                      param);
  }
  if (params.min_tokens > max_tokens) {
    return BadRequest(fmt::format("min_tokens must be less than or equal to max_tokens={}, got {}.",
                                  max_tokens, params.min_tokens),
                      "min_tokens");
  }
  return std::nullopt;
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

std::optional<ChatRole> RoleFromName(std::string_view name) {
  if (name == "system") return ChatRole::kSystem;
  if (name == "user") return ChatRole::kUser;
  if (name == "assistant") return ChatRole::kAssistant;
  if (name == "tool") return ChatRole::kTool;
  if (name == "developer") return ChatRole::kDeveloper;
  return std::nullopt;
}

MaybeError ReadContent(const json::value& value, const std::string& param, std::string* out) {
  if (value.is_string()) return ReadString(value, param, out);
  if (!value.is_array()) return TypeError(param, "a string or an array of content parts", value);
  const json::array& parts = value.get_array();
  for (size_t j = 0; j < parts.size(); ++j) {
    const std::string part_param = fmt::format("{}[{}]", param, j);
    if (!parts[j].is_object()) return TypeError(part_param, "an object", parts[j]);
    const json::object& part = parts[j].get_object();
    const json::value* type = Find(part, "type");
    if (type == nullptr) return MissingField(part_param + ".type");
    std::string type_name;
    ZUMIK_RETURN_IF_API_ERROR(ReadString(*type, part_param + ".type", &type_name));
    if (type_name != "text") {
      return BadRequest(fmt::format("Content part type '{}' is not supported by the simulator "
                                    "(only 'text')",
                                    type_name),
                        part_param + ".type");
    }
    const json::value* text = Find(part, "text");
    if (text == nullptr) return MissingField(part_param + ".text");
    if (!text->is_string()) return TypeError(part_param + ".text", "a string", *text);
    // vLLM joins the text parts of one message with newlines.
    if (j > 0) out->push_back('\n');
    out->append(text->get_string().data(), text->get_string().size());
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

    const json::value* role = Find(item, "role");
    if (role == nullptr) return MissingField(param + ".role");
    std::string role_name;
    ZUMIK_RETURN_IF_API_ERROR(ReadString(*role, param + ".role", &role_name));
    const std::optional<ChatRole> parsed_role = RoleFromName(role_name);
    if (!parsed_role) {
      return BadRequest(fmt::format("'{}.role' must be one of 'system', 'user', 'assistant', "
                                    "'tool', 'developer', got '{}'",
                                    param, role_name),
                        param + ".role");
    }
    message.role = *parsed_role;

    const json::value* content = Find(item, "content");
    if (content == nullptr) {
      // An assistant turn may carry only tool calls.
      if (message.role == ChatRole::kAssistant) continue;
      return MissingField(param + ".content");
    }
    ZUMIK_RETURN_IF_API_ERROR(ReadContent(*content, param + ".content", &message.content));
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
