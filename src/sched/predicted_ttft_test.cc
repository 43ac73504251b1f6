// predicted-ttft-scorer: the TTFT estimate, the cache-versus-load trade, SLO tiers, the decode
// term, learning prefill rates from observed TTFTs, and use of the scraped queue.
#include <gtest/gtest.h>

#include "sched/plugins/predicted_ttft_scorer.h"
#include "sched/scheduler.h"
#include "sched/test_util.h"

namespace zumik::sched {
namespace {

using testing::Fixture;
using testing::MakeEndpoint;
using testing::MakeTyped;

// 1000 tokens/s prior (1 ms per token), no decode term, no uncached penalty unless asked.
constexpr const char* kPlain =
    "prefillTokensPerSecond: 1000\ndecodeMsPerRequest: 0\nuncachedPenalty: 0\n"
    "useScrapedQueue: false\nttftScaleMs: 1000";

class PredictedTtftTest : public ::testing::Test {
 protected:
  PredictedTtftTest() : f({MakeEndpoint(0), MakeEndpoint(1)}) {
    f.cycle.prompt_tokens = 1000;
    f.cycle.prefix_matched = true;
  }
  Fixture f;
};

TEST_F(PredictedTtftTest, EstimatesQueuedPlusUncachedTokensOverTheRate) {
  auto scorer = MakeTyped<PredictedTtftScorer>("predicted-ttft-scorer", kPlain);
  auto c = f.Candidates();
  f.loads[0].prefill_tokens = 500;
  c[0].uncached_tokens = 200;
  EXPECT_DOUBLE_EQ(scorer->EstimateMs(f.cycle, c[0]), 700);
  EXPECT_DOUBLE_EQ(scorer->EstimateMs(f.cycle, c[1]), 1000);
  // q = S / (S + est) with S = 1000 ms.
  const std::vector<double> scores = f.Score(*scorer, c);
  EXPECT_DOUBLE_EQ(scores[0], 1000.0 / 1700.0);
  EXPECT_DOUBLE_EQ(scores[1], 0.5);
}

TEST_F(PredictedTtftTest, TradesCacheAffinityAgainstLoad) {
  auto scorer = MakeTyped<PredictedTtftScorer>("predicted-ttft-scorer", kPlain);
  auto c = f.Candidates();
  c[0].uncached_tokens = 100;  // endpoint 0 holds 90% of the prompt
  c[1].uncached_tokens = 1000;
  f.loads[0].prefill_tokens = 800;  // 900 ms vs 1000 ms: still worth waiting for the cache
  std::vector<double> s = f.Score(*scorer, c);
  EXPECT_GT(s[0], s[1]);
  f.loads[0].prefill_tokens = 950;  // 1050 ms vs 1000 ms: recompute elsewhere
  s = f.Score(*scorer, c);
  EXPECT_LT(s[0], s[1]);
  // Charging the recomputation (it delays later requests too) keeps the request sticky.
  auto sticky = MakeTyped<PredictedTtftScorer>(
      "predicted-ttft-scorer",
      "prefillTokensPerSecond: 1000\ndecodeMsPerRequest: 0\nuncachedPenalty: 1\n"
      "useScrapedQueue: false");
  s = f.Score(*sticky, c);
  EXPECT_GT(s[0], s[1]);
}

TEST_F(PredictedTtftTest, EndpointsMeetingTheSloRankAboveThoseThatDoNot) {
  auto scorer = MakeTyped<PredictedTtftScorer>("predicted-ttft-scorer", kPlain);
  f.request.slo_ttft_ms = 800;
  auto c = f.Candidates();
  c[0].uncached_tokens = 700;  // 700 ms: meets
  c[1].uncached_tokens = 900;  // 900 ms: misses
  const std::vector<double> s = f.Score(*scorer, c);
  EXPECT_GT(s[0], 0.5);
  EXPECT_LT(s[1], 0.5);
  EXPECT_DOUBLE_EQ(s[0], 0.5 + 0.5 * 800.0 / 1500.0);
  EXPECT_DOUBLE_EQ(s[1], 0.5 * 800.0 / 1700.0);
}

TEST_F(PredictedTtftTest, DecodeLoadBreaksTheTieWhenNoPrefillIsQueued) {
  auto scorer = MakeTyped<PredictedTtftScorer>(
      "predicted-ttft-scorer",
      "prefillTokensPerSecond: 1000\ndecodeMsPerRequest: 2\nuseScrapedQueue: false");
  f.loads[0].requests = 30;  // all decoding
  f.loads[1].requests = 10;
  auto c = f.Candidates();
  EXPECT_DOUBLE_EQ(scorer->EstimateMs(f.cycle, c[0]), 1000 + 60);
  const std::vector<double> s = f.Score(*scorer, c);
  EXPECT_LT(s[0], s[1]);
}

TEST_F(PredictedTtftTest, CountsScrapedWaitingRequestsBeyondItsOwnOnlyWhenFresh) {
  auto scorer = MakeTyped<PredictedTtftScorer>(
      "predicted-ttft-scorer", "prefillTokensPerSecond: 1000\ndecodeMsPerRequest: 0");
  Headers headers;
  auto c = f.Candidates();
  scorer->PreRequest(f.cycle, c[1], headers);  // mean request size: 1000 tokens
  f.loads[0].prefill_requests = 1;
  f.loads[0].prefill_tokens = 1000;
  f.endpoints[0].metrics.waiting_requests = 3;  // two more than this router sent
  EXPECT_DOUBLE_EQ(scorer->EstimateMs(f.cycle, c[0]), 1000 + 2000 + 1000);
  f.cycle.now = std::chrono::seconds(10);  // the scrape is 10 s old: ignore it
  EXPECT_DOUBLE_EQ(scorer->EstimateMs(f.cycle, c[0]), 1000 + 1000);
}

TEST(PredictedTtftScorer, LearnsEachEndpointsPrefillRateFromObservedTtft) {
  Rng rng(1);
  auto config = ParsePolicyConfig(R"(plugins:
- type: predicted-ttft-scorer
  parameters:
    prefillTokensPerSecond: 1000
    decodeMsPerRequest: 0
    minObservations: 3
- type: round-robin-picker
)",
                                  "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  auto scheduler = Scheduler::Create(*config, rng);
  ASSERT_TRUE(scheduler.ok()) << scheduler.status();
  auto* scorer =
      static_cast<PredictedTtftScorer*>((*scheduler)->FindPlugin("predicted-ttft-scorer"));
  std::vector<Endpoint> eps = {MakeEndpoint(0), MakeEndpoint(1), MakeEndpoint(2)};
  // Endpoint 0 prefills 40k tokens/s, endpoint 1 10k tokens/s; 2 is never observed.
  std::vector<std::string> prompts;
  prompts.reserve(8);
  for (int i = 0; i < 8; ++i) {
    prompts.push_back(std::string(size_t{4000} * 4, static_cast<char>('a' + i)));
  }
  Time now{0};
  for (int i = 0; i < 8; ++i) {
    std::vector<Endpoint> one = {eps[static_cast<size_t>(i % 2)]};
    InferenceRequest request;
    request.model = "m";
    request.prompt = prompts[static_cast<size_t>(i)];
    auto pick = (*scheduler)->Pick(request, one, now);
    ASSERT_TRUE(pick.ok()) << pick.status();
    ASSERT_EQ(pick->uncached_tokens, 4000);
    const Duration ttft = i % 2 == 0 ? std::chrono::milliseconds(100)   // 4000 / 0.1 s
                                     : std::chrono::milliseconds(400);  // 4000 / 0.4 s
    EXPECT_TRUE((*scheduler)->OnFirstToken(pick->handle, now + ttft));
    EXPECT_TRUE((*scheduler)->OnComplete(pick->handle, now + ttft));
    now += std::chrono::seconds(1);
    EXPECT_EQ(scorer->Observations(static_cast<EndpointId>(i % 2)), i / 2 + 1);
  }
  EXPECT_NEAR(scorer->PrefillRate(0), 40000, 1);
  EXPECT_NEAR(scorer->PrefillRate(1), 10000, 1);
  // Not yet observed: the mean of the learned rates, not the configured prior.
  EXPECT_NEAR(scorer->PrefillRate(2), 25000, 1);
  // Removal forgets what was learned.
  (*scheduler)->RemoveEndpoint(0);
  EXPECT_EQ(scorer->Observations(0), 0);
  EXPECT_NEAR(scorer->PrefillRate(0), 10000, 1);
}

TEST(PredictedTtftScorer, LearnsTheFixedOverheadSoCacheHitEndpointsDoNotLookSlow) {
  // Both endpoints prefill 40k tokens/s after a 20 ms fixed overhead; endpoint 0 serves cache
  // hits (500 uncached tokens), endpoint 1 cold prompts (8000 tokens).
  auto scorer = MakeTyped<PredictedTtftScorer>(
      "predicted-ttft-scorer",
      "prefillTokensPerSecond: 1000\ndecodeMsPerRequest: 0\nminObservations: 1");
  for (int i = 0; i < 200; ++i) {
    InFlightRequest r;
    r.endpoint = static_cast<EndpointId>(i % 2);
    r.uncached_tokens = i % 2 == 0 ? 500 : 8000;
    scorer->OnPrefillDone(r, FromSeconds(0.020 + static_cast<double>(r.uncached_tokens) / 40000));
  }
  EXPECT_NEAR(scorer->OverheadSeconds(), 0.020, 1e-4);
  EXPECT_NEAR(scorer->PrefillRate(0), 40000, 400);
  EXPECT_NEAR(scorer->PrefillRate(1), 40000, 400);
}

TEST(PredictedTtftScorer, SharesWaitAheadWithTheRequestsItQueuedBehind) {
  // A request that waited behind 3000 router-known tokens: 4000 tokens in 0.4 s → 10k tok/s.
  auto scorer = MakeTyped<PredictedTtftScorer>(
      "predicted-ttft-scorer",
      "prefillTokensPerSecond: 1000\ndecodeMsPerRequest: 0\nminObservations: 1");
  InFlightRequest r;
  r.endpoint = 4;
  r.prefill_ahead_tokens = 3000;
  r.uncached_tokens = 1000;
  scorer->OnPrefillDone(r, std::chrono::milliseconds(400));
  EXPECT_NEAR(scorer->PrefillRate(4), 10000, 1e-6);
  // Fully cached requests and missing TTFTs teach nothing.
  r.prefill_ahead_tokens = 0;
  r.uncached_tokens = 0;
  scorer->OnPrefillDone(r, std::chrono::milliseconds(5));
  scorer->OnPrefillDone(r, std::nullopt);
  EXPECT_EQ(scorer->Observations(4), 1);
}

}  // namespace
}  // namespace zumik::sched
