// The gateway's streamed-response framing against a scripted upstream that decides which
// bytes arrive together: a body that is whole when the head arrives goes out as one response;
// body bytes that come with the head go out with the gateway's head; the body's last bytes
// and its end go out together; the upstream connection is pooled after each; bad chunk
// framing before any body reached the client is a 502 JSON error.
#include <gtest/gtest.h>
#include <sys/socket.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <chrono>
#include <condition_variable>
#include <deque>
#include <future>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

#include "core/http/client.h"
#include "epp_support/epp_test_helpers.h"
#include "support/process.h"

namespace zumik {
namespace {

namespace asio = boost::asio;
using tcp = asio::ip::tcp;
using namespace std::chrono_literals;
using epp_testing::Eventually;
using testing::ChildProcess;
using testing::PickFreePort;
using testing::WaitForPort;
using testing::ZumikBinary;

constexpr std::string_view kMetrics =
    "vllm:num_requests_running{model_name=\"m\"} 0\n"
    "vllm:num_requests_waiting{model_name=\"m\"} 0\n"
    "vllm:kv_cache_usage_perc{model_name=\"m\"} 0\n";

// A model server whose completions responses the test writes byte for byte. It answers the
// gateway's GET /metrics scrapes itself (one thread per connection) and hands every other
// request to the test, with the connection it came on; that connection's next request is read
// once the test calls Exchange::Done.
class ScriptedUpstream {
 public:
  struct Exchange {
    std::shared_ptr<tcp::socket> socket;
    int connection = 0;  // the connection's number, in accept order
    std::string request;
    std::shared_ptr<std::promise<void>> done;
    void Send(std::string_view bytes) const { asio::write(*socket, asio::buffer(bytes)); }
    void Done() const { done->set_value(); }
  };

  ScriptedUpstream() : acceptor_(io_, {asio::ip::make_address("127.0.0.1"), 0}) {
    accept_thread_ = std::thread([this] { AcceptLoop(); });
  }
  ~ScriptedUpstream() {
    boost::system::error_code ec;
    ::shutdown(acceptor_.native_handle(), SHUT_RDWR);
    acceptor_.close(ec);
    accept_thread_.join();
    std::vector<std::thread> threads;
    {
      std::lock_guard lock(mu_);
      stopping_ = true;
      for (auto& socket : sockets_) ::shutdown(socket->native_handle(), SHUT_RDWR);
      threads.swap(threads_);
    }
    for (auto& thread : threads) thread.join();
  }
  int port() const { return acceptor_.local_endpoint().port(); }
  std::string endpoint() const { return "127.0.0.1:" + std::to_string(port()); }

  // The next completions request, or nullopt after `timeout`.
  std::optional<Exchange> Next(std::chrono::seconds timeout = 10s) {
    std::unique_lock lock(mu_);
    if (!cv_.wait_for(lock, timeout, [this] { return !exchanges_.empty(); })) return std::nullopt;
    Exchange exchange = std::move(exchanges_.front());
    exchanges_.pop_front();
    return exchange;
  }

 private:
  void AcceptLoop() {
    for (int number = 1;; ++number) {
      auto socket = std::make_shared<tcp::socket>(io_);
      boost::system::error_code ec;
      acceptor_.accept(*socket, ec);
      if (ec) return;
      std::lock_guard lock(mu_);
      if (stopping_) return;
      sockets_.push_back(socket);
      threads_.emplace_back([this, socket, number] { Serve(socket, number); });
    }
  }

  void Serve(const std::shared_ptr<tcp::socket>& socket, int number) {
    std::string buffer;
    boost::system::error_code ec;
    while (true) {
      const size_t head_end =
          asio::read_until(*socket, asio::dynamic_buffer(buffer), "\r\n\r\n", ec);
      if (ec) return;
      std::string head = buffer.substr(0, head_end);
      buffer.erase(0, head_end);
      if (head.starts_with("GET /metrics")) {
        const std::string response =
            "HTTP/1.1 200 OK\r\nContent-Type: text/plain\r\nContent-Length: " +
            std::to_string(kMetrics.size()) + "\r\n\r\n" + std::string(kMetrics);
        asio::write(*socket, asio::buffer(response), ec);
        if (ec) return;
        continue;
      }
      const size_t length_at = head.find("Content-Length: ");
      const size_t length =
          length_at == std::string::npos ? 0 : std::stoul(head.substr(length_at + 16));
      if (buffer.size() < length) {
        asio::read(*socket, asio::dynamic_buffer(buffer),
                   asio::transfer_exactly(length - buffer.size()), ec);
        if (ec) return;
      }
      Exchange exchange{socket, number, head + buffer.substr(0, length),
                        std::make_shared<std::promise<void>>()};
      buffer.erase(0, length);
      std::future<void> done = exchange.done->get_future();
      {
        std::lock_guard lock(mu_);
        exchanges_.push_back(std::move(exchange));
      }
      cv_.notify_all();
      done.wait();
    }
  }

  asio::io_context io_;
  tcp::acceptor acceptor_;
  std::thread accept_thread_;
  std::mutex mu_;
  std::condition_variable cv_;
  bool stopping_ = false;
  std::vector<std::shared_ptr<tcp::socket>> sockets_;
  std::vector<std::thread> threads_;
  std::deque<Exchange> exchanges_;
};

constexpr std::string_view kBody = R"({"model":"m","prompt":"Hello","max_tokens":2,"stream":true,)"
                                   R"("stream_options":{"include_usage":true}})";

std::string Chunk(std::string_view data) {
  return fmt::format("{:x}\r\n{}\r\n", data.size(), data);
}

constexpr std::string_view kSseHead =
    "HTTP/1.1 200 OK\r\nContent-Type: text/event-stream\r\nTransfer-Encoding: chunked\r\n\r\n";
constexpr std::string_view kEvent1 = "data: {\"choices\":[{\"text\":\"a\"}]}\n\n";
constexpr std::string_view kEvent2 = "data: {\"choices\":[{\"text\":\"b\"}]}\n\n";
constexpr std::string_view kUsage =
    "data: {\"choices\":[],\"usage\":{\"prompt_tokens\":5,\"completion_tokens\":7,"
    "\"total_tokens\":12}}\n\n";
constexpr std::string_view kDone = "data: [DONE]\n\n";

class GatewayFraming : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("epp-framing");
    gateway_port_ = PickFreePort();
    metrics_port_ = PickFreePort();
    epp_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{ZumikBinary(), "epp", "--endpoints", upstream_.endpoint(),
                                 "--listen-http", std::to_string(gateway_port_), "--metrics-port",
                                 std::to_string(metrics_port_), "--host", "127.0.0.1", "--threads",
                                 "1", "--config", "round-robin"},
        dir_ + "/epp.log");
    ASSERT_TRUE(WaitForPort(gateway_port_, 10s)) << epp_->ReadLog();
  }

  // Sends the request on a fresh connection of its own; the response comes back through the
  // future.
  std::future<absl::StatusOr<http::ClientResponse>> Post() const {
    std::string url = "http://127.0.0.1:" + std::to_string(gateway_port_) + "/v1/completions";
    return std::async(std::launch::async, [url] {
      return http::FetchBlocking(http::Method::post, url, std::string(kBody),
                                 {{"Content-Type", "application/json"}});
    });
  }

  // A raw client that has sent the request, so the test sees each byte as it arrives.
  tcp::socket SendRaw(asio::io_context& io) const {
    tcp::socket socket(io);
    socket.connect({asio::ip::make_address("127.0.0.1"), static_cast<uint16_t>(gateway_port_)});
    const std::string request = fmt::format(
        "POST /v1/completions HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
        "Content-Length: {}\r\n\r\n{}",
        kBody.size(), kBody);
    asio::write(socket, asio::buffer(request));
    return socket;
  }

  std::string Metrics() const {
    auto r = http::FetchBlocking(http::Method::get,
                                 "http://127.0.0.1:" + std::to_string(metrics_port_) + "/metrics");
    return r.ok() ? r->body : "";
  }

  // The usage (7 output tokens) reached the gateway's histogram, and the upstream connection
  // went back to the pool: the next request comes on it.
  void ExpectUsageCountedAndTheConnectionPooled(int connection) {
    EXPECT_TRUE(Eventually([&] {
      return epp_testing::MetricSum(Metrics(), "llm_d_epp_request_output_tokens_sum{") == 7;
    })) << Metrics();
    auto again = Post();
    std::optional<ScriptedUpstream::Exchange> next = upstream_.Next();
    ASSERT_TRUE(next);
    EXPECT_EQ(next->connection, connection);
    next->Send(std::string(kSseHead) + Chunk(kDone) + "0\r\n\r\n");
    next->Done();
    ASSERT_TRUE(again.get().ok());
  }

  ScriptedUpstream upstream_;
  std::string dir_;
  int gateway_port_ = 0;
  int metrics_port_ = 0;
  std::unique_ptr<ChildProcess> epp_;
};

TEST_F(GatewayFraming, ABodyWholeWithTheHeadGoesOutAsOneResponseAndItsUsageIsCounted) {
  auto response = Post();
  std::optional<ScriptedUpstream::Exchange> exchange = upstream_.Next();
  ASSERT_TRUE(exchange) << epp_->ReadLog();
  EXPECT_TRUE(exchange->request.starts_with("POST /v1/completions")) << exchange->request;
  exchange->Send(std::string(kSseHead) + Chunk(kEvent1) +
                 Chunk(std::string(kUsage) + std::string(kDone)) + "0\r\n\r\n");
  exchange->Done();
  absl::StatusOr<http::ClientResponse> r = response.get();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 200);
  EXPECT_EQ(r->body, std::string(kEvent1) + std::string(kUsage) + std::string(kDone));
  EXPECT_EQ(r->Header("Content-Length"), std::to_string(r->body.size()));
  EXPECT_EQ(r->Header("Agent-Execution-Profile"), "byoc_epp");
  EXPECT_NE(r->Header("Content-Type").find("text/event-stream"), std::string_view::npos);
  ExpectUsageCountedAndTheConnectionPooled(exchange->connection);
}

TEST_F(GatewayFraming, BytesWithTheHeadLeadTheStreamAndTheLastBytesCloseIt) {
  asio::io_context io;
  tcp::socket client_socket = SendRaw(io);
  std::optional<ScriptedUpstream::Exchange> exchange = upstream_.Next();
  ASSERT_TRUE(exchange) << epp_->ReadLog();
  exchange->Send(std::string(kSseHead) + Chunk(kEvent1));

  // The first event arrives though the upstream has not finished.
  std::string received;
  boost::system::error_code ec;
  asio::read_until(client_socket, asio::dynamic_buffer(received), kEvent1, ec);
  ASSERT_FALSE(ec) << ec.message() << ": " << received;
  EXPECT_TRUE(received.starts_with("HTTP/1.1 200 OK\r\n")) << received;
  EXPECT_NE(received.find("Transfer-Encoding: chunked\r\n"), std::string::npos) << received;
  EXPECT_NE(received.find("Agent-Execution-Profile: byoc_epp\r\n"), std::string::npos);
  const std::string first_chunk = Chunk(kEvent1);
  EXPECT_NE(received.find("\r\n\r\n" + first_chunk.substr(0, first_chunk.size() - 2)),
            std::string::npos)
      << received;

  exchange->Send(Chunk(kEvent2));
  asio::read_until(client_socket, asio::dynamic_buffer(received), kEvent2, ec);
  ASSERT_FALSE(ec) << ec.message();
  exchange->Send(Chunk(kUsage) + Chunk(kDone) + "0\r\n\r\n");
  exchange->Done();
  asio::read_until(client_socket, asio::dynamic_buffer(received), "0\r\n\r\n", ec);
  ASSERT_FALSE(ec) << ec.message();
  EXPECT_TRUE(received.ends_with(Chunk(std::string(kUsage) + std::string(kDone)) + "0\r\n\r\n") ||
              received.ends_with(Chunk(kUsage) + Chunk(kDone) + "0\r\n\r\n"))
      << received;
  ExpectUsageCountedAndTheConnectionPooled(exchange->connection);
}

TEST_F(GatewayFraming, BadChunkFramingBeforeAnyBodyIsA502JsonError) {
  auto response = Post();
  std::optional<ScriptedUpstream::Exchange> exchange = upstream_.Next();
  ASSERT_TRUE(exchange) << epp_->ReadLog();
  exchange->Send(std::string(kSseHead) + "zz\r\n");
  exchange->Done();
  absl::StatusOr<http::ClientResponse> r = response.get();
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 502);
  EXPECT_NE(r->body.find("upstream failed mid-response"), std::string::npos) << r->body;
  EXPECT_EQ(r->Header("Agent-Execution-Profile"), "byoc_epp");
}

// A body that breaks after some of it reached the client cannot be answered with an error any
// more: the gateway closes without the body's end, so the client sees it was cut short.
TEST_F(GatewayFraming, AnUpstreamBreakingAfterTheClientGotBytesLeavesTheBodyUnterminated) {
  asio::io_context io;
  tcp::socket client_socket = SendRaw(io);
  std::optional<ScriptedUpstream::Exchange> exchange = upstream_.Next();
  ASSERT_TRUE(exchange) << epp_->ReadLog();
  constexpr std::string_view kPart = R"({"choices":[{"text":")";
  exchange->Send(
      "HTTP/1.1 200 OK\r\nContent-Type: application/json\r\nTransfer-Encoding: chunked\r\n\r\n" +
      Chunk(kPart));
  std::string received;
  boost::system::error_code ec;
  asio::read_until(client_socket, asio::dynamic_buffer(received), kPart, ec);
  ASSERT_FALSE(ec) << ec.message() << ": " << received;

  exchange->Send("zz\r\n");  // bad chunk framing
  exchange->Done();
  asio::read(client_socket, asio::dynamic_buffer(received), ec);  // to the gateway's close
  EXPECT_EQ(ec, asio::error::eof) << ec.message();
  EXPECT_TRUE(received.starts_with("HTTP/1.1 200 OK\r\n")) << received;
  EXPECT_FALSE(received.ends_with("0\r\n\r\n")) << received;
  EXPECT_EQ(received.find("upstream failed"), std::string::npos) << received;  // not SSE
}

}  // namespace
}  // namespace zumik
