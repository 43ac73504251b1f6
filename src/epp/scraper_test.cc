// Scraper: mapping model-server metrics (vLLM, legacy vLLM, SGLang, garbage) into endpoint
// metrics, and the live loop publishing into the datastore.
#include "epp/scraper.h"

#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <thread>

#include "core/http/response_writer.h"
#include "core/http/server.h"
#include "core/metrics/vllm_payload_testdata.h"

namespace zumik::epp {
namespace {

constexpr Time kNow = std::chrono::seconds(100);

TEST(ExtractMetrics, ReadsVllmNamesSummingDataParallelRanks) {
  auto m = ExtractMetrics(metrics::testdata::kVllmPayload, Engine::kVllm, kNow);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_TRUE(m->valid);
  EXPECT_EQ(m->scraped_at, kNow);
  EXPECT_EQ(m->waiting_requests, 7);
  EXPECT_EQ(m->running_requests, 8);
  EXPECT_DOUBLE_EQ(m->kv_cache_usage, 0.4187);  // the busiest rank
  EXPECT_EQ(m->block_size, 16);
  EXPECT_EQ(m->num_gpu_blocks, 27500);
  EXPECT_EQ(m->max_lora, 1);
}

TEST(ExtractMetrics, FallsBackToTheOlderGpuCacheUsageName) {
  std::string_view text =
      "vllm:num_requests_waiting 2\nvllm:num_requests_running 1\n"
      "vllm:gpu_cache_usage_perc 0.25\n"
      "vllm:lora_requests_info{max_lora=\"4\",running_lora_adapters=\"a, b\","
      "waiting_lora_adapters=\"\"} 10\n"
      "vllm:lora_requests_info{max_lora=\"4\",running_lora_adapters=\"c\","
      "waiting_lora_adapters=\"d\"} 20\n";
  auto m = ExtractMetrics(text, Engine::kVllm, kNow);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_DOUBLE_EQ(m->kv_cache_usage, 0.25);
  // The newest LoRA sample (largest timestamp value) wins.
  EXPECT_EQ(m->running_lora_adapters, std::vector<std::string>{"c"});
  EXPECT_EQ(m->waiting_lora_adapters, std::vector<std::string>{"d"});
}

TEST(ExtractMetrics, ReadsSglangNamesWhenTheLabelSaysSo) {
  std::string_view text =
      "sglang:num_queue_reqs{model_name=\"m\"} 3\nsglang:num_running_reqs{model_name=\"m\"} 9\n"
      "sglang:token_usage{model_name=\"m\"} 0.5\n"
      "sglang:cache_config_info{page_size=\"32\",num_pages=\"1000\"} 1\n";
  auto m = ExtractMetrics(text, Engine::kSglang, kNow);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->waiting_requests, 3);
  EXPECT_EQ(m->running_requests, 9);
  EXPECT_DOUBLE_EQ(m->kv_cache_usage, 0.5);
  EXPECT_EQ(m->block_size, 32);
  EXPECT_EQ(m->num_gpu_blocks, 1000);
  // The same text read as vLLM has none of the names.
  EXPECT_EQ(ExtractMetrics(text, Engine::kVllm, kNow).status().code(), absl::StatusCode::kNotFound);
}

TEST(ExtractMetrics, RejectsGarbageAndClampsNonsenseValues) {
  EXPECT_FALSE(ExtractMetrics("<html>oops</html>", Engine::kVllm, kNow).ok());
  EXPECT_FALSE(ExtractMetrics("vllm:num_requests_waiting{ 3\n", Engine::kVllm, kNow).ok());
  auto m = ExtractMetrics(
      "vllm:num_requests_waiting -4\nvllm:kv_cache_usage_perc 7\n"
      "vllm:cache_config_info{block_size=\"x\",num_gpu_blocks=\"-1\"} 1\n",
      Engine::kVllm, kNow);
  ASSERT_TRUE(m.ok()) << m.status();
  EXPECT_EQ(m->waiting_requests, 0);
  EXPECT_DOUBLE_EQ(m->kv_cache_usage, 1.0);
  EXPECT_EQ(m->block_size, 0);
  EXPECT_EQ(m->num_gpu_blocks, 0);
}

boost::asio::awaitable<void> ServeText(std::string text, http::ResponseWriter& writer) {
  http::IgnoreClientGone(co_await writer.Respond(200, text, "text/plain"));
}

// Polls a condition (the scraper runs on its own threads) with a generous deadline.
template <typename F>
bool Eventually(F condition) {
  auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(10);
  while (std::chrono::steady_clock::now() < deadline) {
    if (condition()) return true;
    std::this_thread::sleep_for(std::chrono::milliseconds(2));
  }
  return false;
}

TEST(Scraper, PublishesLiveMetricsAndKeepsOldValuesWhenAnEndpointServesGarbage) {
  boost::asio::io_context io;
  http::Router router;
  router.Get("/metrics", [](http::Request&, http::ResponseWriter& w) {
    return ServeText("vllm:num_requests_waiting 6\nvllm:kv_cache_usage_perc 0.3\n", w);
  });
  http::Router bad_router;
  bad_router.Get("/metrics", [](http::Request&, http::ResponseWriter& w) {
    return ServeText("}}} not prometheus", w);
  });
  http::Server good(io, http::ServerOptions{}, std::move(router));
  http::Server bad(io, http::ServerOptions{}, std::move(bad_router));
  ASSERT_TRUE(good.Start().ok());
  ASSERT_TRUE(bad.Start().ok());

  Datastore ds;
  std::vector<EndpointSpec> specs(2);
  specs[0].address = good.address();
  specs[1].address = bad.address();
  ds.SetEndpoints(specs);
  ScraperOptions options;
  options.interval = std::chrono::milliseconds(10);
  Scraper scraper(io, ds, options);
  scraper.Start();
  std::thread runner([&io] { io.run(); });

  EXPECT_TRUE(Eventually([&] {
    auto snap = ds.Current();
    const auto& e = snap->endpoints[snap->Find(good.address())];
    return e.metrics.valid && e.metrics.waiting_requests == 6;
  }));
  EXPECT_TRUE(Eventually([&] { return scraper.stats().failures >= 2; }));
  auto snap = ds.Current();
  EXPECT_FALSE(snap->endpoints[snap->Find(bad.address())].metrics.valid);

  scraper.Stop();
  good.Stop(std::chrono::milliseconds(10));
  bad.Stop(std::chrono::milliseconds(10));
  io.stop();
  runner.join();
}

TEST(ScrapeAddress, ReplacesThePortOnlyWhenOneIsGiven) {
  EXPECT_EQ(ScrapeAddress("10.0.0.7:8012", 0), "10.0.0.7:8012");
  EXPECT_EQ(ScrapeAddress("10.0.0.7:8012", 8000), "10.0.0.7:8000");
  EXPECT_EQ(ScrapeAddress("[fd00::7]:8012", 8000), "[fd00::7]:8000");
}

// Requests go to one port (a proxy on the pod), /metrics is read from another.
TEST(Scraper, ScrapesTheMetricsPortWhenOneIsSet) {
  boost::asio::io_context io;
  http::Router router;
  router.Get("/metrics", [](http::Request&, http::ResponseWriter& w) {
    return ServeText("vllm:num_requests_waiting 4\nvllm:kv_cache_usage_perc 0.5\n", w);
  });
  http::Server server(io, http::ServerOptions{}, std::move(router));
  ASSERT_TRUE(server.Start().ok());

  Datastore ds;
  std::vector<EndpointSpec> specs(1);
  specs[0].address = "127.0.0.1:1";  // nothing listens there: only the metrics port answers
  ds.SetEndpoints(specs);
  ScraperOptions options;
  options.interval = std::chrono::milliseconds(10);
  options.port = server.port();
  Scraper scraper(io, ds, options);
  scraper.Start();
  std::thread runner([&io] { io.run(); });

  EXPECT_TRUE(Eventually([&] {
    auto snap = ds.Current();
    const auto& e = snap->endpoints[snap->Find("127.0.0.1:1")];
    return e.metrics.valid && e.metrics.waiting_requests == 4;
  }));

  scraper.Stop();
  server.Stop(std::chrono::milliseconds(10));
  io.stop();
  runner.join();
}

}  // namespace
}  // namespace zumik::epp
