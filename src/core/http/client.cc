// Client, ClientStream and FetchBlocking: URL resolution, retries on stale pooled
// connections, and hopping onto each connection's strand.
#include "core/http/client.h"

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/value.hpp>

#include "core/http/cancellable.h"
#include "core/http/client_connection.h"
#include "core/http/errors.h"
#include "core/status.h"

namespace zumik::http {
namespace {

namespace asio = boost::asio;
using detail::SteadyTime;

SteadyTime DeadlineAfter(std::chrono::nanoseconds timeout) {
  if (timeout >= std::chrono::hours(24 * 365)) return SteadyTime::max();
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout);
}

// What a stream whose caller was cancelled reads: it is cancelled (on the connection's strand)
// and answers with its failure, Cancelled unless it had already failed otherwise.
absl::Status CancelledStream(const std::shared_ptr<detail::StreamState>& state) {
  detail::CancelStream(state);
  if (!state->failure.ok()) return state->failure;
  return Errorf(absl::StatusCode::kCancelled, "stream from {} cancelled", state->url.Authority());
}

std::string_view FindHeader(const Fields& fields, std::string_view name) {
  // A walk over the few fields of a response, lengths first, costs a tenth of Fields::find
  // (a tree of case-insensitive string comparisons).
  for (const auto& field : fields) {
    const std::string_view field_name = field.name_string();
    if (field_name.size() == name.size() && boost::beast::iequals(field_name, name)) {
      return field.value();
    }
  }
  return {};
}

// The human part of an error body: OpenAI {"error":{"message":..}}, {"error":".."},
// Kubernetes/vLLM {"message":..}; else the start of the body.
std::string ErrorMessageFromBody(std::string_view body) {
  boost::system::error_code ec;
  const boost::json::value json = boost::json::parse(body, ec);
  if (!ec && json.is_object()) {
    const auto& object = json.get_object();
    if (const auto* error = object.if_contains("error")) {
      if (error->is_string()) return std::string(error->get_string());
      if (error->is_object()) {
        if (const auto* message = error->get_object().if_contains("message");
            message != nullptr && message->is_string()) {
          return std::string(message->get_string());
        }
      }
    }
    if (const auto* message = object.if_contains("message");
        message != nullptr && message->is_string()) {
      return std::string(message->get_string());
    }
  }
  constexpr size_t kMaxQuoted = 200;
  return std::string(body.substr(0, kMaxQuoted));
}

}  // namespace

ClientRequest ClientRequest::Get(std::string url) { return Make(Method::get, std::move(url)); }

ClientRequest ClientRequest::Post(std::string url, std::string body, std::string content_type) {
  ClientRequest request = Make(Method::post, std::move(url), std::move(body));
  request.headers.emplace_back("Content-Type", std::move(content_type));
  return request;
}

ClientRequest ClientRequest::Make(Method method, std::string url, std::string body) {
  ClientRequest request;
  request.method = method;
  request.url = std::move(url);
  request.body = std::move(body);
  return request;
}

ClientRequest& ClientRequest::WithHeader(std::string name, std::string value) & {
  headers.emplace_back(std::move(name), std::move(value));
  return *this;
}

ClientRequest&& ClientRequest::WithHeader(std::string name, std::string value) && {
  headers.emplace_back(std::move(name), std::move(value));
  return std::move(*this);
}

ClientRequest& ClientRequest::WithTimeout(std::chrono::nanoseconds value) & {
  timeout = value;
  return *this;
}

ClientRequest&& ClientRequest::WithTimeout(std::chrono::nanoseconds value) && {
  timeout = value;
  return std::move(*this);
}

std::string_view ClientResponse::Header(std::string_view name) const {
  return FindHeader(headers, name);
}

absl::Status StatusFromResponse(const ClientResponse& response) {
  if (response.ok()) return absl::OkStatus();
  absl::StatusCode code = StatusCodeFromHttp(response.status);
  if (code == absl::StatusCode::kOk) code = absl::StatusCode::kUnknown;
  return Errorf(code, "HTTP {}: {}", response.status, ErrorMessageFromBody(response.body));
}

ClientStream::ClientStream(std::shared_ptr<detail::StreamState> state) : state_(std::move(state)) {}
ClientStream::ClientStream(ClientStream&&) noexcept = default;

ClientStream& ClientStream::operator=(ClientStream&& other) noexcept {
  if (this != &other) {
    Cancel();
    state_ = std::move(other.state_);
  }
  return *this;
}

ClientStream::~ClientStream() { Cancel(); }

int ClientStream::status() const { return state_ ? state_->status : 0; }

const Fields& ClientStream::headers() const {
  static const Fields kEmpty;
  return state_ ? static_cast<const Fields&>(state_->parser->get()) : kEmpty;
}

std::string_view ClientStream::Header(std::string_view name) const {
  return FindHeader(headers(), name);
}

std::string_view ClientStream::Header(boost::beast::http::field name) const {
  for (const auto& field : headers()) {
    if (field.name() == name) return field.value();
  }
  return {};
}

asio::awaitable<absl::StatusOr<std::string_view>> ClientStream::Read() {
  if (!state_) co_return absl::FailedPreconditionError("read from a moved-from ClientStream");
  asio::awaitable<absl::StatusOr<std::string_view>> read = detail::ReadStream(state_);
  if (state_->shared->options.single_threaded) {
    co_return co_await std::move(read);
  }
  auto on_cancel = [state = state_]() -> absl::StatusOr<std::string_view> {
    return CancelledStream(state);
  };
  // Named first: GCC 12 may destroy a temporary inside a co_await expression twice.
  asio::awaitable<absl::StatusOr<std::string_view>> run =
      RunCancellable(state_->connection->executor(), std::move(read), std::move(on_cancel));
  co_return co_await std::move(run);
}

asio::awaitable<absl::StatusOr<std::string>> ClientStream::ReadAll(size_t limit) {
  std::string body;
  while (true) {
    absl::StatusOr<std::string_view> piece = co_await Read();
    if (!piece.ok()) co_return piece.status();
    if (piece->empty()) co_return body;
    if (body.size() + piece->size() > limit) {
      Cancel();
      co_return Errorf(absl::StatusCode::kResourceExhausted,
                       "response body is larger than {} bytes", limit);
    }
    body.append(*piece);
  }
}

void ClientStream::Cancel() {
  if (!state_ || state_->done) return;
  asio::post(state_->connection->executor(), [state = state_] { detail::CancelStream(state); });
}

bool ClientStream::done() const { return !state_ || state_->done; }
bool ClientStream::body_buffered() const { return state_ && state_->body_buffered; }
bool ClientStream::body_complete() const { return !state_ || state_->body_complete; }

Client::Client(asio::any_io_executor executor, ClientOptions options)
    : shared_(std::make_shared<detail::ClientShared>(std::move(executor), std::move(options))) {}

Client::~Client() { shared_->pool.Close(); }

asio::awaitable<absl::StatusOr<ClientResponse>> Client::Fetch(ClientRequest request) {
  std::shared_ptr<detail::ClientShared> shared = shared_;
  absl::StatusOr<Url> url = detail::ResolveRequestUrl(*shared, request.url);
  if (!url.ok()) co_return url.status();
  ++shared->requests;
  const SteadyTime deadline =
      DeadlineAfter(request.timeout.value_or(shared->options.request_timeout));
  for (int attempt = 0;; ++attempt) {
    auto connection = detail::AcquireConnection(*shared, *url);
    asio::awaitable<detail::Attempt<ClientResponse>> round_trip =
        detail::RoundTrip(shared, connection, *url, request, deadline);
    detail::Attempt<ClientResponse> outcome;
    if (shared->options.single_threaded) {
      outcome = co_await std::move(round_trip);
    } else {
      auto on_cancel = [connection, authority = url->Authority()]() {
        connection->Close();
        return detail::Attempt<ClientResponse>{
            Errorf(absl::StatusCode::kCancelled, "request to {} cancelled", authority)};
      };
      asio::awaitable<detail::Attempt<ClientResponse>> run =
          RunCancellable(connection->executor(), std::move(round_trip), std::move(on_cancel));
      outcome = co_await std::move(run);
    }
    // A pooled connection the server had just closed: one more try on a fresh one.
    if (outcome.retry && attempt == 0) continue;
    co_return std::move(outcome.result);
  }
}

asio::awaitable<absl::StatusOr<ClientStream>> Client::Stream(ClientRequest request) {
  std::shared_ptr<detail::ClientShared> shared = shared_;
  absl::StatusOr<Url> url = detail::ResolveRequestUrl(*shared, request.url);
  if (!url.ok()) co_return url.status();
  ++shared->requests;
  const SteadyTime deadline =
      DeadlineAfter(request.timeout.value_or(shared->options.request_timeout));
  for (int attempt = 0;; ++attempt) {
    auto state = std::make_shared<detail::StreamState>();
    state->shared = shared;
    state->url = *url;
    state->connection = detail::AcquireConnection(*shared, *url);
    asio::awaitable<detail::Attempt<bool>> open = detail::OpenStream(state, request, deadline);
    detail::Attempt<bool> outcome;
    if (shared->options.single_threaded) {
      outcome = co_await std::move(open);
    } else {
      auto on_cancel = [state]() { return detail::Attempt<bool>{CancelledStream(state)}; };
      asio::awaitable<detail::Attempt<bool>> run =
          RunCancellable(state->connection->executor(), std::move(open), std::move(on_cancel));
      outcome = co_await std::move(run);
    }
    if (outcome.retry && attempt == 0) continue;
    if (!outcome.result.ok()) {
      state->done = true;
      co_return outcome.result.status();
    }
    if (state->parser->is_done() && shared->options.single_threaded) {
      detail::FinishStream(*state);
    } else if (state->parser->is_done()) {
      // No body (HEAD, 204, 304): the connection is free again right away.
      co_await asio::co_spawn(
          state->connection->executor(),
          [state]() -> asio::awaitable<void> {
            detail::FinishStream(*state);
            co_return;
          },
          asio::use_awaitable);
    }
    co_return ClientStream(std::move(state));
  }
}

void Client::CloseIdleConnections() { shared_->pool.CloseIdle(); }

ClientStats Client::stats() const {
  ClientStats stats;
  stats.requests = shared_->requests.load();
  stats.connections_opened = shared_->opened.load();
  stats.connections_reused = shared_->reused.load();
  stats.idle_connections = shared_->pool.idle();
  return stats;
}

absl::Status Client::tls_status() const { return shared_->Tls().status(); }

absl::StatusOr<ClientResponse> FetchBlocking(const ClientRequest& request,
                                             const ClientOptions& options) {
  asio::io_context io;
  absl::StatusOr<ClientResponse> result = absl::InternalError("the request did not complete");
  {
    Client client(io.get_executor(), options);
    asio::co_spawn(
        io, [&]() -> asio::awaitable<void> { result = co_await client.Fetch(request); },
        asio::detached);
    io.run();
  }
  return result;
}

absl::StatusOr<ClientResponse> FetchBlocking(Method method, std::string url, std::string body,
                                             Headers headers, std::chrono::nanoseconds timeout) {
  ClientRequest request = ClientRequest::Make(method, std::move(url), std::move(body));
  request.headers = std::move(headers);
  request.timeout = timeout;
  ClientOptions options;
  options.connect_timeout = timeout;
  return FetchBlocking(request, options);
}

}  // namespace zumik::http
