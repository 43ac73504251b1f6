// How a handler answers: one whole response, or a streamed one (chunked transfer-encoding,
// each chunk written to the socket at once) with helpers for Server-Sent Events.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/json/fwd.hpp>
#include <cstdint>
#include <functional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "core/http/message.h"

namespace zumik::http {

namespace detail {
class ServerConnection;
}  // namespace detail

inline constexpr std::string_view kJsonContentType = "application/json";
inline constexpr std::string_view kSseContentType = "text/event-stream";

// Every write returns OK, or kUnavailable once the client is gone (kDeadlineExceeded when
// a write timed out), or kFailedPrecondition when called out of order. None throws.
class ResponseWriter {
 public:
  ResponseWriter(const ResponseWriter&) = delete;
  ResponseWriter& operator=(const ResponseWriter&) = delete;

  // A whole response. Server default headers are added; framing headers in `headers`
  // (Content-Length, Transfer-Encoding, ...) are dropped, except "Connection: close" which
  // closes the connection after this response.
  boost::asio::awaitable<absl::Status> Respond(int status, std::string_view body,
                                               std::string_view content_type = kJsonContentType,
                                               const Headers& headers = {});
  boost::asio::awaitable<absl::Status> RespondJson(int status, const boost::json::value& body,
                                                   const Headers& headers = {});
  // Answers a HEAD request with the head a GET would get: `content_length` is the length of the
  // body a GET would carry (a proxy passes on its upstream's). Only for HEAD requests.
  boost::asio::awaitable<absl::Status> RespondHead(int status, size_t content_length,
                                                   std::string_view content_type,
                                                   const Headers& headers = {});
  // A JSON error body (see errors.h).
  boost::asio::awaitable<absl::Status> RespondError(int status, std::string_view message,
                                                    std::string_view type = {},
                                                    std::string_view code = {},
                                                    const Headers& headers = {});
  // RespondError with the HTTP status HttpStatusFromStatus(status) and its message.
  boost::asio::awaitable<absl::Status> RespondStatus(const absl::Status& status);

  // Starts a streamed response: writes status and headers now (chunked for HTTP/1.1; for an
  // HTTP/1.0 client the body runs to connection close), and `first_chunk`, when not empty, in
  // the same write.
  boost::asio::awaitable<absl::Status> BeginStream(int status, std::string_view content_type,
                                                   const Headers& headers = {},
                                                   std::string_view first_chunk = {});
  // BeginStream(200, "text/event-stream") with Cache-Control: no-cache.
  boost::asio::awaitable<absl::Status> BeginSse(const Headers& headers = {});
  // One chunk, on the wire when this completes. Empty data writes nothing.
  boost::asio::awaitable<absl::Status> WriteChunk(std::string_view data);
  // One SSE event as one chunk: "data: <data>\n\n" (multi-line data becomes several data:
  // lines; `event`/`id` add those fields).
  boost::asio::awaitable<absl::Status> WriteSse(std::string_view data, std::string_view event = {},
                                                std::string_view id = {});
  // ": <text>\n\n", a keep-alive the SSE client ignores.
  boost::asio::awaitable<absl::Status> WriteSseComment(std::string_view text);
  // Ends the streamed body, writing `last_chunk` (when not empty) and the end in one write.
  // Idempotent without a chunk; the server calls it if the handler does not.
  boost::asio::awaitable<absl::Status> Finish(std::string_view last_chunk = {});

  // True once the client has disconnected (or the server closed the connection).
  bool client_gone() const;
  // Runs `callback` on the connection strand when the client goes away (at once if it
  // already has). Callbacks are dropped when the handler returns.
  void OnClientGone(std::function<void()> callback);

  // Closes the connection after this response (sends Connection: close if not yet sent).
  void CloseConnection() { keep_alive_ = false; }
  // Cuts a streamed response short: the connection's sending side closes without the body's
  // end (no last chunk), so the client can tell the body is incomplete, and nothing more is
  // written. Before a streamed response began it is CloseConnection.
  void Abort();

  bool started() const { return state_ != State::kNotStarted; }
  bool finished() const { return state_ == State::kFinished; }
  bool streaming() const { return state_ == State::kStreaming; }
  // The status sent, 0 before.
  int status() const { return status_; }
  // Body bytes written (excluding chunk framing).
  uint64_t body_bytes() const { return body_bytes_; }

 private:
  friend class detail::ServerConnection;
  enum class State { kNotStarted, kStreaming, kFinished };

  ResponseWriter(detail::ServerConnection& connection, const Request& request);

  // Serialises the status line and headers into head_.
  void BuildHead(int status, std::string_view content_type, const Headers& headers, bool has_length,
                 size_t content_length);
  boost::asio::awaitable<absl::Status> WriteStreamed(std::string_view prefix, std::string_view data,
                                                     std::string_view suffix);
  // One write: `head` (may be empty), prefix + data + suffix as one chunk (none when they are
  // all empty), then the end of the body when `last`.
  boost::asio::awaitable<absl::Status> WriteBody(std::string_view head, std::string_view prefix,
                                                 std::string_view data, std::string_view suffix,
                                                 bool last);
  bool keep_alive() const { return keep_alive_; }

  detail::ServerConnection& connection_;
  const bool head_only_;
  const bool http10_;
  bool keep_alive_;
  bool chunked_ = false;
  State state_ = State::kNotStarted;
  int status_ = 0;
  uint64_t body_bytes_ = 0;
  std::string head_;
  std::string scratch_;
};

// For a write whose failure leaves the handler nothing to do, typically its last one:
// `IgnoreClientGone(co_await writer.Respond(...));`. kUnavailable (the client is gone) and
// kDeadlineExceeded (the write timed out) need no handling: the server has already closed the
// connection. Any other error is a handler bug (a write out of order) and is logged.
void IgnoreClientGone(const absl::Status& status);

}  // namespace zumik::http
