// Feeding a Beast parser the bytes a connection has already read (the server's request parser
// and the client's streamed-response parser share it).
#pragma once

#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/buffer_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/parser.hpp>
#include <cstddef>
#include <type_traits>

namespace zumik::http::detail {

// Puts what `buffer` holds into `parser`, consuming what it takes, until the message is done,
// the buffer runs dry or (a buffer_body) the caller's body buffer is full. Running out of
// input or of body buffer is no error: the caller reads more, or hands the body on.
template <bool kIsRequest, class Body>
boost::system::error_code PutBuffered(boost::beast::flat_buffer& buffer,
                                      boost::beast::http::parser<kIsRequest, Body>& parser) {
  namespace bhttp = boost::beast::http;
  boost::system::error_code ec;
  while (buffer.size() > 0 && !parser.is_done()) {
    if constexpr (std::is_same_v<Body, bhttp::buffer_body>) {
      if (parser.get().body().size == 0) break;
    }
    const size_t used = parser.put(buffer.data(), ec);
    buffer.consume(used);
    if (ec || used == 0) break;
  }
  if (ec == bhttp::error::need_more || ec == bhttp::error::need_buffer) ec = {};
  return ec;
}

}  // namespace zumik::http::detail
