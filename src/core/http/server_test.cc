// The server over real loopback sockets: routing, keep-alive, framing, limits, timeouts,
// handler failures, SSE streaming, client-gone detection and graceful shutdown.
#include "core/http/server.h"

#include <fmt/format.h>

#include <atomic>
#include <boost/asio/as_tuple.hpp>
#include <boost/asio/experimental/concurrent_channel.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/this_coro.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <chrono>
#include <future>
#include <memory>
#include <set>
#include <string>
#include <thread>

#include "core/http/client.h"
#include "core/http/sse.h"
#include "core/http/test_util.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zumik::http {
namespace {

namespace asio = boost::asio;
using ::testing::HasSubstr;
using testing::IoThreads;
using testing::RawConnection;
using testing::RunOn;
using Gate = asio::experimental::concurrent_channel<void(boost::system::error_code, int)>;
using namespace std::chrono_literals;

asio::awaitable<void> Echo(Request& request, ResponseWriter& writer) {
  const Headers headers = {{"X-Method", std::string(request.method_name())},
                           {"X-Query-Name", std::string(request.QueryParam("name").value_or(""))}};
  IgnoreClientGone(co_await writer.Respond(200, request.body(), "text/plain", headers));
}

std::string ErrorMessage(const std::string& body) {
  const boost::json::value json = boost::json::parse(body);
  return std::string(json.at("error").at("message").as_string());
}

class ServerTest : public ::testing::Test {
 protected:
  void StartServer(ServerOptions options = {}) {
    router_.Get("/echo", Echo).Post("/echo", Echo);
    server_ = std::make_unique<Server>(io_.io(), std::move(options), std::move(router_));
    ASSERT_TRUE(server_->Start().ok());
  }

  std::string Url(std::string_view path) const {
    return fmt::format("http://127.0.0.1:{}{}", server_->port(), path);
  }

  absl::StatusOr<ClientResponse> Get(std::string_view path) {
    return FetchBlocking(Method::get, Url(path));
  }

  void TearDown() override {
    if (server_) server_->Stop(1s);
  }

  IoThreads io_;
  Router router_;
  std::unique_ptr<Server> server_;
};

TEST_F(ServerTest, RoutesByPathAndMethod) {
  router_.Get("/v1/models", [](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
    IgnoreClientGone(co_await writer.Respond(200, R"({"data":[]})"));
  });
  StartServer();
  absl::StatusOr<ClientResponse> response = Get("/v1/models");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 200);
  EXPECT_EQ(response->body, R"({"data":[]})");
  EXPECT_EQ(response->Header("content-type"), "application/json");

  response = FetchBlocking(Method::post, Url("/echo?name=a%20b"), "payload");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "payload");
  EXPECT_EQ(response->Header("X-Method"), "POST");
  EXPECT_EQ(response->Header("X-Query-Name"), "a b");
}

TEST_F(ServerTest, PrefixRoutesSeeThePathSuffix) {
  router_.HandlePrefix(
      Method::get, "/v1/clusters/",
      [](Request& request, ResponseWriter& writer) -> asio::awaitable<void> {
        IgnoreClientGone(co_await writer.Respond(200, request.path_suffix(), "text/plain"));
      });
  StartServer();
  absl::StatusOr<ClientResponse> response = Get("/v1/clusters/byc_42");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "byc_42");
}

TEST_F(ServerTest, UnknownPathGetsJson404) {
  StartServer();
  absl::StatusOr<ClientResponse> response = Get("/nope");
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 404);
  EXPECT_EQ(response->Header("content-type"), "application/json");
  EXPECT_THAT(ErrorMessage(response->body), HasSubstr("/nope"));
  const absl::Status status = StatusFromResponse(*response);
  EXPECT_EQ(status.code(), absl::StatusCode::kNotFound);
}

TEST_F(ServerTest, WrongMethodGets405WithAllowHeader) {
  StartServer();
  absl::StatusOr<ClientResponse> response = FetchBlocking(Method::delete_, Url("/echo"));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 405);
  EXPECT_EQ(response->Header("Allow"), "GET, HEAD, POST");  // a GET handler serves HEAD too
  EXPECT_THAT(ErrorMessage(response->body), HasSubstr("DELETE"));
}

TEST_F(ServerTest, DefaultHeadersGoOnEveryResponse) {
  ServerOptions options;
  options.default_headers = {{"x-zumik-replica", "replica-0"}};
  StartServer(options);
  for (const char* path : {"/echo", "/missing"}) {
    absl::StatusOr<ClientResponse> response = Get(path);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->Header("x-zumik-replica"), "replica-0") << path;
  }
}

TEST_F(ServerTest, KeepAliveServesSequentialAndPipelinedRequestsOnOneConnection) {
  StartServer();
  RawConnection connection(server_->port());
  for (int i = 0; i < 3; ++i) {
    connection.Send("GET /echo?name=seq HTTP/1.1\r\nHost: x\r\n\r\n");
    EXPECT_EQ(connection.ReadResponse()["X-Query-Name"], "seq");
  }
  connection.Send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nA"
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 1\r\n\r\nB");
  EXPECT_EQ(connection.ReadResponse().body(), "A");
  EXPECT_EQ(connection.ReadResponse().body(), "B");
  EXPECT_EQ(server_->stats().connections_accepted, 1u);
  EXPECT_EQ(server_->stats().requests, 5u);
}

TEST_F(ServerTest, HonoursConnectionClose) {
  StartServer();
  RawConnection connection(server_->port());
  connection.Send("GET /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const auto response = connection.ReadResponse();
  EXPECT_EQ(response.result_int(), 200);
  EXPECT_EQ(response[boost::beast::http::field::connection], "close");
  EXPECT_EQ(connection.ReadUntilClose(), "");
}

TEST_F(ServerTest, Http10ClientsGetOneResponsePerConnection) {
  StartServer();
  RawConnection connection(server_->port());
  connection.Send("GET /echo HTTP/1.0\r\n\r\n");
  EXPECT_EQ(connection.ReadResponse().result_int(), 200);
  EXPECT_EQ(connection.ReadUntilClose(), "");
}

TEST_F(ServerTest, ReadsChunkedRequestBodies) {
  StartServer();
  RawConnection connection(server_->port());
  connection.Send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "5\r\nhello\r\n6\r\n world\r\n0\r\n\r\n");
  EXPECT_EQ(connection.ReadResponse().body(), "hello world");
}

// A Transfer-Encoding that does not end in chunked leaves the body's length unknown: what
// follows the head must not be served as a request of its own (RFC 9112 §6.3).
TEST_F(ServerTest, ATransferEncodingOtherThanChunkedIsRefusedAndTheConnectionClosed) {
  StartServer();
  // Codings that end in chunked frame a chunked body, which is read before the refusal.
  const struct {
    std::string_view coding;
    std::string_view body;
    int status;
  } cases[] = {{"bogus", "", 400},
               {"chunked, gzip", "", 400},
               {"gzip, chunked", "2\r\nok\r\n0\r\n\r\n", 501},
               {"chunked, chunked", "2\r\nok\r\n0\r\n\r\n", 400}};
  for (const auto& c : cases) {
    SCOPED_TRACE(c.coding);
    RawConnection connection(server_->port());
    connection.Send(
        fmt::format("POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: {}\r\n\r\n{}"
                    "GET /echo?name=smuggled HTTP/1.1\r\nHost: x\r\n\r\n",
                    c.coding, c.body));
    const auto response = connection.ReadResponse();
    EXPECT_EQ(response.result_int(), c.status);
    EXPECT_THAT(response.body(), HasSubstr("Transfer-Encoding"));
    EXPECT_EQ(connection.ReadUntilClose(), "");  // the smuggled GET is never answered
  }
  RawConnection chunked(server_->port());  // the one coding the server reads
  chunked.Send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n2\r\nok\r\n0\r\n\r\n");
  EXPECT_EQ(chunked.ReadResponse().body(), "ok");
}

TEST_F(ServerTest, AnswersExpectContinueBeforeTheBody) {
  StartServer();
  RawConnection connection(server_->port());
  connection.Send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 4\r\nExpect: 100-continue\r\n\r\n");
  EXPECT_EQ(connection.ReadResponse().result_int(), 100);
  connection.Send("body");
  EXPECT_EQ(connection.ReadResponse().body(), "body");
}

// A body far over the limit: the server answers 413 before the client has finished sending
// and closes, so the client's write fails; the client still reads and returns the 413.
TEST_F(ServerTest, ClientGets413EvenWhenTheServerClosesMidUpload) {
  ServerOptions options;
  options.max_body_bytes = 16;
  StartServer(options);
  absl::StatusOr<ClientResponse> response =
      FetchBlocking(Method::post, Url("/echo"), std::string(size_t{64} * 1024 * 1024, 'x'));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 413);
}

// The same through the streaming client (the gateway's upstream path): the stream opens with
// the 413, and the connection, whose upload never finished, is not pooled.
TEST_F(ServerTest, StreamingClientGets413EvenWhenTheServerClosesMidUpload) {
  ServerOptions options;
  options.max_body_bytes = 16;
  StartServer(options);
  Client client(io_.io().get_executor());
  ClientRequest request =
      ClientRequest::Post(Url("/echo"), std::string(size_t{64} * 1024 * 1024, 'x'));
  auto open = [&]() -> asio::awaitable<absl::StatusOr<int>> {
    absl::StatusOr<ClientStream> stream = co_await client.Stream(std::move(request));
    if (!stream.ok()) co_return stream.status();
    const int status = stream->status();
    while (true) {  // the error body, to its end
      absl::StatusOr<std::string_view> piece = co_await stream->Read();
      if (!piece.ok()) co_return piece.status();
      if (piece->empty()) break;
    }
    co_return status;
  };
  absl::StatusOr<int> status = RunOn(io_.io(), open());
  ASSERT_TRUE(status.ok()) << status.status();
  EXPECT_EQ(*status, 413);
  EXPECT_EQ(client.stats().idle_connections, 0u);
}

TEST_F(ServerTest, HeadRequestsGetHeadersOnly) {
  StartServer();
  RawConnection connection(server_->port());
  connection.Send("HEAD /echo HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string raw = connection.ReadUntilClose();
  EXPECT_THAT(raw, HasSubstr("HTTP/1.1 200 OK\r\n"));
  EXPECT_THAT(raw, HasSubstr("Content-Length: 0\r\n"));
  EXPECT_TRUE(raw.ends_with("\r\n\r\n")) << raw;
}

TEST_F(ServerTest, RespondHeadGivesTheLengthAGetWouldGetAndAnswersOnlyHead) {
  router_.Get("/sized", [](Request& request, ResponseWriter& writer) -> asio::awaitable<void> {
    if (request.method() == Method::head) {
      IgnoreClientGone(co_await writer.RespondHead(200, 1234, "text/plain"));
    } else {
      const absl::Status refused = co_await writer.RespondHead(200, 1234, "text/plain");
      EXPECT_EQ(refused.code(), absl::StatusCode::kFailedPrecondition);
      IgnoreClientGone(co_await writer.Respond(200, std::string(1234, 'x'), "text/plain"));
    }
  });
  StartServer();
  RawConnection connection(server_->port());
  connection.Send(
      "HEAD /sized HTTP/1.1\r\nHost: x\r\n\r\n"
      "GET /sized HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string raw = connection.ReadUntilClose();
  const size_t second = raw.find("HTTP/1.1 200 OK\r\n", 1);
  ASSERT_NE(second, std::string::npos) << raw;
  const std::string head = raw.substr(0, second);
  EXPECT_THAT(head, HasSubstr("Content-Length: 1234\r\n"));
  EXPECT_TRUE(head.ends_with("\r\n\r\n")) << head;  // no body after the HEAD answer
  EXPECT_TRUE(raw.ends_with(std::string(1234, 'x'))) << raw.substr(second);
}

TEST_F(ServerTest, RejectsOversizedBodyWith413Json) {
  ServerOptions options;
  options.max_body_bytes = 16;
  StartServer(options);
  absl::StatusOr<ClientResponse> response =
      FetchBlocking(Method::post, Url("/echo"), std::string(17, 'x'));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->status, 413);
  EXPECT_THAT(ErrorMessage(response->body), HasSubstr("16 bytes"));

  RawConnection chunked(server_->port());
  chunked.Send(
      "POST /echo HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n"
      "a\r\n0123456789\r\na\r\n0123456789\r\n0\r\n\r\n");
  const auto chunked_response = chunked.ReadResponse();
  EXPECT_EQ(chunked_response.result_int(), 413);
  EXPECT_EQ(chunked_response[boost::beast::http::field::content_type], "application/json");
}

TEST_F(ServerTest, RejectsOversizedHeadersWith431) {
  ServerOptions options;
  options.max_header_bytes = 1024;
  StartServer(options);
  RawConnection connection(server_->port());
  connection.Send("GET /echo HTTP/1.1\r\nHost: x\r\nX-Big: " + std::string(2048, 'a') + "\r\n\r\n");
  const auto response = connection.ReadResponse();
  EXPECT_EQ(response.result_int(), 431);
  EXPECT_THAT(ErrorMessage(response.body()), HasSubstr("1024"));
  EXPECT_EQ(connection.ReadUntilClose(), "");
}

TEST_F(ServerTest, RejectsMalformedRequestWith400AndCloses) {
  StartServer();
  RawConnection connection(server_->port());
  connection.Send("GARBAGE\r\n\r\n");
  const auto response = connection.ReadResponse();
  EXPECT_EQ(response.result_int(), 400);
  EXPECT_THAT(ErrorMessage(response.body()), HasSubstr("malformed"));
  EXPECT_EQ(connection.ReadUntilClose(), "");
}

TEST_F(ServerTest, ClosesClientThatSendsHeadersTooSlowly) {
  ServerOptions options;
  options.header_timeout = 100ms;
  StartServer(options);
  RawConnection connection(server_->port());
  connection.Send("GET /echo HTTP/1.1\r\nHost: x\r\n");
  // The server closes without answering; the read returns at close.
  EXPECT_EQ(connection.ReadUntilClose(), "");
}

TEST_F(ServerTest, ClosesIdleKeepAliveConnections) {
  ServerOptions options;
  options.idle_timeout = 100ms;
  StartServer(options);
  RawConnection connection(server_->port());
  connection.Send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(connection.ReadResponse().result_int(), 200);
  EXPECT_EQ(connection.ReadUntilClose(), "");
}

TEST_F(ServerTest, ClosesClientThatSendsTheBodyTooSlowly) {
  ServerOptions options;
  options.body_timeout = 100ms;
  StartServer(options);
  RawConnection connection(server_->port());
  connection.Send("POST /echo HTTP/1.1\r\nHost: x\r\nContent-Length: 10\r\n\r\nabc");
  EXPECT_EQ(connection.ReadUntilClose(), "");
}

TEST_F(ServerTest, HandlerExceptionsBecomeJson500AndTheServerKeepsServing) {
  router_.Get("/throw", [](Request&, ResponseWriter&) -> asio::awaitable<void> {
    throw std::runtime_error("boom");
    co_return;
  });
  router_.Get("/silent", [](Request&, ResponseWriter&) -> asio::awaitable<void> { co_return; });
  StartServer();
  for (const char* path : {"/throw", "/silent"}) {
    absl::StatusOr<ClientResponse> response = Get(path);
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->status, 500) << path;
    EXPECT_EQ(response->Header("content-type"), "application/json");
  }
  EXPECT_EQ(Get("/echo")->status, 200);
}

TEST_F(ServerTest, ChunkSizeLinesAreExactHex) {
  // Sizes around each hex digit boundary, the largest over 16 bits.
  static constexpr size_t kSizes[] = {1, 9, 10, 15, 16, 255, 256, 4095, 4096, 70000};
  router_.Get("/chunks", [](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
    IgnoreClientGone(co_await writer.BeginStream(200, "text/plain"));
    for (const size_t size : kSizes) {
      const std::string chunk(size, 'x');
      IgnoreClientGone(co_await writer.WriteChunk(chunk));
    }
    IgnoreClientGone(co_await writer.Finish());
  });
  StartServer();
  RawConnection connection(server_->port());
  connection.Send("GET /chunks HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
  const std::string raw = connection.ReadUntilClose();
  std::string expected_body;
  for (const size_t size : kSizes) {
    expected_body += fmt::format("{:x}\r\n{}\r\n", size, std::string(size, 'x'));
  }
  expected_body += "0\r\n\r\n";
  EXPECT_TRUE(raw.ends_with("\r\n\r\n" + expected_body)) << raw.substr(0, 300);
}

// BeginStream's first chunk goes out after the head, Finish's last chunk before the end,
// framed like any other; HTTP/1.0 gets the bytes unframed and HEAD gets none.
TEST_F(ServerTest, FirstAndLastChunksAreFramedWithTheHeadAndTheEnd) {
  std::promise<absl::Status> finish_again;
  router_.Get("/edges", [&](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
    IgnoreClientGone(co_await writer.BeginStream(200, "text/plain", {}, "first"));
    IgnoreClientGone(co_await writer.WriteChunk("mid"));
    IgnoreClientGone(co_await writer.Finish("last"));
    EXPECT_TRUE((co_await writer.Finish()).ok());  // still idempotent without a chunk
    finish_again.set_value(co_await writer.Finish("late"));
  });
  StartServer();
  {
    RawConnection connection(server_->port());
    connection.Send("GET /edges HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const std::string raw = connection.ReadUntilClose();
    EXPECT_TRUE(raw.ends_with("\r\n\r\n5\r\nfirst\r\n3\r\nmid\r\n4\r\nlast\r\n0\r\n\r\n")) << raw;
    EXPECT_THAT(raw, HasSubstr("Transfer-Encoding: chunked\r\n"));
  }
  EXPECT_EQ(finish_again.get_future().get().code(), absl::StatusCode::kFailedPrecondition);
  finish_again = {};
  {
    RawConnection connection(server_->port());
    connection.Send("GET /edges HTTP/1.0\r\n\r\n");
    const std::string raw = connection.ReadUntilClose();
    EXPECT_TRUE(raw.ends_with("\r\n\r\nfirstmidlast")) << raw;
  }
  EXPECT_EQ(finish_again.get_future().get().code(), absl::StatusCode::kFailedPrecondition);
  finish_again = {};
  {
    RawConnection connection(server_->port());
    connection.Send("HEAD /edges HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
    const std::string raw = connection.ReadUntilClose();
    EXPECT_THAT(raw, HasSubstr("HTTP/1.1 200 OK\r\n"));
    EXPECT_TRUE(raw.ends_with("\r\n\r\n")) << raw;
    EXPECT_THAT(raw, ::testing::Not(HasSubstr("first")));
  }
  EXPECT_EQ(finish_again.get_future().get().code(), absl::StatusCode::kFailedPrecondition);
}

TEST_F(ServerTest, StreamsSseEventsOneAtATime) {
  // The handler writes event i+1 only after the client has parsed event i: buffering on
  // either side would stall this exchange until the request deadline.
  Gate acks(io_.io(), 8);
  constexpr int kEvents = 5;
  router_.Get("/stream", [&](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
    IgnoreClientGone(co_await writer.BeginSse());
    for (int i = 0; i < kEvents; ++i) {
      IgnoreClientGone(co_await writer.WriteSse(fmt::format("event-{}", i)));
      co_await acks.async_receive(asio::use_awaitable);
    }
    IgnoreClientGone(co_await writer.WriteSse("[DONE]"));
  });
  StartServer();
  Client client(io_.io().get_executor());
  auto read_all = [&]() -> asio::awaitable<absl::StatusOr<std::vector<std::string>>> {
    absl::StatusOr<ClientStream> stream =
        co_await client.Stream(ClientRequest::Get(Url("/stream")).WithTimeout(10s));
    if (!stream.ok()) co_return stream.status();
    EXPECT_EQ(stream->status(), 200);
    EXPECT_EQ(stream->Header("content-type"), "text/event-stream");
    SseParser parser;
    std::vector<std::string> seen;
    while (true) {
      absl::StatusOr<std::string_view> piece = co_await stream->Read();
      if (!piece.ok()) co_return piece.status();
      if (piece->empty()) break;
      EXPECT_TRUE(parser.Feed(*piece).ok());
      while (std::optional<SseEvent> event = parser.Next()) {
        seen.push_back(event->data);
        acks.try_send(boost::system::error_code(), 0);
      }
    }
    co_return seen;
  };
  absl::StatusOr<std::vector<std::string>> seen = RunOn(io_.io(), read_all());
  ASSERT_TRUE(seen.ok()) << seen.status();
  EXPECT_THAT(*seen, ::testing::ElementsAre("event-0", "event-1", "event-2", "event-3", "event-4",
                                            "[DONE]"));
  // The finished stream left its connection reusable.
  EXPECT_EQ(client.stats().idle_connections, 1u);
}

struct GoneReport {
  bool wait_cancelled = false;
  bool client_gone = false;
  bool callback_ran = false;
  absl::Status write_after_gone;
};

TEST_F(ServerTest, HandlerLearnsWhenTheClientDisconnectsMidStream) {
  std::promise<GoneReport> report;
  router_.Get("/hang", [&](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
    auto callback_ran = std::make_shared<bool>(false);
    writer.OnClientGone([callback_ran] { *callback_ran = true; });
    IgnoreClientGone(co_await writer.BeginSse());
    IgnoreClientGone(co_await writer.WriteSse("first"));
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    GoneReport result;
    result.wait_cancelled = ec == asio::error::operation_aborted;
    result.client_gone = writer.client_gone();
    result.callback_ran = *callback_ran;
    result.write_after_gone = co_await writer.WriteSse("after");
    report.set_value(result);
  });
  StartServer();
  Client client(io_.io().get_executor());
  auto read_first_then_leave = [&]() -> asio::awaitable<absl::Status> {
    absl::StatusOr<ClientStream> stream = co_await client.Stream(ClientRequest::Get(Url("/hang")));
    if (!stream.ok()) co_return stream.status();
    SseParser parser;
    while (!parser.HasEvent()) {
      absl::StatusOr<std::string_view> piece = co_await stream->Read();
      if (!piece.ok()) co_return piece.status();
      if (!parser.Feed(*piece).ok()) co_return absl::InternalError("bad sse");
    }
    stream->Cancel();
    absl::StatusOr<std::string_view> after = co_await stream->Read();
    co_return after.status();
  };
  const absl::Status read_after_cancel = RunOn(io_.io(), read_first_then_leave());
  EXPECT_EQ(read_after_cancel.code(), absl::StatusCode::kCancelled);
  std::future<GoneReport> done = report.get_future();
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  const GoneReport result = done.get();
  EXPECT_TRUE(result.wait_cancelled);
  EXPECT_TRUE(result.client_gone);
  EXPECT_TRUE(result.callback_ran);
  EXPECT_EQ(result.write_after_gone.code(), absl::StatusCode::kUnavailable);
}

TEST_F(ServerTest, KeepAliveRequestAfterAHandlerAndAHalfCloseDuringTheNextOne) {
  // The read that watches the socket during the first handler carries over to the second
  // request; the client then shuts its sending side, which must cancel the second handler.
  std::promise<std::pair<bool, bool>> report;  // wait cancelled, client gone
  router_.Get("/hang", [&](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    report.set_value({ec == asio::error::operation_aborted, writer.client_gone()});
  });
  StartServer();
  RawConnection connection(server_->port());
  connection.Send("GET /echo?name=first HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(connection.ReadResponse()["X-Query-Name"], "first");
  connection.Send("GET /hang HTTP/1.1\r\nHo");
  connection.Send("st: x\r\n\r\n");
  connection.socket().shutdown(asio::ip::tcp::socket::shutdown_send);
  std::future<std::pair<bool, bool>> done = report.get_future();
  ASSERT_EQ(done.wait_for(10s), std::future_status::ready);
  const auto [wait_cancelled, client_gone] = done.get();
  EXPECT_TRUE(wait_cancelled);
  EXPECT_TRUE(client_gone);
  EXPECT_EQ(server_->stats().requests, 2u);
}

TEST_F(ServerTest, ProxyHandlerStopsItsUpstreamStreamWhenTheClientLeaves) {
  // The EPP gateway shape: a handler relays an upstream SSE stream. When its client leaves,
  // the upstream request must be cancelled so the upstream server stops generating.
  std::promise<bool> upstream_saw_client_leave;
  Router upstream_router;
  upstream_router.Get("/generate", [&](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
    IgnoreClientGone(co_await writer.BeginSse());
    IgnoreClientGone(co_await writer.WriteSse("token"));
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
    co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    upstream_saw_client_leave.set_value(writer.client_gone());
  });
  Server upstream(io_.io(), ServerOptions(), std::move(upstream_router));
  ASSERT_TRUE(upstream.Start().ok());
  const std::string upstream_url = fmt::format("http://127.0.0.1:{}/generate", upstream.port());

  Client upstream_client(io_.io().get_executor());
  std::promise<absl::Status> relay_result;
  router_.Get("/relay", [&](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
    absl::StatusOr<ClientStream> stream =
        co_await upstream_client.Stream(ClientRequest::Get(upstream_url));
    if (!stream.ok()) {
      relay_result.set_value(stream.status());
      co_return;
    }
    // Covers a client that leaves between two awaits, which asio cancellation cannot.
    writer.OnClientGone([&stream] { stream->Cancel(); });
    IgnoreClientGone(co_await writer.BeginSse());
    while (true) {
      absl::StatusOr<std::string_view> piece = co_await stream->Read();
      if (!piece.ok() || piece->empty()) {
        relay_result.set_value(piece.status());
        co_return;
      }
      if (!(co_await writer.WriteChunk(*piece)).ok()) {
        relay_result.set_value(absl::AbortedError("client write failed"));
        co_return;
      }
    }
  });
  StartServer();
  Client client(io_.io().get_executor());
  auto read_one_event_then_leave = [&]() -> asio::awaitable<absl::Status> {
    absl::StatusOr<ClientStream> stream = co_await client.Stream(ClientRequest::Get(Url("/relay")));
    if (!stream.ok()) co_return stream.status();
    SseParser parser;
    while (!parser.HasEvent()) {
      absl::StatusOr<std::string_view> piece = co_await stream->Read();
      if (!piece.ok()) co_return piece.status();
      if (piece->empty()) co_return absl::InternalError("relay ended early");
      if (!parser.Feed(*piece).ok()) co_return absl::InternalError("bad sse");
    }
    EXPECT_EQ(parser.Next()->data, "token");
    stream->Cancel();
    co_return absl::OkStatus();
  };
  const absl::Status client_side = RunOn(io_.io(), read_one_event_then_leave());
  ASSERT_TRUE(client_side.ok()) << client_side;

  // Each step says which it was if it fails (CI once saw this test fail, without its output).
  std::future<absl::Status> relayed = relay_result.get_future();
  ASSERT_EQ(relayed.wait_for(10s), std::future_status::ready)
      << "the relay handler never ended (an exception from its upstream read?)";
  const absl::Status relay_status = relayed.get();
  EXPECT_EQ(relay_status.code(), absl::StatusCode::kCancelled) << relay_status;
  std::future<bool> upstream_done = upstream_saw_client_leave.get_future();
  ASSERT_EQ(upstream_done.wait_for(10s), std::future_status::ready)
      << "the upstream handler was never cancelled: the relay's upstream connection stayed open";
  EXPECT_TRUE(upstream_done.get()) << "the upstream handler was cancelled but not by its client";
  upstream.Stop(1s);
}

TEST_F(ServerTest, GracefulStopFinishesInFlightRequestsAndRefusesNewConnections) {
  Gate release(io_.io(), 1);
  std::promise<void> handler_started;
  router_.Get("/slow", [&](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
    handler_started.set_value();
    co_await release.async_receive(asio::use_awaitable);
    IgnoreClientGone(co_await writer.Respond(200, "finished", "text/plain"));
  });
  StartServer();
  Client client(io_.io().get_executor());
  std::future<absl::StatusOr<ClientResponse>> in_flight =
      testing::Spawn(io_.io(), client.Fetch(ClientRequest::Get(Url("/slow")).WithTimeout(10s)));
  handler_started.get_future().wait();

  std::thread stopper([&] { server_->Stop(10s); });
  // Once the listener is closed new connections are refused; until then they are served.
  absl::Status refused;
  for (int attempt = 0; attempt < 10000 && refused.ok(); ++attempt) {
    refused = FetchBlocking(Method::get, Url("/echo")).status();
  }
  EXPECT_EQ(refused.code(), absl::StatusCode::kUnavailable);
  EXPECT_EQ(in_flight.wait_for(0s), std::future_status::timeout);

  release.try_send(boost::system::error_code(), 0);
  absl::StatusOr<ClientResponse> response = in_flight.get();
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "finished");
  EXPECT_EQ(response->Header("connection"), "close");
  stopper.join();
  EXPECT_EQ(server_->stats().active_connections, 0u);
}

TEST_F(ServerTest, StopClosesIdleConnectionsAndCancelsHandlersPastTheGrace) {
  std::promise<bool> handler_cancelled;
  std::promise<void> handler_started;
  router_.Get("/forever", [&](Request&, ResponseWriter&) -> asio::awaitable<void> {
    handler_started.set_value();
    asio::steady_timer timer(co_await asio::this_coro::executor, std::chrono::hours(1));
    auto [ec] = co_await timer.async_wait(asio::as_tuple(asio::use_awaitable));
    handler_cancelled.set_value(ec == asio::error::operation_aborted);
  });
  StartServer();
  RawConnection idle(server_->port());
  idle.Send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(idle.ReadResponse().result_int(), 200);
  RawConnection stuck(server_->port());
  stuck.Send("GET /forever HTTP/1.1\r\nHost: x\r\n\r\n");
  handler_started.get_future().wait();

  server_->Stop(50ms);
  EXPECT_EQ(server_->stats().active_connections, 0u);
  EXPECT_TRUE(handler_cancelled.get_future().get());
  EXPECT_EQ(idle.ReadUntilClose(), "");
  EXPECT_EQ(stuck.ReadUntilClose(), "");
}

TEST_F(ServerTest, ClosesConnectionsOverTheLimit) {
  ServerOptions options;
  options.max_connections = 1;
  StartServer(options);
  RawConnection first(server_->port());
  first.Send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(first.ReadResponse().result_int(), 200);
  RawConnection second(server_->port());
  EXPECT_EQ(second.ReadUntilClose(), "");
  EXPECT_EQ(server_->stats().connections_rejected, 1u);
  first.Send("GET /echo HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(first.ReadResponse().result_int(), 200);
}

TEST(Server, SeveralServersShareOneIoContext) {
  IoThreads io;
  std::vector<std::unique_ptr<Server>> replicas;
  for (int i = 0; i < 3; ++i) {
    Router router;
    router.Get("/who", [i](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
      IgnoreClientGone(co_await writer.Respond(200, fmt::format("replica-{}", i), "text/plain"));
    });
    ServerOptions options;
    options.name = fmt::format("replica-{}", i);
    replicas.push_back(std::make_unique<Server>(io.io(), options, std::move(router)));
    replicas.back()->SetDefaultHeaders({{"x-zumik-replica", options.name}});
    ASSERT_TRUE(replicas.back()->Start().ok());
  }
  for (int i = 0; i < 3; ++i) {
    absl::StatusOr<ClientResponse> response =
        FetchBlocking(Method::get, fmt::format("http://127.0.0.1:{}/who", replicas[i]->port()));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->body, fmt::format("replica-{}", i));
    EXPECT_EQ(response->Header("x-zumik-replica"), fmt::format("replica-{}", i));
  }
  for (auto& replica : replicas) replica->Stop(1s);
}

TEST(Server, StartFailsClearlyWhenThePortIsTaken) {
  IoThreads io(1);
  Server first(io.io(), {}, Router());
  ASSERT_TRUE(first.Start().ok());
  ServerOptions options;
  options.port = first.port();
  options.name = "second";
  Server second(io.io(), options, Router());
  const absl::Status status = second.Start();
  EXPECT_EQ(status.code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(MessageOf(status)), HasSubstr(std::to_string(first.port())));
  first.Stop(1s);
}

// Per-core workers, nginx style: each Server on its own single-threaded io_context, all on
// one port.
struct PortWorker {
  explicit PortWorker(int worker_id) : id(worker_id), io(1) {}
  absl::Status Start(uint16_t port) {
    MakeServer(port, /*reuse_port=*/true);
    return server->Start();
  }
  void MakeServer(uint16_t port, bool reuse_port) {
    Router router;
    router.Get("/who", [this](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
      IgnoreClientGone(co_await writer.Respond(200, fmt::format("worker-{}", id), "text/plain"));
    });
    ServerOptions options;
    options.name = fmt::format("worker-{}", id);
    options.port = port;
    options.reuse_port = reuse_port;
    options.single_threaded = true;
    server = std::make_unique<Server>(io.io(), options, std::move(router));
  }

  const int id;
  IoThreads io;
  std::unique_ptr<Server> server;
};

TEST(Server, ReusePortLetsPerThreadServersShareOnePortAndBothAccept) {
  PortWorker first(0);
  PortWorker second(1);
  ASSERT_TRUE(first.Start(0).ok());
  ASSERT_TRUE(second.Start(first.server->port()).ok());
  EXPECT_EQ(second.server->port(), first.server->port());
  const std::string url = fmt::format("http://127.0.0.1:{}/who", first.server->port());
  // The kernel spreads connections by a hash of the client's address and port: each new
  // connection lands on either worker, so a few dozen reach both (all miss one: 2^-63).
  std::set<std::string> answered;
  for (int i = 0; i < 64 && answered.size() < 2; ++i) {
    absl::StatusOr<ClientResponse> response = FetchBlocking(Method::get, url);
    ASSERT_TRUE(response.ok()) << response.status();
    answered.insert(response->body);
  }
  EXPECT_THAT(answered, ::testing::ElementsAre("worker-0", "worker-1"));
  EXPECT_GE(first.server->stats().connections_accepted, 1u);
  EXPECT_GE(second.server->stats().connections_accepted, 1u);
  // One worker stopping leaves the port served by the other.
  first.server->Stop(1s);
  absl::StatusOr<ClientResponse> response = FetchBlocking(Method::get, url);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "worker-1");
  second.server->Stop(1s);
}

// The even alternative to reuse_port: one worker accepts and hands each connection to the
// worker with the fewest, which then serves it on its own thread.
TEST(Server, SpreadConnectionsOverHandsEachConnectionToTheLeastLoadedWorker) {
  PortWorker first(0);
  PortWorker second(1);
  first.MakeServer(0, /*reuse_port=*/false);
  second.MakeServer(0, /*reuse_port=*/false);
  first.server->SpreadConnectionsOver({first.server.get(), second.server.get()});
  ASSERT_TRUE(first.server->Start().ok());
  ASSERT_TRUE(second.server->StartWithoutListener().ok());
  // Four connections held open: two each, whatever order they are accepted in.
  std::vector<std::unique_ptr<RawConnection>> clients;
  std::multiset<std::string> answered;
  for (int i = 0; i < 4; ++i) {
    clients.push_back(std::make_unique<RawConnection>(first.server->port()));
    clients.back()->Send("GET /who HTTP/1.1\r\nHost: x\r\n\r\n");
    answered.insert(clients.back()->ReadResponse().body());
  }
  EXPECT_EQ(answered.count("worker-0"), 2u);
  EXPECT_EQ(answered.count("worker-1"), 2u);
  EXPECT_EQ(first.server->stats().connections_accepted, 2u);
  EXPECT_EQ(second.server->stats().connections_accepted, 2u);
  // Keep-alive: a connection stays with the worker it was handed to.
  clients[0]->Send("GET /who HTTP/1.1\r\nHost: x\r\n\r\n");
  const std::string again = clients[0]->ReadResponse().body();
  clients[0]->Send("GET /who HTTP/1.1\r\nHost: x\r\n\r\n");
  EXPECT_EQ(clients[0]->ReadResponse().body(), again);
  clients.clear();
  second.server->Stop(1s);
  first.server->Stop(1s);
}

TEST(Server, ReusePortIsOptInForEveryServerOnThePort) {
  PortWorker first(0);
  ASSERT_TRUE(first.Start(0).ok());
  IoThreads io(1);
  ServerOptions options;
  options.port = first.server->port();
  Server plain(io.io(), options, Router());
  EXPECT_EQ(plain.Start().code(), absl::StatusCode::kUnavailable);
  first.server->Stop(1s);
}

}  // namespace
}  // namespace zumik::http
