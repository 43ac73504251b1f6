// `zumik bench --target` against a `zumik sim` process on loopback: TTFT and ITL measured from
// SSE chunk timing, usage-reported prefix hits, errors counted by kind, many concurrent streams.
#include <boost/json.hpp>
#include <fstream>
#include <sstream>
#include <string>
#include <vector>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "support/process.h"

namespace zumik::testing {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream s;
  s << in.rdbuf();
  return s.str();
}

void WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path);
  out << text;
}

// How BenchHttp::Bench runs `zumik bench`.
struct BenchRun {
  std::vector<std::string> extra;  // more flags
  int port = -1;                   // -1: the sim's
  std::string url_path;            // after http://127.0.0.1:PORT
  int exit_code = 0;               // expected
};

class BenchHttp : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = MakeTempDir("bench_http");
    port_ = PickFreePortRange(2);
    sim_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{ZumikBinary(), "sim", "--replicas", "2", "--port",
                                 std::to_string(port_), "--profile", "h100-llama-3.1-8b"},
        dir_ + "/sim.log");
    ASSERT_TRUE(WaitForPort(port_, std::chrono::seconds(20))) << sim_->ReadLog();
    ASSERT_TRUE(WaitForPort(port_ + 1, std::chrono::seconds(20))) << sim_->ReadLog();
  }

  // Runs `zumik bench` to completion; returns the parsed JSON report (its output: log_).
  boost::json::object Bench(const std::string& workload_yaml, const BenchRun& run = BenchRun()) {
    const std::string workload = dir_ + "/workload.yaml";
    const std::string json = dir_ + "/report.json";
    WriteFile(workload, workload_yaml);
    std::vector<std::string> argv = {
        ZumikBinary(),
        "bench",
        "--target",
        "http://127.0.0.1:" + std::to_string(run.port < 0 ? port_ : run.port) + run.url_path,
        "--workload",
        workload,
        "--json",
        json};
    argv.insert(argv.end(), run.extra.begin(), run.extra.end());
    ChildProcess bench(argv, dir_ + "/bench.log");
    const int code = bench.Wait(std::chrono::seconds(60));
    log_ = bench.ReadLog();
    EXPECT_EQ(code, run.exit_code) << log_;
    boost::system::error_code ec;
    boost::json::value v = boost::json::parse(ReadFile(json), ec);
    EXPECT_FALSE(ec) << bench.ReadLog();
    if (ec || !v.is_object()) return {};
    return v.as_object();
  }

  std::string dir_;
  std::string log_;
  int port_ = 0;
  std::unique_ptr<ChildProcess> sim_;
};

const boost::json::object& Stage(const boost::json::object& report, size_t i) {
  return report.at("policies")
      .as_array()
      .at(0)
      .as_object()
      .at("stages")
      .as_array()
      .at(i)
      .as_object();
}

double Num(const boost::json::value& v) {
  return v.is_double() ? v.as_double() : static_cast<double>(v.as_int64());
}

TEST_F(BenchHttp, MeasuresTtftItlAndPrefixHitsFromTheStream) {
  const auto report = Bench(R"(name: http-small
kind: shared-prefix
seed: 3
shared_prefix: {num_groups: 2, prompts_per_group: 4, system_prompt_len: 1024,
                question_len: 64, output_len: 24}
load:
  arrival: constant
  stages: [{rate: 4, duration: 1s, warmup: true}, {rate: 8, duration: 2s}]
)");
  ASSERT_FALSE(report.empty());
  EXPECT_EQ(report.at("mode").as_string(), "http");
  ASSERT_EQ(report.at("policies").as_array().size(), 1u);
  const auto& stage = Stage(report, 0);  // the warm-up is not reported
  EXPECT_EQ(stage.at("requests").as_int64(), 16);
  EXPECT_EQ(stage.at("errors").as_int64(), 0);
  // The simulator's TTFT includes its 10 ms API overhead; ITL is a step (~7 ms), both > 0.
  EXPECT_GT(Num(stage.at("ttft_ms").at("p50")), 5);
  EXPECT_GT(Num(stage.at("itl_ms").at("p50")), 1);
  EXPECT_GT(Num(stage.at("output_tokens_per_s")), 0);
  // All requests go to one replica: after the first of each group, the system prompt is cached.
  EXPECT_GT(Num(stage.at("prefix_hit_rate")), 0.5);
  EXPECT_GT(Num(stage.at("slo_attainment")), 0.9);
}

TEST_F(BenchHttp, CountsErrorsByKind) {
  const std::string workload = R"(name: errors
kind: random
random: {input_len: 50, output_len: 4}
load:
  arrival: constant
  stages: [{rate: 5, duration: 1s}]
)";
  // An unknown model: the server answers 404 for every request. The report is still written,
  // and the run says on stderr that nothing succeeded, with exit status 1.
  const auto not_found =
      Bench(workload,
            {.extra = {"--model", "no-such-model"}, .port = -1, .url_path = "", .exit_code = 1});
  ASSERT_FALSE(not_found.empty());
  EXPECT_EQ(Stage(not_found, 0).at("errors").as_int64(), 5);
  EXPECT_EQ(Stage(not_found, 0).at("errors_by_kind").at("http_404").as_int64(), 5);
  EXPECT_EQ(Num(Stage(not_found, 0).at("slo_attainment")), 0);
  EXPECT_EQ(Num(Stage(not_found, 0).at("input_tokens_per_s")), 0);  // no prompt was prefilled
  EXPECT_THAT(log_, ::testing::HasSubstr("policy target: all 5 requests failed (http_404: 5)"));
  // Nothing listening: every request fails to connect.
  const int closed = PickFreePort();
  const auto refused =
      Bench(workload, {.extra = {"--model", "m"}, .port = closed, .url_path = "", .exit_code = 1});
  ASSERT_FALSE(refused.empty());
  EXPECT_EQ(Stage(refused, 0).at("errors").as_int64(), 5);
  EXPECT_EQ(Stage(refused, 0).at("errors_by_kind").at("connect").as_int64(), 5);
}

// An OpenAI base URL (ending in /v1, as the quickstart prints gateways) names the server.
TEST_F(BenchHttp, TakesAnOpenAiBaseUrl) {
  const auto report = Bench(R"(name: base-url
kind: random
random: {input_len: 20, output_len: 2}
load:
  arrival: constant
  stages: [{rate: 4, duration: 1s}]
)",
                            {.extra = {}, .port = -1, .url_path = "/v1/", .exit_code = 0});
  ASSERT_FALSE(report.empty());
  EXPECT_EQ(Stage(report, 0).at("requests").as_int64(), 4);
  EXPECT_EQ(Stage(report, 0).at("errors").as_int64(), 0);
}

// A conversation's next turn carries the answer the server streamed back, so the server's
// prefix cache (which holds the blocks the answer filled) covers turn 1's prompt and answer.
// Each conversation: a 16-token system prompt (its own group), a 4-token question, a
// 120-token answer (~1 s to decode), 2 turns. Turn 1 (20 tokens) hits at most its system
// block; turn 2 (20 + 120 + 4 tokens) finds the 8 full blocks of turn 1's prompt + answer
// (128 of 140 tokens) cached. Two clients each doing one conversation give a hit rate of
// 256 / 328 = 0.78 (0.70 if each also starts a second one); with stand-in answer text turn 2
// would hit only the system block, 32 / 328 = 0.1.
TEST_F(BenchHttp, MultiTurnHistoryCarriesTheServersAnswer) {
  const auto report = Bench(R"(name: http-multi-turn
kind: multi-turn
seed: 5
multi_turn: {num_groups: 8, conversations_per_group: 1, system_prompt_len: 16,
             question_len: 4, output_len: 120, turns: 2}
load:
  arrival: concurrency
  stages: [{rate: 2, duration: 1500ms}]
)");
  ASSERT_FALSE(report.empty());
  const auto& stage = Stage(report, 0);
  EXPECT_EQ(stage.at("errors").as_int64(), 0);
  const int64_t requests = stage.at("requests").as_int64();
  EXPECT_GE(requests, 4) << "each client's turn 2 waits for its turn 1";
  // Turn 2s dominate the prompt tokens and are ~95% cached; turn 1s add at most 20 misses.
  EXPECT_GT(Num(stage.at("prefix_hit_rate")), 0.6);
}

TEST_F(BenchHttp, RunsAThousandConcurrentStreams) {
  const auto report = Bench(R"(name: many
kind: random
random: {input_len: 64, output_len: 40}
load:
  arrival: concurrency
  stages: [{rate: 1000, duration: 1s}]
)");
  ASSERT_FALSE(report.empty());
  const auto& stage = Stage(report, 0);
  EXPECT_GE(stage.at("requests").as_int64(), 1000);
  EXPECT_EQ(stage.at("errors").as_int64(), 0);
  EXPECT_GT(Num(stage.at("itl_ms").at("p50")), 0);
}

}  // namespace
}  // namespace zumik::testing
