#include "sim/openai_body.h"

#include <algorithm>
#include <cmath>
#include <limits>
#include <memory>

#include "core/json_string.h"
#include "core/utf8.h"
#include "fmt/format.h"

namespace zumik::sim::body {

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

MaybeError CheckParamRanges(const GenerationParams& params) {
  // Ranges as vLLM's SamplingParams checks them.
  if (params.temperature < 0) {
    return BadRequest(fmt::format("temperature must be non-negative, got {}.", params.temperature),
                      "temperature");
  }
  if (!(params.top_p > 0 && params.top_p <= 1)) {
    return BadRequest(fmt::format("top_p must be in (0, 1], got {}.", params.top_p), "top_p");
  }
  if (params.min_tokens < 0) {
    return BadRequest(
        fmt::format("min_tokens must be greater than or equal to 0, got {}.", params.min_tokens),
        "min_tokens");
  }
  return std::nullopt;
}

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

std::optional<ChatRole> RoleFromName(std::string_view name) {
  if (name == "system") return ChatRole::kSystem;
  if (name == "user") return ChatRole::kUser;
  if (name == "assistant") return ChatRole::kAssistant;
  if (name == "tool") return ChatRole::kTool;
  if (name == "developer") return ChatRole::kDeveloper;
  return std::nullopt;
}

MaybeError ReadRole(const json::object& message, const std::string& param,
                    std::span<const ChatRole> allowed, ChatRole* out) {
  const json::value* role = Find(message, "role");
  if (role == nullptr) return MissingField(param + ".role");
  std::string name;
  ZUMIK_RETURN_IF_API_ERROR(ReadString(*role, param + ".role", &name));
  const std::optional<ChatRole> parsed = RoleFromName(name);
  if (parsed && std::find(allowed.begin(), allowed.end(), *parsed) != allowed.end()) {
    *out = *parsed;
    return std::nullopt;
  }
  std::string names;
  for (const ChatRole r : allowed) {
    fmt::format_to(std::back_inserter(names), "{}'{}'", names.empty() ? "" : ", ", ChatRoleName(r));
  }
  return BadRequest(fmt::format("'{}.role' must be one of {}, got '{}'", param, names, name),
                    param + ".role");
}

MaybeError ReadTextContent(const json::value& value, const std::string& param,
                           std::span<const std::string_view> part_types, std::string* out) {
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
    if (std::find(part_types.begin(), part_types.end(), type_name) == part_types.end()) {
      std::string names;
      for (const std::string_view t : part_types) {
        fmt::format_to(std::back_inserter(names), "{}'{}'", names.empty() ? "" : ", ", t);
      }
      return BadRequest(fmt::format("Content part type '{}' is not supported by the simulator "
                                    "(only {})",
                                    type_name, names),
                        part_param + ".type");
    }
    const json::value* text = Find(part, "text");
    if (text == nullptr) return MissingField(part_param + ".text");
    if (!text->is_string()) return TypeError(part_param + ".text", "a string", *text);
    if (j > 0) out->push_back('\n');
    out->append(text->get_string().data(), text->get_string().size());
  }
  return std::nullopt;
}

}  // namespace zumik::sim::body
