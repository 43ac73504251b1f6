#include "sim/openai_error.h"

#include "core/json_string.h"
#include "fmt/format.h"

namespace zumik::sim {

std::string ApiError::ToJson() const {
  std::string out;
  out.reserve(64 + message.size());
  out.append(R"({"error":{"message":)");
  AppendJsonString(message, &out);
  out.append(R"(,"type":)");
  AppendJsonString(type, &out);
  out.append(R"(,"param":)");
  if (param) {
    AppendJsonString(*param, &out);
  } else {
    out.append("null");
  }
  out.append(R"(,"code":)");
  AppendInt(http_status, &out);
  out.append("}}");
  return out;
}

ApiError BadRequest(std::string message, std::optional<std::string> param) {
  return ApiError{.http_status = 400,
                  .message = std::move(message),
                  .type = "BadRequestError",
                  .param = std::move(param)};
}

ApiError ModelNotFound(std::string_view model) {
  return ApiError{.http_status = 404,
                  .message = fmt::format("The model `{}` does not exist.", model),
                  .type = "NotFoundError",
                  .param = "model"};
}

ApiError ContextLengthExceeded(int64_t max_model_len, int64_t prompt_tokens, int64_t max_tokens) {
  return BadRequest(fmt::format(
      "This model's maximum context length is {} tokens. However, you requested {} tokens ({} "
      "in the messages, {} in the completion). Please reduce the length of the messages or "
      "completion.",
      max_model_len, prompt_tokens + max_tokens, prompt_tokens, max_tokens));
}

}  // namespace zumik::sim
