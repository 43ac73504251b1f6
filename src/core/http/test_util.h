// Test helpers: an io_context on background threads, running a coroutine to completion
// from the test thread, and a blocking raw TCP client for wire-level checks.
#pragma once

#include <boost/asio/co_spawn.hpp>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <future>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace zumik::http::testing {

namespace asio = boost::asio;

// An io_context run by `threads` background threads until destruction.
class IoThreads {
 public:
  explicit IoThreads(int threads = 2) : work_(asio::make_work_guard(io_)) {
    for (int i = 0; i < threads; ++i) threads_.emplace_back([this] { io_.run(); });
  }
  ~IoThreads() { Join(); }
  void Join() {
    work_.reset();
    io_.stop();
    for (auto& thread : threads_) {
      if (thread.joinable()) thread.join();
    }
  }
  asio::io_context& io() { return io_; }

 private:
  asio::io_context io_;
  asio::executor_work_guard<asio::io_context::executor_type> work_;
  std::vector<std::thread> threads_;
};

// Starts `awaitable` on `io` and returns a future of its result.
template <typename T>
std::future<T> Spawn(asio::io_context& io, asio::awaitable<T> awaitable) {
  auto promise = std::make_shared<std::promise<T>>();
  std::future<T> future = promise->get_future();
  asio::co_spawn(io, std::move(awaitable), [promise](std::exception_ptr error, T value) {
    if (error) {
      promise->set_exception(error);
    } else {
      promise->set_value(std::move(value));
    }
  });
  return future;
}

// Runs `awaitable` on `io` (run by other threads) and waits for its result.
template <typename T>
T RunOn(asio::io_context& io, asio::awaitable<T> awaitable) {
  return Spawn(io, std::move(awaitable)).get();
}

// A blocking TCP connection for sending raw bytes and reading raw responses.
class RawConnection {
 public:
  explicit RawConnection(uint16_t port) : socket_(io_) {
    socket_.connect({asio::ip::make_address("127.0.0.1"), port});
  }
  void Send(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes)); }
  // Reads one response; throws on EOF or a malformed response.
  boost::beast::http::response<boost::beast::http::string_body> ReadResponse() {
    boost::beast::http::response<boost::beast::http::string_body> response;
    boost::beast::http::read(socket_, buffer_, response);
    return response;
  }
  // Reads until the server closes; returns what arrived (after anything already buffered).
  std::string ReadUntilClose() {
    std::string data(static_cast<const char*>(buffer_.data().data()), buffer_.size());
    buffer_.consume(buffer_.size());
    char chunk[4096];
    boost::system::error_code ec;
    while (true) {
      const size_t n = socket_.read_some(asio::buffer(chunk), ec);
      if (ec) break;
      data.append(chunk, n);
    }
    return data;
  }
  asio::ip::tcp::socket& socket() { return socket_; }

 private:
  asio::io_context io_;
  asio::ip::tcp::socket socket_;
  boost::beast::flat_buffer buffer_;
};

// A blocking listener on loopback for tests that play a server byte by byte: it accepts one
// connection at a time and reads a request's head, so the test decides what goes back, when,
// and in how many writes.
class RawListener {
 public:
  RawListener() : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}), socket_(io_) {}
  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  // Accepts the next connection and returns its request head (up to the blank line).
  std::string AcceptRequestHead() {
    socket_ = acceptor_.accept();
    std::string head;
    asio::read_until(socket_, asio::dynamic_buffer(head), "\r\n\r\n");
    return head;
  }
  // Sends `bytes` in one write.
  void Send(std::string_view bytes) { asio::write(socket_, asio::buffer(bytes)); }

 private:
  asio::io_context io_;
  asio::ip::tcp::acceptor acceptor_;
  asio::ip::tcp::socket socket_;
};

// A port nothing listens on (bound, then released).
inline uint16_t UnusedPort() {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  return acceptor.local_endpoint().port();
}

}  // namespace zumik::http::testing
