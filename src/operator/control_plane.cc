// HTTP client of the registry's cluster endpoints.
#include "operator/control_plane.h"

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>

#include "core/http/client.h"
#include "core/status.h"

namespace zumik::op {
namespace json = boost::json;

namespace {

std::string RegistryMessage(const std::string& body) {
  boost::system::error_code ec;
  json::value value = json::parse(body, ec);
  if (!ec && value.is_object()) {
    const json::value* error = value.get_object().if_contains("error");
    if (error != nullptr && error->is_object()) {
      const json::value* message = error->get_object().if_contains("message");
      if (message != nullptr && message->is_string()) return std::string(message->get_string());
    }
  }
  return body.substr(0, 200);
}

absl::Status ErrorFromResponse(const http::ClientResponse& response, std::string_view what) {
  const std::string message = RegistryMessage(response.body);
  absl::StatusCode code;
  switch (response.status) {
    case 401:
      code = absl::StatusCode::kUnauthenticated;
      break;
    case 403:
      code = absl::StatusCode::kPermissionDenied;
      break;
    case 404:
      code = absl::StatusCode::kNotFound;
      break;
    case 409:
      code = absl::StatusCode::kAlreadyExists;
      break;
    case 429:
      code = absl::StatusCode::kResourceExhausted;
      break;
    default:
      code = response.status >= 500 ? absl::StatusCode::kUnavailable
                                    : absl::StatusCode::kInvalidArgument;
  }
  return absl::Status(code, fmt::format("{}: HTTP {}: {}", what, response.status, message));
}

absl::StatusOr<http::ClientResponse> Post(const std::string& url, const std::string& body,
                                          const Secret& credential) {
  http::ClientRequest request = http::ClientRequest::Post(url, body);
  request.WithHeader("Authorization", "Bearer " + credential.Reveal());
  request.WithTimeout(std::chrono::seconds(10));
  http::ClientOptions options;
  options.connect_timeout = std::chrono::seconds(5);
  return http::FetchBlocking(request, options);
}

// The registry's "heartbeat_interval_s": any JSON number of seconds, whole or not, from a
// tenth of a second to a day; 0 when absent or outside that range.
double IntervalOf(const json::object& object) {
  const json::value* interval = object.if_contains("heartbeat_interval_s");
  if (interval == nullptr || !interval->is_number()) return 0;
  boost::system::error_code ec;
  const auto seconds = interval->to_number<double>(ec);
  constexpr double kMin = 0.1, kMax = 86'400;
  return !ec && seconds >= kMin && seconds <= kMax ? seconds : 0;
}

}  // namespace

HttpControlPlane::HttpControlPlane(std::string base_url) : base_url_(std::move(base_url)) {
  while (!base_url_.empty() && base_url_.back() == '/') base_url_.pop_back();
}

absl::StatusOr<Registration> HttpControlPlane::Register(const Secret& api_key,
                                                        const RegisterRequest& request) {
  json::object body;
  body["name"] = request.name;
  body["profile"] = request.profile;
  json::object stack;
  stack["router"] = request.stack.router;
  stack["runtime"] = request.stack.runtime;
  stack["serving"] = request.stack.serving;
  stack["autoscaler"] = request.stack.autoscaler;
  stack["kv_layer"] = request.stack.kv_layer;
  body["stack"] = std::move(stack);
  body["fingerprint"] = request.fingerprint;
  body["kubernetes_version"] = request.kubernetes_version;
  body["chart_version"] = request.chart_version;
  ASSIGN_OR_RETURN(http::ClientResponse response,
                   Post(base_url_ + "/v1/clusters", json::serialize(body), api_key));
  if (!response.ok()) return ErrorFromResponse(response, "register");
  boost::system::error_code ec;
  json::value value = json::parse(response.body, ec);
  if (ec || !value.is_object()) {
    return absl::UnavailableError("register: the registry answered non-JSON");
  }
  const json::object& object = value.get_object();
  Registration registration;
  const json::value* id = object.if_contains("id");
  const json::value* token = object.if_contains("cluster_token");
  if (id == nullptr || !id->is_string() || token == nullptr || !token->is_string()) {
    return absl::UnavailableError("register: the answer lacks id or cluster_token");
  }
  registration.id = std::string(id->get_string());
  registration.cluster_token = Secret(std::string(token->get_string()));
  registration.heartbeat_interval_s = IntervalOf(object);
  return registration;
}

absl::StatusOr<double> HttpControlPlane::Heartbeat(const std::string& id,
                                                   const Secret& cluster_token,
                                                   const std::optional<json::object>& status) {
  json::object body;
  if (status) body["status"] = *status;
  ASSIGN_OR_RETURN(http::ClientResponse response,
                   Post(fmt::format("{}/v1/clusters/{}/heartbeat", base_url_, id),
                        json::serialize(body), cluster_token));
  if (!response.ok()) return ErrorFromResponse(response, "heartbeat");
  boost::system::error_code ec;
  json::value value = json::parse(response.body, ec);
  if (!ec && value.is_object()) return IntervalOf(value.get_object());
  return 0;  // the registry did not say: keep the current interval
}

}  // namespace zumik::op
