// Saturation detection: the GIE v1.0.0 admission rule and the RTR utilization score.
#include "sched/saturation.h"

#include <gtest/gtest.h>

#include "sched/test_util.h"

namespace zumik::sched {
namespace {

using std::chrono::milliseconds;
using testing::MakeEndpoint;

TEST(IsSaturated, NeedsOneReadyEndpointWithFreshMetricsUnderBothThresholds) {
  const Time now = milliseconds(1000);
  auto at = [](Endpoint e, Time scraped) {
    e.metrics.scraped_at = scraped;
    return e;
  };
  EXPECT_TRUE(IsSaturated({}, now));
  EXPECT_FALSE(IsSaturated(std::vector{at(MakeEndpoint(0, 5, 0.8), milliseconds(900))}, now));
  EXPECT_TRUE(IsSaturated(std::vector{at(MakeEndpoint(0, 6, 0.1), milliseconds(900))}, now));
  EXPECT_TRUE(IsSaturated(std::vector{at(MakeEndpoint(0, 0, 0.81), milliseconds(900))}, now));
  // Stale (older than 200 ms) metrics prove nothing.
  EXPECT_TRUE(IsSaturated(std::vector{at(MakeEndpoint(0), milliseconds(700))}, now));
  Endpoint never = MakeEndpoint(0);
  never.metrics.valid = false;
  EXPECT_TRUE(IsSaturated(std::vector{never}, now));
  Endpoint not_ready = at(MakeEndpoint(1), milliseconds(900));
  not_ready.ready = false;
  EXPECT_TRUE(IsSaturated(std::vector{not_ready}, now));
  // One good endpoint among saturated ones is enough.
  EXPECT_FALSE(IsSaturated(std::vector{at(MakeEndpoint(0, 50, 1.0), milliseconds(900)),
                                       at(MakeEndpoint(1, 1, 0.2), milliseconds(950))},
                           now));
  // Thresholds are configurable.
  SaturationThresholds strict{
      .queue_depth = 0, .kv_cache_util = 0.5, .metrics_staleness = milliseconds(50)};
  EXPECT_TRUE(
      IsSaturated(std::vector{at(MakeEndpoint(0, 1, 0.1), milliseconds(990))}, now, strict));
}

TEST(UtilizationScore, IsTheWorseOfQueueAndKvRatiosAndOneWhenStale) {
  const Time now{0};
  const SaturationThresholds t;
  EXPECT_DOUBLE_EQ(UtilizationScore(MakeEndpoint(0, 10, 0.4), now, t), 2.0);
  EXPECT_DOUBLE_EQ(UtilizationScore(MakeEndpoint(0, 1, 0.4), now, t), 0.5);
  EXPECT_DOUBLE_EQ(UtilizationScore(MakeEndpoint(0, 1, 0.4), milliseconds(500), t), 1.0);
  EXPECT_DOUBLE_EQ(PoolSaturation(std::vector{MakeEndpoint(0, 10, 0), MakeEndpoint(1, 0, 0)}, now),
                   1.0);
  EXPECT_DOUBLE_EQ(PoolSaturation({}, now), 1.0);
}

}  // namespace
}  // namespace zumik::sched
