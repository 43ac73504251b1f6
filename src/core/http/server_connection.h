// Internal to the server: the state all connections of one Server share, and one
// connection's read → dispatch → respond loop. Not part of the public API.
#pragma once

#include <array>
#include <atomic>
#include <boost/asio/any_completion_handler.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/buffer.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <unordered_map>
#include <vector>

#include "absl/status/status.h"
#include "core/http/router.h"
#include "core/http/server.h"
#include "spdlog/logger.h"

namespace zumik::http::detail {

namespace asio = boost::asio;
using Strand = asio::strand<asio::io_context::executor_type>;
using SteadyTime = std::chrono::steady_clock::time_point;

class ServerConnection;

struct ServerShared {
  ServerShared(asio::io_context& io_context, ServerOptions server_options, Router server_router);

  // Connections in flight, for Shutdown; they register themselves.
  void Register(const std::shared_ptr<ServerConnection>& connection);
  void Unregister(ServerConnection* connection);
  std::vector<std::shared_ptr<ServerConnection>> Snapshot();

  asio::io_context& io;
  ServerOptions options;
  Router router;
  std::shared_ptr<spdlog::logger> log;
  // The acceptor and the drain timer live on this strand.
  Strand strand;
  asio::ip::tcp::acceptor acceptor;
  asio::steady_timer drain_timer;
  uint16_t port = 0;
  bool started = false;

  std::atomic<bool> draining{false};
  std::atomic<uint64_t> accepted{0};
  std::atomic<uint64_t> rejected{0};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> active{0};

  std::mutex mu;
  std::unordered_map<ServerConnection*, std::weak_ptr<ServerConnection>> connections;
  // Set before Start: the servers accepted connections are spread over (see Server).
  std::vector<std::weak_ptr<ServerShared>> spread;  // weak: it may list this one
};

asio::awaitable<void> AcceptLoop(std::shared_ptr<ServerShared> shared);
asio::awaitable<void> ShutdownOnStrand(std::shared_ptr<ServerShared> shared,
                                       std::chrono::nanoseconds grace);

class ServerConnection : public std::enable_shared_from_this<ServerConnection> {
 public:
  ServerConnection(std::shared_ptr<ServerShared> shared, asio::ip::tcp::socket socket);
  ~ServerConnection();

  // Starts serving the connection (its coroutine, Run).
  static void Spawn(const std::shared_ptr<ServerConnection>& self);

  asio::any_io_executor executor() { return socket_.get_executor(); }

  // On the strand: Shutdown began; close now unless a request is in flight.
  void BeginDrain();
  // On the strand: close regardless.
  void ForceClose();

  // Used by ResponseWriter, on the strand.
  asio::awaitable<absl::Status> Write(std::span<const asio::const_buffer> buffers);
  const ServerOptions& options() const { return shared_->options; }
  bool draining() const { return shared_->draining.load(std::memory_order_relaxed); }
  bool client_gone() const { return client_gone_; }
  void AddGoneCallback(std::function<void()> callback);
  // Sends FIN: the response ends here, however it was framed (ResponseWriter::Abort).
  void ShutdownSend();

 private:
  enum class Phase { kIdle, kReadingHeader, kReadingBody, kHandling, kClosed };

  static asio::awaitable<void> Run(std::shared_ptr<ServerConnection> self);
  asio::awaitable<void> Serve();
  // Reads one request into parser_; false when the connection should close.
  asio::awaitable<bool> ReadRequest();
  asio::awaitable<void> Dispatch(Request& request, ResponseWriter& writer);
  // Runs the handler; catches what it throws (a 500, or a closed connection).
  asio::awaitable<void> RunHandler(const Handler& handler, Request& request,
                                   ResponseWriter& writer);
  // The reading side ended with `ec`: what the parser makes of it (as Beast's reads do).
  boost::system::error_code AtEndOfInput(boost::system::error_code ec);

  // Reading. While a handler runs a background read watches the socket (StartRead): bytes
  // are kept in buffer_ (pipelined requests), an error or end of input means the client is
  // gone and cancels the handler. The read the handler leaves in flight becomes the next
  // request's read, so a keep-alive request costs no extra read that finds nothing.
  class ReadHandler;
  void StartRead();
  void OnRead(const boost::system::error_code& ec, size_t n);
  void ClientGoneWhileHandling();
  // More bytes into buffer_: waits for the background read if one is in flight, else reads
  // (up to `want` bytes at once, when the caller knows that many are coming).
  asio::awaitable<boost::system::error_code> ReadMore(size_t want = 0);
  // Answers a request that could not be read, then closes without resetting the
  // connection (so the client reads the answer).
  asio::awaitable<void> RejectAndClose(int status, std::string_view message);

  void MarkClientGone();
  void SetDeadline(std::chrono::nanoseconds timeout);
  void ClearDeadline() { deadline_ = SteadyTime::max(); }
  void ArmWatchdog();
  void OnWatchdog();
  void CloseSocket();

  std::shared_ptr<ServerShared> shared_;
  asio::ip::tcp::socket socket_;
  int sync_writes_ = 0;  // writes completed without the scheduler, in a row (Write)
  asio::steady_timer watchdog_;
  std::string remote_;
  boost::beast::flat_buffer buffer_;
  std::optional<boost::beast::http::request_parser<StringBody>> parser_;
  Phase phase_ = Phase::kReadingHeader;
  SteadyTime deadline_;
  bool timed_out_ = false;
  bool closed_ = false;
  bool client_gone_ = false;
  bool handler_running_ = false;
  uint64_t requests_ = 0;
  std::vector<std::function<void()>> gone_callbacks_;

  static constexpr size_t kBackgroundReadBytes = 4096;
  std::array<char, kBackgroundReadBytes> read_chunk_;  // the background read's target
  bool read_pending_ = false;
  boost::system::error_code read_error_;  // the reading side has ended
  // The coroutine waiting for the background read (ReadMore).
  std::optional<asio::any_completion_handler<void(boost::system::error_code)>> read_waiter_;
  // Bound to Run's coroutine (Serve): emitted, it cancels the operation that coroutine waits
  // on. Shared with co_spawn's completion handler, which may outlive this connection.
  std::shared_ptr<asio::cancellation_signal> handler_cancel_ =
      std::make_shared<asio::cancellation_signal>();
};

}  // namespace zumik::http::detail
