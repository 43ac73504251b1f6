// Server: binding, start, graceful stop and stats; the connection logic is in
// server_connection.cc.
#include "core/http/server.h"

#include <sys/socket.h>

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <future>

#include "core/http/server_connection.h"
#include "core/http/url.h"
#include "core/status.h"

namespace zumik::http {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;

}  // namespace

Server::Server(asio::io_context& io, ServerOptions options, Router router)
    : shared_(std::make_shared<detail::ServerShared>(io, std::move(options), std::move(router))) {}

Server::~Server() {
  if (!shared_->started) return;
  asio::post(shared_->strand, [shared = shared_] {
    shared->draining = true;
    boost::system::error_code ignored;
    shared->acceptor.close(ignored);
    for (auto& connection : shared->Snapshot()) {
      asio::post(connection->executor(), [connection] { connection->ForceClose(); });
    }
  });
}

void Server::SetDefaultHeaders(Headers headers) {
  shared_->options.default_headers = std::move(headers);
}

absl::Status Server::Start() {
  if (shared_->started) return absl::FailedPreconditionError("server already started");
  const ServerOptions& options = shared_->options;
  boost::system::error_code ec;
  asio::ip::address listen_address = asio::ip::make_address(options.host, ec);
  if (ec) {
    // A host name ("localhost"): listen on its first address.
    tcp::resolver resolver(shared_->io);
    const auto results = resolver.resolve(options.host, "", ec);
    if (ec || results.empty()) {
      return Errorf(absl::StatusCode::kInvalidArgument, "{}: cannot resolve listen host '{}': {}",
                    options.name, options.host, ec ? ec.message() : "no addresses");
    }
    listen_address = results.begin()->endpoint().address();
  }
  const tcp::endpoint endpoint(listen_address, options.port);
  auto fail = [&](std::string_view step) {
    boost::system::error_code ignored;
    shared_->acceptor.close(ignored);
    return Errorf(absl::StatusCode::kUnavailable, "{}: cannot listen on {} ({}): {}", options.name,
                  HostPort(listen_address.to_string(), options.port), step, ec.message());
  };
  shared_->acceptor.open(endpoint.protocol(), ec);
  if (ec) return fail("open");
  shared_->acceptor.set_option(tcp::acceptor::reuse_address(true), ec);
  if (ec) return fail("reuse_address");
  if (options.reuse_port) {
    using ReusePort = asio::detail::socket_option::boolean<SOL_SOCKET, SO_REUSEPORT>;
    shared_->acceptor.set_option(ReusePort(true), ec);
    if (ec) return fail("reuse_port");
  }
  shared_->acceptor.bind(endpoint, ec);
  if (ec) return fail("bind");
  shared_->acceptor.listen(asio::socket_base::max_listen_connections, ec);
  if (ec) return fail("listen");
  shared_->port = shared_->acceptor.local_endpoint(ec).port();
  shared_->started = true;
  shared_->log->info("{}: listening on {}", options.name, address());
  asio::co_spawn(shared_->strand, detail::AcceptLoop(shared_), asio::detached);
  return absl::OkStatus();
}

absl::Status Server::StartWithoutListener() {
  if (shared_->started) return absl::FailedPreconditionError("server already started");
  shared_->started = true;
  return absl::OkStatus();
}

void Server::SpreadConnectionsOver(const std::vector<Server*>& servers) {
  shared_->spread.clear();
  for (Server* server : servers) shared_->spread.push_back(server->shared_);
}

uint16_t Server::port() const { return shared_->port; }

std::string Server::address() const { return HostPort(shared_->options.host, port()); }

asio::awaitable<void> Server::Shutdown(std::chrono::nanoseconds grace) {
  if (!shared_->started) co_return;
  co_await asio::co_spawn(shared_->strand, detail::ShutdownOnStrand(shared_, grace),
                          asio::use_awaitable);
}

void Server::Stop(std::chrono::nanoseconds grace) {
  if (!shared_->started) return;
  if (shared_->io.get_executor().running_in_this_thread()) {
    shared_->log->error("{}: Stop() called on an io_context thread; use co_await Shutdown()",
                        shared_->options.name);
    asio::co_spawn(shared_->strand, detail::ShutdownOnStrand(shared_, grace), asio::detached);
    return;
  }
  auto done = std::make_shared<std::promise<void>>();
  std::future<void> finished = done->get_future();
  asio::co_spawn(shared_->strand, detail::ShutdownOnStrand(shared_, grace),
                 [done](const std::exception_ptr&) { done->set_value(); });
  // Shutdown itself is bounded by grace plus a short force-close wait; this bound only
  // matters when nobody runs the io_context.
  if (finished.wait_for(grace + std::chrono::seconds(10)) != std::future_status::ready) {
    shared_->log->warn("{}: Stop() gave up waiting; is the io_context running?",
                       shared_->options.name);
  }
}

ServerStats Server::stats() const {
  ServerStats stats;
  stats.connections_accepted = shared_->accepted.load();
  stats.connections_rejected = shared_->rejected.load();
  stats.active_connections = shared_->active.load();
  stats.requests = shared_->requests.load();
  return stats;
}

}  // namespace zumik::http
