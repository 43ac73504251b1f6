// The standalone EPP gateway: an OpenAI-compatible HTTP/1.1 reverse proxy that runs every
// request through the Pipeline (parse → admission → pick) and forwards it to the picked
// endpoint. Responses stream through unbuffered (SSE chunks are written as they arrive);
// upstream connections are pooled (keep-alive); a request moves to the next fallback endpoint
// only when connecting fails (never after any response byte reached the client); a client
// that disconnects cancels the upstream request; every response, errors included, carries
// `Agent-Execution-Profile: <profile>`.
#pragma once

#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "core/http/client.h"
#include "core/http/server.h"
#include "epp/pipeline.h"

namespace zumik::epp {

struct GatewayOptions {
  std::string host = "127.0.0.1";
  uint16_t port = 0;
  Duration connect_timeout = std::chrono::seconds(2);
  // Whole upstream exchange (headers and the full body or stream).
  Duration upstream_timeout = std::chrono::minutes(10);
  size_t max_body_bytes = 64 << 20;
  // Non-streamed responses up to this size are forwarded with Content-Length; larger ones
  // and SSE streams are forwarded chunked as they arrive.
  size_t max_buffered_response_bytes = 1 << 20;
  size_t max_idle_upstream_per_host = 512;
  // Per-core workers (see EppService): several Gateways on one port (SO_REUSEPORT), each on
  // its own io_context run by one thread, so a request never leaves its worker's thread.
  bool reuse_port = false;
  bool single_threaded = false;
};

// One Gateway serves one port from one io_context, with its own upstream keep-alive pool.
class Gateway {
 public:
  // `pipeline` must outlive the Gateway and the io_context's handlers. With
  // `options.single_threaded`, `io` must be run by exactly one thread.
  Gateway(boost::asio::io_context& io, Pipeline& pipeline, GatewayOptions options);
  ~Gateway();
  Gateway(const Gateway&) = delete;
  Gateway& operator=(const Gateway&) = delete;

  absl::Status Start();
  // Per-core workers (see http::Server::SpreadConnectionsOver): this one accepts and hands
  // each connection to the worker with the fewest; the others only serve what they get.
  void SpreadConnectionsOver(const std::vector<Gateway*>& workers);
  absl::Status StartWithoutListener();
  uint16_t port() const;
  // Blocking graceful stop (see http::Server::Stop).
  void Stop(std::chrono::nanoseconds grace);

  struct Stats {
    uint64_t retries = 0;          // moves to a fallback after a connect failure
    uint64_t upstream_errors = 0;  // requests that ended on an upstream failure
    uint64_t cancelled = 0;        // client went away before the end
  };
  Stats stats() const;

  struct Shared;

 private:
  std::shared_ptr<Shared> shared_;
  std::unique_ptr<http::Server> server_;
};

}  // namespace zumik::epp
