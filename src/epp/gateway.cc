// The standalone gateway: reverse proxy through the Pipeline (see gateway.h).
#include "epp/gateway.h"

#include <fmt/format.h>

#include <atomic>
#include <boost/asio/redirect_error.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <charconv>
#include <iterator>
#include <optional>

#include "core/http/errors.h"
#include "core/http/response_writer.h"
#include "core/status.h"
#include "epp/ascii.h"
#include "epp/body_parser.h"

namespace zumik::epp {
namespace asio = boost::asio;

struct Gateway::Shared {
  Pipeline& pipeline;
  GatewayOptions options;
  http::Client client;
  std::atomic<uint64_t> retries{0};
  std::atomic<uint64_t> upstream_errors{0};
  std::atomic<uint64_t> cancelled{0};

  Shared(asio::io_context& io, Pipeline& p, GatewayOptions o)
      : pipeline(p), options(std::move(o)), client(io.get_executor(), MakeClientOptions(options)) {}

  static http::ClientOptions MakeClientOptions(const GatewayOptions& options) {
    http::ClientOptions out;
    out.connect_timeout = options.connect_timeout;
    out.request_timeout = options.upstream_timeout;
    out.max_idle_per_host = options.max_idle_upstream_per_host;
    out.max_response_body_bytes = 1ull << 40;  // streamed; the gateway never buffers it all
    out.default_headers.clear();
    out.single_threaded = options.single_threaded;
    out.lazy_deadline_timers = true;  // the gateway's io_context is stopped explicitly
    // Under load each upstream connection is reused within a millisecond or two: skip the
    // per-reuse liveness check then (model servers close idle connections after seconds).
    out.unchecked_reuse_within = std::chrono::milliseconds(2);
    return out;
  }
};

namespace {

// Hop-by-hop and framing headers are the proxy's own business on each leg. Every header of
// every request and response is checked: compare only with the names of the same length.
bool IsHopHeader(std::string_view name) {
  switch (name.size()) {
    case 2:
      return EqualsIgnoreCase(name, "te");
    case 4:
      return EqualsIgnoreCase(name, "host");
    case 6:
      return EqualsIgnoreCase(name, "expect");
    case 7:
      return EqualsIgnoreCase(name, "trailer") || EqualsIgnoreCase(name, "upgrade");
    case 10:
      return EqualsIgnoreCase(name, "connection") || EqualsIgnoreCase(name, "keep-alive");
    case 14:
      return EqualsIgnoreCase(name, "content-length");
    case 16:
      return EqualsIgnoreCase(name, "proxy-connection");
    case 17:
      return EqualsIgnoreCase(name, "transfer-encoding");
    case 18:
      return EqualsIgnoreCase(name, "proxy-authenticate");
    case 19:
      return EqualsIgnoreCase(name, "proxy-authorization");
    default:
      return false;
  }
}

std::vector<std::pair<std::string, std::string>> RequestHeaders(const http::Request& request) {
  std::vector<std::pair<std::string, std::string>> out;
  out.reserve(
      static_cast<size_t>(std::distance(request.headers().begin(), request.headers().end())));
  for (const auto& field : request.headers()) {
    out.emplace_back(std::string(field.name_string()), std::string(field.value()));
  }
  return out;
}

// The connect phase failed (nothing was sent): safe to try the next endpoint.
bool IsConnectFailure(const absl::Status& status) {
  std::string_view message = MessageOf(status);
  return (status.code() == absl::StatusCode::kUnavailable ||
          status.code() == absl::StatusCode::kDeadlineExceeded) &&
         (message.substr(0, 11) == "connect to " || message.substr(0, 8) == "resolve ");
}

// The target the gateway sends upstream: the model server's own path for the API that the
// client's path was taken for (by its suffix, see ApiKindOfPath), and the client's query. The
// client's path itself never goes upstream, so no prefix, dot segment or encoding in it can
// reach another route of the model server.
std::string UpstreamTarget(ApiKind kind, std::string_view target) {
  if (kind == ApiKind::kUnknown) return std::string(target);  // never admitted: answered 404
  const size_t q = target.find('?');
  const std::string_view query = q == std::string_view::npos ? "" : target.substr(q);
  return ModelServerPath(kind, ResponseIdOfPath(target)).append(query);
}

http::ClientRequest UpstreamRequest(const http::Request& request, const std::string& endpoint,
                                    std::string_view target,
                                    const std::vector<std::pair<std::string, std::string>>& headers,
                                    const Admission& admission) {
  // The body is borrowed, not copied: the request (or the admission's rewrite of it) outlives
  // the upstream call.
  http::ClientRequest out =
      http::ClientRequest::Make(request.method(), fmt::format("http://{}{}", endpoint, target));
  out.borrowed_body = admission.body ? std::string_view(*admission.body) : request.body();
  out.headers.reserve(headers.size() + admission.upstream_headers.size());
  for (const auto& [name, value] : headers) {
    if (!IsHopHeader(name)) out.headers.emplace_back(name, value);
  }
  for (const auto& header : admission.upstream_headers) out.headers.push_back(header);
  return out;
}

http::Headers ResponseHeaders(const http::ClientStream& stream, const Admission& admission) {
  http::Headers out;
  out.reserve(static_cast<size_t>(std::distance(stream.headers().begin(), stream.headers().end())) +
              admission.response_headers.size());
  for (const auto& field : stream.headers()) {
    std::string_view name = field.name_string();
    // IsHopHeader covers the framing headers (http::IsFramingHeader) too.
    if (IsHopHeader(name) || EqualsIgnoreCase(name, "content-type") ||
        EqualsIgnoreCase(name, "agent-execution-profile")) {
      continue;
    }
    out.emplace_back(std::string(name), std::string(field.value()));
  }
  for (const auto& header : admission.response_headers) out.push_back(header);
  return out;
}

http::Headers RejectionHeaders(const Rejection& rejection) {
  http::Headers out;
  if (!rejection.dropped_reason.empty()) {
    out.emplace_back("x-llm-d-request-dropped-reason", rejection.dropped_reason);
  }
  return out;
}

std::string ErrorEvent(std::string_view message) {
  return fmt::format("data: {}\n\n", http::ErrorBody(502, message, "server_error"));
}

std::optional<size_t> ContentLength(const http::ClientStream& stream) {
  std::string_view text = stream.Header(boost::beast::http::field::content_length);
  if (text.empty()) return std::nullopt;
  size_t value = 0;
  auto [ptr, ec] = std::from_chars(text.data(), text.data() + text.size(), value);
  if (ec != std::errc() || ptr != text.data() + text.size()) return std::nullopt;
  return value;
}

// The upstream failed after its head, before any of the body reached the client: a 502 to
// the client (no retry, the upstream may have acted on the request), or nothing if it left.
asio::awaitable<void> FailBeforeBody(Gateway::Shared& shared, RequestContext& ctx,
                                     http::ResponseWriter& writer, const absl::Status& error) {
  if (writer.client_gone()) {
    shared.cancelled.fetch_add(1);
    co_return;
  }
  shared.upstream_errors.fetch_add(1);
  ctx.status = 502;
  std::string message = fmt::format("upstream failed mid-response: {}", MessageOf(error));
  http::IgnoreClientGone(co_await writer.RespondError(502, message, "server_error"));
}

// Completes the pick however the handler ends (normally, on error, or cancelled).
struct DoneGuard {
  Pipeline* pipeline;
  std::shared_ptr<RequestContext> ctx;
  const http::ResponseWriter* writer;
  ~DoneGuard() {
    if (!ctx) return;
    ctx->client_gone = writer->client_gone();
    pipeline->OnDone(*ctx);
  }
};

// The methods an OpenAI-style server accepts on a path the pipeline knows, as its Allow header
// ("" for a path the pipeline does not know: it answers those itself, with 404).
std::string_view AllowedMethods(ApiKind kind) {
  switch (kind) {
    case ApiKind::kCompletions:
    case ApiKind::kChatCompletions:
    case ApiKind::kEmbeddings:
    case ApiKind::kResponses:
    case ApiKind::kResponseCancel:
      return "POST";
    case ApiKind::kResponseRetrieve:
      return "GET";
    case ApiKind::kModels:
    case ApiKind::kHealth:
      return "GET, HEAD";
    case ApiKind::kUnknown:
      return "";
  }
  return "";
}

bool MethodAllowed(http::Method method, ApiKind kind) {
  if (AllowedMethods(kind) == "POST") return method == http::Method::post;
  if (AllowedMethods(kind) == "GET") return method == http::Method::get;
  return method == http::Method::get || method == http::Method::head;
}

// A response without a length the gateway may buffer: each piece goes to the client as it
// arrives. Bytes that came in with the upstream's head go out with ours, and the body's last
// bytes with the end of ours, each in one write; a body that is whole by then goes out as one
// response.
asio::awaitable<void> RelayStreamed(Gateway::Shared& shared, RequestContext& ctx,
                                    http::ClientStream& stream, http::ResponseWriter& writer,
                                    std::string_view content_type,
                                    const http::Headers& response_headers) {
  Pipeline& pipeline = shared.pipeline;
  std::string restored;  // a piece with the client's model name written back
  auto relay = [&](std::string_view piece, bool end) -> std::string_view {
    pipeline.OnResponseBody(ctx, piece, end);
    restored.clear();
    return Pipeline::RestoreModelName(ctx, piece, end, restored) ? std::string_view(restored)
                                                                 : piece;
  };
  std::string_view first;
  if (stream.body_buffered()) {
    auto chunk = co_await stream.Read();
    if (!chunk.ok()) {
      co_await FailBeforeBody(shared, ctx, writer, chunk.status());
      co_return;
    }
    if (stream.body_complete()) {
      std::string_view whole = relay(*chunk, true);
      absl::Status sent =
          co_await writer.Respond(stream.status(), whole, content_type, response_headers);
      if (!sent.ok()) shared.cancelled.fetch_add(1);
      (void)co_await stream.Read();  // the end: the connection goes back to the pool
      co_return;
    }
    first = relay(*chunk, false);
  }
  absl::Status began =
      co_await writer.BeginStream(stream.status(), content_type, response_headers, first);
  if (!began.ok()) {
    shared.cancelled.fetch_add(1);
    co_return;
  }
  while (true) {
    auto chunk = co_await stream.Read();
    if (!chunk.ok()) {
      if (writer.client_gone()) {
        shared.cancelled.fetch_add(1);
        co_return;
      }
      // Bytes already reached the client: no retry. Tell an SSE client in-band; either way
      // the response ends without the upstream's terminator.
      shared.upstream_errors.fetch_add(1);
      ctx.status = 502;
      if (ctx.streaming) {
        std::string event =
            ErrorEvent(fmt::format("upstream failed mid-stream: {}", MessageOf(chunk.status())));
        // Best effort: the connection closes below whether or not this reaches the client.
        http::IgnoreClientGone(co_await writer.WriteChunk(event));
      }
      writer.Abort();  // no end of the body: the client sees it was cut short
      co_return;
    }
    const bool end = chunk->empty() || stream.body_complete();
    std::string_view out = relay(*chunk, end);
    absl::Status written = end ? co_await writer.Finish(out) : co_await writer.WriteChunk(out);
    if (!written.ok()) {
      stream.Cancel();
      shared.cancelled.fetch_add(1);
      co_return;
    }
    if (end) {
      // The body ended in this piece: the next Read returns the connection to the pool.
      if (!chunk->empty()) {
        (void)co_await stream.Read();
      }
      co_return;
    }
  }
}

asio::awaitable<void> Proxy(std::shared_ptr<Gateway::Shared> shared, http::Request& request,
                            http::ResponseWriter& writer) {
  Pipeline& pipeline = shared->pipeline;
  std::string_view target = request.target();
  if (target.empty() || target.front() != '/' || target.find('#') != std::string_view::npos) {
    // Origin form only (RFC 9112 §3.2.1): no absolute URL, no authority, no fragment.
    pipeline.CountRefused(400);
    http::IgnoreClientGone(co_await writer.RespondError(
        400,
        fmt::format("the request target must be a path starting with '/' and without a "
                    "'#' fragment, not '{}'",
                    target.substr(0, 200)),
        "invalid_request_error"));
    co_return;
  }
  // A wrong method is answered here, as vLLM's own server does (405 with Allow), instead of
  // being routed: GET /v1/completions has no body to route by, POST /v1/models nothing to post.
  const ApiKind kind = ApiKindOfPath(target);
  if (kind != ApiKind::kUnknown && !MethodAllowed(request.method(), kind)) {
    pipeline.CountRefused(405);
    const http::Headers allow = {{"Allow", std::string(AllowedMethods(kind))}};
    const std::string message =
        fmt::format("method {} is not allowed for {} (allowed: {})", request.method_name(),
                    request.path(), AllowedMethods(kind));
    http::IgnoreClientGone(
        co_await writer.RespondError(405, message, "invalid_request_error", {}, allow));
    co_return;
  }
  const auto headers = RequestHeaders(request);
  std::span<const std::string> no_subset;
  auto admitted = pipeline.Admit(target, headers, request.body(), no_subset, false);

  // Sheddable request while saturated: wait on a timer for capacity, bounded. The metrics
  // count it once, by its final outcome, under its model.
  std::string metrics_model;
  if (const auto* first = std::get_if<Rejection>(&admitted)) metrics_model = first->metrics_model;
  if (auto* rejection = std::get_if<Rejection>(&admitted);
      rejection != nullptr && rejection->queueable && pipeline.TryEnterQueue(metrics_model)) {
    // The request as parsed: each retry places it again without parsing the body again.
    const std::shared_ptr<PendingRequest> pending = rejection->pending;
    asio::steady_timer timer(co_await asio::this_coro::executor);
    auto deadline = std::chrono::steady_clock::now() + pipeline.options().queue_ttl;
    bool waiting = true;
    while (waiting && std::chrono::steady_clock::now() < deadline && !writer.client_gone()) {
      timer.expires_after(std::chrono::milliseconds(5));
      boost::system::error_code ec;
      co_await timer.async_wait(asio::redirect_error(asio::use_awaitable, ec));
      admitted = pipeline.Readmit(pending, no_subset);
      auto* again = std::get_if<Rejection>(&admitted);
      waiting = again != nullptr && again->queueable;
    }
    pipeline.LeaveQueue();
    if (waiting) admitted = pipeline.QueueTimeout(metrics_model);
  }

  if (auto* rejection = std::get_if<Rejection>(&admitted)) {
    http::Headers extra = RejectionHeaders(*rejection);
    http::IgnoreClientGone(co_await writer.Respond(rejection->http_status, rejection->json_body,
                                                   http::kJsonContentType, extra));
    co_return;
  }
  Admission& admission = std::get<Admission>(admitted);
  DoneGuard guard{&pipeline, admission.ctx, &writer};
  RequestContext& ctx = *admission.ctx;

  std::optional<http::ClientStream> stream;
  writer.OnClientGone([&stream] {
    if (stream) stream->Cancel();
  });
  absl::Status last_error;
  const std::string upstream_target = UpstreamTarget(kind, target);
  for (size_t i = 0; i < admission.endpoints.size(); ++i) {
    http::ClientRequest upstream =
        UpstreamRequest(request, admission.endpoints[i], upstream_target, headers, admission);
    auto opened = co_await shared->client.Stream(std::move(upstream));
    if (opened.ok()) {
      stream.emplace(std::move(*opened));
      if (i > 0) pipeline.OnServedBy(ctx, admission.endpoints[i]);
      break;
    }
    last_error = opened.status();
    if (!IsConnectFailure(last_error) || writer.client_gone()) break;
    if (i + 1 < admission.endpoints.size()) shared->retries.fetch_add(1);
  }
  if (writer.client_gone()) {
    shared->cancelled.fetch_add(1);
    co_return;
  }
  if (!stream) {
    shared->upstream_errors.fetch_add(1);
    int status = last_error.code() == absl::StatusCode::kDeadlineExceeded ? 504 : 502;
    std::string message = fmt::format("upstream failed: {}", MessageOf(last_error));
    http::IgnoreClientGone(co_await writer.RespondError(status, message, "server_error"));
    co_return;
  }

  std::string content_type(stream->Header(boost::beast::http::field::content_type));
  pipeline.OnResponseHeaders(ctx, stream->status(), content_type);
  http::Headers response_headers = ResponseHeaders(*stream, admission);
  std::optional<size_t> length = ContentLength(*stream);

  if (!ctx.streaming && length && *length <= shared->options.max_buffered_response_bytes) {
    auto body = co_await stream->ReadAll(*length + 1);
    if (!body.ok()) {
      co_await FailBeforeBody(*shared, ctx, writer, body.status());
      co_return;
    }
    pipeline.OnResponseBody(ctx, *body, true);
    std::string restored;
    std::string_view reply = *body;
    if (Pipeline::RestoreModelName(ctx, *body, true, restored)) reply = restored;
    // A HEAD answer keeps the upstream's length: the length of the body a GET would get.
    absl::Status sent =
        request.method() == http::Method::head
            ? co_await writer.RespondHead(stream->status(), *length, content_type, response_headers)
            : co_await writer.Respond(stream->status(), reply, content_type, response_headers);
    if (!sent.ok()) shared->cancelled.fetch_add(1);
    co_return;
  }

  co_await RelayStreamed(*shared, ctx, *stream, writer, content_type, response_headers);
}

http::Headers ProfileHeaders(const std::string& profile) {
  http::Headers out;
  out.emplace_back("Agent-Execution-Profile", profile);
  return out;
}

asio::awaitable<void> Healthz(http::Request&, http::ResponseWriter& writer) {
  std::string_view body = "{\"status\":\"ok\"}";
  http::IgnoreClientGone(co_await writer.Respond(200, body));
}

}  // namespace

Gateway::Gateway(asio::io_context& io, Pipeline& pipeline, GatewayOptions options)
    : shared_(std::make_shared<Shared>(io, pipeline, std::move(options))) {
  http::ServerOptions server_options;
  server_options.host = shared_->options.host;
  server_options.port = shared_->options.port;
  server_options.name = "epp-gateway";
  server_options.max_body_bytes = shared_->options.max_body_bytes;
  server_options.default_headers = ProfileHeaders(pipeline.profile_header());
  server_options.reuse_port = shared_->options.reuse_port;
  server_options.single_threaded = shared_->options.single_threaded;
  http::Router router;
  router.Get("/healthz", Healthz);
  std::shared_ptr<Shared> shared = shared_;
  router.SetFallback([shared](http::Request& request, http::ResponseWriter& writer) {
    return Proxy(shared, request, writer);
  });
  server_ = std::make_unique<http::Server>(io, std::move(server_options), std::move(router));
}

Gateway::~Gateway() = default;

absl::Status Gateway::Start() { return server_->Start(); }

void Gateway::SpreadConnectionsOver(const std::vector<Gateway*>& workers) {
  std::vector<http::Server*> servers;
  servers.reserve(workers.size());
  for (Gateway* worker : workers) servers.push_back(worker->server_.get());
  server_->SpreadConnectionsOver(servers);
}

absl::Status Gateway::StartWithoutListener() { return server_->StartWithoutListener(); }

uint16_t Gateway::port() const { return server_->port(); }

void Gateway::Stop(std::chrono::nanoseconds grace) { server_->Stop(grace); }

Gateway::Stats Gateway::stats() const {
  return Stats{shared_->retries.load(), shared_->upstream_errors.load(), shared_->cancelled.load()};
}

}  // namespace zumik::epp
