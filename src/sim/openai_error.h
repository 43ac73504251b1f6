// Errors of the OpenAI-compatible API as values, serialised exactly as vLLM's OpenAI server
// does: {"error":{"message":...,"type":...,"param":...,"code":<HTTP status>}}.
#pragma once

#include <cassert>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <variant>

namespace zumik::sim {

struct ApiError {
  int http_status = 400;
  std::string message;
  // vLLM's names: "BadRequestError", "NotFoundError", "InternalServerError", ...
  std::string type = "BadRequestError";
  // The request field at fault ("max_tokens", "messages[1].role"), serialised as null if unset.
  std::optional<std::string> param;

  // The error body. vLLM's ErrorInfo has an integer `code` equal to the HTTP status (OpenAI
  // itself sends string codes; clients and routers key on the HTTP status either way).
  std::string ToJson() const;

  friend bool operator==(const ApiError&, const ApiError&) = default;
};

// 400 BadRequestError.
ApiError BadRequest(std::string message, std::optional<std::string> param = std::nullopt);

// 404 for a model the server does not serve, as vLLM words it: "The model `X` does not exist."
ApiError ModelNotFound(std::string_view model);

// vLLM's (pre-0.9 wording, still what most clients match on) context-length errors, 400:
// "This model's maximum context length is X tokens. However, you requested Y tokens
// (P in the messages, M in the completion). Please reduce the length of the messages or
// completion."
ApiError ContextLengthExceeded(int64_t max_model_len, int64_t prompt_tokens, int64_t max_tokens);

// The error or a value; the parsers' result type (absl::StatusOr cannot carry type/param).
template <typename T>
class ApiErrorOr {
 public:
  ApiErrorOr(T value) : value_(std::move(value)) {}         // NOLINT: implicit like StatusOr
  ApiErrorOr(ApiError error) : value_(std::move(error)) {}  // NOLINT

  bool ok() const { return value_.index() == 0; }
  const ApiError& error() const {
    assert(!ok());
    return *std::get_if<1>(&value_);
  }
  const T& value() const& {
    assert(ok());
    return *std::get_if<0>(&value_);
  }
  T& value() & {
    assert(ok());
    return *std::get_if<0>(&value_);
  }
  T&& value() && {
    assert(ok());
    return std::move(*std::get_if<0>(&value_));
  }
  const T& operator*() const& { return value(); }
  T& operator*() & { return value(); }
  const T* operator->() const { return &value(); }
  T* operator->() { return &value(); }

 private:
  std::variant<T, ApiError> value_;
};

}  // namespace zumik::sim
