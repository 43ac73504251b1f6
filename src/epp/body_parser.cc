// OpenAI request body parsing for the EPP (see body_parser.h).
#include "epp/body_parser.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <utility>

#include "epp/json_scan.h"
#include "sched/request.h"

namespace zumik::epp {
namespace json = boost::json;

namespace {

bool EndsWith(std::string_view s, std::string_view suffix) {
  return s.size() >= suffix.size() && s.substr(s.size() - suffix.size()) == suffix;
}

BodyParseResult Fail(std::string message, std::string param = {}) {
  BodyParseResult result;
  result.error.http_status = 400;
  result.error.message = std::move(message);
  result.error.param = std::move(param);
  return result;
}

std::string_view View(const json::string& s) { return {s.data(), s.size()}; }

// Prompts in a completions or embeddings `prompt`/`input` array: an array of token ids is one
// prompt; an array of strings or of id arrays is a batch (capped at ParsedBody::kMaxPrompts).
uint32_t BatchSize(const json::array& batch) {
  if (batch.empty() || !(batch.front().is_string() || batch.front().is_array())) return 1;
  return static_cast<uint32_t>(std::min<size_t>(batch.size(), ParsedBody::kMaxPrompts));
}

// Text of a chat message content: a string, or the "text" of each text part.
bool AppendContent(const json::value& content, std::string& out) {
  if (content.is_string()) {
    out.append(View(content.get_string()));
    return true;
  }
  if (content.is_null()) return true;
  if (!content.is_array()) return false;
  for (const auto& part : content.get_array()) {
    if (!part.is_object()) return false;
    const auto* text = part.get_object().if_contains("text");
    if (text != nullptr && text->is_string()) out.append(View(text->get_string()));
  }
  return true;
}

// A Responses API `input` rendered as the conversation it is, in the chat template, so that a
// follow-up that sends back the previous output (an assistant message item) continues the
// hashed history as a chat follow-up does: a string is the user's turn; each item with a
// `role` is a message (string content, or the text of its parts: input_text, output_text);
// any other item (reasoning, function calls and their output) is hashed as its JSON.
void AppendResponsesInput(const json::value& input, std::string& out) {
  if (input.is_string()) {
    sched::AppendChatMessage(out, "user", View(input.get_string()));
    return;
  }
  if (!input.is_array()) {
    out.append(json::serialize(input));
    return;
  }
  std::string content;
  for (const json::value& item : input.get_array()) {
    const json::value* role = item.is_object() ? item.get_object().if_contains("role") : nullptr;
    content.clear();
    const json::value* parts = role != nullptr ? item.get_object().if_contains("content") : nullptr;
    if (role != nullptr && role->is_string() &&
        (parts == nullptr || AppendContent(*parts, content))) {
      sched::AppendChatMessage(out, View(role->get_string()), content);
    } else {
      out.append(json::serialize(item));
    }
  }
}

// The DOM-free reading of a request body (see ScanBody): false = unsure.
class BodyScanner : public json_scan::Cursor {
 public:
  BodyScanner(ApiKind kind, std::string_view body, bool borrow_prompt)
      : Cursor(body), kind_(kind), borrow_prompt_(borrow_prompt && kind != ApiKind::kResponses) {}

  bool Scan(ParsedBody& out) {
    if (kind_ != ApiKind::kCompletions && kind_ != ApiKind::kChatCompletions &&
        kind_ != ApiKind::kEmbeddings && kind_ != ApiKind::kResponses) {
      return false;
    }
    SkipSpace();
    if (!Eat('{')) return false;
    bool ok = Members(1, [&](std::string_view key) { return Member(key, out); });
    if (!ok || !AtEnd() || out.model.empty() || !has_text_) return false;
    if (kind_ == ApiKind::kResponses) {
      // As ParseBodyWithDom renders it: the instructions, then the input as the user's turn.
      std::string input = std::move(out.prompt);
      out.prompt.clear();
      if (has_instructions_) sched::AppendChatMessage(out.prompt, "system", instructions_);
      sched::AppendChatMessage(out.prompt, "user", input);
    }
    return true;
  }

 private:
  // Marks `key` as read; a repeated key that matters is left to the DOM.
  bool First(uint32_t bit) {
    if (seen_ & bit) return false;
    seen_ |= bit;
    return true;
  }

  bool Member(std::string_view key, ParsedBody& out) {
    if (key == "model") return First(1) && Peek() == '"' && DecodedString(out.model);
    if (key == "stream") {
      if (!First(2)) return false;
      if (Peek() == 'n') return Literal("null");
      return Bool(out.stream);
    }
    if (key == "stream_options") return First(4) && StreamOptions(out);
    if (key == "n" && (kind_ == ApiKind::kCompletions || kind_ == ApiKind::kChatCompletions)) {
      return First(128) && Samples(out.n);
    }
    if (key == "cache_salt") {
      if (!First(8)) return false;
      return Peek() == '"' ? DecodedString(out.cache_salt) : SkipValue(1);
    }
    bool text_key =
        (kind_ == ApiKind::kCompletions && key == "prompt") ||
        ((kind_ == ApiKind::kEmbeddings || kind_ == ApiKind::kResponses) && key == "input");
    if (text_key) {
      // Arrays and other shapes (serialized or rejected by the DOM reading) are left to it.
      if (!First(16) || Peek() != '"') return false;
      has_text_ = true;
      return DecodedString(out.prompt, borrow_prompt_ ? &out.borrowed_prompt : nullptr);
    }
    if (kind_ == ApiKind::kResponses && key == "previous_response_id") {
      if (!First(64)) return false;
      return Peek() == '"' ? DecodedString(out.previous_response_id) : SkipValue(1);
    }
    if (kind_ == ApiKind::kResponses && key == "instructions") {
      if (!First(32)) return false;
      if (Peek() != '"') return SkipValue(1);
      has_instructions_ = true;
      return DecodedString(instructions_);
    }
    if (kind_ == ApiKind::kChatCompletions && key == "messages") {
      if (!First(16)) return false;
      has_text_ = true;
      return Messages(out.prompt);
    }
    return SkipValue(1);
  }

  // `n`: a plain positive integer is read; other numbers (-1, 2.0, 1e1) go to the DOM, and
  // anything else (null, a string) leaves 1.
  bool Samples(uint32_t& n) {
    if (Peek() == '-') return false;
    if (Peek() < '0' || Peek() > '9') return SkipValue(1);
    std::string_view digits;
    if (!PlainDigits(digits)) return false;
    // Past 18 digits the DOM may read a double: let it.
    if (digits.size() > 18) return false;
    if (const uint64_t value = std::stoull(std::string(digits)); value >= 1) {
      n = static_cast<uint32_t>(std::min<uint64_t>(value, ParsedBody::kMaxSamples));
    }
    return true;
  }

  bool StreamOptions(ParsedBody& out) {
    if (Peek() != '{') return SkipValue(1);
    ++p_;
    bool seen = false;
    out.include_usage = true;  // an object without include_usage
    return Members(2, [&](std::string_view key) {
      if (key != "include_usage") return SkipValue(2);
      if (seen) return false;
      seen = true;
      char c = Peek();
      if (c == 't' || c == 'f') return Bool(out.include_usage);
      out.include_usage = false;  // present but not a boolean
      return SkipValue(2);
    });
  }

  // [{"role": string, "content": string | null | [{"text": string}, ...]}, ...]
  bool Messages(std::string& prompt) {
    if (!Eat('[')) return false;
    SkipSpace();
    if (Eat(']')) return true;
    while (true) {
      SkipSpace();
      if (!Eat('{')) return false;
      bool has_role = false, has_content = false;
      role_.clear();
      content_.clear();
      bool ok = Members(3, [&](std::string_view key) {
        if (key == "role") {
          if (has_role || Peek() != '"') return false;
          has_role = true;
          return DecodedString(role_);
        }
        if (key == "content") {
          if (has_content) return false;
          has_content = true;
          return Content();
        }
        return SkipValue(3);
      });
      if (!ok || !has_role) return false;
      sched::AppendChatMessage(prompt, role_, content_);
      SkipSpace();
      if (Eat(',')) continue;
      return Eat(']');
    }
  }

  bool Content() {
    switch (Peek()) {
      case '"':
        return DecodedString(content_);
      case 'n':
        return Literal("null");
      case '[':
        break;
      default:
        return false;
    }
    ++p_;
    SkipSpace();
    if (Eat(']')) return true;
    while (true) {
      SkipSpace();
      if (!Eat('{')) return false;
      bool has_text = false;
      bool ok = Members(5, [&](std::string_view key) {
        if (key != "text") return SkipValue(5);
        if (has_text) return false;
        has_text = true;
        if (Peek() != '"') return SkipValue(5);
        if (!DecodedString(part_)) return false;
        content_.append(part_);
        return true;
      });
      if (!ok) return false;
      SkipSpace();
      if (Eat(',')) continue;
      return Eat(']');
    }
  }

  ApiKind kind_;
  uint32_t seen_ = 0;
  const bool borrow_prompt_;       // responses compose theirs: never borrowed
  bool has_text_ = false;          // the kind's prompt field was read
  bool has_instructions_ = false;  // responses: a string `instructions`
  std::string instructions_, role_, content_, part_;
};

}  // namespace

bool ScanBody(ApiKind kind, std::string_view body, ParsedBody& out, bool borrow_prompt) {
  out = ParsedBody{};
  if (BodyScanner(kind, body, borrow_prompt).Scan(out)) return true;
  out = ParsedBody{};
  return false;
}

namespace {

std::string_view TrimPath(std::string_view path) {
  if (auto q = path.find('?'); q != std::string_view::npos) path = path.substr(0, q);
  while (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
  return path;
}

// A stored response's id as a path segment: URL-unreserved characters only (vLLM's and
// OpenAI's ids are "resp_" and hex), and not a dot segment, so it names no other path.
bool IsResponseId(std::string_view id) {
  if (id.empty() || id == "." || id == "..") return false;
  return std::all_of(id.begin(), id.end(), [](char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.' || c == '~';
  });
}

// "/v1/responses/{id}" or "/v1/responses/{id}/cancel": the id and whether it is a cancel.
std::pair<std::string_view, bool> StoredResponsePath(std::string_view path) {
  constexpr std::string_view kPrefix = "/v1/responses/";
  path = TrimPath(path);
  if (path.substr(0, kPrefix.size()) != kPrefix) return {};
  std::string_view rest = path.substr(kPrefix.size());
  const size_t slash = rest.find('/');
  if (slash == std::string_view::npos) {
    if (!IsResponseId(rest)) return {};
    return {rest, false};
  }
  if (rest.substr(slash) != "/cancel" || !IsResponseId(rest.substr(0, slash))) return {};
  return {rest.substr(0, slash), true};
}

}  // namespace

std::string_view ResponseIdOfPath(std::string_view path) { return StoredResponsePath(path).first; }

ApiKind ApiKindOfPath(std::string_view path) {
  path = TrimPath(path);
  if (EndsWith(path, "/chat/completions")) return ApiKind::kChatCompletions;
  if (EndsWith(path, "/completions")) return ApiKind::kCompletions;
  if (EndsWith(path, "/embeddings")) return ApiKind::kEmbeddings;
  if (EndsWith(path, "/responses")) return ApiKind::kResponses;
  if (auto [id, cancel] = StoredResponsePath(path); !id.empty()) {
    return cancel ? ApiKind::kResponseCancel : ApiKind::kResponseRetrieve;
  }
  if (path == "/v1/models") return ApiKind::kModels;
  if (path == "/health" || path == "/ready") return ApiKind::kHealth;
  return ApiKind::kUnknown;
}

bool IsBodiless(ApiKind kind) {
  return kind == ApiKind::kModels || kind == ApiKind::kHealth ||
         kind == ApiKind::kResponseRetrieve || kind == ApiKind::kResponseCancel;
}

std::string ModelServerPath(ApiKind kind, std::string_view response_id) {
  switch (kind) {
    case ApiKind::kCompletions:
      return "/v1/completions";
    case ApiKind::kChatCompletions:
      return "/v1/chat/completions";
    case ApiKind::kEmbeddings:
      return "/v1/embeddings";
    case ApiKind::kResponses:
      return "/v1/responses";
    case ApiKind::kResponseRetrieve:
      return fmt::format("/v1/responses/{}", response_id);
    case ApiKind::kResponseCancel:
      return fmt::format("/v1/responses/{}/cancel", response_id);
    case ApiKind::kModels:
      return "/v1/models";
    case ApiKind::kHealth:  // /health or /ready: vLLM answers /health
      return "/health";
    case ApiKind::kUnknown:
      break;
  }
  return "";
}

BodyParseResult ParseBody(ApiKind kind, std::string_view body, bool borrow_prompt) {
  BodyParseResult result;
  if (ScanBody(kind, body, result.body, borrow_prompt)) {
    result.ok = true;
    return result;
  }
  return ParseBodyWithDom(kind, body);
}

BodyParseResult ParseBodyWithDom(ApiKind kind, std::string_view body) {
  if (body.empty()) return Fail("request body is empty: expected a JSON object");
  // The DOM lives only in this call: a small body's parse runs in these stack buffers, and
  // a larger one's in arena blocks freed at once (no per-node free).
  unsigned char arena[4096];
  json::monotonic_resource resource(arena, sizeof arena);
  unsigned char parser_temp[1024];
  json::parser parser(json::storage_ptr(), json::parse_options(), parser_temp);
  parser.reset(&resource);
  boost::system::error_code ec;
  size_t used = parser.write(body.data(), body.size(), ec);
  if (ec) {
    return Fail(fmt::format("invalid JSON body at byte {}: {}", used, ec.message()));
  }
  json::value root = parser.release();
  if (!root.is_object()) return Fail("request body must be a JSON object");
  const json::object& object = root.get_object();

  BodyParseResult result;
  ParsedBody& out = result.body;
  const json::value* model = object.if_contains("model");
  if (model == nullptr) return Fail("model not found in request body", "model");
  if (!model->is_string() || model->get_string().empty()) {
    return Fail("'model' must be a non-empty string", "model");
  }
  out.model = std::string(View(model->get_string()));
  if (const auto* stream = object.if_contains("stream"); stream != nullptr && !stream->is_null()) {
    if (!stream->is_bool()) return Fail("'stream' must be a boolean", "stream");
    out.stream = stream->get_bool();
  }
  if (const auto* options = object.if_contains("stream_options");
      options != nullptr && options->is_object()) {
    const auto* include = options->get_object().if_contains("include_usage");
    out.include_usage = include == nullptr || (include->is_bool() && include->get_bool());
  }
  if (const auto* salt = object.if_contains("cache_salt"); salt != nullptr && salt->is_string()) {
    out.cache_salt = std::string(View(salt->get_string()));
  }
  if (const auto* n = object.if_contains("n");
      n != nullptr && (kind == ApiKind::kCompletions || kind == ApiKind::kChatCompletions)) {
    if (n->is_int64() && n->get_int64() >= 1) {
      out.n = static_cast<uint32_t>(std::min<int64_t>(n->get_int64(), ParsedBody::kMaxSamples));
    } else if (n->is_uint64()) {
      out.n = ParsedBody::kMaxSamples;  // above int64's range
    }
  }

  switch (kind) {
    case ApiKind::kCompletions: {
      const auto* prompt = object.if_contains("prompt");
      if (prompt == nullptr) return Fail("'prompt' is required", "prompt");
      if (prompt->is_string()) {
        out.prompt = std::string(View(prompt->get_string()));
      } else if (prompt->is_array()) {
        // vLLM serves each prompt of a batch as its own request, all on the replica the batch
        // goes to. A batch's first prompt, when it is text, is hashed as that prompt alone
        // would be (and choice 0, whose text the index learns, continues it), so the batch
        // goes where that prompt's prefix is cached. Token ids are hashed by their JSON form:
        // equal id sequences share it.
        const json::array& batch = prompt->get_array();
        if (!batch.empty() && batch.front().is_string()) {
          out.prompt = std::string(View(batch.front().get_string()));
          for (size_t i = 1; i < batch.size(); ++i) {
            const json::value& other = batch[i];
            out.batch_bytes +=
                other.is_string() ? other.get_string().size() : json::serialize(other).size();
          }
        } else {
          out.prompt = json::serialize(*prompt);
        }
        out.prompts = BatchSize(batch);
      } else {
        return Fail("'prompt' must be a string or an array", "prompt");
      }
      break;
    }
    case ApiKind::kChatCompletions: {
      const auto* messages = object.if_contains("messages");
      if (messages == nullptr) return Fail("'messages' is required", "messages");
      if (!messages->is_array()) return Fail("'messages' must be an array", "messages");
      size_t index = 0;
      std::string content;
      for (const auto& message : messages->get_array()) {
        std::string param = fmt::format("messages[{}]", index++);
        if (!message.is_object()) return Fail("each message must be an object", param);
        const auto& fields = message.get_object();
        const auto* role = fields.if_contains("role");
        if (role == nullptr || !role->is_string()) {
          return Fail("message 'role' must be a string", param + ".role");
        }
        content.clear();
        if (const auto* c = fields.if_contains("content"); c != nullptr) {
          if (!AppendContent(*c, content)) {
            return Fail("message 'content' must be a string or an array of parts",
                        param + ".content");
          }
        }
        sched::AppendChatMessage(out.prompt, View(role->get_string()), content);
      }
      break;
    }
    case ApiKind::kEmbeddings: {
      const auto* input = object.if_contains("input");
      if (input == nullptr) return Fail("'input' is required", "input");
      // Hashed whole; vLLM embeds each input of a batch as a request of its own
      // (vllm/entrypoints/openai/serving_embedding.py), so each counts.
      if (input->is_string()) {
        out.prompt = std::string(View(input->get_string()));
      } else {
        out.prompt = json::serialize(*input);
        if (input->is_array()) out.prompts = BatchSize(input->get_array());
      }
      break;
    }
    case ApiKind::kResponses: {
      const auto* input = object.if_contains("input");
      if (input == nullptr) return Fail("'input' is required", "input");
      if (const auto* instructions = object.if_contains("instructions");
          instructions != nullptr && instructions->is_string()) {
        sched::AppendChatMessage(out.prompt, "system", View(instructions->get_string()));
      }
      if (const auto* previous = object.if_contains("previous_response_id");
          previous != nullptr && previous->is_string()) {
        out.previous_response_id = std::string(View(previous->get_string()));
      }
      AppendResponsesInput(*input, out.prompt);
      break;
    }
    default:
      break;
  }
  result.ok = true;
  return result;
}

}  // namespace zumik::epp
