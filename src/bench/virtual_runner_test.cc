// Virtual runs: deterministic by seed, every policy on the same requests, stage semantics,
// the oracle's pinning, closed loops and traces.
#include <boost/json.hpp>
#include <filesystem>
#include <fstream>

#include "bench/runner.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zumik::bench {
namespace {

// A small shared-prefix workload on 3 replicas: seconds of virtual time, fast to simulate.
Workload Small() {
  auto w = ParseWorkload(R"(name: small
kind: shared-prefix
seed: 5
shared_prefix: {num_groups: 6, prompts_per_group: 3, system_prompt_len: 2000,
                question_len: 200, output_len: {dist: uniform, min: 20, max: 60}}
load:
  arrival: poisson
  stages:
    - {rate: 4, duration: 3s, warmup: true}
    - {rate: 4, duration: 4s}
    - {rate: 12, duration: 4s, interval: 1s}
slo: {ttft_p90_ms: 2000}
)",
                         "small.yaml");
  EXPECT_TRUE(w.ok()) << w.status();
  return *w;
}

VirtualOptions Options(int replicas = 3) {
  VirtualOptions o;
  o.fleet = *ParseFleet(fmt::format("h100-llama-3.1-8b:{}", replicas));
  o.fleet_text = fmt::format("h100-llama-3.1-8b:{}", replicas);
  return o;
}

TEST(ParseFleet, ExpandsCountsAndMixesProfiles) {
  auto fleet = ParseFleet("h100-llama-3.1-8b:2,h100x2-qwen3-32b-tp2");
  ASSERT_TRUE(fleet.ok()) << fleet.status();
  ASSERT_EQ(fleet->size(), 3u);
  EXPECT_EQ((*fleet)[0].name, "h100-llama-3.1-8b");
  EXPECT_EQ((*fleet)[2].name, "h100x2-qwen3-32b-tp2");
  EXPECT_FALSE(ParseFleet("h100-llama-3.1-8b:0").ok());
  EXPECT_FALSE(ParseFleet("no-such-gpu:2").ok());
  EXPECT_FALSE(ParseFleet("").ok());
}

TEST(ArrivalOffsets, MatchTheRateAndAreSeeded) {
  LoadSpec load;
  Stage stage;
  stage.rate = 10;
  stage.duration = std::chrono::seconds(100);
  for (Arrival a : {Arrival::kPoisson, Arrival::kConstant, Arrival::kGamma}) {
    load.arrival = a;
    load.cv = 3;
    const auto offsets = ArrivalOffsets(load, stage, 9);
    ASSERT_EQ(offsets.size(), 1000u);
    EXPECT_TRUE(std::is_sorted(offsets.begin(), offsets.end()));
    EXPECT_NEAR(offsets.back(), 100, 20) << ArrivalName(a);
    EXPECT_EQ(offsets, ArrivalOffsets(load, stage, 9));
  }
}

TEST(VirtualRun, SameSeedGivesIdenticalJson) {
  const Workload w = Small();
  const std::vector<std::string> policies = {"round-robin", "zumik-default", "oracle"};
  auto a = RunVirtual(w, policies, Options());
  VirtualOptions parallel = Options();
  parallel.jobs = 3;
  auto b = RunVirtual(w, policies, parallel);
  ASSERT_TRUE(a.ok()) << a.status();
  ASSERT_TRUE(b.ok()) << b.status();
  EXPECT_EQ(ToJson(*a), ToJson(*b));
  Workload other = w;
  other.seed = 6;
  auto c = RunVirtual(other, policies, Options());
  ASSERT_TRUE(c.ok());
  EXPECT_NE(ToJson(*a), ToJson(*c));
}

TEST(VirtualRun, AnUnknownPolicyIsNamedOnceWithEveryPolicyTheBenchRuns) {
  auto r = RunVirtual(Small(), {"round-robin", "no-such-policy"}, Options());
  ASSERT_FALSE(r.ok());
  const std::string message(MessageOf(r.status()));
  EXPECT_EQ(message.find("policy 'no-such-policy'"), 0U) << message;
  EXPECT_EQ(message.find("policy 'no-such-policy'", 1), std::string::npos) << message;
  EXPECT_NE(message.find("zumik-default"), std::string::npos) << message;
  EXPECT_NE(message.find("'oracle'"), std::string::npos) << message;
}

TEST(VirtualRun, ReportsEveryNonWarmupStageForEveryPolicyOnTheSameRequests) {
  const Workload w = Small();
  auto r = RunVirtual(w,
                      {"round-robin", "least-request", "gie-default", "llm-d-default",
                       "zumik-default", "random", "oracle"},
                      Options());
  ASSERT_TRUE(r.ok()) << r.status();
  ASSERT_EQ(r->policies.size(), 7u);
  for (const PolicyReport& p : r->policies) {
    ASSERT_EQ(p.stages.size(), 2u) << p.policy;
    EXPECT_EQ(p.stages[0].rate, 4);
    EXPECT_EQ(p.stages[1].rate, 12);
    // The same arrivals for every policy: 16 and 48 requests (rate x duration).
    EXPECT_EQ(p.stages[0].requests, 16) << p.policy;
    EXPECT_EQ(p.stages[1].requests, 48) << p.policy;
    EXPECT_EQ(p.stages[1].errors, 0);
    EXPECT_GT(p.stages[1].output_tokens_per_s, 0);
    EXPECT_GT(p.stages[1].ttft_ms.p50, 0);
    EXPECT_LE(p.stages[1].ttft_ms.p50, p.stages[1].ttft_ms.p90);
    EXPECT_GT(p.stages[1].itl_ms.p50, 0);
    EXPECT_GT(p.peak_output_tokens_per_s, 0);
  }
}

TEST(VirtualRun, OracleReachesTheIdealHitRateAndRoundRobinDoesNot) {
  Workload w = Small();
  w.shared_prefix.num_groups = 12;
  w.shared_prefix.cycle = false;  // random prompts: a group's repeats land anywhere under RR
  w.load.stages.erase(w.load.stages.begin());
  auto r = RunVirtual(w, {"round-robin", "oracle"}, Options());
  ASSERT_TRUE(r.ok()) << r.status();
  const PolicyReport& rr = r->policies[0];
  const PolicyReport& oracle = r->policies[1];
  EXPECT_EQ(rr.ideal_prefix_hit_rate, oracle.ideal_prefix_hit_rate);  // same requests
  EXPECT_GT(oracle.ideal_prefix_hit_rate, 0.5);
  EXPECT_GE(oracle.prefix_hit_rate, 0.95 * oracle.ideal_prefix_hit_rate);
  EXPECT_LT(rr.prefix_hit_rate, oracle.prefix_hit_rate - 0.1);
}

TEST(VirtualRun, TheFleetKvIdealIsTheUnboundedOneWhenAllFitsAndLowerWhenNot) {
  Workload w = Small();
  w.shared_prefix.num_groups = 12;
  auto fits = RunVirtual(w, {"round-robin"}, Options());
  ASSERT_TRUE(fits.ok()) << fits.status();
  const PolicyReport& big = fits->policies[0];
  EXPECT_GT(big.ideal_prefix_hit_rate, 0.5);
  EXPECT_EQ(big.ideal_fleet_kv_prefix_hit_rate, big.ideal_prefix_hit_rate);

  // 3 replicas of 4,096 tokens of KV against 12 groups x 3 prompts of ~2,200 tokens.
  VirtualOptions small_kv = Options();
  for (auto& profile : small_kv.fleet) profile.kv_tokens = 4096;
  auto tight = RunVirtual(w, {"round-robin"}, small_kv);
  ASSERT_TRUE(tight.ok()) << tight.status();
  const PolicyReport& small = tight->policies[0];
  EXPECT_LT(small.ideal_fleet_kv_prefix_hit_rate, small.ideal_prefix_hit_rate - 0.1);
  EXPECT_GT(small.ideal_fleet_kv_prefix_hit_rate, 0);
}

TEST(VirtualRun, ClosedLoopKeepsTheConcurrencyForTheStage) {
  auto w = ParseWorkload(R"(name: closed
kind: multi-turn
seed: 2
multi_turn: {num_groups: 4, conversations_per_group: 2, system_prompt_len: 500,
             question_len: 50, output_len: 20, turns: 3}
load:
  arrival: concurrency
  stages: [{rate: 2, duration: 2s}, {rate: 6, duration: 2s}]
)",
                         "closed.yaml");
  ASSERT_TRUE(w.ok()) << w.status();
  auto r = RunVirtual(*w, {"round-robin", "oracle"}, Options(2));
  ASSERT_TRUE(r.ok()) << r.status();
  for (const PolicyReport& p : r->policies) {
    ASSERT_EQ(p.stages.size(), 2u);
    // Requests take well under a second, so each client sends several per stage.
    EXPECT_GT(p.stages[0].requests, 4);
    EXPECT_GT(p.stages[1].requests, p.stages[0].requests);
    EXPECT_EQ(p.stages[1].errors, 0);
  }
}

// A conversation's next turn carries the answer the engine generated, so the replica that
// answered holds it: with one replica, long answers and short questions, almost the whole of
// every later turn is cached (answers missing would leave only system + first question, ~30%).
TEST(VirtualRun, ALaterTurnHitsTheAnswerTheReplicaGenerated) {
  auto w = ParseWorkload(R"(name: answers
kind: multi-turn
seed: 3
multi_turn: {num_groups: 2, conversations_per_group: 1, system_prompt_len: 64,
             question_len: 16, output_len: 400, turns: 3}
load:
  arrival: concurrency
  stages: [{rate: 1, duration: 20s}]
)",
                         "answers.yaml");
  ASSERT_TRUE(w.ok()) << w.status();
  auto r = RunVirtual(*w, {"round-robin"}, Options(1));
  ASSERT_TRUE(r.ok()) << r.status();
  const PolicyReport& p = r->policies[0];
  ASSERT_EQ(p.stages.size(), 1u);
  EXPECT_GT(p.stages[0].requests, 6);  // several conversations of 3 turns
  // Turn 1 is 80 tokens (its 64-token system prompt cached after the first conversation of
  // its group); turns 2 and 3 are 496 and 912 tokens of which all but the new question and
  // the answer's partial last block can hit.
  EXPECT_GT(p.prefix_hit_rate, 0.85);
  EXPECT_GT(p.ideal_prefix_hit_rate, 0.85);
  EXPECT_LE(p.prefix_hit_rate, p.ideal_prefix_hit_rate + 1e-9);
}

// The runner reports each answer as the response text; a policy whose prefix index learns
// responses (indexResponses) then sees a later turn's whole history cached on the replica that
// answered, and the affinity filter keeps the turn there.
TEST(VirtualRun, AnsweredTurnsAreIndexedForPoliciesThatIndexResponses) {
  auto w = ParseWorkload(R"(name: answers
kind: multi-turn
seed: 3
multi_turn: {num_groups: 8, conversations_per_group: 1, system_prompt_len: 64,
             question_len: 16, output_len: 400, turns: 3}
load:
  arrival: concurrency
  stages: [{rate: 2, duration: 30s}]
)",
                         "answers.yaml");
  ASSERT_TRUE(w.ok()) << w.status();
  const std::string dir = std::filesystem::temp_directory_path() / "zumik_virtual_runner_test";
  std::filesystem::create_directories(dir);
  const auto write = [&](const std::string& name, bool index_responses) {
    std::string path = dir + "/" + name;
    std::ofstream(path) << fmt::format(R"(plugins:
- type: approx-prefix-cache-producer
  parameters: {{indexResponses: {}}}
- type: prefix-cache-affinity-filter
- type: random-picker
)",
                                       index_responses);
    return path;
  };
  const std::string on = write("on.yaml", true), off = write("off.yaml", false);
  auto r = RunVirtual(*w, {on, off}, Options(4));
  ASSERT_TRUE(r.ok()) << r.status();
  const double with = r->policies[0].prefix_hit_rate;
  const double without = r->policies[1].prefix_hit_rate;
  // Turns 2 and 3 (496 and 912 tokens) match 97-98% at home once the answer is indexed; with
  // only the previous prompt known (16%, 9%) the filter keeps all and the picker is random.
  EXPECT_GT(with, 0.8);
  EXPECT_GT(with, without + 0.2);
}

TEST(VirtualRun, AStageTimeoutAbortsWhatIsLeftAndMarksTheStage) {
  auto w = ParseWorkload(R"(name: timeout
kind: random
random: {input_len: 100, output_len: 5000}
load:
  stages: [{rate: 2, duration: 1s, timeout: 1s}, {rate: 2, duration: 1s}]
)",
                         "t.yaml");
  ASSERT_TRUE(w.ok()) << w.status();
  w->random.output_len = LengthDist::Fixed(3000);  // ~30 s per request: past the timeout
  w->load.stages[1].duration = std::chrono::milliseconds(500);
  auto r = RunVirtual(*w, {"round-robin"}, Options(1));
  ASSERT_TRUE(r.ok()) << r.status();
  const StageStats& first = r->policies[0].stages[0];
  EXPECT_TRUE(first.timed_out);
  EXPECT_EQ(first.errors, first.requests);
  EXPECT_EQ(first.errors_by_kind.at("timeout"), first.requests);
  EXPECT_FALSE(r->policies[0].stages[1].timed_out);
  EXPECT_EQ(r->policies[0].stages[1].errors, 0);
}

TEST(VirtualRun, AClosedLoopWhoseRequestsAreAllRejectedFailsInsteadOfSpinning) {
  auto w = ParseWorkload(R"(name: too-long
kind: random
random: {input_len: 1000, output_len: 10}
load:
  arrival: concurrency
  stages: [{rate: 4, duration: 10s}]
)",
                         "too-long.yaml");
  ASSERT_TRUE(w.ok()) << w.status();
  VirtualOptions options = Options(1);
  options.fleet[0].max_model_len = 512;  // every request is rejected at once, in zero time
  auto r = RunVirtual(*w, {"round-robin"}, options);
  ASSERT_FALSE(r.ok());
  EXPECT_EQ(r.status().code(), absl::StatusCode::kFailedPrecondition);
  EXPECT_THAT(std::string(MessageOf(r.status())), ::testing::HasSubstr("closed loop stuck"));
}

TEST(VirtualRun, UnknownPolicyIsAnError) {
  auto r = RunVirtual(Small(), {"no-such-policy"}, Options());
  ASSERT_FALSE(r.ok());
  EXPECT_THAT(std::string(MessageOf(r.status())), ::testing::HasSubstr("no-such-policy"));
}

}  // namespace
}  // namespace zumik::bench
