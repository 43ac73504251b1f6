// Liveness: healthy -> unknown after 4 missed intervals -> offline after 15 min, the start-up
// grace after a registry restart, and the registry suspecting itself on mass staleness.
#include "registry/liveness.h"

#include <gtest/gtest.h>

namespace zumik::registry {
namespace {

constexpr double kStart = 1'700'000'000;
// A registry started long ago, so the start-up grace plays no part.
constexpr double kLongAgo = kStart - 100'000;

LivenessInput BeatAt(double unix) { return LivenessInput{kStart - 10'000, unix}; }

TEST(Classify, HealthyUntilFourIntervalsPassThenUnknownThenOfflineAfter15Minutes) {
  LivenessPolicy policy;  // 15 s interval
  const LivenessInput cluster = BeatAt(kStart);
  EXPECT_EQ(Classify(policy, kStart + 59, kLongAgo, cluster), Liveness::kHealthy);
  EXPECT_EQ(Classify(policy, kStart + 60, kLongAgo, cluster), Liveness::kHealthy);
  EXPECT_EQ(Classify(policy, kStart + 61, kLongAgo, cluster), Liveness::kUnknown);
  EXPECT_EQ(Classify(policy, kStart + 900, kLongAgo, cluster), Liveness::kUnknown);
  EXPECT_EQ(Classify(policy, kStart + 901, kLongAgo, cluster), Liveness::kOffline);
}

TEST(Classify, FollowsAConfiguredInterval) {
  LivenessPolicy policy;
  policy.interval = std::chrono::seconds(2);
  EXPECT_EQ(Classify(policy, kStart + 8, kLongAgo, BeatAt(kStart)), Liveness::kHealthy);
  EXPECT_EQ(Classify(policy, kStart + 9, kLongAgo, BeatAt(kStart)), Liveness::kUnknown);
}

TEST(Classify, IsPendingUntilTheFirstHeartbeatThenUnknownIfItNeverComes) {
  LivenessPolicy policy;
  LivenessInput registered{kStart, std::nullopt};
  EXPECT_EQ(Classify(policy, kStart + 30, kLongAgo, registered), Liveness::kPending);
  EXPECT_EQ(Classify(policy, kStart + 61, kLongAgo, registered), Liveness::kUnknown);
}

TEST(Classify, GivesEveryClusterAStartUpGraceAfterARegistryRestart) {
  LivenessPolicy policy;  // grace = 2 x 60 s
  // Last beat 10 min before the registry restarted at kStart.
  const LivenessInput cluster = BeatAt(kStart - 600);
  EXPECT_EQ(Classify(policy, kStart + 1, kStart, cluster), Liveness::kHealthy);
  EXPECT_EQ(Classify(policy, kStart + 120, kStart, cluster), Liveness::kHealthy);
  EXPECT_EQ(Classify(policy, kStart + 121, kStart, cluster), Liveness::kUnknown);
  EXPECT_EQ(Classify(policy, kStart + 901, kStart, cluster), Liveness::kOffline);
}

TEST(ClassifyFleet, SuspectsItselfWhenMostClustersGoStaleAtOnce) {
  LivenessPolicy policy;
  std::vector<LivenessInput> fleet;
  fleet.reserve(5);
  for (int i = 0; i < 4; ++i) fleet.push_back(BeatAt(kStart));  // will be stale
  fleet.push_back(BeatAt(kStart + 100));                        // still beating
  FleetLiveness result = ClassifyFleet(policy, kStart + 120, kLongAgo, fleet);
  EXPECT_TRUE(result.suspect);
  EXPECT_EQ(result.stale, 4u);
  EXPECT_EQ(result.recently_alive, 5u);
  for (Liveness l : result.reported) EXPECT_EQ(l, Liveness::kHealthy);
}

TEST(ClassifyFleet, FlagsTheClustersWhenOnlyAMinorityIsStale) {
  LivenessPolicy policy;
  std::vector<LivenessInput> fleet;
  fleet.push_back(BeatAt(kStart));
  for (int i = 0; i < 4; ++i) fleet.push_back(BeatAt(kStart + 100));
  FleetLiveness result = ClassifyFleet(policy, kStart + 120, kLongAgo, fleet);
  EXPECT_FALSE(result.suspect);
  EXPECT_EQ(result.reported[0], Liveness::kUnknown);
  EXPECT_EQ(result.reported[1], Liveness::kHealthy);
}

TEST(ClassifyFleet, NeedsAMinimumFleetBeforeSuspectingItself) {
  LivenessPolicy policy;
  std::vector<LivenessInput> fleet = {BeatAt(kStart), BeatAt(kStart)};
  FleetLiveness result = ClassifyFleet(policy, kStart + 120, kLongAgo, fleet);
  EXPECT_FALSE(result.suspect);
  EXPECT_EQ(result.reported[0], Liveness::kUnknown);
}

TEST(LivenessName, RoundTrips) {
  for (Liveness l :
       {Liveness::kPending, Liveness::kHealthy, Liveness::kUnknown, Liveness::kOffline}) {
    EXPECT_EQ(ParseLiveness(LivenessName(l)), l);
  }
  EXPECT_FALSE(ParseLiveness("ready").has_value());
}

}  // namespace
}  // namespace zumik::registry
