// A thousand SSE streams open at once through one server, with the client in-process:
// every stream must receive every event, in order.
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <future>
#include <string>
#include <vector>

#include "core/http/client.h"
#include "core/http/server.h"
#include "core/http/sse.h"
#include "core/http/test_util.h"
#include "gtest/gtest.h"

namespace zumik::http {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using StartSignal = asio::experimental::concurrent_channel<void(boost::system::error_code)>;

constexpr int kStreams = 1000;
constexpr int kEvents = 20;

TEST(SseLoad, ThousandConcurrentStreamsEachGetEveryEventInOrder) {
  testing::IoThreads io(2);
  std::atomic<int> opened{0};
  std::atomic<uint64_t> peak_connections{0};
  StartSignal start(io.io(), kStreams);
  Server* server_ptr = nullptr;

  Router router;
  router.Get("/stream", [&](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
    IgnoreClientGone(co_await writer.BeginSse());
    IgnoreClientGone(co_await writer.WriteSse("open"));
    // Hold every stream until all are open, so they really run concurrently.
    if (++opened == kStreams) {
      peak_connections = server_ptr->stats().active_connections;
      for (int i = 0; i < kStreams; ++i) start.try_send(boost::system::error_code());
    }
    co_await start.async_receive(asio::use_awaitable);
    for (int i = 0; i < kEvents; ++i) {
      if (!(co_await writer.WriteSse(std::to_string(i))).ok()) co_return;
    }
    IgnoreClientGone(co_await writer.WriteSse("[DONE]"));
  });
  Server server(io.io(), ServerOptions(), std::move(router));
  server_ptr = &server;
  ASSERT_TRUE(server.Start().ok());

  ClientOptions options;
  options.request_timeout = 60s;
  Client client(io.io().get_executor(), options);
  const std::string url = fmt::format("http://127.0.0.1:{}/stream", server.port());

  std::vector<std::vector<std::string>> received(kStreams);
  std::vector<absl::Status> outcomes(kStreams);
  std::atomic<int> finished{0};
  std::promise<void> all_finished;
  for (int s = 0; s < kStreams; ++s) {
    auto run = [&, s]() -> asio::awaitable<void> {
      absl::StatusOr<ClientStream> stream = co_await client.Stream(ClientRequest::Get(url));
      if (!stream.ok()) {
        outcomes[s] = stream.status();
      } else {
        SseParser parser;
        while (true) {
          absl::StatusOr<std::string_view> piece = co_await stream->Read();
          if (!piece.ok()) {
            outcomes[s] = piece.status();
            break;
          }
          if (piece->empty()) break;
          outcomes[s] = parser.Feed(*piece);
          if (!outcomes[s].ok()) break;
          while (std::optional<SseEvent> event = parser.Next()) {
            received[s].push_back(std::move(event->data));
          }
        }
      }
      if (++finished == kStreams) all_finished.set_value();
    };
    asio::co_spawn(io.io(), run, asio::detached);
  }
  ASSERT_EQ(all_finished.get_future().wait_for(60s), std::future_status::ready);

  std::vector<std::string> expected = {"open"};
  for (int i = 0; i < kEvents; ++i) expected.push_back(std::to_string(i));
  expected.push_back("[DONE]");
  int complete = 0;
  for (int s = 0; s < kStreams; ++s) {
    EXPECT_TRUE(outcomes[s].ok()) << "stream " << s << ": " << outcomes[s];
    if (received[s] == expected) ++complete;
  }
  EXPECT_EQ(complete, kStreams);
  EXPECT_EQ(peak_connections.load(), static_cast<uint64_t>(kStreams));
  server.Stop(5s);
}

}  // namespace
}  // namespace zumik::http
