// Filters on crafted candidates: label selectors, roles, saturation, prefix affinity.
#include "sched/plugins/filters.h"

#include <gtest/gtest.h>

#include "sched/plugins/prefix_plugins.h"
#include "sched/test_util.h"

namespace zumik::sched {
namespace {

using testing::Fixture;
using testing::MakeEndpoint;
using testing::MakeTyped;

std::vector<EndpointId> Ids(const std::vector<Candidate>& candidates) {
  std::vector<EndpointId> out;
  out.reserve(candidates.size());
  for (const Candidate& c : candidates) out.push_back(c.id());
  return out;
}

Fixture Labelled(std::vector<Labels> labels) {
  std::vector<Endpoint> eps;
  for (EndpointId i = 0; i < labels.size(); ++i) {
    eps.push_back(MakeEndpoint(i));
    eps.back().labels = labels[i];
  }
  return Fixture(std::move(eps));
}

TEST(LabelSelectorFilter, KeepsEndpointsMatchingEveryRequirement) {
  Fixture f = Labelled(
      {{{"zone", "a"}, {"gpu", "h100"}}, {{"zone", "a"}}, {{"zone", "b"}, {"gpu", "h100"}}, {}});
  auto by_labels = MakeTyped<Filter>("label-selector-filter", "matchLabels: {zone: a}");
  ASSERT_NE(by_labels, nullptr);
  auto c = f.Candidates();
  by_labels->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{0, 1}));

  auto expressions = MakeTyped<Filter>("by-label-selector", R"(matchExpressions:
- {key: gpu, operator: Exists}
- {key: zone, operator: NotIn, values: [b]})");
  ASSERT_NE(expressions, nullptr);
  EXPECT_EQ(expressions->type(), "by-label-selector");
  c = f.Candidates();
  expressions->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{0}));

  auto absent = MakeTyped<Filter>("label-selector-filter", R"(matchExpressions:
- {key: gpu, operator: DoesNotExist}
- {key: zone, operator: In, values: [a, c]})");
  c = f.Candidates();
  absent->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{1}));

  auto everything = MakeTyped<Filter>("label-selector-filter");  // empty selector
  c = f.Candidates();
  everything->Apply(f.cycle, c);
  EXPECT_EQ(c.size(), 4u);
}

TEST(RoleFilters, DecodeKeepsUnlabelledEndpointsAndPrefillDoesNot) {
  Fixture f = Labelled({{{"llm-d.ai/role", "decode"}},
                        {{"llm-d.ai/role", "prefill"}},
                        {{"llm-d.ai/role", "prefill-decode"}},
                        {{"llm-d.ai/role", "both"}},
                        {{"llm-d.ai/role", "encode"}},
                        {}});
  auto decode = MakeTyped<Filter>("decode-filter");
  auto c = f.Candidates();
  decode->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{0, 2, 3, 5}));
  auto prefill = MakeTyped<Filter>("prefill-filter");
  c = f.Candidates();
  prefill->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{1, 2, 3}));
}

TEST(SaturationFilter, DropsEndpointsAboveThresholdTimesHeadroom) {
  Fixture f({MakeEndpoint(0, /*waiting=*/2, /*kv=*/0.5), MakeEndpoint(1, 9, 0.5),
             MakeEndpoint(2, 0, 0.95), MakeEndpoint(3, 6, 0.5)});
  f.cycle.now = Time{0};
  auto filter = MakeTyped<Filter>("saturation-filter");
  auto c = f.Candidates();
  filter->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{0}));
  // 50% headroom: queue up to 7.5, kv up to 1.2.
  auto lenient = MakeTyped<Filter>("utilization-detector", "headroom: 0.5");
  c = f.Candidates();
  lenient->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{0, 2, 3}));
}

TEST(SaturationFilter, KeepsEndpointsWithStaleMetricsAndKeepsAllWhenAllAreSaturated) {
  Fixture f({MakeEndpoint(0, 50), MakeEndpoint(1, 50)});
  f.cycle.now = Time{0};
  auto filter = MakeTyped<Filter>("saturation-filter");
  auto c = f.Candidates();
  filter->Apply(f.cycle, c);
  EXPECT_EQ(c.size(), 2u);  // all saturated: a filter must not empty the pool by itself
  f.endpoints[1].metrics.scraped_at = Time{0};
  f.cycle.now = std::chrono::seconds(1);  // both stale now (> 200 ms)
  c = f.Candidates();
  filter->Apply(f.cycle, c);
  EXPECT_EQ(c.size(), 2u);
  f.endpoints[0].metrics.scraped_at = std::chrono::milliseconds(900);  // fresh and saturated
  c = f.Candidates();
  filter->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{1}));  // the stale one is kept
}

class AffinityFilterTest : public ::testing::Test {
 protected:
  AffinityFilterTest() : f({MakeEndpoint(0), MakeEndpoint(1), MakeEndpoint(2)}) {
    f.cycle.prefix_matched = true;
    f.cycle.total_blocks = 10;
  }
  std::vector<Candidate> WithMatches(std::vector<int32_t> blocks) {
    auto c = f.Candidates();
    for (size_t i = 0; i < c.size(); ++i) c[i].prefix_blocks = blocks[i];
    return c;
  }
  Fixture f;
};

TEST_F(AffinityFilterTest, KeepsOnlyStickyEndpoints) {
  auto filter = MakeTyped<Filter>("prefix-cache-affinity-filter");
  auto c = WithMatches({8, 7, 10});
  filter->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{0, 2}));
}

TEST_F(AffinityFilterTest, KeepsAllWhenNoEndpointIsSticky) {
  auto filter = MakeTyped<Filter>("prefix-cache-affinity-filter");
  auto c = WithMatches({7, 0, 3});
  filter->Apply(f.cycle, c);
  EXPECT_EQ(c.size(), 3u);
  f.cycle.total_blocks = 0;  // nothing hashed: no stickiness at all
  c = WithMatches({0, 0, 0});
  filter->Apply(f.cycle, c);
  EXPECT_EQ(c.size(), 3u);
}

TEST_F(AffinityFilterTest, BreaksStickinessWhenTheStickyEndpointsAreTooSlow) {
  // 1000 tokens/s: 1 ms per in-flight token; penalty 500 ms.
  auto filter = MakeTyped<Filter>("prefix-cache-affinity-filter",
                                  "maxTTFTPenaltyMs: 500\npeakPrefillThroughput: 1000");
  f.loads[0].prefill_tokens = 700;  // sticky, 700 ms
  f.loads[1].prefill_tokens = 100;  // not sticky, 100 ms
  f.loads[2].prefill_tokens = 900;  // not sticky
  auto c = WithMatches({9, 1, 0});
  filter->Apply(f.cycle, c);
  EXPECT_EQ(c.size(), 3u);  // 700 − 100 > 500
  f.loads[0].prefill_tokens = 550;
  c = WithMatches({9, 1, 0});
  filter->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{0}));  // 450 ≤ 500: stick
  auto always = MakeTyped<Filter>("prefix-cache-affinity-filter", "maxTTFTPenaltyMs: 0");
  f.loads[0].prefill_tokens = 1'000'000'000;
  c = WithMatches({9, 1, 0});
  always->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{0}));
}

TEST_F(AffinityFilterTest, MinAffinityTokensMakesALongMinorityPrefixSticky) {
  // 450 blocks of 16 tokens; a 1,200-token shared prefix is 75 blocks (17%).
  f.cycle.total_blocks = 450;
  f.cycle.block_tokens = 16;
  auto off = MakeTyped<Filter>("prefix-cache-affinity-filter");
  auto c = WithMatches({75, 0, 0});
  off->Apply(f.cycle, c);
  EXPECT_EQ(c.size(), 3u);  // below the 80% share: nothing sticky without the token rule
  auto filter = MakeTyped<Filter>("prefix-cache-affinity-filter", "minAffinityTokens: 1024");
  c = WithMatches({75, 0, 75});
  filter->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{0, 2}));
  c = WithMatches({63, 0, 0});  // 1,008 tokens: too short
  filter->Apply(f.cycle, c);
  EXPECT_EQ(c.size(), 3u);
  c = WithMatches({225, 75, 0});  // one holds half the prompt: left to the share-based scorer
  filter->Apply(f.cycle, c);
  EXPECT_EQ(c.size(), 3u);
  c = WithMatches({224, 75, 0});  // just under half: both holders sticky
  filter->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{0, 1}));
  c = WithMatches({400, 75, 0});  // one endpoint holds ≥ 80%: the share rule alone decides
  filter->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{0}));
}

TEST_F(AffinityFilterTest, TokenStickinessGivesWayToAClearlyBusierHolder) {
  f.cycle.total_blocks = 450;
  f.cycle.block_tokens = 16;
  auto filter = MakeTyped<Filter>(
      "prefix-cache-affinity-filter",
      "minAffinityTokens: 1024\nminAffinityLoadSlack: 0.2\nminAffinityLoadSlackRequests: 3");
  f.loads[0].requests = 15;  // the holder
  f.loads[1].requests = 10;  // least busy other: 10 × 1.2 + 3 = 15
  f.loads[2].requests = 30;
  auto c = WithMatches({75, 0, 0});
  filter->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{0}));
  f.loads[0].requests = 16;
  c = WithMatches({75, 0, 0});
  filter->Apply(f.cycle, c);
  EXPECT_EQ(c.size(), 3u);
  // The share rule keeps its own gate only: a busy holder of most of the prompt still sticks.
  c = WithMatches({400, 0, 0});
  filter->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{0}));
}

TEST_F(AffinityFilterTest, ShareStickinessGivesWayToAClearlyBusierHolderWhenGated) {
  f.cycle.total_blocks = 450;
  f.cycle.block_tokens = 16;
  auto filter = MakeTyped<Filter>("prefix-cache-affinity-filter",
                                  "affinityLoadSlack: 0.2\naffinityLoadSlackRequests: 16");
  f.loads[0].requests = 136;  // the holder
  f.loads[1].requests = 100;  // least busy other: 100 × 1.2 + 16 = 136
  f.loads[2].requests = 300;
  auto c = WithMatches({400, 0, 0});
  filter->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{0}));
  f.loads[0].requests = 137;
  c = WithMatches({400, 0, 0});
  filter->Apply(f.cycle, c);
  EXPECT_EQ(c.size(), 3u);
  // Two holders: the less busy one decides.
  c = WithMatches({400, 0, 420});
  f.loads[2].requests = 120;
  filter->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{0, 2}));
  // The length rule keeps its own gate only (none set here): a busy holder still sticks.
  auto by_length = MakeTyped<Filter>(
      "prefix-cache-affinity-filter",
      "minAffinityTokens: 1024\naffinityLoadSlack: 0\naffinityLoadSlackRequests: 0");
  f.loads[2].requests = 300;
  c = WithMatches({75, 0, 0});
  by_length->Apply(f.cycle, c);
  EXPECT_EQ(Ids(c), (std::vector<EndpointId>{0}));
}

TEST(AffinityFilterParams, RejectsNegativeTokenAffinitySettings) {
  for (const char* yaml :
       {"minAffinityTokens: -1", "minAffinityLoadSlack: -0.5", "minAffinityLoadSlackRequests: -2",
        "affinityLoadSlack: -0.1", "affinityLoadSlackRequests: -1"}) {
    EXPECT_FALSE(testing::MakePlugin("prefix-cache-affinity-filter", yaml).ok()) << yaml;
  }
}

TEST_F(AffinityFilterTest, ExplorationSkipsTheGate) {
  auto filter = MakeTyped<Filter>("prefix-cache-affinity-filter", "explorationProbability: 1");
  auto c = WithMatches({10, 0, 0});
  filter->Apply(f.cycle, c);
  EXPECT_EQ(c.size(), 3u);
}

}  // namespace
}  // namespace zumik::sched
