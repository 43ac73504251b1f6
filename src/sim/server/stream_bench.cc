// Real-time streaming benchmark of `zumik sim`: N concurrent SSE streams (default 2,000) against
// an in-process 4-replica fleet, on the machine's cores. Reports how late tokens reach the
// client socket relative to the model's step ends (the simulator's pacing error) and the
// client-observed inter-token latency next to the model's.
//
//   build/bench/sim_stream_bench [--streams 2000] [--tokens 200] [--prompt-tokens 1000]
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/json.hpp>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <thread>

#include "core/clock.h"
#include "core/http/client.h"
#include "core/http/sse.h"
#include "core/metrics/parser.h"
#include "core/metrics/query.h"
#include "sim/server/sim_server.h"

namespace asio = boost::asio;
using namespace zumik;

namespace {

struct Totals {
  std::atomic<int> complete{0};
  std::atomic<int> failed{0};
  std::mutex mu;
  std::vector<double> itl_ms;  // client-observed gaps between token events
};

http::Headers JsonHeaders() { return {{"Content-Type", "application/json"}}; }

asio::awaitable<void> OneStream(std::shared_ptr<http::Client> client, std::string url,
                                std::string body, int tokens, Totals* totals) {
  http::ClientRequest request;
  request.method = http::Method::post;
  request.url = std::move(url);
  request.headers = JsonHeaders();
  request.body = std::move(body);
  request.timeout = std::chrono::minutes(10);
  auto stream = co_await client->Stream(std::move(request));
  if (!stream.ok() || stream->status() != 200) {
    totals->failed.fetch_add(1);
    co_return;
  }
  http::SseParser parser;
  std::vector<double> gaps;
  gaps.reserve(tokens);
  Time last{-1};
  int seen = 0;
  bool done = false;
  for (;;) {
    auto data = co_await stream->Read();
    if (!data.ok() || data->empty()) break;
    const Time now = RealClock::Instance().Now();
    if (!parser.Feed(*data).ok()) break;
    while (auto event = parser.Next()) {
      if (event->data == "[DONE]") {
        done = true;
        continue;
      }
      if (last.count() >= 0) gaps.push_back(ToMillis(now - last));
      last = now;
      ++seen;
    }
  }
  if (done && seen == tokens) {
    totals->complete.fetch_add(1);
  } else {
    totals->failed.fetch_add(1);
  }
  std::lock_guard lock(totals->mu);
  totals->itl_ms.insert(totals->itl_ms.end(), gaps.begin(), gaps.end());
}

double Percentile(std::vector<double>& v, double q) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v[std::min(v.size() - 1, static_cast<size_t>(q * v.size()))];
}

int IntFlag(int argc, char** argv, const char* name, int fallback) {
  for (int i = 1; i + 1 < argc; ++i) {
    if (std::strcmp(argv[i], name) == 0) return std::atoi(argv[i + 1]);
  }
  return fallback;
}

}  // namespace

int main(int argc, char** argv) {
  const int streams = IntFlag(argc, argv, "--streams", 2000);
  const int tokens = IntFlag(argc, argv, "--tokens", 200);
  const int prompt_tokens = IntFlag(argc, argv, "--prompt-tokens", 1000);
  const int replicas = IntFlag(argc, argv, "--replicas", 4);

  auto profile = sim::ResolveProfile("h100-llama-3.1-8b");
  if (!profile.ok()) return 1;
  sim::SimServerOptions options;
  options.replicas = replicas;
  options.port = 0;
  options.profile = *profile;
  options.threads = IntFlag(argc, argv, "--server-threads", 2);
  sim::SimServer server(options);
  if (!server.Start().ok()) return 1;

  asio::io_context io;
  http::ClientOptions client_options;
  client_options.max_idle_per_host = static_cast<size_t>(streams);
  client_options.request_timeout = std::chrono::minutes(10);
  auto client = std::make_shared<http::Client>(io.get_executor(), client_options);
  Totals totals;
  const Time start = RealClock::Instance().Now();
  for (int i = 0; i < streams; ++i) {
    const auto port = server.replicas()[i % replicas]->port();
    boost::json::object body{{"model", profile->served_model_name},
                             {"prompt", std::string(4 * prompt_tokens - 8, 'p') + fmt::format("{:08d}", i)},
                             {"max_tokens", tokens},
                             {"ignore_eos", true},
                             {"stream", true}};
    asio::co_spawn(io,
                   OneStream(client, fmt::format("http://127.0.0.1:{}/v1/completions", port),
                             boost::json::serialize(body), tokens, &totals),
                   asio::detached);
  }
  io.run();
  const double wall_s = ToSeconds(RealClock::Instance().Now() - start);

  // The server's own view: model ITL and delivery lag, summed over replicas.
  std::vector<metrics::Sample> all;
  for (const auto& replica : server.replicas()) {
    auto samples = metrics::ParseText(replica->MetricsText());
    if (samples.ok()) all.insert(all.end(), samples->begin(), samples->end());
  }
  auto q = [&](const char* name, double quantile) {
    auto v = metrics::HistogramQuantile(quantile, all, name);
    return v.ok() ? *v * 1000 : -1.0;
  };
  std::printf("streams=%d complete=%d failed=%d tokens/stream=%d prompt=%d replicas=%d wall=%.1fs\n",
              streams, totals.complete.load(), totals.failed.load(), tokens, prompt_tokens,
              replicas, wall_s);
  std::printf("client ITL ms: p50=%.2f p90=%.2f p99=%.2f\n", Percentile(totals.itl_ms, 0.5),
              Percentile(totals.itl_ms, 0.9), Percentile(totals.itl_ms, 0.99));
  std::printf("model  ITL ms (vllm:inter_token_latency_seconds): p50=%.2f p90=%.2f p99=%.2f\n",
              q("vllm:inter_token_latency_seconds", 0.5), q("vllm:inter_token_latency_seconds", 0.9),
              q("vllm:inter_token_latency_seconds", 0.99));
  std::printf("token delivery lag ms (socket write - model step end): p50=%.2f p90=%.2f p99=%.2f\n",
              q("zumik_sim_token_delivery_lag_seconds", 0.5),
              q("zumik_sim_token_delivery_lag_seconds", 0.9),
              q("zumik_sim_token_delivery_lag_seconds", 0.99));
  server.Stop(std::chrono::seconds(1));
  return totals.failed.load() == 0 ? 0 : 1;
}
