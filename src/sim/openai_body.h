// The request-body reading shared by the OpenAI-compatible parsers (openai_request.cc,
// responses_api.cc): a body's JSON document, typed field readers that name the field at fault,
// and the checks vLLM applies to the sampling fields. Internal to the sim's protocol layer.
#pragma once

#include <boost/json.hpp>
#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <utility>

#include "sim/openai_error.h"
#include "sim/openai_request.h"

namespace zumik::sim::body {

namespace json = boost::json;

// Early-returns the error of an expression yielding std::optional<ApiError>.
#define ZUMIK_RETURN_IF_API_ERROR(expr) \
  do {                                  \
    if (auto api_error_ = (expr)) {     \
      return std::move(*api_error_);    \
    }                                   \
  } while (false)

using MaybeError = std::optional<ApiError>;

// "a string", "an integer", ...: how an error message names a value's JSON kind.
std::string_view KindName(const json::value& value);
ApiError TypeError(const std::string& param, std::string_view expected, const json::value& got);
ApiError MissingField(std::string_view param);
// The field's value, or nullptr when it is absent or null (both mean "not given", as for
// pydantic's Optional fields).
const json::value* Find(const json::object& object, std::string_view name);

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

MaybeError ReadString(const json::value& value, const std::string& param, std::string* out);
MaybeError ReadBool(const json::value& value, const std::string& param, bool* out);
// Integers; like pydantic, a float with no fractional part (16.0) is accepted.
MaybeError ReadInt(const json::value& value, const std::string& param, int64_t* out);
// A finite number.
MaybeError ReadNumber(const json::value& value, const std::string& param, double* out);

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
// temperature, top_p and min_tokens against vLLM's SamplingParams ranges.
MaybeError CheckParamRanges(const GenerationParams& params);

// Validates the resolved max_tokens (read from field `param`) against the limits.
MaybeError CheckMaxTokens(const GenerationParams& params, const std::string& param,
                          const RequestLimits& limits);

std::optional<ChatRole> RoleFromName(std::string_view name);

// A message's "role", one of `allowed` (the 400 lists them).
MaybeError ReadRole(const json::object& message, const std::string& param,
                    std::span<const ChatRole> allowed, ChatRole* out);

// A message's content: a string, or an array of text parts whose "type" is one of `part_types`
// (other types get a 400 saying the simulator does not support them). vLLM joins the text
// parts of one message with newlines.
MaybeError ReadTextContent(const json::value& value, const std::string& param,
                           std::span<const std::string_view> part_types, std::string* out);

}  // namespace zumik::sim::body
