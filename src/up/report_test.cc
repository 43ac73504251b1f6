#include "up/report.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

namespace zumik::up {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kEppReport = R"({"workload": "up-shared-prefix", "seed": 1,
  "policies": [{"policy": "target", "stages": [{"rate": 12, "requests": 240, "errors": 0,
    "output_tokens_per_s": 760.5, "input_tokens_per_s": 90000,
    "ttft_ms": {"p50": 30, "p90": 120, "p99": 300},
    "itl_ms": {"p50": 7.5, "p90": 9, "p99": 12},
    "e2e_ms": {"p50": 500, "p90": 700, "p99": 900},
    "prefix_hit_rate": 0.8, "slo_attainment": 1.0}]}]})";
constexpr std::string_view kRoundRobinReport = R"({"workload": "up-shared-prefix", "seed": 1,
  "policies": [{"policy": "target", "stages": [{"rate": 12, "requests": 240, "errors": 2,
    "output_tokens_per_s": 380, "input_tokens_per_s": 90000,
    "ttft_ms": {"p50": 150, "p90": 480, "p99": 900},
    "itl_ms": {"p50": 8, "p90": 10, "p99": 14},
    "e2e_ms": {"p50": 800, "p90": 1200, "p99": 1500},
    "prefix_hit_rate": 0.2, "slo_attainment": 0.9}]}]})";

TEST(ParseBenchReport, ReadsEveryStageFigureOfTheFirstPolicy) {
  auto run = ParseBenchReport(kEppReport, "EPP", "http://127.0.0.1:8000");
  ASSERT_TRUE(run.ok()) << run.status();
  ASSERT_EQ(run->stages.size(), 1u);
  const StageFigures& s = run->stages[0];
  EXPECT_EQ(s.rate, 12);
  EXPECT_EQ(s.requests, 240);
  EXPECT_EQ(s.errors, 0);
  EXPECT_DOUBLE_EQ(s.output_tokens_per_s, 760.5);
  EXPECT_EQ(s.ttft_ms.p90, 120);
  EXPECT_EQ(s.itl_ms.p50, 7.5);
  EXPECT_EQ(s.e2e_ms.p99, 900);
  EXPECT_DOUBLE_EQ(s.prefix_hit_rate, 0.8);
}

TEST(ParseBenchReport, RejectsReportsWithoutStagesWithAClearMessage) {
  EXPECT_THAT(std::string(ParseBenchReport("not json", "x", "").status().message()),
              HasSubstr("not a JSON object"));
  EXPECT_THAT(std::string(ParseBenchReport(R"({"policies": []})", "x", "").status().message()),
              HasSubstr("no \"policies\""));
  EXPECT_THAT(
      std::string(
          ParseBenchReport(R"({"policies": [{"stages": []}]})", "x", "").status().message()),
      HasSubstr("no measured stage"));
}

TEST(SideBySideTable, ShowsBothGatewaysAndTheEppAdvantageInTheRightDirection) {
  auto epp = ParseBenchReport(kEppReport, "EPP", "");
  auto rr = ParseBenchReport(kRoundRobinReport, "round-robin", "");
  ASSERT_TRUE(epp.ok() && rr.ok());
  const std::string table = SideBySideTable(*epp, *rr);
  // Throughput: higher is better, 760.5 / 380 = 2.00x. TTFT p90: lower is better, 480/120.
  EXPECT_THAT(table, HasSubstr("output tokens/s"));
  EXPECT_THAT(table, HasSubstr("2.00x"));
  EXPECT_THAT(table, HasSubstr("4.00x"));
  EXPECT_THAT(table, HasSubstr("80.0%"));
  EXPECT_THAT(table, HasSubstr("12 req/s"));
}

TEST(HtmlReport, IsOneSelfContainedPageWithTableChartsLinksAndEscapedWorkload) {
  auto epp = ParseBenchReport(kEppReport, "EPP (zumik-default)", "");
  auto rr = ParseBenchReport(kRoundRobinReport, "round-robin", "");
  ASSERT_TRUE(epp.ok() && rr.ok());
  ReportContext context{
      "name: <b>x</b>\n", "4 x h100", "byc_abc", {{"registry page", "http://127.0.0.1:8002/"}}};
  const std::string html = HtmlReport(*epp, *rr, context);
  EXPECT_THAT(html, HasSubstr("<!DOCTYPE html>"));
  EXPECT_THAT(html, HasSubstr("byc_abc"));
  EXPECT_THAT(html, HasSubstr("<svg"));
  EXPECT_THAT(html, HasSubstr("TTFT p90"));
  EXPECT_THAT(html, HasSubstr("href=\"http://127.0.0.1:8002/\""));
  EXPECT_THAT(html, HasSubstr("name: &lt;b&gt;x&lt;/b&gt;"));
  EXPECT_THAT(html, Not(HasSubstr("<script")));
  EXPECT_THAT(html, Not(HasSubstr("src=\"http")));  // nothing fetched from elsewhere
}

TEST(BarChartSvg, ScalesBarsToTheLargestValue) {
  auto epp = ParseBenchReport(kEppReport, "EPP", "");
  auto rr = ParseBenchReport(kRoundRobinReport, "round-robin", "");
  ASSERT_TRUE(epp.ok() && rr.ok());
  const std::string svg = BarChartSvg(*epp, *rr, "TTFT p90", "ms", TtftP90);
  // Plot height is 200 px: round-robin's 480 ms is the full bar, the EPP's 120 ms a quarter.
  EXPECT_THAT(svg, HasSubstr("height=\"200.0\""));
  EXPECT_THAT(svg, HasSubstr("height=\"50.0\""));
}

}  // namespace
}  // namespace zumik::up
