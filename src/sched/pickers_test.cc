// Pickers: best score with random tie-break, fallback lists, uniform and weighted sampling,
// round-robin order; and the single profile handler.
#include "sched/plugins/pickers.h"

#include <gtest/gtest.h>

#include <map>
#include <set>

#include "sched/test_util.h"

namespace zumik::sched {
namespace {

using testing::Fixture;
using testing::MakeEndpoint;
using testing::MakeTyped;

Fixture Four() {
  return Fixture({MakeEndpoint(0), MakeEndpoint(1), MakeEndpoint(2), MakeEndpoint(3)});
}

std::vector<uint32_t> PickOnce(Picker& picker, Fixture& f, const std::vector<double>& scores) {
  std::vector<uint32_t> chosen;
  picker.Pick(f.cycle, f.Candidates(), scores, chosen);
  return chosen;
}

TEST(MaxScorePicker, PicksTheBestAndBreaksTiesUniformly) {
  Fixture f = Four();
  auto picker = MakeTyped<Picker>("max-score-picker");
  EXPECT_EQ(PickOnce(*picker, f, {0.1, 0.9, 0.3, 0.2}), (std::vector<uint32_t>{1}));
  std::map<uint32_t, int> counts;
  for (int i = 0; i < 3000; ++i) ++counts[PickOnce(*picker, f, {0.5, 0.9, 0.9, 0.9})[0]];
  EXPECT_EQ(counts.count(0), 0u);
  for (uint32_t i : {1u, 2u, 3u}) {
    EXPECT_GT(counts[i], 850) << i;
    EXPECT_LT(counts[i], 1150) << i;
  }
}

TEST(MaxScorePicker, ReturnsAFallbackListInScoreOrder) {
  Fixture f = Four();
  auto picker = MakeTyped<Picker>("max-score-picker", "maxNumOfEndpoints: 3");
  EXPECT_EQ(PickOnce(*picker, f, {0.1, 0.9, 0.3, 0.2}), (std::vector<uint32_t>{1, 2, 3}));
  auto all = MakeTyped<Picker>("max-score-picker", "maxNumOfEndpoints: 10");
  EXPECT_EQ(PickOnce(*all, f, {0.1, 0.9, 0.3, 0.2}), (std::vector<uint32_t>{1, 2, 3, 0}));
  // Equal scores: any order, but each endpoint once.
  const std::vector<uint32_t> tied = PickOnce(*all, f, {0, 0, 0, 0});
  EXPECT_EQ(std::set<uint32_t>(tied.begin(), tied.end()).size(), 4u);
}

TEST(RandomPicker, PicksUniformlyAndDistinctFallbacks) {
  Fixture f = Four();
  auto picker = MakeTyped<Picker>("random-picker");
  std::map<uint32_t, int> counts;
  for (int i = 0; i < 4000; ++i) ++counts[PickOnce(*picker, f, {1, 0, 0, 0})[0]];
  for (uint32_t i = 0; i < 4; ++i) {
    EXPECT_GT(counts[i], 850) << i;
    EXPECT_LT(counts[i], 1150) << i;
  }
  auto three = MakeTyped<Picker>("random-picker", "maxNumOfEndpoints: 3");
  const std::vector<uint32_t> chosen = PickOnce(*three, f, {0, 0, 0, 0});
  EXPECT_EQ(chosen.size(), 3u);
  EXPECT_EQ(std::set<uint32_t>(chosen.begin(), chosen.end()).size(), 3u);
}

TEST(WeightedRandomPicker, PicksInProportionToScoreAndNeverAZeroScoreFirst) {
  Fixture f = Four();
  auto picker = MakeTyped<Picker>("weighted-random-picker");
  std::map<uint32_t, int> counts;
  for (int i = 0; i < 6000; ++i) ++counts[PickOnce(*picker, f, {0.2, 0.4, 0.0, 0.6})[0]];
  EXPECT_EQ(counts.count(2), 0u);
  EXPECT_NEAR(counts[0] / 6000.0, 1.0 / 6, 0.03);
  EXPECT_NEAR(counts[1] / 6000.0, 2.0 / 6, 0.03);
  EXPECT_NEAR(counts[3] / 6000.0, 3.0 / 6, 0.03);
  counts.clear();
  for (int i = 0; i < 4000; ++i) ++counts[PickOnce(*picker, f, {0, 0, 0, 0})[0]];
  EXPECT_EQ(counts.size(), 4u);  // all zero: uniform
}

TEST(RoundRobinPicker, CyclesThroughIdsInOrderWhateverTheSnapshotOrder) {
  Fixture f({MakeEndpoint(5), MakeEndpoint(1), MakeEndpoint(3)});
  auto picker = MakeTyped<Picker>("round-robin-picker");
  std::vector<EndpointId> seen;
  Headers headers;
  for (int i = 0; i < 6; ++i) {
    const auto c = f.Candidates();
    const uint32_t chosen = PickOnce(*picker, f, {0, 0, 0})[0];
    seen.push_back(c[chosen].id());
    picker->PreRequest(f.cycle, c[chosen], headers);
  }
  EXPECT_EQ(seen, (std::vector<EndpointId>{1, 3, 5, 1, 3, 5}));
  // Without a committed pick the cursor stays.
  const auto c = f.Candidates();
  EXPECT_EQ(c[PickOnce(*picker, f, {0, 0, 0})[0]].id(), 1u);
  EXPECT_EQ(c[PickOnce(*picker, f, {0, 0, 0})[0]].id(), 1u);
  // The fallback list continues the cycle.
  auto two = MakeTyped<Picker>("round-robin-picker", "maxNumOfEndpoints: 2");
  two->PreRequest(f.cycle, c[2], headers);  // last = 3
  const std::vector<uint32_t> chosen = PickOnce(*two, f, {0, 0, 0});
  EXPECT_EQ(c[chosen[0]].id(), 5u);
  EXPECT_EQ(c[chosen[1]].id(), 1u);
}

TEST(SingleProfileHandler, RunsTheOneProfileOnce) {
  auto handler = MakeTyped<ProfileHandler>("single-profile-handler");
  Fixture f({});
  std::vector<Profile> profiles(1);
  std::vector<ProfileRun> runs;
  std::vector<int> next;
  handler->PickProfiles(f.cycle, profiles, runs, next);
  EXPECT_EQ(next, std::vector<int>{0});
  EXPECT_EQ(handler->PrimaryRun(profiles, runs), -1);
  runs.emplace_back();
  next.clear();
  handler->PickProfiles(f.cycle, profiles, runs, next);
  EXPECT_TRUE(next.empty());
  EXPECT_EQ(handler->PrimaryRun(profiles, runs), 0);
}

}  // namespace
}  // namespace zumik::sched
