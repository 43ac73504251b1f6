// ResponseWriter: response heads, whole responses, chunked streams and SSE events.
#include "core/http/response_writer.h"

#include <array>
#include <boost/asio/buffer.hpp>
#include <boost/beast/core/string.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>

#include "core/hex.h"
#include "core/http/errors.h"
#include "core/http/server_connection.h"
#include "core/http/sse.h"
#include "core/json_string.h"
#include "core/log.h"
#include "core/status.h"

namespace zumik::http {
namespace {

namespace asio = boost::asio;
using boost::beast::iequals;
using namespace std::string_view_literals;

// "<size in hex>\r\n" into `out` (24 bytes is plenty); returns its length.
size_t FormatChunkSizeLine(size_t size, std::array<char, 24>& out) {
  char* end = WriteHex(out.data(), size, HexDigitCount(size));
  *end++ = '\r';
  *end++ = '\n';
  return static_cast<size_t>(end - out.data());
}

bool StatusHasNoBody(int status) { return status < 200 || status == 204 || status == 304; }

// An awaitable that yields `status` at once, for the error paths of functions that are not
// coroutines themselves.
asio::awaitable<absl::Status> StatusNow(absl::Status status) { co_return status; }

bool Contains(const Headers& headers, std::string_view name) {
  for (const auto& [candidate, value] : headers) {
    if (iequals(candidate, name)) return true;
  }
  return false;
}

}  // namespace

ResponseWriter::ResponseWriter(detail::ServerConnection& connection, const Request& request)
    : connection_(connection),
      head_only_(request.method() == Method::head),
      http10_(request.version() < 11),
      keep_alive_(request.keep_alive() && !connection.draining()) {}

void ResponseWriter::BuildHead(int status, std::string_view content_type, const Headers& headers,
                               bool has_length, size_t content_length) {
  status_ = status;
  if (connection_.draining()) keep_alive_ = false;
  head_.clear();
  // One allocation: the status line and the framing headers take well under 160 bytes.
  size_t estimate = 160 + content_type.size();
  for (const auto& [name, value] : connection_.options().default_headers) {
    estimate += name.size() + value.size() + 4;
  }
  for (const auto& [name, value] : headers) estimate += name.size() + value.size() + 4;
  head_.reserve(estimate);
  head_.append("HTTP/1.1 "sv);
  AppendInt(status, &head_);
  head_.push_back(' ');
  head_.append(ReasonPhrase(status));
  head_.append("\r\n"sv);
  bool has_content_type = false;
  auto add = [&](std::string_view name, std::string_view value) {
    if (name.empty() || IsUnsafeHeaderText(name) || IsUnsafeHeaderText(value)) return;
    if (IsFramingHeader(name)) {
      if (iequals(name, "connection") && iequals(value, "close")) keep_alive_ = false;
      return;
    }
    if (iequals(name, "content-type")) has_content_type = true;
    AppendHeaderLine(head_, name, value);
  };
  for (const auto& [name, value] : connection_.options().default_headers) {
    // A handler's header replaces a default of the same name.
    if (!Contains(headers, name)) add(name, value);
  }
  for (const auto& [name, value] : headers) add(name, value);
  if (!has_content_type && !content_type.empty()) add("Content-Type", content_type);
  if (has_length) {
    if (!StatusHasNoBody(status)) {
      head_.append("Content-Length: "sv);
      AppendInt(static_cast<int64_t>(content_length), &head_);
      head_.append("\r\n"sv);
    }
  } else if (chunked_) {
    head_.append("Transfer-Encoding: chunked\r\n"sv);
  }
  if (!keep_alive_) {
    head_.append("Connection: close\r\n"sv);
  } else if (http10_) {
    head_.append("Connection: keep-alive\r\n"sv);
  }
  head_.append("\r\n"sv);
}

asio::awaitable<absl::Status> ResponseWriter::Respond(int status, std::string_view body,
                                                      std::string_view content_type,
                                                      const Headers& headers) {
  if (state_ != State::kNotStarted) {
    co_return absl::FailedPreconditionError("response already started");
  }
  state_ = State::kFinished;
  BuildHead(status, content_type, headers, /*has_length=*/true, body.size());
  const bool send_body = !head_only_ && !StatusHasNoBody(status);
  body_bytes_ = send_body ? body.size() : 0;
  const std::array<asio::const_buffer, 2> buffers = {
      asio::buffer(head_), asio::buffer(body.data(), send_body ? body.size() : 0)};
  co_return co_await connection_.Write(buffers);
}

asio::awaitable<absl::Status> ResponseWriter::RespondHead(int status, size_t content_length,
                                                          std::string_view content_type,
                                                          const Headers& headers) {
  if (!head_only_) co_return absl::FailedPreconditionError("RespondHead answers HEAD only");
  if (state_ != State::kNotStarted) {
    co_return absl::FailedPreconditionError("response already started");
  }
  state_ = State::kFinished;
  BuildHead(status, content_type, headers, /*has_length=*/true, content_length);
  const std::array<asio::const_buffer, 1> buffers = {asio::buffer(head_)};
  co_return co_await connection_.Write(buffers);
}

asio::awaitable<absl::Status> ResponseWriter::RespondJson(int status,
                                                          const boost::json::value& body,
                                                          const Headers& headers) {
  const std::string text = boost::json::serialize(body);
  co_return co_await Respond(status, text, kJsonContentType, headers);
}

asio::awaitable<absl::Status> ResponseWriter::RespondError(int status, std::string_view message,
                                                           std::string_view type,
                                                           std::string_view code,
                                                           const Headers& headers) {
  const auto code_for = connection_.options().error_code_for_status;
  if (code.empty() && code_for != nullptr) code = code_for(status);
  const std::string body = ErrorBody(status, message, type, code);
  co_return co_await Respond(status, body, kJsonContentType, headers);
}

asio::awaitable<absl::Status> ResponseWriter::RespondStatus(const absl::Status& status) {
  if (status.ok()) {
    co_return co_await Respond(200, "{}");
  }
  const auto message = status.message();
  co_return co_await RespondError(HttpStatusFromStatus(status),
                                  std::string_view(message.data(), message.size()));
}

asio::awaitable<absl::Status> ResponseWriter::BeginStream(int status, std::string_view content_type,
                                                          const Headers& headers,
                                                          std::string_view first_chunk) {
  if (state_ != State::kNotStarted) {
    co_return absl::FailedPreconditionError("response already started");
  }
  state_ = State::kStreaming;
  // HTTP/1.0 has no chunked encoding: the body runs until the connection closes.
  chunked_ = !http10_;
  if (http10_) keep_alive_ = false;
  BuildHead(status, content_type, headers, /*has_length=*/false, 0);
  co_return co_await WriteBody(head_, {}, first_chunk, {}, /*last=*/false);
}

asio::awaitable<absl::Status> ResponseWriter::BeginSse(const Headers& headers) {
  if (Contains(headers, "cache-control")) {
    co_return co_await BeginStream(200, kSseContentType, headers);
  }
  Headers with_cache = headers;
  with_cache.emplace_back("Cache-Control", "no-cache");
  co_return co_await BeginStream(200, kSseContentType, with_cache);
}

// Not a coroutine itself (one coroutine frame less per chunk): WriteBody's frame holds the
// views.
asio::awaitable<absl::Status> ResponseWriter::WriteStreamed(std::string_view prefix,
                                                            std::string_view data,
                                                            std::string_view suffix) {
  if (state_ != State::kStreaming) {
    return StatusNow(absl::FailedPreconditionError(state_ == State::kNotStarted
                                                       ? "stream not started (call BeginStream)"
                                                       : "response already finished"));
  }
  return WriteBody({}, prefix, data, suffix, /*last=*/false);
}

asio::awaitable<absl::Status> ResponseWriter::WriteBody(std::string_view head,
                                                        std::string_view prefix,
                                                        std::string_view data,
                                                        std::string_view suffix, bool last) {
  size_t size = prefix.size() + data.size() + suffix.size();
  if (head_only_) size = 0;
  const bool terminate = last && chunked_ && !head_only_;
  if (head.empty() && size == 0 && !terminate) co_return absl::OkStatus();
  body_bytes_ += size;
  // The chunk size line lives on this frame; no allocation per chunk. A chunk of no bytes
  // gets no size line at all: "0" would end the body.
  std::array<char, 24> size_line;
  size_t size_line_length = 0;
  if (chunked_ && size > 0) size_line_length = FormatChunkSizeLine(size, size_line);
  // The chunk's CRLF, then (ending the body) the zero-size last chunk and the empty trailer.
  static constexpr std::string_view kCrlfLastChunk = "\r\n0\r\n\r\n";
  std::string_view tail;
  if (size_line_length > 0) tail = kCrlfLastChunk.substr(0, 2);
  if (terminate) tail = size_line_length > 0 ? kCrlfLastChunk : kCrlfLastChunk.substr(2);
  if (size == 0) prefix = data = suffix = {};
  const std::array<asio::const_buffer, 6> buffers = {
      asio::buffer(head),   asio::buffer(size_line.data(), size_line_length),
      asio::buffer(prefix), asio::buffer(data),
      asio::buffer(suffix), asio::buffer(tail)};
  co_return co_await connection_.Write(buffers);
}

// Not a coroutine itself either: WriteBody's frame holds the view of `data`.
asio::awaitable<absl::Status> ResponseWriter::WriteChunk(std::string_view data) {
  return WriteStreamed({}, data, {});
}

asio::awaitable<absl::Status> ResponseWriter::WriteSse(std::string_view data,
                                                       std::string_view event,
                                                       std::string_view id) {
  if (event.empty() && id.empty() && data.find_first_of("\r\n") == std::string_view::npos) {
    co_return co_await WriteStreamed("data: ", data, "\n\n");
  }
  scratch_.clear();
  AppendSseEvent(scratch_, data, event, id);
  co_return co_await WriteStreamed({}, scratch_, {});
}

asio::awaitable<absl::Status> ResponseWriter::WriteSseComment(std::string_view text) {
  co_return co_await WriteStreamed(": ", text.substr(0, text.find_first_of("\r\n")), "\n\n");
}

asio::awaitable<absl::Status> ResponseWriter::Finish(std::string_view last_chunk) {
  if (state_ == State::kFinished) {
    if (last_chunk.empty()) co_return absl::OkStatus();
    co_return absl::FailedPreconditionError("response already finished");
  }
  if (state_ == State::kNotStarted) {
    co_return absl::FailedPreconditionError("Finish before BeginStream");
  }
  state_ = State::kFinished;
  co_return co_await WriteBody({}, {}, last_chunk, {}, /*last=*/true);
}

void IgnoreClientGone(const absl::Status& status) {
  if (status.ok() || absl::IsUnavailable(status) || absl::IsDeadlineExceeded(status)) return;
  Logger("http")->error("handler write failed: {}", MessageOf(status));
}

void ResponseWriter::Abort() {
  keep_alive_ = false;
  if (state_ != State::kStreaming) return;
  state_ = State::kFinished;  // the server must not end the body for the handler
  connection_.ShutdownSend();
}

bool ResponseWriter::client_gone() const { return connection_.client_gone(); }

void ResponseWriter::OnClientGone(std::function<void()> callback) {
  connection_.AddGoneCallback(std::move(callback));
}

}  // namespace zumik::http
