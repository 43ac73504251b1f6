// The client against an in-process server: pooling, deadlines, errors, limits, streams. Every
// test runs twice: connections on strands of a 2-thread io_context, and single_threaded (the
// per-worker mode: one thread, requests inline in the caller's coroutine).
#include "core/http/client.h"

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/bind_cancellation_slot.hpp>
#include <boost/asio/cancellation_signal.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <string>

#include "core/http/server.h"
#include "core/http/test_util.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zumik::http {
namespace {

namespace asio = boost::asio;
using ::testing::HasSubstr;
using testing::IoThreads;
using testing::RunOn;
using namespace std::chrono_literals;

class ClientTest : public ::testing::TestWithParam<bool> {
 protected:
  // GetParam(): single-threaded mode.
  ClientTest() : io_(GetParam() ? 1 : 2) {}

  ClientOptions Options() const {
    ClientOptions options;
    options.single_threaded = GetParam();
    return options;
  }

  void SetUp() override {
    router_.Get("/hello", [](Request& request, ResponseWriter& writer) -> asio::awaitable<void> {
      IgnoreClientGone(co_await writer.Respond(
          200, "hello " + std::string(request.Header("x-name")), "text/plain"));
    });
    router_.Post("/echo", [](Request& request, ResponseWriter& writer) -> asio::awaitable<void> {
      IgnoreClientGone(co_await writer.Respond(200, request.body(), "text/plain"));
    });
    router_.Get("/big", [](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
      IgnoreClientGone(co_await writer.Respond(200, std::string(4096, 'x'), "text/plain"));
    });
    router_.Get("/chunks", [](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
      IgnoreClientGone(co_await writer.BeginStream(200, "text/plain"));
      for (int i = 0; i < 3; ++i) {
        IgnoreClientGone(co_await writer.WriteChunk(fmt::format("part{};", i)));
      }
      IgnoreClientGone(co_await writer.Finish());
    });
    router_.Get("/slow", [this](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
      asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
      auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      slow_handler_cancelled_.set_value(ec == asio::error::operation_aborted);
      IgnoreClientGone(co_await writer.Respond(200, "too late", "text/plain"));
    });
    router_.Get("/wait-stream", [this](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
      IgnoreClientGone(co_await writer.BeginSse());
      IgnoreClientGone(co_await writer.WriteSse("first"));
      asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
      auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
      wait_stream_cancelled_.set_value(ec == asio::error::operation_aborted);
    });
    router_.Get("/headers", [](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
      const Headers headers = {{"X-Replica", "r1"}, {"X-Replica-Zone", "z2"}, {"x-replicA", "r2"}};
      IgnoreClientGone(co_await writer.Respond(200, "ok", "text/plain", headers));
    });
    router_.Get("/error", [](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
      IgnoreClientGone(co_await writer.RespondError(429, "slow down", "rate_limit_error"));
    });
    ServerOptions server_options;
    server_options.single_threaded = GetParam();
    server_ = std::make_unique<Server>(io_.io(), server_options, std::move(router_));
    ASSERT_TRUE(server_->Start().ok());
  }

  void TearDown() override { server_->Stop(1s); }

  std::string Url(std::string_view path) const {
    return fmt::format("http://127.0.0.1:{}{}", server_->port(), path);
  }

  absl::StatusOr<ClientResponse> Fetch(Client& client, ClientRequest request) {
    return RunOn(io_.io(), client.Fetch(std::move(request)));
  }

  IoThreads io_;
  Router router_;
  std::unique_ptr<Server> server_;
  std::promise<bool> slow_handler_cancelled_;
  std::promise<bool> wait_stream_cancelled_;
};

TEST_P(ClientTest, SendsHeadersAndBody) {
  Client client(io_.io().get_executor(), Options());
  absl::StatusOr<ClientResponse> response =
      Fetch(client, ClientRequest::Get(Url("/hello")).WithHeader("X-Name", "zumik"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, "hello zumik");
  response = Fetch(client, ClientRequest::Post(Url("/echo"), "ping", "text/plain"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "ping");
  // A borrowed body is sent instead of `body`, with its own Content-Length.
  const std::string lent(70000, 'b');
  ClientRequest borrowing = ClientRequest::Post(Url("/echo"), "not this", "text/plain");
  borrowing.borrowed_body = lent;
  response = Fetch(client, std::move(borrowing));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, lent);
}

TEST_P(ClientTest, ResponseHeadersAreFoundByNameInAnyCase) {
  Client client(io_.io().get_executor(), Options());
  absl::StatusOr<ClientResponse> response = Fetch(client, ClientRequest::Get(Url("/headers")));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->Header("x-replica"), "r1");  // the first of two
  EXPECT_EQ(response->Header("X-REPLICA-ZONE"), "z2");
  EXPECT_EQ(response->Header("content-type"), "text/plain");
  EXPECT_EQ(response->Header("x-replica-zon"), "");
  EXPECT_EQ(response->Header("x-missing"), "");
  auto stream = RunOn(io_.io(), client.Stream(ClientRequest::Get(Url("/headers"))));
  ASSERT_TRUE(stream.ok()) << stream.status();
  EXPECT_EQ(stream->Header("X-Replica"), "r1");
  EXPECT_EQ(stream->Header("Content-Length"), "2");
  EXPECT_EQ(stream->Header(boost::beast::http::field::content_length), "2");
  EXPECT_EQ(stream->Header(boost::beast::http::field::content_type), "text/plain");
  EXPECT_EQ(stream->Header(boost::beast::http::field::etag), "");
}

TEST_P(ClientTest, PoolReusesOneConnectionForSequentialRequests) {
  Client client(io_.io().get_executor(), Options());
  for (int i = 0; i < 5; ++i) {
    absl::StatusOr<ClientResponse> response = Fetch(client, ClientRequest::Get(Url("/hello")));
    ASSERT_TRUE(response.ok()) << response.status();
  }
  EXPECT_EQ(client.stats().connections_opened, 1u);
  EXPECT_EQ(client.stats().connections_reused, 4u);
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
}

TEST_P(ClientTest, ResolvesPathsAgainstTheBaseUrl) {
  ClientOptions options = Options();
  options.base_url = Url("");
  Client client(io_.io().get_executor(), options);
  absl::StatusOr<ClientResponse> response = Fetch(client, ClientRequest::Get("/hello"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "hello ");
}

TEST_P(ClientTest, ReplacesAPooledConnectionTheServerClosed) {
  Client client(io_.io().get_executor(), Options());
  ASSERT_TRUE(Fetch(client, ClientRequest::Get(Url("/hello"))).ok());
  const uint16_t port = server_->port();
  // Stop closes the idle connection the client holds in its pool.
  server_->Stop(1s);
  Router router;
  router.Get("/hello", [](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
    IgnoreClientGone(co_await writer.Respond(200, "second server", "text/plain"));
  });
  ServerOptions options;
  options.port = port;
  options.single_threaded = GetParam();
  server_ = std::make_unique<Server>(io_.io(), options, std::move(router));
  ASSERT_TRUE(server_->Start().ok());
  absl::StatusOr<ClientResponse> response = Fetch(client, ClientRequest::Get(Url("/hello")));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "second server");
  EXPECT_EQ(client.stats().connections_opened, 2u);
}

TEST_P(ClientTest, UncheckedReuseOfAClosedConnectionRetriesIdempotentRequestsOnly) {
  ClientOptions options = Options();
  options.unchecked_reuse_within = std::chrono::hours(1);
  Client client(io_.io().get_executor(), options);
  ASSERT_TRUE(Fetch(client, ClientRequest::Get(Url("/hello"))).ok());
  const uint16_t port = server_->port();
  server_->Stop(1s);  // closes the connection the client holds in its pool
  Router router;
  router.Get("/hello", [](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
    IgnoreClientGone(co_await writer.Respond(200, "second server", "text/plain"));
  });
  ServerOptions server_options;
  server_options.port = port;
  server_options.single_threaded = GetParam();
  server_ = std::make_unique<Server>(io_.io(), server_options, std::move(router));
  ASSERT_TRUE(server_->Start().ok());
  // Reused without the liveness check: the GET finds the connection closed and is retried on
  // a fresh one.
  absl::StatusOr<ClientResponse> response = Fetch(client, ClientRequest::Get(Url("/hello")));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "second server");
  EXPECT_EQ(client.stats().connections_opened, 2u);
  // The documented cost: a POST on a connection the server closed is not retried.
  ASSERT_TRUE(Fetch(client, ClientRequest::Get(Url("/hello"))).ok());
  server_->Stop(1s);
  server_ = std::make_unique<Server>(io_.io(), server_options, Router());
  ASSERT_TRUE(server_->Start().ok());
  absl::StatusOr<ClientResponse> post = Fetch(client, ClientRequest::Post(Url("/echo"), "x"));
  EXPECT_EQ(post.status().code(), absl::StatusCode::kUnavailable) << post.status();
}

TEST_P(ClientTest, DeadlineExceededCancelsTheServerHandler) {
  Client client(io_.io().get_executor(), Options());
  absl::StatusOr<ClientResponse> response =
      Fetch(client, ClientRequest::Get(Url("/slow")).WithTimeout(100ms));
  EXPECT_EQ(response.status().code(), absl::StatusCode::kDeadlineExceeded);
  EXPECT_THAT(std::string(MessageOf(response.status())),
              HasSubstr(fmt::format("127.0.0.1:{}", server_->port())));
  EXPECT_TRUE(slow_handler_cancelled_.get_future().get());
}

TEST_P(ClientTest, ConnectionRefusedIsUnavailableNamingHostAndPort) {
  const uint16_t port = testing::UnusedPort();
  absl::StatusOr<ClientResponse> response =
      FetchBlocking(Method::get, fmt::format("http://127.0.0.1:{}/", port));
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(MessageOf(response.status())),
              HasSubstr(fmt::format("connect to 127.0.0.1:{} failed", port)));
}

TEST_P(ClientTest, BadUrlIsInvalidArgument) {
  Client client(io_.io().get_executor(), Options());
  for (const char* url : {"ftp://127.0.0.1/", "http://", "/no-base-url", "::"}) {
    absl::StatusOr<ClientResponse> response = Fetch(client, ClientRequest::Get(url));
    EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument) << url;
  }
}

TEST_P(ClientTest, ResponseOverTheBodyLimitIsResourceExhausted) {
  ClientOptions options = Options();
  options.max_response_body_bytes = 1024;
  Client client(io_.io().get_executor(), options);
  absl::StatusOr<ClientResponse> response = Fetch(client, ClientRequest::Get(Url("/big")));
  EXPECT_EQ(response.status().code(), absl::StatusCode::kResourceExhausted);
}

TEST_P(ClientTest, FetchBlockingRunsItsOwnIoContext) {
  absl::StatusOr<ClientResponse> response =
      FetchBlocking(Method::post, Url("/echo"), "blocking", {{"X-Test", "1"}}, 5s);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "blocking");
}

TEST_P(ClientTest, StatusFromResponseUsesTheJsonErrorMessage) {
  absl::StatusOr<ClientResponse> response = FetchBlocking(Method::get, Url("/error"));
  ASSERT_TRUE(response.ok()) << response.status();
  const absl::Status status = StatusFromResponse(*response);
  EXPECT_EQ(status.code(), absl::StatusCode::kResourceExhausted);
  EXPECT_EQ(MessageOf(status), "HTTP 429: slow down");
}

TEST_P(ClientTest, StreamDeliversChunksAndEndsWithAnEmptyRead) {
  Client client(io_.io().get_executor(), Options());
  auto collect = [&]() -> asio::awaitable<absl::StatusOr<std::string>> {
    absl::StatusOr<ClientStream> stream =
        co_await client.Stream(ClientRequest::Get(Url("/chunks")));
    if (!stream.ok()) co_return stream.status();
    co_return co_await stream->ReadAll();
  };
  absl::StatusOr<std::string> body = RunOn(io_.io(), collect());
  ASSERT_TRUE(body.ok()) << body.status();
  EXPECT_EQ(*body, "part0;part1;part2;");
  // Read to the end, the connection went back to the pool and serves the next request.
  EXPECT_EQ(client.stats().idle_connections, 1u);
  ASSERT_TRUE(Fetch(client, ClientRequest::Get(Url("/hello"))).ok());
  EXPECT_EQ(client.stats().connections_opened, 1u);
}

TEST_P(ClientTest, StreamOfAnErrorStatusStillReadsTheBody) {
  Client client(io_.io().get_executor(), Options());
  auto collect = [&]() -> asio::awaitable<absl::StatusOr<std::pair<int, std::string>>> {
    absl::StatusOr<ClientStream> stream = co_await client.Stream(ClientRequest::Get(Url("/error")));
    if (!stream.ok()) co_return stream.status();
    absl::StatusOr<std::string> body = co_await stream->ReadAll();
    if (!body.ok()) co_return body.status();
    co_return std::make_pair(stream->status(), *body);
  };
  auto result = RunOn(io_.io(), collect());
  ASSERT_TRUE(result.ok()) << result.status();
  EXPECT_EQ(result->first, 429);
  EXPECT_THAT(result->second, HasSubstr("slow down"));
}

TEST_P(ClientTest, CancelFailsAPendingReadAndTheServerSeesTheClientLeave) {
  Client client(io_.io().get_executor(), Options());
  absl::StatusOr<ClientStream> stream =
      RunOn(io_.io(), client.Stream(ClientRequest::Get(Url("/wait-stream")).WithTimeout(10s)));
  ASSERT_TRUE(stream.ok()) << stream.status();
  std::string received;
  while (received.find("\n\n") == std::string::npos) {
    absl::StatusOr<std::string_view> piece = RunOn(io_.io(), stream->Read());
    ASSERT_TRUE(piece.ok()) << piece.status();
    ASSERT_FALSE(piece->empty());
    received += *piece;
  }
  EXPECT_EQ(received, "data: first\n\n");
  std::future<absl::StatusOr<std::string_view>> pending = testing::Spawn(io_.io(), stream->Read());
  stream->Cancel();
  EXPECT_EQ(pending.get().status().code(), absl::StatusCode::kCancelled);
  EXPECT_TRUE(stream->done());
  EXPECT_TRUE(wait_stream_cancelled_.get_future().get());
  EXPECT_EQ(client.stats().idle_connections, 0u);
}

// A caller cancelled by asio (terminal cancellation, as a server handler is when its client
// leaves) as its read starts: the read reports Cancelled rather than throwing, the stream is
// done, and the server sees its client leave. (stream->Cancel() is the other way in: above.)
TEST_P(ClientTest, AReadWhoseCallerIsCancelledIsCancelledAndNeverThrows) {
  // Declared first, so it outlives the client's threads (and asio's use of its slot).
  asio::cancellation_signal signal;
  IoThreads client_io(1);
  Client client(client_io.io().get_executor(), Options());
  absl::StatusOr<ClientStream> stream = RunOn(
      client_io.io(), client.Stream(ClientRequest::Get(Url("/wait-stream")).WithTimeout(10s)));
  ASSERT_TRUE(stream.ok()) << stream.status();
  std::string received;
  while (received.find("\n\n") == std::string::npos) {
    absl::StatusOr<std::string_view> piece = RunOn(client_io.io(), stream->Read());
    ASSERT_TRUE(piece.ok()) << piece.status();
    received += *piece;
  }
  auto result = std::make_shared<std::promise<absl::Status>>();
  asio::co_spawn(
      client_io.io(),
      [&stream, &signal]() -> asio::awaitable<absl::Status> {
        asio::post(co_await asio::this_coro::executor,
                   [&signal] { signal.emit(asio::cancellation_type::terminal); });
        absl::StatusOr<std::string_view> piece = co_await stream->Read();
        co_return piece.status();
      },
      asio::bind_cancellation_slot(
          signal.slot(), [result](const std::exception_ptr& error, absl::Status status) {
            if (error) {
              try {
                std::rethrow_exception(error);
              } catch (const std::exception& e) {
                status = absl::InternalError(std::string("the read threw: ") + e.what());
              }
            }
            result->set_value(status);
          }));
  std::future<absl::Status> done = result->get_future();
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready) << "the cancelled read never ended";
  const absl::Status status = done.get();
  EXPECT_EQ(status.code(), absl::StatusCode::kCancelled) << status;
  EXPECT_TRUE(stream->done());
  EXPECT_TRUE(wait_stream_cancelled_.get_future().get()) << "the server saw the client leave";
}

TEST_P(ClientTest, LazyDeadlineTimerStillFiresForAnEarlierDeadlineOnAPooledConnection) {
  ClientOptions options = Options();
  options.lazy_deadline_timers = true;
  Client client(io_.io().get_executor(), options);
  // The first request leaves the connection's timer armed an hour out; the second, on the
  // same pooled connection, must re-arm it for its own much earlier deadline.
  ASSERT_TRUE(Fetch(client, ClientRequest::Get(Url("/hello")).WithTimeout(1h)).ok());
  absl::StatusOr<ClientResponse> slow =
      Fetch(client, ClientRequest::Get(Url("/slow")).WithTimeout(100ms));
  EXPECT_EQ(slow.status().code(), absl::StatusCode::kDeadlineExceeded) << slow.status();
  EXPECT_EQ(client.stats().connections_reused, 1u);
  EXPECT_TRUE(slow_handler_cancelled_.get_future().get());
  client.CloseIdleConnections();
}

TEST_P(ClientTest, StreamReadsEveryResponseOfAPooledConnection) {
  Client client(io_.io().get_executor(), Options());
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<ClientStream> stream =
        RunOn(io_.io(), client.Stream(ClientRequest::Get(Url("/big"))));
    ASSERT_TRUE(stream.ok()) << stream.status();
    absl::StatusOr<std::string> body = RunOn(io_.io(), stream->ReadAll());
    ASSERT_TRUE(body.ok()) << body.status();
    EXPECT_EQ(*body, std::string(4096, 'x'));
  }
  EXPECT_EQ(client.stats().connections_opened, 1u);
}

// Chunks that arrived together come out of one Read, so a proxy forwards them in one write;
// a chunk whose successor is incomplete still comes out at once, without waiting for it.
TEST_P(ClientTest, StreamReadReturnsEveryBufferedChunkAndNeverWaitsForAPartialOne) {
  testing::RawListener upstream;
  Client client(io_.io().get_executor(), Options());
  std::future<absl::StatusOr<ClientStream>> opening = testing::Spawn(
      io_.io(),
      client.Stream(ClientRequest::Get(fmt::format("http://127.0.0.1:{}/events", upstream.port()))
                        .WithTimeout(10s)));
  EXPECT_THAT(upstream.AcceptRequestHead(), HasSubstr("GET /events HTTP/1.1"));
  upstream.Send(
      "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n"
      "6\r\npart0;\r\n6\r\npart1;\r\n6\r\npart2;\r\n");
  absl::StatusOr<ClientStream> stream = opening.get();
  ASSERT_TRUE(stream.ok()) << stream.status();
  absl::StatusOr<std::string_view> piece = RunOn(io_.io(), stream->Read());
  ASSERT_TRUE(piece.ok()) << piece.status();
  EXPECT_EQ(*piece, "part0;part1;part2;");

  // The next chunk's data and the start of its successor's size line: the data comes out.
  upstream.Send("6\r\npart3;\r\n6");
  std::future<absl::StatusOr<std::string_view>> pending = testing::Spawn(io_.io(), stream->Read());
  ASSERT_EQ(pending.wait_for(5s), std::future_status::ready) << "Read waited for the next chunk";
  piece = pending.get();
  ASSERT_TRUE(piece.ok()) << piece.status();
  EXPECT_EQ(*piece, "part3;");

  upstream.Send("\r\npart4;\r\n0\r\n\r\n");
  piece = RunOn(io_.io(), stream->Read());
  ASSERT_TRUE(piece.ok()) << piece.status();
  EXPECT_EQ(*piece, "part4;");
  piece = RunOn(io_.io(), stream->Read());
  ASSERT_TRUE(piece.ok()) << piece.status();
  EXPECT_TRUE(piece->empty());
  EXPECT_TRUE(stream->done());
}

INSTANTIATE_TEST_SUITE_P(Threading, ClientTest, ::testing::Bool(),
                         [](const ::testing::TestParamInfo<bool>& param_info) {
                           return param_info.param ? "SingleThreaded" : "Strands";
                         });

}  // namespace
}  // namespace zumik::http
