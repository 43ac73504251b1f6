// The JSON error body every service returns (OpenAI style) and the mappings between
// absl::Status codes and HTTP status codes, so all services answer errors the same way:
//   {"error":{"message":"...","type":"invalid_request_error","param":null,"code":null}}
#pragma once

#include <string>
#include <string_view>

#include "absl/status/status.h"

namespace zumik::http {

// The error body. An empty `type` picks ErrorTypeForStatus(status); an empty `code` is null.
std::string ErrorBody(int status, std::string_view message, std::string_view type = {},
                      std::string_view code = {});

// "invalid_request_error" (4xx), "authentication_error" (401), "permission_error" (403),
// "not_found_error" (404), "rate_limit_error" (429), "server_error" (5xx).
std::string_view ErrorTypeForStatus(int status);

// The HTTP status that tells a client what to do about `status`: kInvalidArgument → 400,
// kUnauthenticated → 401, kPermissionDenied → 403, kNotFound → 404, kAlreadyExists → 409,
// kFailedPrecondition → 412, kResourceExhausted → 429, kUnavailable → 503,
// kDeadlineExceeded → 504, kUnimplemented → 501, others → 500.
int HttpStatusFromStatus(const absl::Status& status);

// The inverse, for clients that turn an HTTP error answer into a Status.
absl::StatusCode StatusCodeFromHttp(int http_status);

// "Not Found" for 404; "Unknown" for codes without a standard reason.
std::string_view ReasonPhrase(int status);

}  // namespace zumik::http
