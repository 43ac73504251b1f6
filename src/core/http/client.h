// The HTTP/1.1 client: coroutine requests over a per-host keep-alive pool, http:// and
// https://, deadlines, whole responses or a body stream delivered as it arrives (for SSE:
// feed Read() results to an SseParser). Errors are absl::Status:
//   bad URL → kInvalidArgument; refused / unreachable / reset / TLS failure → kUnavailable
//   (naming host:port); deadline → kDeadlineExceeded; Cancel() → kCancelled;
//   response over the size limit → kResourceExhausted; malformed response → kInternal.
// An HTTP error status is not an error here: look at ClientResponse::status (or use
// StatusFromResponse).
//
// A Client may be used from any thread and any number of coroutines at once. Each request
// runs on its connection's strand; the caller's coroutine resumes on its own executor.
// With ClientOptions::single_threaded (one Client per single-threaded io_context, e.g. per
// worker thread) connections live on the Client's executor itself and requests run inline in
// the caller's coroutine: no strand, no hop.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/http/message.h"
#include "core/http/tls.h"

namespace zumik::http {

namespace detail {
struct ClientShared;
struct StreamState;
}  // namespace detail

struct ClientOptions {
  // Requests whose url is a path ("/v1/models") go here ("http://127.0.0.1:8000").
  std::string base_url;
  std::chrono::nanoseconds connect_timeout = std::chrono::seconds(10);
  // The whole request (connect, send, receive the full body or stream), unless the
  // request sets its own.
  std::chrono::nanoseconds request_timeout = std::chrono::seconds(60);
  // Idle keep-alive connections kept per scheme://host:port; more concurrent requests than
  // this to one host churn connections.
  size_t max_idle_per_host = 128;
  // Idle connections older than this are not reused (keep it below servers' idle timeouts).
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(30);
  size_t max_response_body_bytes = 64 << 20;
  size_t max_response_header_bytes = 64 << 10;
  // How much a stream's Read() can return at once.
  size_t stream_chunk_bytes = 16 << 10;
  // Sent with every request unless the request sets the same header.
  Headers default_headers = {{"User-Agent", "zumik-http"}};
  TlsOptions tls;
  // The Client's executor belongs to an io_context run by exactly one thread, and every
  // request (and ClientStream::Read) is made from a coroutine on that thread. Wrong
  // otherwise: connections then have no strand to keep them on one thread.
  bool single_threaded = false;
  // A connection's deadline timer stays pending while the connection is idle in the pool
  // (until the last request's deadline), instead of being cancelled after every request and
  // re-armed for the next: one trip through the scheduler less per request. The io_context
  // then has work until those timers expire or the Client is destroyed, so run() does not
  // return on its own: only for io_contexts that are stopped explicitly (a server's).
  bool lazy_deadline_timers = false;
  // A pooled connection idle for less than this is reused without first checking that the
  // server has not closed it (a MSG_PEEK system call per reuse). Zero: always checked. A
  // server that closes a connection within this time of answering on it, without sending
  // "Connection: close", fails the next request sent on it (retried only if idempotent).
  std::chrono::nanoseconds unchecked_reuse_within = std::chrono::nanoseconds::zero();
};

// Build with the factories and With* setters (GCC 12 warns on partial designated
// initializers): ClientRequest::Post(url, body).WithHeader("Authorization", token).
struct ClientRequest {
  Method method = Method::get;
  // Absolute "http(s)://host[:port]/path?query", or a path resolved against base_url.
  std::string url;
  Headers headers;
  std::string body;
  // When set, sent instead of `body`, without a copy. Borrowed: the bytes must stay valid
  // until Fetch or Stream has returned (a proxy forwarding the body it received, per attempt).
  std::optional<std::string_view> borrowed_body;
  // Overrides ClientOptions::request_timeout.
  std::optional<std::chrono::nanoseconds> timeout;

  static ClientRequest Get(std::string url);
  // With "Content-Type: <content_type>".
  static ClientRequest Post(std::string url, std::string body,
                            std::string content_type = "application/json");
  static ClientRequest Make(Method method, std::string url, std::string body = {});

  // The body to send: borrowed_body when set, else body.
  std::string_view Body() const { return borrowed_body ? *borrowed_body : std::string_view(body); }

  ClientRequest& WithHeader(std::string name, std::string value) &;
  ClientRequest&& WithHeader(std::string name, std::string value) &&;
  ClientRequest& WithTimeout(std::chrono::nanoseconds value) &;
  ClientRequest&& WithTimeout(std::chrono::nanoseconds value) &&;
};

struct ClientResponse {
  int status = 0;
  Fields headers;
  std::string body;

  // Case-insensitive; empty when absent.
  std::string_view Header(std::string_view name) const;
  bool ok() const { return status >= 200 && status < 300; }
};

// OK for 2xx; otherwise the status StatusCodeFromHttp(status) with the server's message
// (the "message" of a JSON error body when there is one).
absl::Status StatusFromResponse(const ClientResponse& response);

// A response whose body is read piece by piece. Move-only. Destroying it before the body
// ended closes the connection; reading to the end returns the connection to the pool.
class ClientStream {
 public:
  ClientStream(ClientStream&&) noexcept;
  ClientStream& operator=(ClientStream&&) noexcept;
  ~ClientStream();

  int status() const;
  const Fields& headers() const;
  std::string_view Header(std::string_view name) const;
  // A header Beast knows by name (e.g. content_length): compared by its code, not its text.
  std::string_view Header(boost::beast::http::field name) const;

  // The next body bytes as soon as any arrive (no waiting for more). An empty view means
  // the body has ended. The view is valid until the next Read or the stream's destruction.
  // One Read at a time.
  boost::asio::awaitable<absl::StatusOr<std::string_view>> Read();
  // Reads the rest of the body (e.g. an error body), up to `limit` bytes.
  boost::asio::awaitable<absl::StatusOr<std::string>> ReadAll(size_t limit = 1 << 20);
  // Closes the connection; a pending or later Read fails with kCancelled. Any thread.
  void Cancel();
  bool done() const;
  // Whether body bytes came in with the head (or there is no body): the first Read then
  // returns without waiting on the network, unless they end inside a chunk's size line. Lets
  // a proxy send them along with the head.
  bool body_buffered() const;
  // Whether the bytes the latest Read returned were the body's last: the next Read returns
  // the end at once. Lets a proxy end its own response in the same write.
  bool body_complete() const;

 private:
  friend class Client;
  explicit ClientStream(std::shared_ptr<detail::StreamState> state);
  std::shared_ptr<detail::StreamState> state_;
};

struct ClientStats {
  uint64_t requests = 0;
  uint64_t connections_opened = 0;
  uint64_t connections_reused = 0;
  uint64_t idle_connections = 0;
};

class Client {
 public:
  // Connections run on strands of `executor` (usually an io_context's).
  explicit Client(boost::asio::any_io_executor executor, ClientOptions options = {});
  // Closes idle connections; requests in flight finish on their own.
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  boost::asio::awaitable<absl::StatusOr<ClientResponse>> Fetch(ClientRequest request);
  // Sends the request and returns once the response status and headers are in.
  boost::asio::awaitable<absl::StatusOr<ClientStream>> Stream(ClientRequest request);

  void CloseIdleConnections();
  ClientStats stats() const;
  // Why https:// requests fail when the TLS options are unusable (OK otherwise). The TLS
  // context is built on the first https request or on this call.
  absl::Status tls_status() const;

 private:
  std::shared_ptr<detail::ClientShared> shared_;
};

// Runs one request on a private io_context and waits: for tests, CLIs and startup code,
// never on an io_context thread.
absl::StatusOr<ClientResponse> FetchBlocking(const ClientRequest& request,
                                             const ClientOptions& options = {});
absl::StatusOr<ClientResponse> FetchBlocking(
    Method method, std::string url, std::string body = {}, Headers headers = {},
    std::chrono::nanoseconds timeout = std::chrono::seconds(30));

}  // namespace zumik::http
