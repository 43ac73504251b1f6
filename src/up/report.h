// The `zumik up` comparison report: reads the two `zumik bench --json` reports (the EPP
// gateway and the round-robin gateway, same workload, same load), and renders the
// side-by-side terminal table, SVG bar charts and a self-contained HTML page.
#pragma once

#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace zumik::up {

struct Percentiles {
  double p50 = 0, p90 = 0, p99 = 0;
};

// One measured stage of one gateway's run.
struct StageFigures {
  double rate = 0;
  int requests = 0;
  int errors = 0;
  double output_tokens_per_s = 0;
  Percentiles ttft_ms, itl_ms, e2e_ms;
  double prefix_hit_rate = 0;
  double slo_attainment = 0;
};

struct GatewayRun {
  std::string label;  // "EPP (zumik-default)"
  std::string url;
  std::vector<StageFigures> stages;
};

// Parses a bench JSON report (specs/workloads.md keys) as one gateway's run: its first
// policy's stages.
absl::StatusOr<GatewayRun> ParseBenchReport(std::string_view json, std::string label,
                                            std::string url);

// Rows: metric; columns: EPP, round-robin, and EPP's advantage (×), for every stage.
std::string SideBySideTable(const GatewayRun& epp, const GatewayRun& baseline);

// Bar charts of one metric per stage for both runs.
std::string BarChartSvg(const GatewayRun& epp, const GatewayRun& baseline, std::string_view title,
                        std::string_view unit, double (*metric)(const StageFigures&));
double TtftP90(const StageFigures& s);
double OutputThroughput(const StageFigures& s);

struct ReportContext {
  std::string workload_yaml;
  std::string fleet;                                       // "4 x h100-llama-3.1-8b"
  std::string cluster_id;                                  // as registered
  std::vector<std::pair<std::string, std::string>> links;  // label → URL
};

// One HTML file with everything inline (table, both SVG charts, the workload, the links).
std::string HtmlReport(const GatewayRun& epp, const GatewayRun& baseline,
                       const ReportContext& context);

}  // namespace zumik::up
