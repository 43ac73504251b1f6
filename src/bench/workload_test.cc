// Workload files: every field parsed, errors name file:line and key, shipped files all load.
#include "bench/workload.h"

#include <fmt/format.h>

#include <filesystem>
#include <string>
#include <string_view>

#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zumik::bench {
namespace {

using ::testing::AllOf;
using ::testing::HasSubstr;

TEST(Workload, ParsesTheSpecExample) {
  auto w = ParseWorkload(R"(name: b2b
kind: shared-prefix
seed: 7
api: completions
stream: true
shared_prefix: {num_groups: 150, prompts_per_group: 5, system_prompt_len: 6000,
                question_len: 1200, output_len: 1000, cycle: true}
load:
  arrival: poisson
  stages:
    - {rate: 15, duration: 50s, warmup: true}
    - {rate: 3, duration: 30s, timeout: 10s, interval: 2s}
slo: {ttft_p90_ms: 1500}
)",
                         "b2b.yaml");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->name, "b2b");
  EXPECT_EQ(w->kind, WorkloadKind::kSharedPrefix);
  EXPECT_EQ(w->seed, 7u);
  EXPECT_EQ(w->shared_prefix.num_groups, 150);
  EXPECT_EQ(w->shared_prefix.system_prompt_len.Mean(), 6000);
  ASSERT_EQ(w->load.stages.size(), 2u);
  EXPECT_TRUE(w->load.stages[0].warmup);
  EXPECT_EQ(w->load.stages[0].duration, std::chrono::seconds(50));
  EXPECT_EQ(w->load.stages[1].timeout, std::chrono::seconds(10));
  EXPECT_EQ(w->load.stages[1].interval, std::chrono::seconds(2));
  EXPECT_EQ(w->slo_ttft_p90_ms, 1500);
}

TEST(Workload, ReadsLengthDistributions) {
  auto w = ParseWorkload(R"(kind: multi-turn
multi_turn:
  question_len: {dist: normal, mean: 30, std: 9, min: 1}
  output_len: {dist: uniform, min: 10, max: 20}
  system_prompt_len: {dist: lognormal, mean: 55000, max: 100000}
  turns: 3
load: {arrival: gamma, cv: 2, stages: [{rate: 1, duration: 1s}]}
)",
                         "w.yaml");
  ASSERT_TRUE(w.ok()) << w.status();
  EXPECT_EQ(w->multi_turn.question_len.kind, LengthDist::Kind::kNormal);
  EXPECT_EQ(w->multi_turn.output_len.Mean(), 15);
  EXPECT_EQ(w->load.arrival, Arrival::kGamma);
  EXPECT_EQ(w->load.cv, 2);
  Rng rng(3);
  for (int i = 0; i < 200; ++i) {
    const int out = w->multi_turn.output_len.Sample(rng);
    EXPECT_GE(out, 10);
    EXPECT_LE(out, 20);
    EXPECT_LE(w->multi_turn.system_prompt_len.Sample(rng), 100000);
  }
}

TEST(Workload, ErrorsNameFileLineAndKey) {
  auto typo = ParseWorkload("kind: random\nrandom:\n  input_lenn: 5\nload: {stages: [{rate: 1}]}\n",
                            "typo.yaml");
  ASSERT_FALSE(typo.ok());
  EXPECT_THAT(std::string(MessageOf(typo.status())), HasSubstr("typo.yaml:3"));
  EXPECT_THAT(std::string(MessageOf(typo.status())), HasSubstr("input_lenn"));

  auto arrival =
      ParseWorkload("kind: random\nload:\n  arrival: bursty\n  stages: [{rate: 1}]\n", "a.yaml");
  ASSERT_FALSE(arrival.ok());
  EXPECT_THAT(std::string(MessageOf(arrival.status())), HasSubstr("a.yaml:3"));
  EXPECT_THAT(std::string(MessageOf(arrival.status())), HasSubstr("load.arrival"));

  auto rate = ParseWorkload("kind: random\nload:\n  stages:\n    - {rate: -1}\n", "r.yaml");
  ASSERT_FALSE(rate.ok());
  EXPECT_THAT(std::string(MessageOf(rate.status())), HasSubstr("r.yaml:4"));
  EXPECT_THAT(std::string(MessageOf(rate.status())), HasSubstr("load.stages[0].rate"));

  auto kind = ParseWorkload("kind: shared\nload: {stages: [{rate: 1}]}\n", "k.yaml");
  ASSERT_FALSE(kind.ok());
  EXPECT_THAT(std::string(MessageOf(kind.status())), HasSubstr("'kind'"));

  auto wrong_section = ParseWorkload(
      "kind: random\nshared_prefix: {num_groups: 2}\nload: {stages: [{rate: 1}]}\n", "s.yaml");
  ASSERT_FALSE(wrong_section.ok());
  EXPECT_THAT(std::string(MessageOf(wrong_section.status())), HasSubstr("shared_prefix"));

  auto no_stages = ParseWorkload("kind: random\n", "n.yaml");
  EXPECT_FALSE(no_stages.ok());
  auto fractional = ParseWorkload(
      "kind: random\nload: {arrival: concurrency, stages: [{rate: 1.5}]}\n", "c.yaml");
  EXPECT_FALSE(fractional.ok());
}

// Arrivals are drawn up front: a workload that would exhaust memory is refused when it loads.
TEST(Workload, RefusesLoadsBeyondItsLimits) {
  auto message = [](std::string_view stages, std::string_view arrival = "poisson") {
    auto w = ParseWorkload(
        fmt::format("kind: random\nload:\n  arrival: {}\n  stages:\n{}", arrival, stages),
        "big.yaml");
    return w.ok() ? std::string("loaded") : std::string(MessageOf(w.status()));
  };
  EXPECT_THAT(message("    - {rate: 2, duration: 1000000h}\n"),
              HasSubstr("load.stages[0].duration': a stage runs at most 24h"));
  EXPECT_THAT(message("    - {rate: 1e9, duration: 1s}\n"),
              AllOf(HasSubstr("big.yaml:5"), HasSubstr("load.stages[0]"),
                    HasSubstr("makes 1e+09 requests"), HasSubstr("at most 2000000")));
  // The limit is on the whole workload, named at the stage that passes it.
  EXPECT_THAT(message("    - {rate: 1000, duration: 1000s}\n    - {rate: 1000, duration: 1001s}\n"),
              AllOf(HasSubstr("load.stages[1]"), HasSubstr("2e+06 with the stages before")));
  EXPECT_EQ(message("    - {rate: 1000, duration: 1000s}\n    - {rate: 1000, duration: 1000s}\n"),
            "loaded");
  EXPECT_THAT(message("    - {rate: .inf}\n"), HasSubstr("must be a finite number > 0"));
  EXPECT_THAT(message("    - {rate: 100001}\n", "concurrency"),
              HasSubstr("at most 100000 concurrent clients"));
  EXPECT_EQ(message("    - {rate: 100000, duration: 24h}\n", "concurrency"), "loaded");
}

TEST(Workload, RefusesANegativeSeedAndUnstreamedRequests) {
  auto seed = ParseWorkload("kind: random\nseed: -5\nload: {stages: [{rate: 1}]}\n", "s.yaml");
  ASSERT_FALSE(seed.ok());
  EXPECT_THAT(std::string(MessageOf(seed.status())), HasSubstr("'seed': must be >= 0"));
  auto stream =
      ParseWorkload("kind: random\nstream: false\nload: {stages: [{rate: 1}]}\n", "f.yaml");
  ASSERT_FALSE(stream.ok());
  EXPECT_THAT(std::string(MessageOf(stream.status())),
              AllOf(HasSubstr("f.yaml:2"), HasSubstr("streams every request")));
}

TEST(Workload, ParsesTraceLinesAndRejectsBadOnes) {
  auto trace = ParseTrace(
      "{\"t\": 2.5, \"input_len\": 100, \"output_len\": 5, \"session\": \"a\"}\n"
      "\n"
      "{\"t\": 1, \"hash_ids\": [1, 2], \"output_len\": 3}\n",
      "t.jsonl");
  ASSERT_TRUE(trace.ok()) << trace.status();
  ASSERT_EQ(trace->size(), 2u);
  EXPECT_EQ((*trace)[0].t, 1);  // sorted by time
  EXPECT_EQ((*trace)[0].hash_ids, (std::vector<int64_t>{1, 2}));
  EXPECT_EQ((*trace)[1].session, "a");
  auto bad = ParseTrace("{\"t\": 1, \"input_len\": 4}\n{\"input_len\": 4}\n", "b.jsonl");
  ASSERT_FALSE(bad.ok());
  EXPECT_THAT(std::string(MessageOf(bad.status())), HasSubstr("b.jsonl:2"));
  for (const char* len : {"\"abc\"", "1e12", "-1"}) {
    auto wrong = ParseTrace(fmt::format("{{\"t\": 1, \"input_len\": {}}}\n", len), "l.jsonl");
    ASSERT_FALSE(wrong.ok()) << len;
    EXPECT_THAT(std::string(MessageOf(wrong.status())),
                HasSubstr("'input_len' must be a number of tokens from 0 to 10000000"));
  }
}

TEST(Workload, AFileThatCannotBeReadIsNamedWithWhyAndWhereTheStandardOnesAre) {
  auto missing = LoadWorkload("b2b");
  ASSERT_FALSE(missing.ok());
  EXPECT_THAT(std::string(MessageOf(missing.status())),
              AllOf(HasSubstr("cannot read workload file 'b2b': No such file or directory"),
                    HasSubstr("bench/workloads/NAME.yaml")));
  auto directory = LoadWorkload(std::filesystem::temp_directory_path().string());
  ASSERT_FALSE(directory.ok());
  EXPECT_THAT(std::string(MessageOf(directory.status())), HasSubstr("is a directory"));
}

TEST(Workload, EveryShippedWorkloadLoads) {
  const std::filesystem::path dir = std::filesystem::path(ZUMIK_SOURCE_DIR) / "bench/workloads";
  std::vector<std::string> names;
  for (const auto& entry : std::filesystem::directory_iterator(dir)) {
    if (entry.path().extension() != ".yaml") continue;
    auto w = LoadWorkload(entry.path().string());
    ASSERT_TRUE(w.ok()) << w.status();
    EXPECT_EQ(w->name + ".yaml", entry.path().filename().string());
    names.push_back(w->name);
  }
  for (const char* standard : {"b2b", "low-cache", "multi-chat", "sglang-gsp", "codegen",
                               "reasoning", "long-doc-qa", "random"}) {
    EXPECT_THAT(names, ::testing::Contains(standard));
  }
}

}  // namespace
}  // namespace zumik::bench
