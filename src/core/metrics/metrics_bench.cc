// Benchmarks for the hot paths: child updates, exposition of a busy registry, and parsing a
// vLLM /metrics payload (the EPP scrapes every endpoint every 50 ms).
#include <benchmark/benchmark.h>

#include <string>
#include <vector>

#include "core/metrics/parser.h"
#include "core/metrics/registry.h"
#include "core/metrics/vllm_payload_testdata.h"

namespace zumik::metrics {
namespace {

const std::vector<double> kTtftBuckets = {0.001, 0.005, 0.01, 0.02,  0.04,  0.06,  0.08, 0.1,
                                          0.25,  0.5,   0.75, 1.0,   2.5,   5.0,   7.5,  10.0,
                                          20.0,  40.0,  80.0, 160.0, 640.0, 2560.0};

void BM_CounterInc(benchmark::State& state) {
  static Registry registry;
  static CounterFamily* family =
      registry.AddCounter("vllm:prompt_tokens_total", "", {"model_name", "engine"}).value();
  const std::shared_ptr<Counter> counter = family->With({"m", "0"});
  for (auto _ : state) counter->Inc();
}
BENCHMARK(BM_CounterInc)->Threads(1)->Threads(2);

void BM_GaugeAdd(benchmark::State& state) {
  Gauge gauge;
  for (auto _ : state) gauge.Add(1);
  benchmark::DoNotOptimize(gauge.Value());
}
BENCHMARK(BM_GaugeAdd);

void BM_HistogramObserve(benchmark::State& state) {
  Histogram histogram(Histogram::MakeConfig(kTtftBuckets).value());
  double value = 0;
  for (auto _ : state) {
    histogram.Observe(value);
    value = value < 100 ? value * 1.7 + 0.0003 : 0;  // walk across the buckets
  }
}
BENCHMARK(BM_HistogramObserve);

void BM_FamilyWithExisting(benchmark::State& state) {
  Registry registry;
  CounterFamily* family =
      registry.AddCounter("vllm:request_success_total", "", {"model_name", "finished_reason"})
          .value();
  for (const char* reason : {"stop", "length", "abort"}) family->With({"m", reason});
  for (auto _ : state) family->With({"m", "length"})->Inc();
}
BENCHMARK(BM_FamilyWithExisting);

// 2,000 series: 10 counter and 10 gauge families of 100 endpoints each.
void BM_Expose2000Series(benchmark::State& state) {
  Registry registry;
  for (int f = 0; f < 20; ++f) {
    const std::string name = "zumik_epp_metric_" + std::to_string(f);
    for (int s = 0; s < 100; ++s) {
      const std::vector<std::string> labels = {"pool-a", "10.0.0." + std::to_string(s)};
      if (f % 2 == 0) {
        registry.AddCounter(name + "_total", "A counter.", {"pool", "endpoint"})
            .value()
            ->With(std::span<const std::string>(labels))
            ->Inc(static_cast<uint64_t>(s) * 1000 + 7);
      } else {
        registry.AddGauge(name, "A gauge.", {"pool", "endpoint"})
            .value()
            ->With(std::span<const std::string>(labels))
            ->Set(s * 0.013);
      }
    }
  }
  size_t bytes = 0;
  std::string out;
  for (auto _ : state) {
    out.clear();
    registry.WriteText(out);
    bytes += out.size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
  state.counters["series"] = 2000;
}
BENCHMARK(BM_Expose2000Series);

// What the simulator serves: 8 engines x (3 gauges, 5 counters, 4 TTFT-like histograms).
void BM_ExposeVllmLike(benchmark::State& state) {
  Registry registry;
  const std::vector<std::string> labels = {"model_name", "engine"};
  for (int e = 0; e < 8; ++e) {
    const std::vector<std::string> values = {"meta-llama/Llama-3.1-8B-Instruct", std::to_string(e)};
    const std::span<const std::string> v(values);
    for (const char* g :
         {"vllm:num_requests_running", "vllm:num_requests_waiting", "vllm:kv_cache_usage_perc"}) {
      registry.AddGauge(g, "help", labels).value()->With(v)->Set(0.42);
    }
    for (const char* c : {"vllm:prompt_tokens_total", "vllm:generation_tokens_total",
                          "vllm:prefix_cache_queries_total", "vllm:prefix_cache_hits_total",
                          "vllm:num_preemptions_total"}) {
      registry.AddCounter(c, "help", labels).value()->With(v)->Inc(123456);
    }
    for (const char* h : {"vllm:time_to_first_token_seconds", "vllm:inter_token_latency_seconds",
                          "vllm:e2e_request_latency_seconds", "vllm:request_queue_time_seconds"}) {
      const auto child = registry.AddHistogram(h, "help", labels, kTtftBuckets).value()->With(v);
      for (int i = 0; i < 100; ++i) child->Observe(i * 0.01);
    }
  }
  size_t bytes = 0;
  std::string out;
  for (auto _ : state) {
    out.clear();
    registry.WriteText(out);
    bytes += out.size();
  }
  state.SetBytesProcessed(static_cast<int64_t>(bytes));
}
BENCHMARK(BM_ExposeVllmLike);

void BM_ParseVllmPayloadStreaming(benchmark::State& state) {
  TextParser parser;
  size_t samples = 0;
  for (auto _ : state) {
    double waiting = 0;
    const absl::Status status = parser.Parse(testdata::kVllmPayload, [&](const SampleView& s) {
      ++samples;
      if (s.name == "vllm:num_requests_waiting") waiting += s.value;
    });
    benchmark::DoNotOptimize(status.ok());
    benchmark::DoNotOptimize(waiting);
  }
  state.SetItemsProcessed(static_cast<int64_t>(samples));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * testdata::kVllmPayload.size()));
}
BENCHMARK(BM_ParseVllmPayloadStreaming);

void BM_ParseVllmPayloadOwned(benchmark::State& state) {
  size_t samples = 0;
  for (auto _ : state) {
    const absl::StatusOr<std::vector<Sample>> parsed = ParseText(testdata::kVllmPayload);
    samples += parsed->size();
  }
  state.SetItemsProcessed(static_cast<int64_t>(samples));
  state.SetBytesProcessed(static_cast<int64_t>(state.iterations() * testdata::kVllmPayload.size()));
}
BENCHMARK(BM_ParseVllmPayloadOwned);

}  // namespace
}  // namespace zumik::metrics

BENCHMARK_MAIN();
