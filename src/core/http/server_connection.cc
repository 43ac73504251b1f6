// The server's accept loop, per-connection request loop (timeouts, limits, client-gone
// detection, handler isolation) and graceful shutdown.
#include "core/http/server_connection.h"

#include <unistd.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/rfc7230.hpp>
#include <exception>
#include <limits>

#include "core/http/errors.h"
#include "core/http/put_buffered.h"
#include "core/http/response_writer.h"
#include "core/log.h"
#include "core/status.h"

namespace zumik::http::detail {
namespace {

namespace bhttp = boost::beast::http;
using boost::system::error_code;
using tcp = asio::ip::tcp;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadChunk = 4096;
constexpr size_t kMaxReadBytes = size_t{64} * 1024;
// The read buffer a connection keeps between requests, at most (more is freed).
constexpr size_t kMaxIdleBufferBytes = size_t{16} * 1024;
// While a handler runs the monitor buffers pipelined requests up to this much.
constexpr size_t kMaxPipelinedBytes = size_t{64} * 1024;
// After rejecting a request, how long and how much of the rest we read and discard so the
// close does not reset the connection before the client has read the answer.
constexpr auto kLingerTime = std::chrono::seconds(1);
constexpr size_t kLingerBytes = 1 << 20;
constexpr auto kForceCloseWait = std::chrono::seconds(2);

std::string FormatEndpoint(const tcp::endpoint& endpoint) {
  if (endpoint.address().is_v6()) {
    return fmt::format("[{}]:{}", endpoint.address().to_string(), endpoint.port());
  }
  return fmt::format("{}:{}", endpoint.address().to_string(), endpoint.port());
}

bool IsDisconnect(const error_code& ec) {
  return ec == bhttp::error::end_of_stream || ec == asio::error::eof ||
         ec == asio::error::connection_reset || ec == asio::error::operation_aborted ||
         ec == asio::error::bad_descriptor || ec == asio::error::broken_pipe ||
         ec == asio::error::connection_aborted;
}

SteadyTime DeadlineAfter(std::chrono::nanoseconds timeout) {
  const auto now = std::chrono::steady_clock::now();
  if (timeout >= std::chrono::hours(24 * 365)) return SteadyTime::max();
  return now + std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout);
}

asio::awaitable<void> WaitDrained(std::shared_ptr<ServerShared> shared, SteadyTime deadline) {
  // Connections cancel drain_timer (via the strand) when the last one leaves; the check
  // and the wait below run in one strand step, so that wake-up cannot be lost.
  while (shared->active.load() > 0 && std::chrono::steady_clock::now() < deadline) {
    shared->drain_timer.expires_at(deadline);
    co_await shared->drain_timer.async_wait(kTuple);
  }
}

// The first transfer coding of a request other than a single final "chunked" (empty when
// there is none): the only framing the server reads besides Content-Length.
std::string_view UnsupportedTransferCoding(const Request::Message& request) {
  bool chunked_seen = false;
  for (const auto& field : request) {
    if (field.name() != bhttp::field::transfer_encoding) continue;
    for (const auto& coding : bhttp::token_list(field.value())) {
      const std::string_view name(coding.data(), coding.size());
      if (chunked_seen || !boost::beast::iequals(name, "chunked")) {
        return field.value();
      }
      chunked_seen = true;
    }
  }
  return {};
}

}  // namespace

ServerShared::ServerShared(asio::io_context& io_context, ServerOptions server_options,
                           Router server_router)
    : io(io_context),
      options(std::move(server_options)),
      router(std::move(server_router)),
      log(Logger("http")),
      strand(asio::make_strand(io_context)),
      acceptor(strand),
      drain_timer(strand) {}

void ServerShared::Register(const std::shared_ptr<ServerConnection>& connection) {
  std::lock_guard lock(mu);
  connections.emplace(connection.get(), connection);
}

void ServerShared::Unregister(ServerConnection* connection) {
  std::lock_guard lock(mu);
  connections.erase(connection);
}

std::vector<std::shared_ptr<ServerConnection>> ServerShared::Snapshot() {
  // Declared before the lock: the last owner may drop here, after the lock is released.
  std::vector<std::shared_ptr<ServerConnection>> live;
  std::lock_guard lock(mu);
  live.reserve(connections.size());
  for (const auto& [raw, weak] : connections) {
    if (auto connection = weak.lock()) live.push_back(std::move(connection));
  }
  return live;
}

namespace {

std::shared_ptr<ServerShared> LeastLoaded(const std::shared_ptr<ServerShared>& shared) {
  std::shared_ptr<ServerShared> best = shared;
  uint64_t fewest = std::numeric_limits<uint64_t>::max();
  for (const auto& weak : shared->spread) {
    std::shared_ptr<ServerShared> candidate = weak.lock();
    if (!candidate) continue;
    const uint64_t active = candidate->active.load();
    if (active < fewest && !candidate->draining.load()) {
      best = candidate;
      fewest = active;
    }
  }
  return best;
}

void Serve(const std::shared_ptr<ServerShared>& shared, tcp::socket socket) {
  error_code ignored;
  socket.set_option(tcp::no_delay(true), ignored);
  // Synchronous writes return would_block instead of blocking (see Write).
  socket.non_blocking(true, ignored);
  auto connection = std::make_shared<ServerConnection>(shared, std::move(socket));
  shared->Register(connection);
  ServerConnection::Spawn(connection);
}

// The socket moves to the target's io_context: a descriptor is not tied to an io_context, a
// socket object is.
void HandOver(const std::shared_ptr<ServerShared>& target, tcp::socket socket) {
  error_code ec;
  const tcp::endpoint local = socket.local_endpoint(ec);
  const int fd = ec ? -1 : socket.release(ec);
  if (ec || fd < 0) {
    error_code ignored;
    socket.close(ignored);
    --target->active;
    return;
  }
  asio::post(target->io, [target, fd, protocol = local.protocol()] {
    const asio::any_io_executor executor =
        target->options.single_threaded ? asio::any_io_executor(target->io.get_executor())
                                        : asio::any_io_executor(asio::make_strand(target->io));
    tcp::socket adopted(executor);
    error_code assign_ec;
    adopted.assign(protocol, fd, assign_ec);
    if (assign_ec) {
      ::close(fd);
      --target->active;
      return;
    }
    Serve(target, std::move(adopted));
  });
}

}  // namespace

asio::awaitable<void> AcceptLoop(std::shared_ptr<ServerShared> shared) {
  asio::steady_timer backoff(shared->strand);
  while (true) {
    // One thread: the connection needs no strand of its own.
    const asio::any_io_executor executor =
        shared->options.single_threaded ? asio::any_io_executor(shared->io.get_executor())
                                        : asio::any_io_executor(asio::make_strand(shared->io));
    auto [ec, accepted] = co_await shared->acceptor.async_accept(executor, kTuple);
    if (ec) {
      if (!shared->acceptor.is_open() || ec == asio::error::operation_aborted) co_return;
      shared->log->warn("{}: accept failed: {}", shared->options.name, ec.message());
      // Out of descriptors or memory: back off instead of spinning.
      backoff.expires_after(std::chrono::milliseconds(50));
      co_await backoff.async_wait(kTuple);
      continue;
    }
    tcp::socket socket(std::move(accepted));
    error_code ignored;
    if (shared->draining.load()) {
      socket.close(ignored);
      continue;
    }
    const std::shared_ptr<ServerShared> target = LeastLoaded(shared);
    if (target->active.load() >= target->options.max_connections) {
      ++target->rejected;
      socket.close(ignored);
      continue;
    }
    // Counted now, so the next accept already sees this one wherever it goes.
    ++target->active;
    ++target->accepted;
    if (target == shared) {
      Serve(shared, std::move(socket));
    } else {
      HandOver(target, std::move(socket));
    }
  }
}

asio::awaitable<void> ShutdownOnStrand(std::shared_ptr<ServerShared> shared,
                                       std::chrono::nanoseconds grace) {
  shared->draining = true;
  error_code ignored;
  shared->acceptor.close(ignored);
  for (auto& connection : shared->Snapshot()) {
    asio::post(connection->executor(), [connection] { connection->BeginDrain(); });
  }
  co_await WaitDrained(shared, DeadlineAfter(grace));
  if (shared->active.load() == 0) co_return;
  shared->log->info("{}: closing {} connection(s) still busy after the grace period",
                    shared->options.name, shared->active.load());
  for (auto& connection : shared->Snapshot()) {
    asio::post(connection->executor(), [connection] { connection->ForceClose(); });
  }
  co_await WaitDrained(shared, DeadlineAfter(kForceCloseWait));
  if (shared->active.load() > 0) {
    shared->log->warn("{}: {} handler(s) ignored cancellation and are still running",
                      shared->options.name, shared->active.load());
  }
}

ServerConnection::ServerConnection(std::shared_ptr<ServerShared> shared, tcp::socket socket)
    : shared_(std::move(shared)),
      socket_(std::move(socket)),
      watchdog_(socket_.get_executor()),
      deadline_(DeadlineAfter(shared_->options.header_timeout)) {
  error_code ec;
  const tcp::endpoint remote = socket_.remote_endpoint(ec);
  remote_ = ec ? std::string("unknown") : FormatEndpoint(remote);
}

ServerConnection::~ServerConnection() = default;

void ServerConnection::Spawn(const std::shared_ptr<ServerConnection>& self) {
  // The handler's cancellation (ClientGoneWhileHandling) reaches whatever operation the
  // connection's coroutine waits on, the handler's included. The completion handler keeps
  // the signal alive until the coroutine has finished with it.
  std::shared_ptr<asio::cancellation_signal> cancel = self->handler_cancel_;
  asio::co_spawn(
      self->executor(), Run(self),
      asio::bind_cancellation_slot(cancel->slot(), [cancel](const std::exception_ptr&) {}));
}

asio::awaitable<void> ServerConnection::Run(std::shared_ptr<ServerConnection> self) {
  // Cancellation (a client gone while its handler runs) completes the operation it interrupts
  // with operation_aborted; later operations, such as writes to the gone client that report
  // an error Status, are not made to throw.
  co_await asio::this_coro::throw_if_cancelled(false);
  self->ArmWatchdog();
  try {
    co_await self->Serve();
  } catch (const std::exception& e) {
    self->shared_->log->warn("{}: connection from {} failed: {}", self->shared_->options.name,
                             self->remote_, e.what());
  }
  self->CloseSocket();
  std::shared_ptr<ServerShared> shared = self->shared_;
  shared->Unregister(self.get());
  if (shared->active.fetch_sub(1) == 1 && shared->draining.load()) {
    asio::post(shared->strand, [shared] { shared->drain_timer.cancel(); });
  }
}

asio::awaitable<void> ServerConnection::Serve() {
  while (!closed_) {
    if (!co_await ReadRequest()) co_return;
    // A large body's reads grew the buffer: an idle connection does not keep that much.
    if (buffer_.size() == 0 && buffer_.capacity() > kMaxIdleBufferBytes) buffer_.shrink_to_fit();
    phase_ = Phase::kHandling;
    ClearDeadline();
    ++requests_;
    ++shared_->requests;
    Request request(parser_->release(), remote_);
    parser_.reset();
    ResponseWriter writer(*this, request);
    co_await Dispatch(request, writer);
    if (closed_ || client_gone_ || !writer.keep_alive() || draining()) co_return;
  }
}

asio::awaitable<bool> ServerConnection::ReadRequest() {
  const ServerOptions& options = shared_->options;
  if (requests_ > 0 && buffer_.size() == 0) {
    // Keep-alive: wait for the next request under the idle timeout; the header timeout
    // starts with its first byte.
    if (draining()) co_return false;
    phase_ = Phase::kIdle;
    SetDeadline(options.idle_timeout);
    sync_writes_ = 0;  // this wait goes through the scheduler (see Write)
    if (co_await ReadMore()) co_return false;
  }
  phase_ = Phase::kReadingHeader;
  if (requests_ > 0) SetDeadline(options.header_timeout);
  parser_.emplace();
  parser_->eager(true);
  parser_->header_limit(static_cast<uint32_t>(
      std::min<size_t>(options.max_header_bytes, std::numeric_limits<uint32_t>::max())));
  parser_->body_limit(options.max_body_bytes);

  // Parsed here rather than by Beast's async_read_header, which completes through the
  // scheduler even when the whole request is already buffered (the usual case).
  error_code ec = PutBuffered(buffer_, *parser_);
  while (!ec && !parser_->is_header_done()) {
    ec = co_await ReadMore();
    ec = ec ? AtEndOfInput(ec) : PutBuffered(buffer_, *parser_);
  }
  if (ec) {
    if (ec == bhttp::error::header_limit) {
      co_await RejectAndClose(
          431, fmt::format("request headers are larger than {} bytes", options.max_header_bytes));
    } else if (ec == bhttp::error::body_limit) {
      co_await RejectAndClose(
          413, fmt::format("request body is larger than {} bytes", options.max_body_bytes));
    } else if (timed_out_) {
      shared_->log->debug("{}: {} sent no complete request header in time", options.name, remote_);
    } else if (!IsDisconnect(ec) && !closed_) {
      co_await RejectAndClose(400, fmt::format("malformed request: {}", ec.message()));
    }
    co_return false;
  }
  if (const std::string_view coding = UnsupportedTransferCoding(parser_->get()); !coding.empty()) {
    // The body's length is unknown (RFC 9112 §6.3): what follows the head must not be read as
    // the next request.
    if (!parser_->chunked()) {
      co_await RejectAndClose(
          400, fmt::format("Transfer-Encoding '{}' leaves the body's length unknown: send it "
                           "chunked (once) or with a Content-Length",
                           coding.substr(0, 100)));
    } else {
      co_await RejectAndClose(
          501, fmt::format("Transfer-Encoding '{}' is not supported: send the body with chunked "
                           "alone",
                           coding.substr(0, 100)));
    }
    co_return false;
  }
  if (!parser_->is_done()) {
    if (boost::beast::iequals(parser_->get()[bhttp::field::expect], "100-continue")) {
      static constexpr std::string_view kContinue = "HTTP/1.1 100 Continue\r\n\r\n";
      const std::array<asio::const_buffer, 1> buffers = {asio::buffer(kContinue)};
      if (!(co_await Write(buffers)).ok()) co_return false;
    }
    phase_ = Phase::kReadingBody;
    SetDeadline(options.body_timeout);
    while (!ec && !parser_->is_done()) {
      // As much as the Content-Length says is left, in one read where the socket has it:
      // a 30 KB prompt in 4 KB reads cost eight trips through the scheduler.
      const auto remaining = parser_->content_length_remaining();
      ec = co_await ReadMore(remaining ? static_cast<size_t>(*remaining) : 0);
      ec = ec ? AtEndOfInput(ec) : PutBuffered(buffer_, *parser_);
    }
    if (ec) {
      if (ec == bhttp::error::body_limit) {
        co_await RejectAndClose(
            413, fmt::format("request body is larger than {} bytes", options.max_body_bytes));
      } else if (timed_out_) {
        shared_->log->debug("{}: {} sent no complete request body in time", options.name, remote_);
      } else if (!IsDisconnect(ec) && !closed_) {
        co_await RejectAndClose(400, fmt::format("malformed request body: {}", ec.message()));
      }
      co_return false;
    }
  }
  co_return true;
}

error_code ServerConnection::AtEndOfInput(error_code ec) {
  if (ec != asio::error::eof) return ec;
  if (!parser_->got_some()) return bhttp::error::end_of_stream;
  ec = {};
  parser_->put_eof(ec);
  if (!ec && !parser_->is_done()) ec = bhttp::error::partial_message;
  return ec;
}

// Holds the connection while its background read is in flight. Destroyed without being
// called (its io_context destroyed first), it drops the coroutine waiting for the read,
// which holds the connection that holds it.
class ServerConnection::ReadHandler {
 public:
  explicit ReadHandler(std::shared_ptr<ServerConnection> connection)
      : connection_(std::move(connection)) {}
  ReadHandler(ReadHandler&&) = default;
  ReadHandler& operator=(ReadHandler&&) = delete;
  ~ReadHandler() {
    if (connection_) connection_->read_waiter_.reset();
  }
  void operator()(const error_code& ec, size_t n) {
    std::shared_ptr<ServerConnection> connection = std::move(connection_);
    connection->OnRead(ec, n);
  }

 private:
  std::shared_ptr<ServerConnection> connection_;
};

void ServerConnection::StartRead() {
  if (read_pending_ || read_error_ || closed_) return;
  read_pending_ = true;
  socket_.async_read_some(asio::buffer(read_chunk_), ReadHandler(shared_from_this()));
}

void ServerConnection::OnRead(const error_code& ec, size_t n) {
  read_pending_ = false;
  if (ec) {
    read_error_ = ec;
  } else {
    buffer_.commit(asio::buffer_copy(buffer_.prepare(n), asio::buffer(read_chunk_.data(), n)));
  }
  if (read_waiter_) {
    auto waiter = std::move(*read_waiter_);
    read_waiter_.reset();
    std::move(waiter)(ec);
    return;
  }
  if (!handler_running_) return;  // the next ReadMore finds the bytes or the error
  if (ec) {
    // Our own close (write failure, timeout, shutdown) also lands here.
    ClientGoneWhileHandling();
  } else if (buffer_.size() < kMaxPipelinedBytes) {
    StartRead();
  }
}

void ServerConnection::ClientGoneWhileHandling() {
  MarkClientGone();
  handler_cancel_->emit(asio::cancellation_type::terminal);
}

asio::awaitable<error_code> ServerConnection::ReadMore(size_t want) {
  if (read_pending_) {
    auto [ec] = co_await asio::async_initiate<decltype(kTuple), void(error_code)>(
        [this](auto handler) { read_waiter_.emplace(std::move(handler)); }, kTuple);
    co_return ec;
  }
  if (read_error_) co_return read_error_;
  if (closed_) co_return asio::error::bad_descriptor;
  const size_t size = std::min<size_t>(
      std::max({kReadChunk, buffer_.capacity() - buffer_.size(), want}), kMaxReadBytes);
  auto [ec, n] = co_await socket_.async_read_some(buffer_.prepare(size), kTuple);
  if (ec) {
    read_error_ = ec;
    co_return ec;
  }
  buffer_.commit(n);
  co_return error_code();
}

asio::awaitable<void> ServerConnection::Dispatch(Request& request, ResponseWriter& writer) {
  const Router::Match match = shared_->router.Find(request.method(), request.path());
  if (match.handler == nullptr) {
    if (match.allow.empty()) {
      const std::string message =
          fmt::format("no route for {} {}", request.method_name(), request.path());
      (void)co_await writer.RespondError(404, message);
    } else {
      const Headers allow = {{"Allow", match.allow}};
      const std::string message =
          fmt::format("method {} is not allowed for {}", request.method_name(), request.path());
      (void)co_await writer.RespondError(405, message, {}, {}, allow);
    }
    co_return;
  }
  // Write failures below need no handling: a failed write has already closed the connection.
  request.route_.assign(match.route);
  request.prefix_route_ = match.prefix;
  co_await RunHandler(*match.handler, request, writer);
  if (client_gone_ || closed_) co_return;
  if (!writer.started()) {
    shared_->log->error("{}: handler for {} {} returned without a response", shared_->options.name,
                        request.method_name(), request.path());
    (void)co_await writer.RespondError(500, "the handler produced no response");
  } else if (!writer.finished()) {
    (void)co_await writer.Finish();
  }
}

asio::awaitable<void> ServerConnection::RunHandler(const Handler& handler, Request& request,
                                                   ResponseWriter& writer) {
  // The background read watches the socket while the handler runs; when the client is gone
  // it cancels the handler through handler_cancel_ (never the reverse: the read outlives the
  // handler and becomes the next request's). The handler runs in this coroutine, not one of
  // its own: no allocation, no trip through the scheduler per request.
  handler_running_ = true;
  if (read_error_) {
    // The client's side had already ended: gone, as a fresh read would have found.
    asio::post(socket_.get_executor(), [self = shared_from_this()] {
      if (self->handler_running_) self->ClientGoneWhileHandling();
    });
  } else if (buffer_.size() < kMaxPipelinedBytes) {
    StartRead();
  }
  std::string failure;
  try {
    co_await handler(request, writer);
  } catch (const std::exception& e) {
    failure = e.what();
  } catch (...) {
    failure = "unknown exception";
  }
  if (!failure.empty()) {
    if (client_gone_) {
      shared_->log->debug("{}: handler for {} {} ended after the client left: {}",
                          shared_->options.name, request.method_name(), request.path(), failure);
    } else {
      shared_->log->error("{}: handler for {} {} failed: {}", shared_->options.name,
                          request.method_name(), request.path(), failure);
      if (!writer.started()) {
        (void)co_await writer.RespondError(500, "internal server error");
      } else {
        // The response is cut off mid-way: only closing tells the client.
        writer.CloseConnection();
        if (writer.streaming()) CloseSocket();
      }
    }
  }
  handler_running_ = false;
  gone_callbacks_.clear();
}

asio::awaitable<void> ServerConnection::RejectAndClose(int status, std::string_view message) {
  shared_->log->debug("{}: rejecting request from {} with {}: {}", shared_->options.name, remote_,
                      status, message);
  const auto code_for = shared_->options.error_code_for_status;
  const std::string body =
      ErrorBody(status, message, {}, code_for != nullptr ? code_for(status) : std::string_view());
  std::string head = fmt::format("HTTP/1.1 {} {}\r\n", status, ReasonPhrase(status));
  for (const auto& [name, value] : shared_->options.default_headers) {
    if (IsUnsafeHeaderText(name) || IsUnsafeHeaderText(value) || IsFramingHeader(name)) continue;
    AppendHeaderLine(head, name, value);
  }
  head += fmt::format(
      "Content-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
      body.size());
  const std::array<asio::const_buffer, 2> buffers = {asio::buffer(head), asio::buffer(body)};
  if (!(co_await Write(buffers)).ok()) co_return;
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
  SetDeadline(kLingerTime);
  std::array<char, 4096> sink;
  size_t drained = 0;
  while (drained < kLingerBytes) {
    auto [ec, n] = co_await socket_.async_read_some(asio::buffer(sink), kTuple);
    if (ec) break;
    drained += n;
  }
}

asio::awaitable<absl::Status> ServerConnection::Write(std::span<const asio::const_buffer> buffers) {
  if (client_gone_ || closed_) {
    co_return Errorf(absl::StatusCode::kUnavailable, "client {} disconnected", remote_);
  }
  // Most writes (a streamed chunk, a small response) fit the socket's send buffer: try one
  // non-blocking gather write first, which completes without a trip through the scheduler
  // (an async write posts its completion even when the data went out at once). Whatever did
  // not fit goes the asynchronous way, under the write timeout.
  // After kMaxSyncWrites such writes, one goes through the scheduler, so a handler that writes
  // in a loop still lets the connection's other work (the disconnect monitor) and other
  // connections run.
  constexpr int kMaxSyncWrites = 16;
  error_code sync_ec;
  size_t written = 0;
  if (socket_.non_blocking() && sync_writes_ < kMaxSyncWrites) {
    ++sync_writes_;
    written = socket_.write_some(buffers, sync_ec);
  } else {
    sync_writes_ = 0;
  }
  if (sync_ec == asio::error::would_block || sync_ec == asio::error::try_again) {
    sync_ec = {};
    written = 0;
  }
  if (sync_ec) {
    MarkClientGone();
    CloseSocket();
    co_return Errorf(absl::StatusCode::kUnavailable, "write to {} failed: {}", remote_,
                     sync_ec.message());
  }
  const size_t total = asio::buffer_size(buffers);
  if (written == total) co_return absl::OkStatus();
  // The rest: skip the bytes already written.
  std::vector<asio::const_buffer> rest;
  rest.reserve(buffers.size());
  size_t skip = written;
  for (const asio::const_buffer& buffer : buffers) {
    if (skip >= buffer.size()) {
      skip -= buffer.size();
      continue;
    }
    rest.push_back(buffer + skip);
    skip = 0;
  }
  SetDeadline(shared_->options.write_timeout);
  auto [ec, n] = co_await asio::async_write(socket_, rest, kTuple);
  ClearDeadline();
  if (ec) {
    const bool timed_out = timed_out_;
    MarkClientGone();
    CloseSocket();
    if (timed_out) {
      co_return Errorf(absl::StatusCode::kDeadlineExceeded, "write to {} timed out", remote_);
    }
    co_return Errorf(absl::StatusCode::kUnavailable, "write to {} failed: {}", remote_,
                     ec.message());
  }
  co_return absl::OkStatus();
}

void ServerConnection::AddGoneCallback(std::function<void()> callback) {
  if (client_gone_) {
    callback();
    return;
  }
  gone_callbacks_.push_back(std::move(callback));
}

void ServerConnection::MarkClientGone() {
  if (client_gone_) return;
  client_gone_ = true;
  std::vector<std::function<void()>> callbacks;
  callbacks.swap(gone_callbacks_);
  for (auto& callback : callbacks) {
    try {
      callback();
    } catch (const std::exception& e) {
      shared_->log->error("{}: client-gone callback threw: {}", shared_->options.name, e.what());
    }
  }
}

void ServerConnection::BeginDrain() {
  if (closed_) return;
  const bool waiting_for_request =
      phase_ == Phase::kIdle || (phase_ == Phase::kReadingHeader && buffer_.size() == 0);
  if (waiting_for_request) CloseSocket();
}

void ServerConnection::ForceClose() { CloseSocket(); }

void ServerConnection::SetDeadline(std::chrono::nanoseconds timeout) {
  deadline_ = DeadlineAfter(timeout);
  // The watchdog only re-arms when it fires; wake it early when the deadline moved closer.
  if (deadline_ < watchdog_.expiry()) watchdog_.cancel();
}

void ServerConnection::ArmWatchdog() {
  watchdog_.expires_at(deadline_);
  watchdog_.async_wait([self = shared_from_this()](const error_code&) { self->OnWatchdog(); });
}

void ServerConnection::OnWatchdog() {
  if (closed_) return;
  if (std::chrono::steady_clock::now() >= deadline_) {
    timed_out_ = true;
    CloseSocket();
    return;
  }
  ArmWatchdog();
}

void ServerConnection::ShutdownSend() {
  error_code ignored;
  socket_.shutdown(tcp::socket::shutdown_send, ignored);
}

void ServerConnection::CloseSocket() {
  if (closed_) return;
  closed_ = true;
  phase_ = Phase::kClosed;
  error_code ignored;
  socket_.close(ignored);
  watchdog_.cancel();
}

}  // namespace zumik::http::detail
