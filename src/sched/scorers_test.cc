// Scorers on crafted candidates: ties, stale metrics, empty candidate sets, upstream formulas.
#include <gtest/gtest.h>

#include "core/base64.h"
#include "sched/plugins/affinity_scorers.h"
#include "sched/plugins/metric_scorers.h"
#include "sched/registry.h"
#include "sched/test_util.h"

namespace zumik::sched {
namespace {

using testing::Fixture;
using testing::MakeEndpoint;
using testing::MakeTyped;

TEST(Scorers, EveryScorerAcceptsAnEmptyCandidateSet) {
  Fixture f({});
  int scorers = 0;
  for (const PluginTypeInfo& info : PluginTypes()) {
    auto plugin = testing::MakePlugin(std::string(info.type));
    ASSERT_TRUE(plugin.ok()) << info.type << ": " << plugin.status();
    if ((*plugin)->kind() != PluginKind::kScorer) continue;
    ++scorers;
    std::vector<double> out;
    static_cast<Scorer*>(plugin->get())->Score(f.cycle, {}, out);
  }
  EXPECT_EQ(scorers, 11);
}

TEST(QueueScorer, ScoresMinMaxOnWaitingRequestsAndAllEqualIsOne) {
  Fixture f({MakeEndpoint(0, 0), MakeEndpoint(1, 10), MakeEndpoint(2, 4)});
  auto scorer = MakeTyped<Scorer>("queue-scorer");
  EXPECT_EQ(f.Score(*scorer, f.Candidates()), (std::vector<double>{1.0, 0.0, 0.6}));
  Fixture same({MakeEndpoint(0, 3), MakeEndpoint(1, 3)});
  EXPECT_EQ(same.Score(*scorer, same.Candidates()), (std::vector<double>{1.0, 1.0}));
}

TEST(QueueScorer, UsesTheLastScrapeWhateverItsAge) {
  Fixture f({MakeEndpoint(0, 0), MakeEndpoint(1, 10)});
  f.endpoints[1].metrics.scraped_at = Time{0};
  f.cycle.now = std::chrono::hours(1);
  auto scorer = MakeTyped<Scorer>("queue-scorer");
  EXPECT_EQ(f.Score(*scorer, f.Candidates()), (std::vector<double>{1.0, 0.0}));
}

TEST(RunningRequestsSizeScorer, ScoresMinMaxOnRunningRequests) {
  Fixture f({MakeEndpoint(0, 0, 0, 8), MakeEndpoint(1, 0, 0, 2), MakeEndpoint(2, 0, 0, 5)});
  auto scorer = MakeTyped<Scorer>("running-requests-size-scorer");
  EXPECT_EQ(f.Score(*scorer, f.Candidates()), (std::vector<double>{0.0, 1.0, 0.5}));
}

TEST(KvCacheUtilizationScorer, IsOneMinusUsage) {
  Fixture f({MakeEndpoint(0, 0, 0.25), MakeEndpoint(1, 0, 1.0)});
  auto scorer = MakeTyped<Scorer>("kv-cache-utilization-scorer");
  EXPECT_EQ(f.Score(*scorer, f.Candidates()), (std::vector<double>{0.75, 0.0}));
}

TEST(KvCacheUtilizationScorer, ColdOnlyScoresFreeKvForColdPromptsOnly) {
  Fixture f({MakeEndpoint(0, 0, 0.25), MakeEndpoint(1, 0, 1.0), MakeEndpoint(2, 0, 0.5)});
  f.cycle.prefix_matched = true;
  auto cold_only = MakeTyped<Scorer>("kv-cache-utilization-scorer", "coldOnly: true");
  ASSERT_NE(cold_only, nullptr);
  EXPECT_TRUE(cold_only->NeedsPrefixMatch());
  // Cold (no candidate holds any block of the prompt): 1 − kv usage.
  EXPECT_EQ(f.Score(*cold_only, f.Candidates()), (std::vector<double>{0.75, 0.0, 0.5}));
  // Warm (one candidate holds one block): the same score everywhere.
  auto warm = f.Candidates();
  warm[1].prefix_blocks = 1;
  EXPECT_EQ(f.Score(*cold_only, warm), (std::vector<double>{0.5, 0.5, 0.5}));
  // Default (coldOnly false, as upstream): 1 − kv usage whether warm or cold.
  auto plain = MakeTyped<Scorer>("kv-cache-utilization-scorer", "coldOnly: false");
  ASSERT_NE(plain, nullptr);
  EXPECT_FALSE(plain->NeedsPrefixMatch());
  EXPECT_EQ(f.Score(*plain, warm), (std::vector<double>{0.75, 0.0, 0.5}));
  EXPECT_FALSE(MakeTyped<Scorer>("kv-cache-utilization-scorer")->NeedsPrefixMatch());
}

TEST(LoadAwareScorer, GivesHalfToEmptyQueuesAndLessAsTheyFill) {
  Fixture f({MakeEndpoint(0, 0), MakeEndpoint(1, 64), MakeEndpoint(2, 500)});
  auto scorer = MakeTyped<Scorer>("load-aware-scorer");
  EXPECT_EQ(f.Score(*scorer, f.Candidates()), (std::vector<double>{0.5, 0.25, 0.0}));
  auto small = MakeTyped<Scorer>("load-aware-scorer", "threshold: 100");
  EXPECT_DOUBLE_EQ(f.Score(*small, f.Candidates())[1], 0.5 * (1 - 64.0 / 100));
}

TEST(ActiveRequestScorer, PrefersIdleThenFewestInFlight) {
  Fixture f({MakeEndpoint(0), MakeEndpoint(1), MakeEndpoint(2)});
  f.loads[0].requests = 0;
  f.loads[1].requests = 4;
  f.loads[2].requests = 1;
  auto scorer = MakeTyped<Scorer>("active-request-scorer");
  EXPECT_EQ(f.Score(*scorer, f.Candidates()), (std::vector<double>{1.0, 0.0, 0.75}));
  auto gapped = MakeTyped<Scorer>("active-request-scorer", "idleThreshold: 1\nmaxBusyScore: 0.5");
  EXPECT_EQ(f.Score(*gapped, f.Candidates()), (std::vector<double>{1.0, 0.0, 1.0}));
  f.loads[1].requests = 2;
  EXPECT_EQ(f.Score(*gapped, f.Candidates()), (std::vector<double>{1.0, 0.0, 1.0}));
  f.loads[2].requests = 3;
  f.loads[1].requests = 6;
  EXPECT_EQ(f.Score(*gapped, f.Candidates()), (std::vector<double>{1.0, 0.0, 0.25}));
}

TEST(TokenLoadScorer, CountsInFlightPrefillPlusThisRequestsUncachedTokens) {
  Fixture f({MakeEndpoint(0), MakeEndpoint(1), MakeEndpoint(2)});
  auto scorer = MakeTyped<Scorer>("token-load-scorer", "queueThresholdTokens: 1000");
  auto c = f.Candidates();
  f.loads[0].prefill_tokens = 0;
  c[0].uncached_tokens = 0;
  f.loads[1].prefill_tokens = 200;
  c[1].uncached_tokens = 50;
  f.loads[2].prefill_tokens = 5000;
  c[2].uncached_tokens = 10;
  EXPECT_EQ(f.Score(*scorer, c), (std::vector<double>{1.0, 0.75, 0.0}));
}

TEST(PrefixCacheScorer, ScoresTheMatchedFraction) {
  Fixture f({MakeEndpoint(0), MakeEndpoint(1), MakeEndpoint(2)});
  f.cycle.prefix_matched = true;
  f.cycle.total_blocks = 8;
  f.cycle.block_tokens = 16;
  auto c = f.Candidates();
  c[0].prefix_blocks = 8;
  c[1].prefix_blocks = 2;
  c[2].prefix_blocks = 0;
  auto scorer = MakeTyped<Scorer>("prefix-cache-scorer");
  EXPECT_EQ(f.Score(*scorer, c), (std::vector<double>{1.0, 0.25, 0.0}));
  // Half the weight on absolute length: 8 blocks × 16 = 128 of 256 tokens → (0.5)² = 0.25.
  auto length = MakeTyped<Scorer>("prefix-cache-scorer",
                                  "matchLengthWeight: 0.5\nmatchLengthScaleTokens: 256");
  EXPECT_DOUBLE_EQ(f.Score(*length, c)[0], 0.5 * 1.0 + 0.5 * 0.25);
  f.cycle.total_blocks = 0;  // a prompt shorter than one block
  EXPECT_EQ(f.Score(*scorer, c), (std::vector<double>{0.0, 0.0, 0.0}));
}

TEST(LoraAffinityScorer, PrefersActiveThenFreeSlotThenWaiting) {
  Fixture f({MakeEndpoint(0), MakeEndpoint(1), MakeEndpoint(2), MakeEndpoint(3)});
  f.request.target_model = "sql-lora";
  f.endpoints[0].metrics.running_lora_adapters = {"sql-lora"};
  f.endpoints[0].metrics.max_lora = 1;
  f.endpoints[1].metrics.running_lora_adapters = {"other"};
  f.endpoints[1].metrics.max_lora = 2;
  f.endpoints[2].metrics.running_lora_adapters = {"other"};
  f.endpoints[2].metrics.waiting_lora_adapters = {"sql-lora"};
  f.endpoints[2].metrics.max_lora = 2;
  f.endpoints[3].metrics.running_lora_adapters = {"other"};
  f.endpoints[3].metrics.max_lora = 1;
  auto scorer = MakeTyped<Scorer>("lora-affinity-scorer");
  EXPECT_EQ(f.Score(*scorer, f.Candidates()), (std::vector<double>{1.0, 0.8, 0.6, 0.0}));
}

TEST(SessionAffinityScorer, EncodedEndpointHeaderPointsAtTheNamedPod) {
  Fixture f({MakeEndpoint(0), MakeEndpoint(1)});
  auto scorer = MakeTyped<SessionAffinityScorer>("session-affinity-scorer");
  EXPECT_EQ(scorer->header_name(), "x-session-token");
  f.request.session_key = Base64Encode("default/pod-1");
  EXPECT_EQ(f.Score(*scorer, f.Candidates()), (std::vector<double>{0.0, 1.0}));
  f.request.session_key = "not base64!";
  EXPECT_EQ(f.Score(*scorer, f.Candidates()), (std::vector<double>{0.0, 0.0}));
  // After a pick the token for the chosen pod goes back on the response.
  Headers headers;
  scorer->PreRequest(f.cycle, f.Candidates()[0], headers);
  ASSERT_EQ(headers.size(), 1u);
  EXPECT_EQ(headers[0].first, "x-session-token");
  EXPECT_EQ(Base64Decode(headers[0].second), "default/pod-0");
}

TEST(SessionAffinityScorer, SessionIdsBindAtPickAndExpireAfterTheTtl) {
  Fixture f({MakeEndpoint(0), MakeEndpoint(1)});
  auto scorer = MakeTyped<SessionAffinityScorer>(
      "session-affinity-scorer",
      "strategy: session_id\nevictionTtlSeconds: 60\nevictionSweepSeconds: 1");
  f.request.session_key = "s1";
  EXPECT_EQ(f.Score(*scorer, f.Candidates()), (std::vector<double>{0.0, 0.0}));
  Headers headers;
  scorer->PreRequest(f.cycle, f.Candidates()[1], headers);
  EXPECT_TRUE(headers.empty());
  f.cycle.now = std::chrono::seconds(59);
  EXPECT_EQ(f.Score(*scorer, f.Candidates()), (std::vector<double>{0.0, 1.0}));
  f.cycle.now = std::chrono::seconds(61);
  EXPECT_EQ(f.Score(*scorer, f.Candidates()), (std::vector<double>{0.0, 0.0}));
  EXPECT_EQ(scorer->bound_sessions(), 0u);  // swept
}

TEST(NoHitLruScorer, SpreadsColdRequestsOverLeastRecentlyUsedEndpoints) {
  Fixture f({MakeEndpoint(0), MakeEndpoint(1), MakeEndpoint(2)});
  f.cycle.prefix_matched = true;
  auto scorer = MakeTyped<Scorer>("no-hit-lru-scorer");
  Headers headers;
  // Nobody took a cold request yet: candidate order.
  EXPECT_EQ(f.Score(*scorer, f.Candidates()), (std::vector<double>{1.0, 0.5, 0.0}));
  scorer->PreRequest(f.cycle, f.Candidates()[0], headers);
  EXPECT_EQ(f.Score(*scorer, f.Candidates()), (std::vector<double>{0.0, 1.0, 0.5}));
  scorer->PreRequest(f.cycle, f.Candidates()[1], headers);
  EXPECT_EQ(f.Score(*scorer, f.Candidates()), (std::vector<double>{0.5, 0.0, 1.0}));
  // A warm request (some endpoint holds part of it): neutral, and no LRU update.
  auto warm = f.Candidates();
  warm[2].prefix_blocks = 3;
  EXPECT_EQ(f.Score(*scorer, warm), (std::vector<double>{0.5, 0.5, 0.5}));
  scorer->PreRequest(f.cycle, warm[2], headers);
  EXPECT_EQ(f.Score(*scorer, f.Candidates()), (std::vector<double>{0.5, 0.0, 1.0}));
}

}  // namespace
}  // namespace zumik::sched
