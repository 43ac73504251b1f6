// The client's connection work, on each connection's strand: connect (TCP, TLS), send a
// request, read a whole response or a response stream; plus the idle pool.
#include "core/http/client_connection.h"

#include <openssl/ssl.h>
#include <openssl/x509v3.h>
#include <sys/socket.h>

#include <array>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cerrno>
#include <limits>
#include <tuple>

#include "core/http/put_buffered.h"
#include "core/json_string.h"
#include "core/log.h"
#include "core/status.h"

namespace zumik::http::detail {
namespace {

namespace bhttp = boost::beast::http;
using boost::beast::iequals;
using namespace std::string_view_literals;
using boost::system::error_code;
using tcp = asio::ip::tcp;

constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);
constexpr size_t kReadBufferBytes = 16 << 10;

SteadyTime DeadlineAfter(std::chrono::nanoseconds timeout) {
  if (timeout >= std::chrono::hours(24 * 365)) return SteadyTime::max();
  return std::chrono::steady_clock::now() +
         std::chrono::duration_cast<std::chrono::steady_clock::duration>(timeout);
}

bool IsIdempotent(Method method) {
  return method == Method::get || method == Method::head || method == Method::put ||
         method == Method::delete_ || method == Method::options || method == Method::trace;
}

absl::Status TransportError(const ClientConnection& connection, const Url& url,
                            std::string_view what, const error_code& ec) {
  if (connection.timed_out()) {
    return Errorf(absl::StatusCode::kDeadlineExceeded, "{} {}: deadline exceeded", what,
                  url.Authority());
  }
  // Cancel(), or asio cancellation of the awaiting coroutine (e.g. a server handler whose
  // client left).
  if (connection.cancelled() || ec == asio::error::operation_aborted) {
    return Errorf(absl::StatusCode::kCancelled, "{} {}: cancelled", what, url.Authority());
  }
  return Errorf(absl::StatusCode::kUnavailable, "{} {} failed: {}", what, url.Authority(),
                ec.message());
}

absl::Status ReadError(const ClientConnection& connection, const Url& url,
                       const ClientOptions& options, const error_code& ec) {
  if (ec == bhttp::error::body_limit) {
    return Errorf(absl::StatusCode::kResourceExhausted,
                  "response body from {} is larger than {} bytes", url.Authority(),
                  options.max_response_body_bytes);
  }
  if (ec == bhttp::error::header_limit) {
    return Errorf(absl::StatusCode::kResourceExhausted,
                  "response headers from {} are larger than {} bytes", url.Authority(),
                  options.max_response_header_bytes);
  }
  const bool parse_error =
      ec.category() == bhttp::make_error_code(bhttp::error::bad_version).category() &&
      ec != bhttp::error::end_of_stream && ec != bhttp::error::partial_message;
  if (parse_error && !connection.cancelled() && !connection.timed_out()) {
    return Errorf(absl::StatusCode::kInternal, "malformed response from {}: {}", url.Authority(),
                  ec.message());
  }
  return TransportError(connection, url, "read response from", ec);
}

asio::awaitable<absl::Status> Connect(ClientShared& shared, ClientConnection& connection,
                                      const Url& url, SteadyTime deadline) {
  connection.SetDeadline(std::min(deadline, DeadlineAfter(shared.options.connect_timeout)));
  error_code not_ip;
  const asio::ip::address address = asio::ip::make_address(url.host, not_ip);
  error_code connect_ec;
  if (!not_ip) {
    // An IP literal needs no resolver (which would cost a thread hop).
    std::tie(connect_ec) = co_await connection.transport().socket().async_connect(
        tcp::endpoint(address, url.port), kTuple);
  } else {
    auto [resolve_ec, endpoints] =
        co_await connection.resolver().async_resolve(url.host, std::to_string(url.port), kTuple);
    if (resolve_ec || connection.timed_out() || connection.cancelled()) {
      if (connection.timed_out() || connection.cancelled()) {
        co_return TransportError(connection, url, "resolve", resolve_ec);
      }
      co_return Errorf(absl::StatusCode::kUnavailable, "cannot resolve host '{}': {}", url.host,
                       resolve_ec.message());
    }
    std::tie(connect_ec, std::ignore) =
        co_await asio::async_connect(connection.transport().socket(), endpoints, kTuple);
  }
  if (connect_ec || connection.timed_out() || connection.cancelled()) {
    co_return TransportError(connection, url, "connect to", connect_ec);
  }
  error_code ignored;
  connection.transport().socket().set_option(tcp::no_delay(true), ignored);
  // Responses are read up to the buffer's free capacity at a time (at least 512 bytes).
  connection.buffer().reserve(kReadBufferBytes);
  if (!url.tls()) connection.transport().socket().non_blocking(true, ignored);  // SendRequest
  if (url.tls()) {
    const auto& tls = shared.Tls();
    if (!tls.ok()) co_return tls.status();
    connection.transport().EnableTls(**tls);
    SSL* ssl = connection.transport().tls()->native_handle();
    // SNI carries names only; verification checks whichever the URL used.
    if (not_ip) SSL_set_tlsext_host_name(ssl, url.host.c_str());
    if (shared.options.tls.verify_peer) {
      X509_VERIFY_PARAM* param = SSL_get0_param(ssl);
      if (not_ip) {
        X509_VERIFY_PARAM_set_hostflags(param, X509_CHECK_FLAG_NO_PARTIAL_WILDCARDS);
        X509_VERIFY_PARAM_set1_host(param, url.host.c_str(), url.host.size());
      } else {
        X509_VERIFY_PARAM_set1_ip_asc(param, url.host.c_str());
      }
    }
    auto [handshake_ec] = co_await connection.transport().tls()->async_handshake(
        asio::ssl::stream_base::client, kTuple);
    if (handshake_ec || connection.timed_out() || connection.cancelled()) {
      if (connection.timed_out() || connection.cancelled()) {
        co_return TransportError(connection, url, "TLS handshake with", handshake_ec);
      }
      std::string detail = handshake_ec.message();
      const long verify_result = SSL_get_verify_result(ssl);
      if (verify_result != X509_V_OK) {
        detail = fmt::format("certificate verification failed: {}",
                             X509_verify_cert_error_string(verify_result));
      }
      TakeOpenSslError();
      co_return Errorf(absl::StatusCode::kUnavailable, "TLS handshake with {} failed: {}",
                       url.Authority(), detail);
    }
  }
  connection.connected = true;
  connection.SetDeadline(deadline);
  co_return absl::OkStatus();
}

// Serialises and sends the request head and body; `close_requested` reports a
// "Connection: close" the caller asked for.
asio::awaitable<error_code> SendRequest(const ClientOptions& options, ClientConnection& connection,
                                        const Url& url, const ClientRequest& request,
                                        bool* close_requested) {
  std::string head;
  head.reserve(256);
  head.append(MethodName(request.method));
  head.push_back(' ');
  head.append(url.target);
  head.append(" HTTP/1.1\r\n"sv);
  bool has_host = false;
  auto add = [&](std::string_view name, std::string_view value) {
    if (name.empty() || IsUnsafeHeaderText(name) || IsUnsafeHeaderText(value)) return;
    if (IsFramingHeader(name)) {
      if (!iequals(name, "connection") || !iequals(value, "close")) return;
      *close_requested = true;
    }
    if (iequals(name, "host")) has_host = true;
    AppendHeaderLine(head, name, value);
  };
  for (const auto& [name, value] : request.headers) add(name, value);
  for (const auto& [name, value] : options.default_headers) {
    bool overridden = false;
    for (const auto& [request_name, request_value] : request.headers) {
      overridden = overridden || iequals(request_name, name);
    }
    if (!overridden) add(name, value);
  }
  if (!has_host) add("Host", url.HostHeader());
  const std::string_view body = request.Body();
  const bool has_body = !body.empty() || request.method == Method::post ||
                        request.method == Method::put || request.method == Method::patch;
  if (has_body) {
    head.append("Content-Length: "sv);
    AppendInt(static_cast<int64_t>(body.size()), &head);
    head.append("\r\n"sv);
  }
  head.append("\r\n"sv);
  const std::array<asio::const_buffer, 2> buffers = {asio::buffer(head), asio::buffer(body)};
  // A plain connection's socket is non-blocking (see Connect): a request that fits the send
  // buffer goes out in one call, without the trip through the scheduler an asynchronous write
  // costs even when it completes at once. The rest, if any, goes the asynchronous way.
  size_t written = 0;
  if (connection.transport().tls() == nullptr) {
    error_code ec;
    written = connection.transport().socket().write_some(buffers, ec);
    if (ec == asio::error::would_block || ec == asio::error::try_again) {
      ec = {};
      written = 0;
    }
    if (ec) co_return ec;
    if (written == asio::buffer_size(buffers)) co_return error_code();
  }
  std::array<asio::const_buffer, 2> rest = buffers;
  for (asio::const_buffer& buffer : rest) {
    const size_t skip = std::min(written, buffer.size());
    buffer += skip;
    written -= skip;
  }
  auto [ec, n] = co_await asio::async_write(connection.transport(), rest, kTuple);
  co_return ec;
}

template <typename Parser>
void ApplyLimits(Parser& parser, const ClientOptions& options, Method method, uint64_t body_limit) {
  parser.header_limit(static_cast<uint32_t>(
      std::min<size_t>(options.max_response_header_bytes, std::numeric_limits<uint32_t>::max())));
  parser.body_limit(body_limit);
  if (method == Method::head) parser.skip(true);
}

bool IsInterim(int status) { return status >= 100 && status < 200 && status != 101; }

// A server may answer before it has read the whole request (413 to an oversized upload) and
// close, so the rest of the upload fails; its answer may still be waiting to be read.
bool AnsweredEarly(const error_code& write_ec) {
  return write_ec == asio::error::broken_pipe || write_ec == asio::error::connection_reset;
}

// A reused connection failed before the server can have acted: a fresh one may try again,
// unless the failure was a deadline, Cancel() or the caller's own cancellation (asio
// operation_aborted, e.g. a server handler whose client left).
bool MayRetry(const ClientConnection& connection, const error_code& ec) {
  return connection.reused && !connection.timed_out() && !connection.cancelled() &&
         ec != asio::error::operation_aborted;
}

}  // namespace

ClientConnection::ClientConnection(const asio::any_io_executor& strand, std::string pool_key)
    : executor_(strand),
      transport_(strand),
      resolver_(strand),
      timer_(strand),
      pool_key_(std::move(pool_key)) {}

void ClientConnection::SetDeadline(SteadyTime deadline) {
  deadline_ = deadline;
  if (deadline == SteadyTime::max() || (timer_armed_ && timer_.expiry() <= deadline)) return;
  ArmTimer(deadline);
}

void ClientConnection::CancelDeadline() {
  deadline_ = SteadyTime::max();
  if (lazy_timer_ || !timer_armed_) return;
  timer_armed_ = false;
  timer_.cancel();
}

void ClientConnection::ArmTimer(SteadyTime at) {
  timer_armed_ = true;
  // Re-arming aborts the pending wait; its handler then does nothing.
  timer_.expires_at(at);
  timer_.async_wait([weak = weak_from_this()](const error_code& ec) {
    if (ec) return;
    if (auto self = weak.lock()) self->OnTimer();
  });
}

void ClientConnection::OnTimer() {
  timer_armed_ = false;
  if (closed_ || deadline_ == SteadyTime::max()) return;
  if (std::chrono::steady_clock::now() >= deadline_) {
    timed_out_ = true;
    Close();
    return;
  }
  ArmTimer(deadline_);
}

std::span<char> ClientConnection::ChunkBuffer(size_t size) {
  if (chunk_size_ < size) {
    chunk_.reset(new char[size]);
    chunk_size_ = size;
  }
  return {chunk_.get(), chunk_size_};
}

void ClientConnection::Close() {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  resolver_.cancel();
  transport_.socket().close(ignored);
  timer_.cancel();
}

bool ClientConnection::IdleAndHealthy() {
  if (closed_ || !connected || buffer_.size() != 0) return false;
  char byte;
  const ssize_t n = ::recv(transport_.socket().native_handle(), &byte, 1, MSG_PEEK | MSG_DONTWAIT);
  // 0: the peer closed; >0: bytes nobody asked for (or a TLS close_notify).
  return n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK);
}

std::shared_ptr<ClientConnection> ConnectionPool::Acquire(const std::string& key) {
  std::vector<std::shared_ptr<ClientConnection>> stale;
  std::shared_ptr<ClientConnection> found;
  {
    std::lock_guard lock(mu_);
    auto it = idle_.find(key);
    if (it == idle_.end()) return nullptr;
    auto& list = it->second;
    const auto now = std::chrono::steady_clock::now();
    while (!list.empty() && !found) {
      std::shared_ptr<ClientConnection> candidate = std::move(list.back());
      list.pop_back();
      const auto idle = now - candidate->idle_since;
      const bool healthy =
          idle < unchecked_reuse_within_
              ? candidate->open() && candidate->connected && candidate->buffer().size() == 0
              : idle <= idle_timeout_ && candidate->IdleAndHealthy();
      if (healthy) {
        found = std::move(candidate);
      } else {
        stale.push_back(std::move(candidate));
      }
    }
  }
  for (auto& connection : stale) connection->Close();
  return found;
}

void ConnectionPool::Release(std::shared_ptr<ClientConnection> connection) {
  {
    std::lock_guard lock(mu_);
    if (!closed_ && connection->open()) {
      auto& list = idle_[connection->pool_key()];
      if (list.size() < max_idle_per_host_) {
        connection->idle_since = std::chrono::steady_clock::now();
        list.push_back(std::move(connection));
        return;
      }
    }
  }
  connection->Close();
}

void ConnectionPool::CloseIdle() {
  std::unordered_map<std::string, std::vector<std::shared_ptr<ClientConnection>>> idle;
  {
    std::lock_guard lock(mu_);
    idle.swap(idle_);
  }
  for (auto& [key, list] : idle) {
    for (auto& connection : list) connection->Close();
  }
}

void ConnectionPool::Close() {
  {
    std::lock_guard lock(mu_);
    closed_ = true;
  }
  CloseIdle();
}

size_t ConnectionPool::idle() const {
  std::lock_guard lock(mu_);
  size_t count = 0;
  for (const auto& [key, list] : idle_) count += list.size();
  return count;
}

ClientShared::ClientShared(asio::any_io_executor client_executor, ClientOptions client_options)
    : executor(std::move(client_executor)),
      options(std::move(client_options)),
      pool(options.max_idle_per_host, options.idle_timeout, options.unchecked_reuse_within),
      log(Logger("http.client")) {}

const absl::StatusOr<std::shared_ptr<asio::ssl::context>>& ClientShared::Tls() {
  std::call_once(tls_once_, [this] {
    tls_ = MakeClientTlsContext(options.tls);
    if (!tls_.ok()) log->warn("https requests will fail: {}", MessageOf(tls_.status()));
  });
  return tls_;
}

namespace {

// Characters a request target may hold as they are (RFC 3986 pchar and query characters, no
// '%' escapes and no fragment): such a target needs no validation or normalisation.
bool IsPlainTargetChar(char c) {
  return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
         std::string_view("-._~!$&'()*+,;=:@/?").find(c) != std::string_view::npos;
}

}  // namespace

absl::StatusOr<Url> ResolveRequestUrl(ClientShared& shared, std::string_view text) {
  const size_t scheme_end = text.find("://");
  const size_t path =
      scheme_end == std::string_view::npos ? scheme_end : text.find('/', scheme_end + 3);
  if (text.empty() || text.front() == '/' || path == std::string_view::npos) {
    return ResolveUrl(text, shared.options.base_url);
  }
  const std::string_view origin = text.substr(0, path);
  const std::string_view target = text.substr(path);
  bool plain = true;
  for (const char c : target) plain = plain && IsPlainTargetChar(c);
  if (plain) {
    std::lock_guard lock(shared.origins_mu);
    if (auto it = shared.origins.find(origin); it != shared.origins.end()) {
      Url url = it->second;
      url.target.assign(target);
      return url;
    }
  }
  absl::StatusOr<Url> url = ParseUrl(text);
  if (url.ok() && plain) {
    // The authority ends at the first '/', so the origin alone decides scheme, host and port.
    Url known = *url;
    known.target.clear();
    constexpr size_t kMaxOrigins = 256;
    std::lock_guard lock(shared.origins_mu);
    if (shared.origins.size() >= kMaxOrigins) shared.origins.clear();
    shared.origins.emplace(std::string(origin), std::move(known));
  }
  return url;
}

std::shared_ptr<ClientConnection> AcquireConnection(ClientShared& shared, const Url& url) {
  std::string key = url.scheme + "://" + url.Authority();
  if (auto pooled = shared.pool.Acquire(key)) {
    pooled->reused = true;
    ++shared.reused;
    return pooled;
  }
  ++shared.opened;
  std::shared_ptr<ClientConnection> connection =
      shared.options.single_threaded
          ? std::make_shared<ClientConnection>(shared.executor, std::move(key))
          : std::make_shared<ClientConnection>(asio::make_strand(shared.executor), std::move(key));
  connection->set_lazy_timer(shared.options.lazy_deadline_timers);
  return connection;
}

asio::awaitable<Attempt<ClientResponse>> RoundTrip(std::shared_ptr<ClientShared> shared,
                                                   std::shared_ptr<ClientConnection> connection,
                                                   Url url, const ClientRequest& request,
                                                   SteadyTime deadline) {
  ClientConnection& c = *connection;
  const ClientOptions& options = shared->options;
  c.SetDeadline(deadline);
  if (!c.connected) {
    absl::Status connected = co_await Connect(*shared, c, url, deadline);
    if (!connected.ok()) {
      c.Close();
      co_return Attempt<ClientResponse>{std::move(connected), false};
    }
  }
  bool close_requested = false;
  const error_code write_ec = co_await SendRequest(options, c, url, request, &close_requested);
  if (write_ec && !AnsweredEarly(write_ec)) {
    const bool retry = MayRetry(c, write_ec);
    c.Close();
    co_return Attempt<ClientResponse>{TransportError(c, url, "send request to", write_ec), retry};
  }
  std::optional<bhttp::response_parser<StringBody>> parser;
  do {
    parser.emplace();
    ApplyLimits(*parser, options, request.method, options.max_response_body_bytes);
    auto [read_ec, n] = co_await bhttp::async_read(c.transport(), c.buffer(), *parser, kTuple);
    if (read_ec && write_ec) {  // no answer after all: the failed upload is the error
      const bool retry = MayRetry(c, write_ec);
      c.Close();
      co_return Attempt<ClientResponse>{TransportError(c, url, "send request to", write_ec), retry};
    }
    if (read_ec) {
      const bool retry =
          MayRetry(c, read_ec) && !parser->got_some() && IsIdempotent(request.method);
      c.Close();
      co_return Attempt<ClientResponse>{ReadError(c, url, options, read_ec), retry};
    }
  } while (IsInterim(static_cast<int>(parser->get().result_int())));
  c.CancelDeadline();
  auto message = parser->release();
  const bool reusable = !write_ec && !close_requested && message.keep_alive() &&
                        c.buffer().size() == 0 && message.result_int() != 101;
  ClientResponse response;
  response.status = static_cast<int>(message.result_int());
  response.body = std::move(message.body());
  response.headers = std::move(static_cast<Fields&>(message));
  if (reusable) {
    shared->pool.Release(std::move(connection));
  } else {
    c.Close();
  }
  co_return Attempt<ClientResponse>{std::move(response), false};
}

asio::awaitable<Attempt<bool>> OpenStream(std::shared_ptr<StreamState> state,
                                          const ClientRequest& request, SteadyTime deadline) {
  ClientConnection& c = *state->connection;
  const ClientOptions& options = state->shared->options;
  c.SetDeadline(deadline);
  if (!c.connected) {
    absl::Status connected = co_await Connect(*state->shared, c, state->url, deadline);
    if (!connected.ok()) {
      c.Close();
      co_return Attempt<bool>{std::move(connected), false};
    }
  }
  const error_code write_ec =
      co_await SendRequest(options, c, state->url, request, &state->close_requested);
  // As in RoundTrip: an upload cut short by the server's early answer still has that answer.
  if (write_ec && !AnsweredEarly(write_ec)) {
    const bool retry = MayRetry(c, write_ec);
    c.Close();
    co_return Attempt<bool>{TransportError(c, state->url, "send request to", write_ec), retry};
  }
  if (write_ec) state->close_requested = true;  // never pooled: the upload did not finish
  do {
    state->parser.emplace();
    ApplyLimits(*state->parser, options, request.method, std::numeric_limits<uint64_t>::max());
    auto [read_ec, n] =
        co_await bhttp::async_read_header(c.transport(), c.buffer(), *state->parser, kTuple);
    if (read_ec && write_ec) {
      const bool retry = MayRetry(c, write_ec);
      c.Close();
      co_return Attempt<bool>{TransportError(c, state->url, "send request to", write_ec), retry};
    }
    if (read_ec) {
      const bool retry =
          MayRetry(c, read_ec) && !state->parser->got_some() && IsIdempotent(request.method);
      c.Close();
      co_return Attempt<bool>{ReadError(c, state->url, options, read_ec), retry};
    }
    if (IsInterim(static_cast<int>(state->parser->get().result_int())) &&
        !state->parser->is_done()) {
      // An interim response has no body; read_header stops right after its head.
      c.Close();
      co_return Attempt<bool>{Errorf(absl::StatusCode::kInternal,
                                     "malformed interim response from {}", state->url.Authority()),
                              false};
    }
  } while (IsInterim(static_cast<int>(state->parser->get().result_int())));
  state->status = static_cast<int>(state->parser->get().result_int());
  state->chunk = c.ChunkBuffer(std::max<size_t>(options.stream_chunk_bytes, 1));
  state->body_buffered = c.buffer().size() > 0 || state->parser->is_done();
  co_return Attempt<bool>{true, false};
}

void FinishStream(StreamState& state) {
  state.done = true;
  state.body_complete = true;
  ClientConnection& c = *state.connection;
  c.CancelDeadline();
  const bool reusable = !state.close_requested && state.parser->keep_alive() &&
                        c.buffer().size() == 0 && c.open() && state.status != 101;
  if (reusable) {
    state.shared->pool.Release(state.connection);
  } else {
    c.Close();
  }
}

asio::awaitable<absl::StatusOr<std::string_view>> ReadStream(std::shared_ptr<StreamState> state) {
  if (state->done) {
    if (!state->failure.ok()) co_return state->failure;
    co_return std::string_view();
  }
  ClientConnection& c = *state->connection;
  auto& parser = *state->parser;
  while (!parser.is_done()) {
    auto& body = parser.get().body();
    body.data = state->chunk.data();
    body.size = state->chunk.size();
    body.more = true;
    // The bytes already read go into the body's free space first, as async_read_some would
    // but without its trip through the scheduler. The parser is not eager (one put parses a
    // chunk header or a chunk's data), and PutBuffered loops until the bytes or the space run
    // out: several SSE events that arrived together are handed on as one piece (one write
    // downstream), and a piece is never held back for bytes that have not arrived.
    error_code ec = PutBuffered(c.buffer(), parser);
    if (!ec && !parser.is_done() && parser.get().body().size == state->chunk.size()) {
      std::tie(ec, std::ignore) =
          co_await bhttp::async_read_some(c.transport(), c.buffer(), parser, kTuple);
      if (ec == bhttp::error::need_buffer) ec = {};
      if (!ec) ec = PutBuffered(c.buffer(), parser);
    }
    if (ec) {
      state->done = true;
      state->failure = ReadError(c, state->url, state->shared->options, ec);
      c.Close();
      co_return state->failure;
    }
    const size_t received = state->chunk.size() - parser.get().body().size;
    if (received > 0) {
      state->body_complete = parser.is_done();
      co_return std::string_view(state->chunk.data(), received);
    }
  }
  FinishStream(*state);
  co_return std::string_view();
}

void CancelStream(const std::shared_ptr<StreamState>& state) {
  if (state->done) return;
  state->done = true;
  state->failure =
      Errorf(absl::StatusCode::kCancelled, "stream from {} cancelled", state->url.Authority());
  state->connection->Cancel();
}

}  // namespace zumik::http::detail
