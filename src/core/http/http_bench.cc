// In-process loopback benchmarks: small keep-alive requests per second, and SSE events per
// second, with the server and the client sharing one io_context on two threads.
#include <atomic>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <future>
#include <string>

#include "benchmark/benchmark.h"
#include "core/http/client.h"
#include "core/http/server.h"
#include "core/http/sse.h"
#include "core/http/test_util.h"

namespace zumik::http {
namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

Router BenchRouter() {
  Router router;
  router.Get("/ping", [](Request&, ResponseWriter& writer) -> asio::awaitable<void> {
    IgnoreClientGone(co_await writer.Respond(200, R"({"ok":true})"));
  });
  router.Get("/events", [](Request& request, ResponseWriter& writer) -> asio::awaitable<void> {
    const int count = std::stoi(std::string(request.QueryParam("n").value_or("100")));
    const std::string payload(64, 'x');
    if (!(co_await writer.BeginSse()).ok()) co_return;
    for (int i = 0; i < count; ++i) {
      if (!(co_await writer.WriteSse(payload)).ok()) co_return;
    }
    IgnoreClientGone(co_await writer.WriteSse("[DONE]"));
  });
  return router;
}

// Runs `workers` coroutines until `body` has been called `total` times.
template <typename Body>
void RunConcurrently(asio::io_context& io, int workers, int total, Body body) {
  std::atomic<int> remaining{total};
  std::atomic<int> running{workers};
  std::promise<void> done;
  for (int w = 0; w < workers; ++w) {
    asio::co_spawn(
        io,
        [&]() -> asio::awaitable<void> {
          while (remaining.fetch_sub(1) > 0) co_await body();
          if (--running == 0) done.set_value();
        },
        asio::detached);
  }
  done.get_future().wait();
}

void BM_KeepAliveRequests(benchmark::State& state) {
  const int concurrency = static_cast<int>(state.range(0));
  constexpr int kBatch = 2000;
  testing::IoThreads io(2);
  Server server(io.io(), ServerOptions(), BenchRouter());
  if (!server.Start().ok()) state.SkipWithError("server did not start");
  ClientOptions options;
  options.max_idle_per_host = 1024;
  Client client(io.io().get_executor(), options);
  const std::string url = fmt::format("http://127.0.0.1:{}/ping", server.port());
  std::atomic<int> errors{0};
  for (auto _ : state) {
    RunConcurrently(io.io(), concurrency, kBatch, [&]() -> asio::awaitable<void> {
      absl::StatusOr<ClientResponse> response = co_await client.Fetch(ClientRequest::Get(url));
      if (!response.ok() || response->status != 200) ++errors;
    });
  }
  if (errors > 0) state.SkipWithError("requests failed");
  state.SetItemsProcessed(state.iterations() * kBatch);
  state.counters["connections"] = static_cast<double>(server.stats().connections_accepted);
  server.Stop(1s);
}
BENCHMARK(BM_KeepAliveRequests)
    ->Arg(1)
    ->Arg(16)
    ->Arg(64)
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

void BM_SseEvents(benchmark::State& state) {
  const int streams = static_cast<int>(state.range(0));
  const int events_per_stream = static_cast<int>(state.range(1));
  testing::IoThreads io(2);
  Server server(io.io(), ServerOptions(), BenchRouter());
  if (!server.Start().ok()) state.SkipWithError("server did not start");
  ClientOptions options;
  options.max_idle_per_host = 4096;
  Client client(io.io().get_executor(), options);
  const std::string url =
      fmt::format("http://127.0.0.1:{}/events?n={}", server.port(), events_per_stream);
  std::atomic<int64_t> events{0};
  std::atomic<int> errors{0};
  for (auto _ : state) {
    RunConcurrently(io.io(), streams, streams, [&]() -> asio::awaitable<void> {
      absl::StatusOr<ClientStream> stream = co_await client.Stream(ClientRequest::Get(url));
      if (!stream.ok()) {
        ++errors;
        co_return;
      }
      SseParser parser;
      while (true) {
        absl::StatusOr<std::string_view> piece = co_await stream->Read();
        if (!piece.ok()) ++errors;
        if (!piece.ok() || piece->empty()) break;
        if (!parser.Feed(*piece).ok()) ++errors;
        while (parser.Next()) ++events;
      }
    });
  }
  if (errors > 0) state.SkipWithError("streams failed");
  state.SetItemsProcessed(events.load());
  state.SetBytesProcessed(events.load() * 72);
  server.Stop(1s);
}
BENCHMARK(BM_SseEvents)
    ->Args({1, 10000})
    ->Args({100, 200})
    ->Args({2000, 10})
    ->UseRealTime()
    ->Unit(benchmark::kMillisecond);

}  // namespace
}  // namespace zumik::http

BENCHMARK_MAIN();
