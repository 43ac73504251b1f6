// The registry's HTTP surface: the API, the heartbeat route, the cluster page, health and
// metrics, and how errors become replies.
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <functional>

#include "core/html.h"
#include "core/http/errors.h"
#include "core/http/response_writer.h"
#include "core/log.h"
#include "core/metrics/exposition.h"
#include "core/status.h"
#include "registry/credentials.h"
#include "registry/service.h"
#include "registry/service_metrics.h"

namespace zumik::registry {

namespace asio = boost::asio;
namespace json = boost::json;

struct RegistryService::Reply {
  int status = 200;
  std::string body;
  std::string content_type = std::string(http::kJsonContentType);
  http::Headers headers;
};

namespace {

using Reply = RegistryService::Reply;

// An interval in seconds as both replies write it: a whole number as an integer (15, where a
// JSON double would read 1.5E1), a fraction as a decimal.
json::value SecondsJson(Duration interval) {
  const double seconds = ToSeconds(interval);
  const auto whole = static_cast<int64_t>(seconds);
  if (static_cast<double>(whole) == seconds) return whole;
  return seconds;
}

Reply ErrorReply(const absl::Status& status) {
  Reply reply;
  reply.status = http::HttpStatusFromStatus(status);
  std::string message(MessageOf(status));
  if (reply.status == 500) {
    Logger("registry")->error("internal error: {}", message);
    message = "internal error";
  } else if (reply.status == 503) {
    // The store's error names the database's host and the driver's words: for the log only.
    Logger("registry")->warn("database unavailable: {}", message);
    message = "the registry's database is unavailable; retry shortly";
  }
  reply.body = http::ErrorBody(reply.status, message, {}, ErrorCodeForStatus(reply.status));
  if (reply.status == 429) reply.headers.emplace_back("Retry-After", "1");
  return reply;
}

Reply MethodNotAllowed(std::string_view method, std::string_view path, std::string_view allow) {
  Reply reply;
  reply.status = 405;
  reply.body = http::ErrorBody(
      405, fmt::format("{} is not allowed on {}: use {}", method, path.substr(0, 200), allow), {},
      ErrorCodeForStatus(405));
  reply.headers.emplace_back("Allow", std::string(allow));
  return reply;
}

Reply JsonReply(int status, std::string body) {
  Reply reply;
  reply.status = status;
  reply.body = std::move(body);
  return reply;
}

constexpr std::string_view kHtmlContentType = "text/html; charset=utf-8";

// A minimal HTML page: a heading and one paragraph (`paragraph_html` is trusted markup).
std::string HtmlMessage(std::string_view title, std::string_view paragraph_html) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0}</title>"
      "<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:46em}}"
      "</style></head><body>\n<h1>{0}</h1>\n<p>{1}</p>\n</body></html>\n",
      HtmlEscape(title), paragraph_html);
}

// Pages show one org's clusters: never kept by a cache or a proxy.
Reply HtmlReply(int status, std::string body) {
  Reply reply;
  reply.status = status;
  reply.body = std::move(body);
  reply.content_type = std::string(kHtmlContentType);
  reply.headers.emplace_back("Cache-Control", "no-store");
  return reply;
}

// The 401 that makes a browser show its sign-in dialog (RFC 7617).
Reply SignInReply() {
  Reply reply = HtmlReply(
      401, HtmlMessage("Sign in to the Zumik registry",
                       "This page lists your org's clusters. Sign in with any user name and your "
                       "org's API key (<code>zk_live_&hellip;</code>) as the password, or send "
                       "<code>Authorization: Bearer zk_live_&hellip;</code>. An admin creates a "
                       "key with <code>zumik registry keys create --org NAME</code>."));
  reply.headers.emplace_back("WWW-Authenticate",
                             "Basic realm=\"Zumik registry\", charset=\"UTF-8\"");
  return reply;
}

// The body of a coroutine that runs on the database pool (spawned by HandleApi).
asio::awaitable<Reply> CallOnPool(std::function<Reply()> work) { co_return work(); }

}  // namespace

RegistryService::Reply RegistryService::DoRegister(const Caller& caller, std::string_view body) {
  absl::StatusOr<RegisterRequest> request = DecodeRegisterRequest(body);
  if (!request.ok()) return ErrorReply(request.status());
  absl::StatusOr<RegisterResult> result = RegisterCluster(caller, *request);
  if (!result.ok()) return ErrorReply(result.status());
  json::object object{{"id", result->id},
                      {"cluster_token", result->cluster_token.Reveal()},
                      {"heartbeat_interval_s", SecondsJson(options_.liveness.interval)},
                      {"created", result->created}};
  return JsonReply(result->created ? 201 : 200, json::serialize(object));
}

RegistryService::Reply RegistryService::DoList(const Caller& caller,
                                               const http::QueryParams& query) {
  ListFilter filter;
  for (const auto& [key, value] : query) {
    if (value.empty()) continue;
    if (key == "profile") {
      filter.profile = ParseProfile(value);
      if (!filter.profile) {
        return ErrorReply(absl::InvalidArgumentError(
            "query parameter 'profile' must be byoc_epp or byoc_dynamo"));
      }
    } else if (key == "status") {
      filter.status = ParseLiveness(value);
      if (!filter.status) {
        return ErrorReply(absl::InvalidArgumentError(
            "query parameter 'status' must be pending, healthy, unknown or offline"));
      }
    } else if (key == "stack") {
      if (value.size() > 2 * kMaxTagLength) {
        return ErrorReply(absl::InvalidArgumentError("query parameter 'stack' is too long"));
      }
      if (const size_t colon = value.find(':');
          colon != std::string::npos && !IsStackTag(std::string_view(value).substr(0, colon))) {
        return ErrorReply(absl::InvalidArgumentError(fmt::format(
            "query parameter 'stack': '{}' is not a stack tag: use router, runtime, serving, "
            "autoscaler or kv_layer before ':' (or a value alone, to match any tag)",
            value.substr(0, colon))));
      }
      filter.stack = value;
    }
  }
  return JsonReply(200, ListJson(caller.org, filter));
}

RegistryService::Reply RegistryService::ApiCall(std::string_view authorization,
                                                std::string_view method, std::string_view path,
                                                std::string_view body,
                                                const http::QueryParams& query) {
  absl::StatusOr<Caller> caller = AuthenticateApiKey(BearerCredential(authorization));
  if (!caller.ok()) return ErrorReply(caller.status());
  if (absl::Status charged = ChargeApiKey(*caller); !charged.ok()) return ErrorReply(charged);
  if (path == "/v1/clusters") {
    if (method == "POST") return DoRegister(*caller, body);
    return DoList(*caller, query);
  }
  const std::string_view id = path.substr(std::string_view("/v1/clusters/").size());
  if (const size_t slash = id.find('/'); id.empty() || slash != std::string_view::npos) {
    if (id.substr(slash == std::string_view::npos ? 0 : slash) == "/heartbeat" && slash > 0) {
      return MethodNotAllowed(method, path, "POST");  // POST is the heartbeat's own handler
    }
    return ErrorReply(Errorf(absl::StatusCode::kNotFound,
                             "no route for {} {}: the API is /v1/clusters, /v1/clusters/{{id}} "
                             "and POST /v1/clusters/{{id}}/heartbeat",
                             method, path.substr(0, 200)));
  }
  if (method == "DELETE") {
    absl::Status deleted = DeleteCluster(caller->org, id);
    if (!deleted.ok()) return ErrorReply(deleted);
    Reply reply;
    reply.status = 204;
    return reply;
  }
  absl::StatusOr<ClusterView> view = GetCluster(caller->org, id);
  if (!view.ok()) return ErrorReply(view.status());
  return JsonReply(200, ClusterJson(*view));
}

asio::awaitable<void> RegistryService::HandleApi(http::Request& request,
                                                 http::ResponseWriter& writer) {
  const auto start = std::chrono::steady_clock::now();
  std::string authorization(request.Header("Authorization"));
  std::string method(request.method_name());
  std::string path(request.path());
  const std::string& body = request.body();
  const http::QueryParams& query = request.query_params();
  std::function<Reply()> work = [this, authorization, method, path, body, query] {
    return ApiCall(authorization, method, path, body, query);
  };
  // Named first: GCC 12 may destroy a temporary inside a co_await expression twice.
  asio::awaitable<Reply> call = RunBlocking(std::move(work));
  Reply reply = co_await std::move(call);
  if (reply.status == 204) {
    http::IgnoreClientGone(co_await writer.Respond(204, "", "text/plain", reply.headers));
  } else {
    http::IgnoreClientGone(
        co_await writer.Respond(reply.status, reply.body, reply.content_type, reply.headers));
  }
  if (metrics_) {
    const std::string_view route = path == "/v1/clusters" ? (method == "POST" ? "register" : "list")
                                                          : (method == "DELETE" ? "delete" : "get");
    metrics_->Observe(
        route, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
}

asio::awaitable<void> RegistryService::HandleHeartbeatOrApi(http::Request& request,
                                                            http::ResponseWriter& writer) {
  constexpr std::string_view kSuffix = "/heartbeat";
  const std::string_view rest = request.path_suffix();
  if (!rest.ends_with(kSuffix) || rest.size() == kSuffix.size() ||
      rest.substr(0, rest.size() - kSuffix.size()).find('/') != std::string_view::npos) {
    Reply reply;
    if (!rest.empty() && rest.find('/') == std::string_view::npos) {
      reply = MethodNotAllowed("POST", request.path(), "GET, DELETE");  // a cluster's own path
    } else {
      reply.status = 404;
      reply.body = http::ErrorBody(
          404,
          fmt::format("no route for POST {}: a heartbeat is POST /v1/clusters/{{id}}/heartbeat",
                      request.path().substr(0, 200)),
          {}, ErrorCodeForStatus(404));
    }
    http::IgnoreClientGone(
        co_await writer.Respond(reply.status, reply.body, reply.content_type, reply.headers));
    co_return;
  }
  const auto start = std::chrono::steady_clock::now();
  const std::string id(rest.substr(0, rest.size() - kSuffix.size()));
  Reply reply;
  absl::StatusOr<HeartbeatRequest> decoded = DecodeHeartbeatRequest(request.body());
  if (!decoded.ok()) {
    reply = ErrorReply(decoded.status());
  } else {
    absl::StatusOr<Duration> interval =
        Heartbeat(id, BearerCredential(request.Header("Authorization")), *decoded);
    if (!interval.ok()) {
      reply = ErrorReply(interval.status());
    } else {
      reply = JsonReply(200, fmt::format("{{\"heartbeat_interval_s\":{}}}", ToSeconds(*interval)));
    }
  }
  http::IgnoreClientGone(
      co_await writer.Respond(reply.status, reply.body, reply.content_type, reply.headers));
  if (metrics_) {
    metrics_->Observe(
        "heartbeat",
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
}

std::string_view ErrorCodeForStatus(int http_status) {
  switch (http_status) {
    case 400:
      return "invalid_argument";
    case 401:
      return "unauthenticated";
    case 403:
      return "permission_denied";
    case 404:
      return "not_found";
    case 405:
      return "method_not_allowed";
    case 408:
    case 504:
      return "timeout";
    case 409:
      return "conflict";
    case 412:
      return "failed_precondition";
    case 413:
      return "payload_too_large";
    case 429:
      return "rate_limited";
    case 431:
      return "headers_too_large";
    case 501:
      return "unimplemented";
    case 503:
      return "unavailable";
    default:
      return http_status < 500 ? "invalid_argument" : "internal";
  }
}

asio::awaitable<Reply> RegistryService::RunBlocking(std::function<Reply()> work) {
  // co_spawn runs the work on the pool and resumes this coroutine on its own executor.
  asio::awaitable<Reply> task = CallOnPool(std::move(work));
  Reply reply =
      co_await asio::co_spawn(db_pool_->get_executor(), std::move(task), asio::use_awaitable);
  co_return reply;
}

RegistryService::Reply RegistryService::PageCall(std::string_view authorization) {
  // No credential at all is a browser's first request before it asks the user to sign in:
  // challenged, but not counted as an auth failure. A wrong one is counted as on the API.
  absl::StatusOr<Caller> caller = absl::UnauthenticatedError("no credential");
  if (!authorization.empty()) caller = AuthenticateApiKey(ApiKeyFromAuthorization(authorization));
  absl::Status status = caller.status();
  if (status.ok()) status = ChargeApiKey(*caller);
  if (status.ok()) return HtmlReply(200, RenderPage(caller->org));
  if (status.code() == absl::StatusCode::kUnauthenticated) return SignInReply();
  const Reply error = ErrorReply(status);  // logs the cause of a 500
  const bool limited = error.status == 429;
  Reply reply = HtmlReply(
      error.status,
      HtmlMessage("Zumik registry", limited ? "Too many requests with this API key; the page "
                                              "retries by itself in a moment."
                                            : "The registry failed to answer; see its log."));
  if (limited) reply.headers.emplace_back("Retry-After", "1");
  return reply;
}

asio::awaitable<void> RegistryService::HandlePage(http::Request& request,
                                                  http::ResponseWriter& writer) {
  const auto start = std::chrono::steady_clock::now();
  std::string authorization(request.Header("Authorization"));
  std::function<Reply()> work = [this, authorization] { return PageCall(authorization); };
  // Named first: GCC 12 may destroy a temporary inside a co_await expression twice.
  asio::awaitable<Reply> call = RunBlocking(std::move(work));
  Reply reply = co_await std::move(call);
  http::IgnoreClientGone(
      co_await writer.Respond(reply.status, reply.body, reply.content_type, reply.headers));
  if (metrics_) {
    metrics_->Observe(
        "page", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
}

asio::awaitable<void> RegistryService::HandleHealth(http::Request&, http::ResponseWriter& writer) {
  // The database answers a trivial query (on the pool, as every store call), or the registry
  // is not healthy: it could neither register nor list.
  std::function<Reply()> ping = [this] {
    absl::StatusOr<int> version = store_.SchemaVersion();
    if (version.ok()) return Reply{};
    Logger("registry")->warn("health check: database unavailable: {}", MessageOf(version.status()));
    return Reply{.status = 503, .body = "", .content_type = "", .headers = {}};
  };
  asio::awaitable<Reply> call = RunBlocking(std::move(ping));
  const Reply database = co_await std::move(call);
  const bool db_ok = database.status == 200;
  const RegistryHealth health = Health();
  const std::string body = fmt::format(
      "{{\"status\":\"{}\",\"database\":\"{}\",\"suspect\":{},\"clusters\":{},\"stale\":{},"
      "\"pending_writes\":{}}}",
      !db_ok           ? "database_unavailable"
      : health.suspect ? "suspect"
                       : "ok",
      db_ok ? "ok" : "unavailable", health.suspect ? "true" : "false", health.clusters,
      health.stale, PendingHeartbeats());
  http::IgnoreClientGone(co_await writer.Respond(db_ok ? 200 : 503, body));
}

asio::awaitable<void> RegistryService::HandleMetrics(http::Request&, http::ResponseWriter& writer) {
  const std::string text = metrics_registry_->Expose();
  http::IgnoreClientGone(co_await writer.Respond(200, text, metrics::kContentType));
}

void RegistryService::DrainBlockingWork() { db_pool_->join(); }

void RegistryService::AddRoutes(http::Router& router) {
  auto api = [this](http::Request& request, http::ResponseWriter& writer) {
    return HandleApi(request, writer);
  };
  router.Get("/v1/clusters", api);
  router.Post("/v1/clusters", api);
  router.HandlePrefix(http::Method::get, "/v1/clusters/", api);
  router.HandlePrefix(http::Method::delete_, "/v1/clusters/", api);
  router.HandlePrefix(http::Method::post, "/v1/clusters/",
                      [this](http::Request& request, http::ResponseWriter& writer) {
                        return HandleHeartbeatOrApi(request, writer);
                      });
  router.Get("/", [this](http::Request& request, http::ResponseWriter& writer) {
    return HandlePage(request, writer);
  });
  router.Get("/healthz", [this](http::Request& request, http::ResponseWriter& writer) {
    return HandleHealth(request, writer);
  });
  if (metrics_registry_ != nullptr) {
    router.Get("/metrics", [this](http::Request& request, http::ResponseWriter& writer) {
      return HandleMetrics(request, writer);
    });
  }
}

}  // namespace zumik::registry
