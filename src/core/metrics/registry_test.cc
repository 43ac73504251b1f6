// Registration rules and exact exposition text, callbacks, overflow, round trip via the parser.
#include "core/metrics/registry.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <cmath>
#include <limits>
#include <thread>

#include "core/metrics/exposition.h"
#include "core/metrics/parser.h"
#include "core/metrics/query.h"
#include "core/status.h"

namespace zumik::metrics {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

template <typename T>
T Must(absl::StatusOr<T> value) {
  EXPECT_TRUE(value.ok()) << value.status();
  return *std::move(value);
}

TEST(Registry, ExposesCountersUnderTheExactRegisteredName) {
  Registry registry;
  CounterFamily* prompt = Must(registry.AddCounter(
      "vllm:prompt_tokens_total", "Number of prefill tokens processed.", {"model_name", "engine"}));
  prompt->With({"meta-llama/Llama-3.1-8B-Instruct", "0"})->Inc(1234);
  EXPECT_EQ(registry.Expose(),
            "# HELP vllm:prompt_tokens_total Number of prefill tokens processed.\n"
            "# TYPE vllm:prompt_tokens_total counter\n"
            "vllm:prompt_tokens_total{model_name=\"meta-llama/Llama-3.1-8B-Instruct\","
            "engine=\"0\"} 1234.0\n");
}

TEST(Registry, ExposesGaugesWithAndWithoutLabels) {
  Registry registry;
  GaugeFamily* running = Must(registry.AddGauge("vllm:num_requests_running",
                                                "Number of requests in model execution batches.",
                                                {"model_name", "engine"}));
  GaugeFamily* up = Must(registry.AddGauge("up", ""));
  running->With({"m", "0"})->Set(3);
  running->With({"m", "1"})->Set(0.5);
  up->With({})->Set(1);
  EXPECT_EQ(registry.Expose(),
            "# HELP vllm:num_requests_running Number of requests in model execution batches.\n"
            "# TYPE vllm:num_requests_running gauge\n"
            "vllm:num_requests_running{model_name=\"m\",engine=\"0\"} 3.0\n"
            "vllm:num_requests_running{model_name=\"m\",engine=\"1\"} 0.5\n"
            "# TYPE up gauge\n"
            "up 1.0\n");
}

TEST(Registry, ExposesHistogramsWithCumulativeBucketsInfSumAndCount) {
  Registry registry;
  HistogramFamily* ttft = Must(registry.AddHistogram("vllm:time_to_first_token_seconds",
                                                     "Histogram of time to first token in seconds.",
                                                     {"model_name", "engine"}, {0.1, 0.5, 1.0}));
  const std::shared_ptr<Histogram> h = ttft->With({"m", "0"});
  h->Observe(0.25);
  h->Observe(0.5);
  h->Observe(2);
  h->Observe(0.05);
  EXPECT_EQ(
      registry.Expose(),
      "# HELP vllm:time_to_first_token_seconds Histogram of time to first token in "
      "seconds.\n"
      "# TYPE vllm:time_to_first_token_seconds histogram\n"
      "vllm:time_to_first_token_seconds_bucket{model_name=\"m\",engine=\"0\",le=\"0.1\"} 1.0\n"
      "vllm:time_to_first_token_seconds_bucket{model_name=\"m\",engine=\"0\",le=\"0.5\"} 3.0\n"
      "vllm:time_to_first_token_seconds_bucket{model_name=\"m\",engine=\"0\",le=\"1.0\"} 3.0\n"
      "vllm:time_to_first_token_seconds_bucket{model_name=\"m\",engine=\"0\",le=\"+Inf\"} "
      "4.0\n"
      "vllm:time_to_first_token_seconds_count{model_name=\"m\",engine=\"0\"} 4.0\n"
      "vllm:time_to_first_token_seconds_sum{model_name=\"m\",engine=\"0\"} 2.8\n");
}

TEST(Registry, HistogramWithoutLabelsWritesOnlyLe) {
  Registry registry;
  HistogramFamily* latency = Must(registry.AddHistogram("latency_seconds", "", {}, {1}));
  latency->With({})->Observe(0.5);
  EXPECT_EQ(registry.Expose(),
            "# TYPE latency_seconds histogram\n"
            "latency_seconds_bucket{le=\"1.0\"} 1.0\n"
            "latency_seconds_bucket{le=\"+Inf\"} 1.0\n"
            "latency_seconds_count 1.0\n"
            "latency_seconds_sum 0.5\n");
}

TEST(Registry, EscapesHelpAndLabelValues) {
  Registry registry;
  GaugeFamily* gauge =
      Must(registry.AddGauge("escaped", "A \"quoted\" C:\\path\nsecond line", {"value"}));
  gauge->With({"say \"hi\"\\\n"})->Set(1);
  EXPECT_EQ(registry.Expose(),
            "# HELP escaped A \"quoted\" C:\\\\path\\nsecond line\n"
            "# TYPE escaped gauge\n"
            "escaped{value=\"say \\\"hi\\\"\\\\\\n\"} 1.0\n");
}

TEST(Registry, ExposesFamiliesInRegistrationOrderIncludingEmptyOnes) {
  Registry registry;
  Must(registry.AddGauge("zeta", "z"));
  Must(registry.AddCounter("alpha_total", "a", {"x"}));
  EXPECT_EQ(registry.Expose(),
            "# HELP zeta z\n# TYPE zeta gauge\n"
            "# HELP alpha_total a\n# TYPE alpha_total counter\n");
}

TEST(Registry, InfoGaugesHaveValueOneAndDescriptiveLabels) {
  Registry registry;
  ASSERT_TRUE(registry
                  .SetInfo("vllm:cache_config_info", "Information of the LLMEngine CacheConfig",
                           {{"block_size", "16"}, {"num_gpu_blocks", "27500"}})
                  .ok());
  EXPECT_EQ(registry.Expose(),
            "# HELP vllm:cache_config_info Information of the LLMEngine CacheConfig\n"
            "# TYPE vllm:cache_config_info gauge\n"
            "vllm:cache_config_info{block_size=\"16\",num_gpu_blocks=\"27500\"} 1.0\n");
}

TEST(Registry, CallbackGaugesAreReadAtScrapeTime) {
  Registry registry;
  CallbackFamily* usage = Must(registry.AddCallbackGauge(
      "vllm:kv_cache_usage_perc", "KV-cache usage.", {"model_name", "engine"}));
  double engine0 = 0.25;
  CallbackHandle handle = Must(usage->Add({"m", "0"}, [&] { return engine0; }));
  EXPECT_THAT(registry.Expose(),
              HasSubstr("vllm:kv_cache_usage_perc{model_name=\"m\",engine=\"0\"} 0.25\n"));
  engine0 = 0.5;
  EXPECT_THAT(registry.Expose(),
              HasSubstr("vllm:kv_cache_usage_perc{model_name=\"m\",engine=\"0\"} 0.5\n"));
  handle.Reset();
  EXPECT_EQ(registry.Expose(),
            "# HELP vllm:kv_cache_usage_perc KV-cache usage.\n"
            "# TYPE vllm:kv_cache_usage_perc gauge\n");
}

TEST(Registry, CallbackCollectorsEmitAVaryingSetOfSeries) {
  Registry registry;
  CallbackFamily* preemptions =
      Must(registry.AddCallbackCounter("preemptions_total", "Preemptions.", {"engine"}));
  std::vector<std::pair<std::string, double>> engines = {{"0", 2}, {"1", 5}};
  const CallbackHandle handle = preemptions->AddCollector([&](CallbackFamily::Emitter& emit) {
    for (const auto& [engine, count] : engines) emit.Emit({engine}, count);
  });
  EXPECT_EQ(registry.Expose(),
            "# HELP preemptions_total Preemptions.\n"
            "# TYPE preemptions_total counter\n"
            "preemptions_total{engine=\"0\"} 2.0\n"
            "preemptions_total{engine=\"1\"} 5.0\n");
  engines.pop_back();
  EXPECT_THAT(registry.Expose(), Not(HasSubstr("engine=\"1\"")));
}

struct BadRegistration {
  std::string_view name;
  std::vector<std::string> labels;
  std::string_view error;
};

TEST(Registry, RejectsInvalidNamesAtRegistration) {
  const BadRegistration cases[] = {
      {"", {}, "invalid metric name ''"},
      {"1abc", {}, "invalid metric name '1abc'"},
      {"vllm-metric", {}, "invalid metric name 'vllm-metric'"},
      {"ok", {"model-name"}, "invalid label name 'model-name'"},
      {"ok", {"vllm:engine"}, "invalid label name 'vllm:engine'"},
      {"ok", {"__name__"}, "reserved"},
      {"ok", {"a", "a"}, "duplicate label name 'a'"},
  };
  for (const BadRegistration& c : cases) {
    Registry registry;
    const absl::Status status = registry.AddCounter(c.name, "", c.labels).status();
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << c.name;
    EXPECT_THAT(std::string(MessageOf(status)), HasSubstr(std::string(c.error)));
    EXPECT_EQ(registry.FamilyCount(), 0u);
  }
}

TEST(Registry, RejectsLeLabelAndBadBucketsOnHistograms) {
  Registry registry;
  EXPECT_EQ(registry.AddHistogram("h", "", {"le"}, {1}).status().code(),
            absl::StatusCode::kInvalidArgument);
  const absl::Status unsorted = registry.AddHistogram("h", "", {}, {2, 1}).status();
  EXPECT_EQ(unsorted.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(MessageOf(unsorted)), HasSubstr("metric 'h': histogram bucket bounds"));
}

TEST(Registry, RegisteringTheSameFamilyAgainReturnsIt) {
  Registry registry;
  CounterFamily* first = Must(registry.AddCounter("c_total", "help", {"engine"}));
  EXPECT_EQ(Must(registry.AddCounter("c_total", "other help", {"engine"})), first);
  HistogramFamily* h = Must(registry.AddHistogram("h", "", {}, {1, 2}));
  EXPECT_EQ(Must(registry.AddHistogram("h", "", {}, {1, 2})), h);
  EXPECT_EQ(registry.FamilyCount(), 2u);
}

TEST(Registry, ClashingRegistrationsAreAlreadyExists) {
  Registry registry;
  Must(registry.AddCounter("c_total", "", {"engine"}));
  Must(registry.AddHistogram("latency", "", {}, {1}));
  EXPECT_EQ(registry.AddCounter("c_total", "", {"model"}).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry.AddGauge("c_total", "", {"engine"}).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry.AddCallbackCounter("c_total", "", {"engine"}).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry.AddGauge("latency_count", "").status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry.AddHistogram("latency", "", {}, {2}).status().code(),
            absl::StatusCode::kAlreadyExists);
  Must(registry.AddGauge("queue_sum", ""));
  EXPECT_EQ(registry.AddHistogram("queue", "", {}, {1}).status().code(),
            absl::StatusCode::kAlreadyExists);
  EXPECT_EQ(registry.FamilyCount(), 3u);
}

TEST(Registry, ReportsOverflowingFamilies) {
  Registry registry(RegistryOptions{.max_series_per_family = 1});
  CounterFamily* requests = Must(registry.AddCounter("requests_total", "", {"pod"}));
  requests->With({"a"})->Inc();
  requests->With({"b"})->Inc();
  requests->With({"c"})->Inc();
  const std::string text = registry.Expose();
  EXPECT_THAT(text, HasSubstr("requests_total{pod=\"__overflow__\"} 2.0\n"));
  EXPECT_THAT(text, HasSubstr("# TYPE zumik_metrics_overflow_total counter\n"
                              "zumik_metrics_overflow_total{metric=\"requests_total\"} 2.0\n"));
  requests->set_max_series(10);
  requests->With({"d"})->Inc();
  EXPECT_THAT(registry.Expose(), HasSubstr("requests_total{pod=\"d\"} 1.0\n"));
}

TEST(Registry, ExposeThenParseRoundTripsEveryValue) {
  Registry registry;
  GaugeFamily* gauges = Must(registry.AddGauge("vllm:values", "", {"case"}));
  const std::pair<std::string_view, double> values[] = {
      {"zero", 0},
      {"int", 27500},
      {"fraction", 0.1},
      {"tiny", 1.5e-7},
      {"huge", 1.7976931348623157e308},
      {"negative", -3.25},
      {"inf", std::numeric_limits<double>::infinity()},
      {"minus_inf", -std::numeric_limits<double>::infinity()},
      {"third", 1.0 / 3},
      {"timestamp", 1.7432107371855402e+09},
  };
  for (const auto& [label, value] : values) gauges->With({label})->Set(value);
  gauges->With({"nan"})->Set(std::numeric_limits<double>::quiet_NaN());
  CounterFamily* tokens = Must(registry.AddCounter("vllm:prompt_tokens_total", "", {"engine"}));
  tokens->With({"0"})->Inc(123456789);
  HistogramFamily* ttft = Must(registry.AddHistogram(
      "vllm:time_to_first_token_seconds", "", {"engine"}, {0.001, 0.005, 0.01, 0.1, 1.0, 2560.0}));
  for (double v : {0.002, 0.05, 0.05, 0.5, 3000.0}) ttft->With({"0"})->Observe(v);

  const absl::StatusOr<std::vector<Sample>> samples = ParseText(registry.Expose());
  ASSERT_TRUE(samples.ok()) << samples.status();
  for (const auto& [label, value] : values) {
    EXPECT_EQ(FindValue(*samples, "vllm:values", {{"case", label}}), value) << label;
  }
  EXPECT_TRUE(std::isnan(FindValue(*samples, "vllm:values", {{"case", "nan"}}).value_or(0)));
  EXPECT_EQ(FindValue(*samples, "vllm:prompt_tokens_total", {{"engine", "0"}}), 123456789);
  EXPECT_EQ(FindValue(*samples, "vllm:time_to_first_token_seconds_bucket", {{"le", "0.1"}}), 3);
  EXPECT_EQ(FindValue(*samples, "vllm:time_to_first_token_seconds_bucket", {{"le", "2560.0"}}), 4);
  EXPECT_EQ(FindValue(*samples, "vllm:time_to_first_token_seconds_bucket", {{"le", "+Inf"}}), 5);
  EXPECT_EQ(FindValue(*samples, "vllm:time_to_first_token_seconds_count"), 5);
  EXPECT_DOUBLE_EQ(FindValue(*samples, "vllm:time_to_first_token_seconds_sum").value_or(0),
                   3000.602);
  // 5 observations, median is the 2.5th: inside (0.01, 0.1] which holds 2 of them.
  EXPECT_DOUBLE_EQ(HistogramQuantile(0.5, *samples, "vllm:time_to_first_token_seconds").value(),
                   0.01 + 0.09 * (1.5 / 2));
}

TEST(Registry, ExposesConsistentlyWhileOtherThreadsUpdate) {
  Registry registry;
  CounterFamily* counters = Must(registry.AddCounter("work_total", "", {"worker"}));
  HistogramFamily* latency = Must(registry.AddHistogram("latency", "", {"worker"}, {0.5}));
  constexpr int kWorkers = 4;
  constexpr int kIterations = 20'000;
  std::vector<std::thread> workers;
  workers.reserve(kWorkers);
  for (int w = 0; w < kWorkers; ++w) {
    workers.emplace_back([&, w] {
      const std::string name = std::to_string(w);
      const std::vector<std::string> labels = {name};
      for (int i = 0; i < kIterations; ++i) {
        counters->With(std::span<const std::string>(labels))->Inc();
        latency->With(std::span<const std::string>(labels))->Observe(i % 2 ? 0.25 : 1.0);
      }
    });
  }
  // Scrape concurrently: every exposition must parse, and +Inf must equal _count.
  for (int scrape = 0; scrape < 50; ++scrape) {
    const absl::StatusOr<std::vector<Sample>> samples = ParseText(registry.Expose());
    ASSERT_TRUE(samples.ok()) << samples.status();
    for (const Sample& sample : *samples) {
      if (sample.name != "latency_count") continue;
      const std::string worker(*sample.Label("worker"));
      EXPECT_EQ(FindValue(*samples, "latency_bucket", {{"worker", worker}, {"le", "+Inf"}}),
                sample.value);
    }
  }
  for (std::thread& worker : workers) worker.join();
  const absl::StatusOr<std::vector<Sample>> samples = ParseText(registry.Expose());
  ASSERT_TRUE(samples.ok());
  EXPECT_EQ(SumValues(*samples, "work_total"), kWorkers * kIterations);
  EXPECT_EQ(SumValues(*samples, "latency_count"), kWorkers * kIterations);
}

}  // namespace
}  // namespace zumik::metrics
