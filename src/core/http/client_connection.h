// Internal to the client: one connection (plain or TLS) with its deadline, the per-host
// idle pool, the state a Client shares with its requests, and a response stream's state.
#pragma once

#include <atomic>
#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/ssl/context.hpp>
#include <boost/asio/ssl/stream.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/parser.hpp>
#include <chrono>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"
#include "core/http/client.h"
#include "core/http/url.h"
#include "spdlog/logger.h"

namespace zumik::http::detail {

namespace asio = boost::asio;
using SteadyTime = std::chrono::steady_clock::time_point;

// A TCP socket, or a TLS stream over one, behind the AsyncReadStream/AsyncWriteStream
// interface Beast and Asio algorithms expect.
class ClientTransport {
 public:
  using executor_type = asio::any_io_executor;

  explicit ClientTransport(const executor_type& executor) : socket_(executor) {}

  executor_type get_executor() { return socket_.get_executor(); }
  asio::ip::tcp::socket& socket() { return tls_ ? tls_->next_layer() : socket_; }
  asio::ssl::stream<asio::ip::tcp::socket>* tls() { return tls_ ? &*tls_ : nullptr; }
  void EnableTls(asio::ssl::context& context) { tls_.emplace(std::move(socket_), context); }

  template <typename MutableBuffers, typename Handler>
  void async_read_some(const MutableBuffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_read_some(buffers, std::forward<Handler>(handler));
    } else {
      socket_.async_read_some(buffers, std::forward<Handler>(handler));
    }
  }

  template <typename ConstBuffers, typename Handler>
  void async_write_some(const ConstBuffers& buffers, Handler&& handler) {
    if (tls_) {
      tls_->async_write_some(buffers, std::forward<Handler>(handler));
    } else {
      socket_.async_write_some(buffers, std::forward<Handler>(handler));
    }
  }

 private:
  asio::ip::tcp::socket socket_;
  std::optional<asio::ssl::stream<asio::ip::tcp::socket>> tls_;
};

// Everything but the pool's bookkeeping runs on the connection's strand.
class ClientConnection : public std::enable_shared_from_this<ClientConnection> {
 public:
  ClientConnection(const asio::any_io_executor& strand, std::string pool_key);

  const asio::any_io_executor& executor() const { return executor_; }
  ClientTransport& transport() { return transport_; }
  asio::ip::tcp::resolver& resolver() { return resolver_; }
  boost::beast::flat_buffer& buffer() { return buffer_; }
  const std::string& pool_key() const { return pool_key_; }

  // Closes the connection when `deadline` passes (timed_out() then reads true). The timer
  // is armed lazily: it wakes at the earliest deadline set since it was armed and re-arms for
  // the current one then, so a request that sets and clears a far deadline (the usual case)
  // leaves the timer alone (cancelling it would cost a trip through the scheduler).
  // With set_lazy_timer(true) (ClientOptions::lazy_deadline_timers) a cleared deadline leaves
  // the timer pending too, so it is not re-armed for the next request.
  void SetDeadline(SteadyTime deadline);
  void CancelDeadline();
  void set_lazy_timer(bool lazy) { lazy_timer_ = lazy; }
  bool timed_out() const { return timed_out_; }
  void Cancel() {
    cancelled_ = true;
    Close();
  }
  bool cancelled() const { return cancelled_; }
  void Close();
  bool open() const { return !closed_; }

  bool connected = false;
  bool reused = false;
  SteadyTime idle_since;

  // True when an idle connection can carry another request: open, nothing buffered, and
  // the peer has neither closed it nor sent anything unasked.
  bool IdleAndHealthy();

  // A buffer of at least `size` bytes for streamed body reads, allocated (uninitialised)
  // once per connection rather than once per request.
  std::span<char> ChunkBuffer(size_t size);

 private:
  void ArmTimer(SteadyTime at);
  void OnTimer();

  asio::any_io_executor executor_;
  ClientTransport transport_;
  asio::ip::tcp::resolver resolver_;
  asio::steady_timer timer_;
  boost::beast::flat_buffer buffer_;
  std::string pool_key_;
  std::unique_ptr<char[]> chunk_;
  size_t chunk_size_ = 0;
  SteadyTime deadline_ = SteadyTime::max();
  bool timer_armed_ = false;
  bool lazy_timer_ = false;
  bool timed_out_ = false;
  bool cancelled_ = false;
  bool closed_ = false;
};

class ConnectionPool {
 public:
  ConnectionPool(size_t max_idle_per_host, std::chrono::nanoseconds idle_timeout,
                 std::chrono::nanoseconds unchecked_reuse_within = {})
      : max_idle_per_host_(max_idle_per_host),
        idle_timeout_(idle_timeout),
        unchecked_reuse_within_(unchecked_reuse_within) {}

  // A healthy idle connection for `key`, or null.
  std::shared_ptr<ClientConnection> Acquire(const std::string& key);
  // Keeps the connection for reuse if there is room; closes it otherwise.
  void Release(std::shared_ptr<ClientConnection> connection);
  // Closes every idle connection; later releases are closed too.
  void Close();
  void CloseIdle();
  size_t idle() const;

 private:
  const size_t max_idle_per_host_;
  const std::chrono::nanoseconds idle_timeout_;
  const std::chrono::nanoseconds unchecked_reuse_within_;  // ClientOptions
  mutable std::mutex mu_;
  bool closed_ = false;
  std::unordered_map<std::string, std::vector<std::shared_ptr<ClientConnection>>> idle_;
};

struct ClientShared {
  ClientShared(asio::any_io_executor client_executor, ClientOptions client_options);

  // The TLS context, built on first use (creating one costs milliseconds).
  const absl::StatusOr<std::shared_ptr<asio::ssl::context>>& Tls();

  asio::any_io_executor executor;
  ClientOptions options;
  ConnectionPool pool;
  std::shared_ptr<spdlog::logger> log;
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> opened{0};
  std::atomic<uint64_t> reused{0};

 private:
  std::once_flag tls_once_;
  absl::StatusOr<std::shared_ptr<asio::ssl::context>> tls_;

 public:
  // "scheme://host[:port]" of absolute request URLs seen so far, parsed (target empty), so
  // that requests to a known origin skip the full URL parse (see ResolveRequestUrl).
  struct StringHash {
    using is_transparent = void;
    size_t operator()(std::string_view text) const { return std::hash<std::string_view>{}(text); }
  };
  std::mutex origins_mu;
  std::unordered_map<std::string, Url, StringHash, std::equal_to<>> origins;
};

// The request's URL resolved against the base URL; absolute URLs to an origin seen before
// with a plain target (nothing that needs validating or normalising) skip the full parse.
absl::StatusOr<Url> ResolveRequestUrl(ClientShared& shared, std::string_view url);

struct StreamState {
  std::shared_ptr<ClientShared> shared;
  std::shared_ptr<ClientConnection> connection;
  Url url;
  std::optional<boost::beast::http::response_parser<boost::beast::http::buffer_body>> parser;
  std::span<char> chunk;  // the connection's ChunkBuffer
  int status = 0;
  bool close_requested = false;
  // Set on the strand before OpenStream / ReadStream return (see ClientStream).
  bool body_buffered = false;
  bool body_complete = false;
  // Set (on the strand) once the body ended, failed or was cancelled; `failure` says which.
  std::atomic<bool> done{false};
  absl::Status failure;
};

// The result of one attempt: `retry` when it failed on a reused connection before the
// server can have acted on it, so a fresh connection may try again.
template <typename T>
struct Attempt {
  absl::StatusOr<T> result;
  bool retry = false;
};

// The connection to use for `url`: a pooled one or a new (unconnected) one.
std::shared_ptr<ClientConnection> AcquireConnection(ClientShared& shared, const Url& url);

// On the connection's strand: connects if needed, sends the request, reads the whole
// response and returns the connection to the pool when it can be reused.
asio::awaitable<Attempt<ClientResponse>> RoundTrip(std::shared_ptr<ClientShared> shared,
                                                   std::shared_ptr<ClientConnection> connection,
                                                   Url url, const ClientRequest& request,
                                                   SteadyTime deadline);

// On the connection's strand: like RoundTrip up to the response headers.
asio::awaitable<Attempt<bool>> OpenStream(std::shared_ptr<StreamState> state,
                                          const ClientRequest& request, SteadyTime deadline);

// On the connection's strand: the next body bytes (empty at the end).
asio::awaitable<absl::StatusOr<std::string_view>> ReadStream(std::shared_ptr<StreamState> state);

// On the connection's strand: the body ended; pool or close the connection.
void FinishStream(StreamState& state);
// On the connection's strand: closes the stream's connection unless the body already ended.
void CancelStream(const std::shared_ptr<StreamState>& state);

}  // namespace zumik::http::detail
