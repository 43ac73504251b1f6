// Report statistics: percentiles, knee and goodput rules, and the JSON contract's keys.
#include "bench/report.h"

#include <boost/json.hpp>
#include <regex>
#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zumik::bench {
namespace {

TEST(Percentiles, AreNearestRank) {
  std::vector<double> v;
  for (int i = 100; i >= 1; --i) v.push_back(i);
  const Percentiles p = ComputePercentiles(v);
  EXPECT_EQ(p.p50, 50);
  EXPECT_EQ(p.p90, 90);
  EXPECT_EQ(p.p99, 99);
  std::vector<double> empty;
  EXPECT_EQ(ComputePercentiles(empty).p99, 0);
  std::vector<double> one = {7};
  EXPECT_EQ(ComputePercentiles(one).p50, 7);
}

TEST(LatencyHistogram, PercentilesWithinOnePercent) {
  LatencyHistogram h;
  for (int i = 1; i <= 1000; ++i) h.Add(i * 0.1);  // 0.1 .. 100 ms
  const Percentiles p = h.Compute();
  EXPECT_NEAR(p.p50, 50, 0.5);
  EXPECT_NEAR(p.p90, 90, 0.9);
  EXPECT_NEAR(p.p99, 99, 1.0);
  EXPECT_EQ(h.count(), 1000);
}

TEST(Stage, ThroughputIsOverStageStartToLastCompletion) {
  StageAccumulator acc;
  for (int i = 0; i < 4; ++i) {
    Sample s;
    s.ok = i < 3;
    s.error = s.ok ? "" : "timeout";
    s.ttft_ms = i < 2 ? 100 : 3000;
    s.e2e_ms = 500;
    s.finished_s = 10 + i;  // last completion at 13 s
    s.prompt_tokens = 100;
    s.cached_tokens = 50;
    s.output_tokens = 10;
    acc.Add(s);
  }
  const StageStats st = FinishStage(acc, 2, false, 8, 2000);
  EXPECT_EQ(st.requests, 4);
  EXPECT_EQ(st.errors, 1);
  EXPECT_EQ(st.errors_by_kind.at("timeout"), 1);
  EXPECT_DOUBLE_EQ(st.duration_s, 5);
  EXPECT_DOUBLE_EQ(st.output_tokens_per_s, 30.0 / 5);
  EXPECT_DOUBLE_EQ(st.input_tokens_per_s, 400.0 / 5);
  EXPECT_DOUBLE_EQ(st.completed_rps, 3.0 / 5);
  EXPECT_DOUBLE_EQ(st.prefix_hit_rate, 0.5);
  EXPECT_DOUBLE_EQ(st.slo_attainment, 0.5);
}

TEST(Stage, FailedRequestsMissTheSloAndRefusedPromptsAreNoInput) {
  StageAccumulator acc;
  Sample timed_out;  // its first token came in time, then the stage's timeout cut it
  timed_out.ok = false;
  timed_out.error = "timeout";
  timed_out.ttft_ms = 50;
  timed_out.prompt_tokens = 100;
  timed_out.finished_s = 2;
  acc.Add(timed_out);
  Sample refused;  // a 400 before any token: the server never prefilled it
  refused.ok = false;
  refused.error = "rejected";
  refused.ttft_ms = -1;
  refused.prompt_tokens = 10'000'000;
  refused.finished_s = 1;
  acc.Add(refused);
  const StageStats st = FinishStage(acc, 2, false, 0, 2000);
  EXPECT_EQ(st.slo_attainment, 0);
  EXPECT_DOUBLE_EQ(st.input_tokens_per_s, 100.0 / 2);
  EXPECT_EQ(st.ttft_ms.count, 1);
  EXPECT_EQ(st.e2e_ms.count, 0);
  EXPECT_EQ(st.itl_ms.count, 0);
}

TEST(Summary, ARunWhereEverythingFailedHasNoKneeAndIsNamed) {
  StageAccumulator acc;
  Sample failed;
  failed.ok = false;
  failed.error = "http_404";
  failed.ttft_ms = -1;
  acc.Add(failed);
  acc.Add(failed);
  Report report;
  PolicyReport p;
  p.policy = "target";
  p.stages = {FinishStage(acc, 2, false, 0, 2000)};
  Summarize(p, 2000);
  EXPECT_EQ(p.knee_rate, 0);
  report.policies = {p};
  EXPECT_THAT(FailedPolicies(report),
              ::testing::ElementsAre("policy target: all 2 requests failed (http_404: 2)"));
  // The table shows no latency for it, rather than an instant 0.
  EXPECT_THAT(ToTable(report), ::testing::ContainsRegex(
                                   "      2      2     2         0         -         -         - "
                                   "      -       -"));
  // A single request is named as one.
  Report single;
  StageAccumulator one;
  one.Add(failed);
  single.policies = {PolicyReport{.policy = "p", .stages = {FinishStage(one, 1, false, 0, 2000)}}};
  EXPECT_THAT(FailedPolicies(single),
              ::testing::ElementsAre("policy p: its one request failed (http_404: 1)"));
  // One success is enough not to be named.
  Sample ok;
  ok.ok = true;
  ok.ttft_ms = 10;
  ok.e2e_ms = 20;
  acc.Add(ok);
  report.policies[0].stages = {FinishStage(acc, 2, false, 0, 2000)};
  EXPECT_THAT(FailedPolicies(report), ::testing::IsEmpty());
}

StageStats At(double rate, double tput, double ttft_p90, double rps) {
  StageStats s;
  s.rate = rate;
  s.requests = 10;
  s.output_tokens_per_s = tput;
  s.ttft_ms.p90 = ttft_p90;
  s.completed_rps = rps;
  return s;
}

TEST(Summary, GoodputIsTheHighestRateMeetingTheSloAndKneeWhereThroughputFlattens) {
  PolicyReport p;
  p.stages = {At(10, 1000, 100, 9.9), At(20, 2000, 500, 19.5), At(30, 2900, 1900, 28),
              At(40, 3000, 9000, 29), At(50, 2950, 30000, 28.5)};
  Summarize(p, 2000);
  EXPECT_EQ(p.peak_output_tokens_per_s, 3000);
  EXPECT_EQ(p.goodput_rate, 30);
  EXPECT_EQ(p.goodput_rps_at_slo, 28);
  EXPECT_EQ(p.knee_rate, 30);  // 2900 >= 95% of 3000
}

TEST(Summary, NoStageMeetingTheSloMeansNoGoodput) {
  PolicyReport p;
  p.stages = {At(10, 1000, 5000, 9)};
  Summarize(p, 2000);
  EXPECT_EQ(p.goodput_rps_at_slo, 0);
  EXPECT_EQ(p.knee_rate, 10);
}

TEST(Json, HasTheContractKeys) {
  Report r;
  r.workload = "b2b";
  r.fleet = "h100x2-qwen3-32b-tp2:8";
  r.seed = 3;
  PolicyReport p;
  p.policy = "zumik-default";
  p.stages = {At(3, 100, 10, 3)};
  Summarize(p, 2000);
  r.policies = {p};
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(ToJson(r), ec);
  ASSERT_FALSE(ec);
  const auto& o = v.as_object();
  EXPECT_EQ(o.at("workload").as_string(), "b2b");
  EXPECT_EQ(o.at("fleet").as_string(), "h100x2-qwen3-32b-tp2:8");
  EXPECT_EQ(o.at("seed").as_int64(), 3);
  const auto& po = o.at("policies").as_array().at(0).as_object();
  for (const char* key :
       {"policy", "peak_output_tokens_per_s", "goodput_rps_at_slo", "knee_rate", "stages"}) {
    EXPECT_TRUE(po.contains(key)) << key;
  }
  const auto& so = po.at("stages").as_array().at(0).as_object();
  for (const char* key : {"rate", "requests", "errors", "output_tokens_per_s", "input_tokens_per_s",
                          "ttft_ms", "itl_ms", "e2e_ms", "prefix_hit_rate", "slo_attainment"}) {
    EXPECT_TRUE(so.contains(key)) << key;
  }
  for (const char* key : {"p50", "p90", "p99"}) {
    EXPECT_TRUE(so.at("ttft_ms").as_object().contains(key)) << key;
  }
}

TEST(Json, IdealsAreNumbersWhenComputedAndNullOtherwise) {
  Report r;
  PolicyReport p;
  p.policy = "target";
  p.stages = {At(3, 100, 10, 3)};
  Summarize(p, 2000);
  r.policies = {p};  // an HTTP run: no ideal
  p.policy = "oracle";
  p.has_ideal = true;
  p.ideal_prefix_hit_rate = 0.998;
  p.ideal_fleet_kv_prefix_hit_rate = 0.158;
  r.policies.push_back(p);
  const boost::json::value v = boost::json::parse(ToJson(r));
  const auto& http = v.at("policies").at(0).as_object();
  EXPECT_TRUE(http.at("ideal_prefix_hit_rate").is_null());
  EXPECT_TRUE(http.at("ideal_fleet_kv_prefix_hit_rate").is_null());
  const auto& virt = v.at("policies").at(1).as_object();
  EXPECT_DOUBLE_EQ(virt.at("ideal_prefix_hit_rate").to_number<double>(), 0.998);
  EXPECT_DOUBLE_EQ(virt.at("ideal_fleet_kv_prefix_hit_rate").to_number<double>(), 0.158);
  const std::string table = ToTable(r);
  EXPECT_NE(table.find("ideal-kv%"), std::string::npos);
  EXPECT_NE(table.find("15.8"), std::string::npos);
  const std::string http_row = table.substr(table.rfind("\ntarget"));
  EXPECT_NE(http_row.substr(0, http_row.find('\n', 1)).find(" -"), std::string::npos) << table;
}

// Numbers are plain decimals ("14831.2", "2000.0"), never Boost.JSON's exponent form
// ("1.48312E4"), and still parse back to the same doubles.
TEST(Json, WritesPlainDecimals) {
  Report r;
  r.workload = "b2b";
  PolicyReport p;
  p.policy = "zumik-default";
  p.stages = {At(60, 14831.2, 900, 3)};
  Summarize(p, 2000);
  r.policies = {p};
  const std::string json = ToJson(r);
  EXPECT_FALSE(std::regex_search(json, std::regex("[0-9][eE][-+0-9]"))) << json;
  EXPECT_NE(json.find("\"output_tokens_per_s\":14831.2"), std::string::npos) << json;
  EXPECT_NE(json.find("\"rate\":60.0"), std::string::npos) << json;
  boost::system::error_code ec;
  const boost::json::value v = boost::json::parse(json, ec);
  ASSERT_FALSE(ec) << json;
  const auto& stage = v.at("policies").at(0).at("stages").at(0);
  EXPECT_EQ(stage.at("output_tokens_per_s").as_double(), 14831.2);
  EXPECT_EQ(stage.at("rate").as_double(), 60.0);
}

TEST(Formats, CsvHasARowPerStageAndSvgALinePerPolicy) {
  Report r;
  r.workload = "w";
  for (const char* name : {"a", "b"}) {
    PolicyReport p;
    p.policy = name;
    p.stages = {At(1, 10, 100, 1), At(2, 20, 200, 2)};
    r.policies.push_back(p);
  }
  const std::string csv = ToCsv(r);
  EXPECT_EQ(std::count(csv.begin(), csv.end(), '\n'), 5);
  const std::string svg = ToSvg(r);
  EXPECT_THAT(svg, ::testing::StartsWith("<svg"));
  size_t lines = 0;
  for (size_t at = svg.find("<polyline"); at != std::string::npos;
       at = svg.find("<polyline", at + 1)) {
    ++lines;
  }
  EXPECT_EQ(lines, 4u);  // two panels x two policies
  EXPECT_THAT(ToTable(r), ::testing::HasSubstr("goodput"));
}

}  // namespace
}  // namespace zumik::bench
