// The HTTP/1.1 server every Zumik service is built on (Boost.Asio/Beast, C++20 coroutines).
//
// Threading model
// - A Server runs on the caller's io_context, which may be run by any number of threads.
//   Several Servers (one per port) can share one io_context.
// - Each accepted connection gets its own strand; its reads, writes, timers and the handler
//   coroutine all run on that strand, so per-connection state needs no locks. Handlers on
//   different connections run in parallel when the io_context has several threads: state
//   shared between handlers needs its own synchronisation.
// - A handler is a coroutine `asio::awaitable<void>(Request&, ResponseWriter&)`. It must not
//   block the thread (no sleeps, no blocking I/O); it may co_await anything. Use the
//   ResponseWriter only from the handler coroutine (or other coroutines on its strand,
//   `co_await asio::this_coro::executor`).
// - While a handler runs the server watches the socket. When the client goes away,
//   ResponseWriter::client_gone() turns true, OnClientGone callbacks run (on the strand), and
//   the handler coroutine gets terminal cancellation: the asio operation it is waiting on
//   completes with operation_aborted (under use_awaitable: a thrown system_error, which the
//   server catches quietly). Writes after that return an error Status; they never throw.
//   An operation the handler starts after that point is not cancelled by asio: a handler
//   that can wait on something else (an upstream stream, an engine queue) should check
//   client_gone() between steps or cancel that work from OnClientGone.
// - A handler that throws never takes the server down: the exception is logged and the
//   client gets a JSON 500 (or the connection is closed if the response had started).
// - Per-core servers, nginx style: give N Servers the same host:port with
//   ServerOptions::reuse_port, each on its own io_context run by one thread, and set
//   single_threaded: the kernel spreads new connections across them, and connections skip
//   their strands (no locks, no extra posts) since only one thread ever runs them.
//   reuse_port's hash spreads a handful of connections unevenly (4 clients can land 3 on one
//   core); for an even spread, Start() one of them, StartWithoutListener() the others, and
//   before that call SpreadConnectionsOver(all of them) on the listening one: it hands each
//   connection it accepts to the server with the fewest connections, on that server's thread.
//
// Lifetime rules
// - Router handlers and everything they reference must stay valid until Stop()/Shutdown()
//   has returned, or until the io_context has stopped running.
// - The io_context must outlive the Server. Destroying a running Server closes its listener
//   and connections without waiting; call Stop() first for a graceful end.
// - Request and ResponseWriter references are valid until the handler's coroutine returns.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/http/message.h"
#include "core/http/response_writer.h"
#include "core/http/router.h"

namespace zumik::http {

namespace detail {
struct ServerShared;
}  // namespace detail

struct ServerOptions {
  std::string host = "127.0.0.1";
  // 0 picks an ephemeral port; read it back with Server::port().
  uint16_t port = 0;
  // Names the server in log lines ("sim-replica-0").
  std::string name = "http";
  // Request line + headers; larger gets 431.
  size_t max_header_bytes = size_t{16} * 1024;
  // Request body; larger gets 413 with a JSON error.
  size_t max_body_bytes = size_t{1024} * 1024;
  // From accept (or from the first byte of a keep-alive request) to the end of the headers:
  // the slowloris defence.
  std::chrono::nanoseconds header_timeout = std::chrono::seconds(10);
  std::chrono::nanoseconds body_timeout = std::chrono::seconds(30);
  // How long a keep-alive connection may wait for its next request.
  std::chrono::nanoseconds idle_timeout = std::chrono::seconds(60);
  // How long one write may wait on a client that does not read.
  std::chrono::nanoseconds write_timeout = std::chrono::seconds(60);
  // Connections over this are closed right after accept.
  size_t max_connections = 10000;
  // Added to every response (e.g. {"x-zumik-replica", "replica-0"}).
  Headers default_headers;
  // The JSON error body's `code` for an HTTP status, where the caller gave none: the server's
  // own answers (404 no route, 405, 413, 431, ...) then carry the service's codes too.
  // Unset: null.
  std::string_view (*error_code_for_status)(int status) = nullptr;
  // SO_REUSEPORT: several Servers (each on its own io_context and thread) listen on the same
  // host:port and the kernel spreads new connections across them. Every one of them must
  // set it; the first may ask for port 0 and the others bind the port it got.
  bool reuse_port = false;
  // The io_context is run by exactly one thread (the handlers included): connections run
  // on its executor directly instead of on a strand each. Wrong with several threads.
  bool single_threaded = false;
};

struct ServerStats {
  uint64_t connections_accepted = 0;
  uint64_t connections_rejected = 0;
  uint64_t active_connections = 0;
  uint64_t requests = 0;
};

class Server {
 public:
  Server(boost::asio::io_context& io, ServerOptions options, Router router);
  ~Server();
  Server(const Server&) = delete;
  Server& operator=(const Server&) = delete;

  // Replaces the headers added to every response. Call before Start().
  void SetDefaultHeaders(Headers headers);

  // Binds, listens and starts accepting. kUnavailable when the address cannot be bound.
  absl::Status Start();
  // Serves only the connections another Server hands over (see SpreadConnectionsOver).
  absl::Status StartWithoutListener();
  // Before Start(): every accepted connection goes to whichever of `servers` (this one may be
  // among them) has the fewest connections. They must outlive this server's accepting and use
  // the same protocol; each serves its connections on its own io_context.
  void SpreadConnectionsOver(const std::vector<Server*>& servers);

  // The bound port (after Start).
  uint16_t port() const;
  // "127.0.0.1:40123", or "[::1]:40123".
  std::string address() const;

  // Stops accepting, closes idle keep-alive connections, lets requests in flight finish
  // for up to `grace` (their responses carry Connection: close), then closes whatever is
  // left. Completes when every connection is gone. Safe to co_await from any coroutine.
  boost::asio::awaitable<void> Shutdown(std::chrono::nanoseconds grace);

  // Blocking form of Shutdown, for threads outside the io_context (main, tests); the
  // io_context must be running on some thread. Called from an io_context thread it only
  // starts the shutdown (waiting there would deadlock).
  void Stop(std::chrono::nanoseconds grace);

  ServerStats stats() const;

 private:
  std::shared_ptr<detail::ServerShared> shared_;
};

}  // namespace zumik::http
