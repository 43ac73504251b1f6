// Counter, Gauge, Histogram and their families: values, removal, cardinality cap, threads.
#include "core/metrics/metric.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <limits>
#include <string>
#include <thread>
#include <vector>

#include "core/status.h"

namespace zumik::metrics {
namespace {

using ::testing::ElementsAre;
using ::testing::HasSubstr;

Histogram::Config Buckets(std::vector<double> bounds) {
  absl::StatusOr<Histogram::Config> config = Histogram::MakeConfig(std::move(bounds));
  EXPECT_TRUE(config.ok()) << config.status();
  return *std::move(config);
}

TEST(Counter, AddsIntegerAndFractionalAmounts) {
  Counter counter;
  counter.Inc();
  counter.Inc(41);
  counter.Add(0.5);
  counter.Add(2.0);
  EXPECT_DOUBLE_EQ(counter.Value(), 44.5);
}

TEST(Counter, IgnoresNegativeAndNaNAmounts) {
  Counter counter;
  counter.Inc(3);
  counter.Add(-1);
  counter.Add(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(counter.Value(), 3);
}

TEST(Gauge, SetsIncrementsAndDecrements) {
  Gauge gauge;
  gauge.Set(10);
  gauge.Inc();
  gauge.Dec();
  gauge.Dec();
  gauge.Add(0.25);
  gauge.Add(-5);
  EXPECT_DOUBLE_EQ(gauge.Value(), 4.25);
}

struct BucketsCase {
  std::vector<double> bounds;
  std::string_view error;  // empty: valid
};

TEST(Histogram, ValidatesBucketBounds) {
  constexpr double kInf = std::numeric_limits<double>::infinity();
  const BucketsCase cases[] = {
      {{}, ""},
      {{0.1, 0.5, 1}, ""},
      {{0.1, kInf}, ""},
      {{0.5, 0.1}, "strictly increasing"},
      {{0.1, 0.1}, "strictly increasing"},
      {{0.1, std::numeric_limits<double>::quiet_NaN()}, "must be finite"},
      {{-kInf, 0}, "must be finite"},
      {{kInf, kInf}, "must be finite"},
  };
  for (const BucketsCase& c : cases) {
    const absl::StatusOr<Histogram::Config> config = Histogram::MakeConfig(c.bounds);
    if (c.error.empty()) {
      EXPECT_TRUE(config.ok()) << config.status();
    } else {
      EXPECT_EQ(config.status().code(), absl::StatusCode::kInvalidArgument);
      EXPECT_THAT(std::string(MessageOf(config.status())), HasSubstr(std::string(c.error)));
    }
  }
}

TEST(Histogram, DropsTrailingInfAndFormatsLeLabels) {
  const Histogram::Config config = Buckets({0.1, 1, std::numeric_limits<double>::infinity()});
  EXPECT_THAT(*config.bounds, ElementsAre(0.1, 1.0));
  EXPECT_THAT(config.le_labels, ElementsAre("0.1", "1.0", "+Inf"));
}

TEST(Histogram, BucketBoundsAreInclusiveAndNaNLandsInInf) {
  Histogram histogram(Buckets({1, 2}));
  histogram.Observe(0.5);
  histogram.Observe(1);  // le="1" includes 1
  histogram.Observe(1.5);
  histogram.Observe(2);
  histogram.Observe(3);
  histogram.Observe(std::numeric_limits<double>::quiet_NaN());
  EXPECT_EQ(histogram.BucketCount(0), 2u);
  EXPECT_EQ(histogram.BucketCount(1), 2u);
  EXPECT_EQ(histogram.BucketCount(2), 2u);
  EXPECT_EQ(histogram.Count(), 6u);
  EXPECT_TRUE(std::isnan(histogram.Sum()));
}

TEST(Histogram, SumsObservations) {
  Histogram histogram(Buckets({1}));
  histogram.Observe(0.25);
  histogram.Observe(4);
  EXPECT_EQ(histogram.Count(), 2u);
  EXPECT_DOUBLE_EQ(histogram.Sum(), 4.25);
}

TEST(Buckets, LinearAndExponentialLayouts) {
  EXPECT_THAT(LinearBuckets(1, 2, 4), ElementsAre(1, 3, 5, 7));
  EXPECT_THAT(ExponentialBuckets(1, 10, 3), ElementsAre(1, 10, 100));
}

CounterFamily MakeCounterFamily(size_t max_series = kDefaultMaxSeries) {
  return CounterFamily("requests_total", "help", MetricType::kCounter, {"model_name", "engine"},
                       Counter::Config{}, max_series);
}

TEST(Family, WithReturnsTheSameChildForTheSameLabelValues) {
  CounterFamily family = MakeCounterFamily();
  const std::shared_ptr<Counter> a = family.With({"m", "0"});
  const std::vector<std::string> owned = {"m", "0"};
  EXPECT_EQ(family.With(std::span<const std::string>(owned)), a);
  EXPECT_NE(family.With({"m", "1"}), a);
  EXPECT_EQ(family.SeriesCount(), 2u);
}

TEST(Family, RemovedChildStaysUsableAndIsRecreatedFresh) {
  CounterFamily family = MakeCounterFamily();
  const std::shared_ptr<Counter> old = family.With({"m", "0"});
  old->Inc(5);
  EXPECT_TRUE(family.Remove({"m", "0"}));
  EXPECT_FALSE(family.Remove({"m", "0"}));
  EXPECT_EQ(family.SeriesCount(), 0u);
  old->Inc();  // still valid memory, just no longer exposed
  EXPECT_EQ(old->Value(), 6);
  const std::shared_ptr<Counter> fresh = family.With({"m", "0"});
  EXPECT_NE(fresh, old);
  EXPECT_EQ(fresh->Value(), 0);
}

TEST(Family, BeyondTheSeriesLimitReturnsASharedOverflowChild) {
  CounterFamily family = MakeCounterFamily(/*max_series=*/2);
  const std::shared_ptr<Counter> first = family.With({"m", "0"});
  family.With({"m", "1"});
  const std::shared_ptr<Counter> overflow = family.With({"m", "2"});
  EXPECT_EQ(family.With({"m", "3"}), overflow);
  EXPECT_NE(overflow, first);
  EXPECT_EQ(family.OverflowCount(), 2u);
  // Existing series are still returned, not redirected.
  EXPECT_EQ(family.With({"m", "0"}), first);
  EXPECT_EQ(family.SeriesCount(), 3u);  // two series + overflow

  std::string text;
  family.AppendSamples(text);
  overflow->Inc(7);
  text.clear();
  family.AppendSamples(text);
  EXPECT_THAT(text, HasSubstr("requests_total{model_name=\"__overflow__\",engine=\"__overflow__\"} "
                              "7.0\n"));
}

TEST(Family, WrongNumberOfLabelValuesGoesToOverflow) {
  CounterFamily family = MakeCounterFamily();
  const std::shared_ptr<Counter> overflow = family.With({"only-one"});
  EXPECT_EQ(family.With({"a", "b", "c"}), overflow);
  EXPECT_EQ(family.OverflowCount(), 2u);
}

TEST(Family, ClearRemovesEverySeries) {
  CounterFamily family = MakeCounterFamily(1);
  family.With({"m", "0"});
  family.With({"m", "1"});
  family.Clear();
  EXPECT_EQ(family.SeriesCount(), 0u);
  std::string text;
  family.AppendSamples(text);
  EXPECT_EQ(text, "");
}

TEST(Family, SeriesAreWrittenSortedByLabelValues) {
  GaugeFamily family("g", "", MetricType::kGauge, {"a", "b"}, Gauge::Config{}, 100);
  family.With({"b", "x"})->Set(1);
  family.With({"a", "z"})->Set(2);
  family.With({"ab", "y"})->Set(3);
  family.With({"a", "y"})->Set(4);
  std::string text;
  family.AppendSamples(text);
  EXPECT_EQ(text,
            "g{a=\"a\",b=\"y\"} 4.0\n"
            "g{a=\"a\",b=\"z\"} 2.0\n"
            "g{a=\"ab\",b=\"y\"} 3.0\n"
            "g{a=\"b\",b=\"x\"} 1.0\n");
}

TEST(Concurrency, IncrementsFromManyThreadsAddUpExactly) {
  CounterFamily counters = MakeCounterFamily();
  GaugeFamily gauges("g", "", MetricType::kGauge, {}, Gauge::Config{}, 10);
  HistogramFamily histograms("h", "", MetricType::kHistogram, {}, Buckets({0.5}), 10);
  constexpr int kThreads = 8;
  constexpr int kPerThread = 50'000;
  std::vector<std::thread> threads;
  threads.reserve(kThreads);
  for (int t = 0; t < kThreads; ++t) {
    threads.emplace_back([&, t] {
      // Every thread also races to create the same children.
      const std::shared_ptr<Counter> counter = counters.With({"m", "0"});
      const std::shared_ptr<Counter> mine = counters.With({"m", std::to_string(t)});
      const std::shared_ptr<Gauge> gauge = gauges.With({});
      const std::shared_ptr<Histogram> histogram = histograms.With({});
      for (int i = 0; i < kPerThread; ++i) {
        counter->Inc();
        counter->Add(0.5);
        mine->Inc();
        gauge->Add(2);
        gauge->Dec();
        histogram->Observe(i % 2 == 0 ? 0.25 : 1.0);
      }
    });
  }
  for (std::thread& thread : threads) thread.join();
  EXPECT_EQ(counters.With({"m", "0"})->Value(),
            1.5 * kThreads * kPerThread + kPerThread);  // thread 0's own child too
  EXPECT_EQ(counters.SeriesCount(), static_cast<size_t>(kThreads));
  EXPECT_EQ(gauges.With({})->Value(), kThreads * kPerThread);
  const std::shared_ptr<Histogram> histogram = histograms.With({});
  EXPECT_EQ(histogram->Count(), static_cast<uint64_t>(kThreads) * kPerThread);
  EXPECT_EQ(histogram->BucketCount(0), static_cast<uint64_t>(kThreads) * kPerThread / 2);
  EXPECT_EQ(histogram->Sum(), kThreads * (kPerThread / 2.0) * 1.25);
}

TEST(CallbackFamily, AddRejectsWrongNumberOfLabelValues) {
  CallbackFamily family("g", "", MetricType::kGauge, {"engine"});
  const absl::StatusOr<CallbackHandle> handle = family.Add({"0", "extra"}, [] { return 1.0; });
  EXPECT_EQ(handle.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(family.SeriesCount(), 0u);
}

TEST(CallbackFamily, HandleUnregistersOnDestructionAndMove) {
  CallbackFamily family("g", "", MetricType::kGauge, {"engine"});
  {
    absl::StatusOr<CallbackHandle> handle = family.Add({"0"}, [] { return 1.0; });
    ASSERT_TRUE(handle.ok());
    CallbackHandle moved = std::move(*handle);
    EXPECT_FALSE(handle->active());
    EXPECT_TRUE(moved.active());
    EXPECT_EQ(family.SeriesCount(), 1u);
  }
  EXPECT_EQ(family.SeriesCount(), 0u);
}

TEST(CallbackFamily, EmitterDropsSamplesWithWrongLabelCount) {
  CallbackFamily family("g", "", MetricType::kGauge, {"engine"});
  const CallbackHandle handle = family.AddCollector([](CallbackFamily::Emitter& emit) {
    emit.Emit({"0"}, 1);
    emit.Emit({"0", "1"}, 2);
  });
  std::string text;
  family.AppendSamples(text);
  EXPECT_EQ(text, "g{engine=\"0\"} 1.0\n");
  EXPECT_EQ(family.OverflowCount(), 1u);
}

}  // namespace
}  // namespace zumik::metrics
