// HTTP vocabulary shared by the server and the client: methods, header lists, URL percent
// decoding, and the server-side Request a handler receives.
#pragma once

#include <boost/asio/buffer.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/fields.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/verb.hpp>
#include <cstdint>
#include <cstring>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace zumik::http {

namespace detail {
class ServerConnection;
}  // namespace detail

using Method = boost::beast::http::verb;
// Received header fields; lookups are case-insensitive.
using Fields = boost::beast::http::fields;
// Header fields to send, in order. Names are matched case-insensitively where it matters.
using Headers = std::vector<std::pair<std::string, std::string>>;
using QueryParams = std::vector<std::pair<std::string, std::string>>;

// A body read into a std::string, like Beast's string_body, whose reader appends each piece
// the parser hands it: string_body's resizes the string first, which zero-fills the bytes it
// then copies over (a 30 KB prompt was written twice).
struct StringBody : boost::beast::http::string_body {
  class reader {
   public:
    template <bool kIsRequest, class HeaderFields>
    reader(boost::beast::http::header<kIsRequest, HeaderFields>& /*header*/, value_type& body)
        : body_(body) {}
    void init(const boost::optional<std::uint64_t>& length, boost::system::error_code& ec) {
      ec = {};
      if (length && *length > body_.max_size()) {
        ec = boost::beast::http::error::buffer_overflow;
        return;
      }
      if (length) body_.reserve(static_cast<size_t>(*length));
    }
    template <class ConstBufferSequence>
    size_t put(const ConstBufferSequence& buffers, boost::system::error_code& ec) {
      ec = {};
      size_t n = 0;
      for (auto it = boost::asio::buffer_sequence_begin(buffers);
           it != boost::asio::buffer_sequence_end(buffers); ++it) {
        const boost::asio::const_buffer piece = *it;
        body_.append(static_cast<const char*>(piece.data()), piece.size());
        n += piece.size();
      }
      return n;
    }
    void finish(boost::system::error_code& ec) { ec = {}; }

   private:
    value_type& body_;
  };
};

// "GET", "POST", ...
std::string_view MethodName(Method method);

// Decodes %XX escapes (and '+' as a space when `plus_as_space`, as in query strings).
// Returns nullopt for a truncated or non-hex escape.
std::optional<std::string> PercentDecode(std::string_view text, bool plus_as_space = false);

// Splits "a=1&b=x%20y" into decoded pairs, in order. Keys without '=' get an empty value;
// a pair whose escapes are malformed keeps its raw text.
QueryParams ParseQuery(std::string_view query);

// True for header names that HTTP/1.1 framing owns (Content-Length, Transfer-Encoding,
// Connection, ...): callers may not set them on a response; the server does.
bool IsFramingHeader(std::string_view name);

// True when a header name or value could split a message (CR, LF or NUL in it).
bool IsUnsafeHeaderText(std::string_view text);

// Appends "name: value\r\n" to a message head in one step (the caller checked both parts).
inline void AppendHeaderLine(std::string& head, std::string_view name, std::string_view value) {
  const size_t at = head.size();
  head.resize(at + name.size() + value.size() + 4);
  char* out = head.data() + at;
  if (!name.empty()) std::memcpy(out, name.data(), name.size());
  out += name.size();
  *out++ = ':';
  *out++ = ' ';
  if (!value.empty()) std::memcpy(out, value.data(), value.size());
  out += value.size();
  *out++ = '\r';
  *out = '\n';
}

// One request as a handler sees it. The body is fully read before the handler runs.
class Request {
 public:
  using Message = boost::beast::http::request<StringBody>;

  Request() = default;
  Request(Message message, std::string remote_address);

  Method method() const { return message_.method(); }
  std::string_view method_name() const;
  // The request target as sent: "/v1/models?limit=2".
  std::string_view target() const;
  // The target up to '?', not percent-decoded (routing matches this).
  std::string_view path() const { return target().substr(0, path_size_); }
  // The raw text after '?', or empty.
  std::string_view query_string() const;
  // Decoded query parameters, in order.
  const QueryParams& query_params() const { return query_params_; }
  // The first value of a query parameter.
  std::optional<std::string_view> QueryParam(std::string_view key) const;

  // Case-insensitive; empty when absent.
  std::string_view Header(std::string_view name) const;
  bool HasHeader(std::string_view name) const;
  const Fields& headers() const { return message_; }

  const std::string& body() const { return message_.body(); }
  std::string& mutable_body() { return message_.body(); }

  // "127.0.0.1:40412" (IPv6 as "[::1]:40412").
  const std::string& remote_address() const { return remote_address_; }
  // 11 for HTTP/1.1, 10 for HTTP/1.0.
  unsigned version() const { return message_.version(); }
  bool keep_alive() const { return message_.keep_alive(); }

  // The route pattern that matched ("/v1/models", or the prefix "/v1/clusters/").
  std::string_view route() const { return route_; }
  // For a prefix route, the path after the prefix ("byc_123" for "/v1/clusters/byc_123").
  std::string_view path_suffix() const;

 private:
  friend class detail::ServerConnection;

  Message message_;
  std::string remote_address_;
  // Offsets, not views: the target lives inside message_, which may move.
  size_t path_size_ = 0;
  QueryParams query_params_;
  std::string route_;
  bool prefix_route_ = false;
};

}  // namespace zumik::http
