#include "up/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>

#include "core/html.h"
#include "core/status.h"

namespace zumik::up {
namespace json = boost::json;
namespace {

double Number(const json::object& o, std::string_view key) {
  const json::value* v = o.if_contains(key);
  if (v == nullptr) return 0;
  if (v->is_double()) return v->get_double();
  if (v->is_int64()) return static_cast<double>(v->get_int64());
  if (v->is_uint64()) return static_cast<double>(v->get_uint64());
  return 0;
}

Percentiles ReadPercentiles(const json::object& stage, std::string_view key) {
  Percentiles p;
  const json::value* v = stage.if_contains(key);
  if (v == nullptr || !v->is_object()) return p;
  p.p50 = Number(v->get_object(), "p50");
  p.p90 = Number(v->get_object(), "p90");
  p.p99 = Number(v->get_object(), "p99");
  return p;
}

std::string Ratio(double ours, double theirs, bool lower_is_better) {
  if (ours <= 0 || theirs <= 0) return "-";
  return fmt::format("{:.2f}x", lower_is_better ? theirs / ours : ours / theirs);
}

struct Row {
  std::string name;
  double ours, theirs;
  bool lower_is_better;
  std::string format;  // fmt spec for the values
};

std::vector<Row> Rows(const StageFigures& a, const StageFigures& b) {
  return {
      {"requests", double(a.requests), double(b.requests), false, "{:.0f}"},
      {"errors", double(a.errors), double(b.errors), true, "{:.0f}"},
      {"output tokens/s", a.output_tokens_per_s, b.output_tokens_per_s, false, "{:.0f}"},
      {"TTFT p50 (ms)", a.ttft_ms.p50, b.ttft_ms.p50, true, "{:.0f}"},
      {"TTFT p90 (ms)", a.ttft_ms.p90, b.ttft_ms.p90, true, "{:.0f}"},
      {"TTFT p99 (ms)", a.ttft_ms.p99, b.ttft_ms.p99, true, "{:.0f}"},
      {"ITL p50 (ms)", a.itl_ms.p50, b.itl_ms.p50, true, "{:.1f}"},
      {"E2E p90 (ms)", a.e2e_ms.p90, b.e2e_ms.p90, true, "{:.0f}"},
      {"prefix hit rate", a.prefix_hit_rate * 100, b.prefix_hit_rate * 100, false, "{:.1f}%"},
      {"SLO attainment", a.slo_attainment * 100, b.slo_attainment * 100, false, "{:.1f}%"},
  };
}

}  // namespace

double TtftP90(const StageFigures& s) { return s.ttft_ms.p90; }
double OutputThroughput(const StageFigures& s) { return s.output_tokens_per_s; }

absl::StatusOr<GatewayRun> ParseBenchReport(std::string_view text, std::string label,
                                            std::string url) {
  boost::system::error_code ec;
  json::value doc = json::parse(text, ec);
  if (ec || !doc.is_object()) {
    return Errorf(absl::StatusCode::kInvalidArgument, "the bench report is not a JSON object: {}",
                  ec ? ec.message() : "wrong type");
  }
  const json::value* policies = doc.get_object().if_contains("policies");
  if (policies == nullptr || !policies->is_array() || policies->get_array().empty() ||
      !policies->get_array()[0].is_object()) {
    return Errorf(absl::StatusCode::kInvalidArgument, "the bench report has no \"policies\"");
  }
  const json::value* stages = policies->get_array()[0].get_object().if_contains("stages");
  if (stages == nullptr || !stages->is_array()) {
    return Errorf(absl::StatusCode::kInvalidArgument, "the bench report has no \"stages\"");
  }
  GatewayRun run{std::move(label), std::move(url), {}};
  for (const json::value& v : stages->get_array()) {
    if (!v.is_object()) continue;
    const json::object& s = v.get_object();
    StageFigures f;
    f.rate = Number(s, "rate");
    f.requests = static_cast<int>(Number(s, "requests"));
    f.errors = static_cast<int>(Number(s, "errors"));
    f.output_tokens_per_s = Number(s, "output_tokens_per_s");
    f.ttft_ms = ReadPercentiles(s, "ttft_ms");
    f.itl_ms = ReadPercentiles(s, "itl_ms");
    f.e2e_ms = ReadPercentiles(s, "e2e_ms");
    f.prefix_hit_rate = Number(s, "prefix_hit_rate");
    f.slo_attainment = Number(s, "slo_attainment");
    run.stages.push_back(f);
  }
  if (run.stages.empty()) {
    return Errorf(absl::StatusCode::kInvalidArgument, "the bench report has no measured stage");
  }
  return run;
}

std::string SideBySideTable(const GatewayRun& epp, const GatewayRun& baseline) {
  std::string out;
  const size_t n = std::min(epp.stages.size(), baseline.stages.size());
  for (size_t i = 0; i < n; ++i) {
    out += fmt::format("stage {} — offered load {:g} req/s\n", i + 1, epp.stages[i].rate);
    out += fmt::format("  {:<18} {:>14} {:>14} {:>10}\n", "", "EPP", "round-robin", "EPP wins");
    for (const Row& row : Rows(epp.stages[i], baseline.stages[i])) {
      out += fmt::format("  {:<18} {:>14} {:>14} {:>10}\n", row.name,
                         fmt::format(fmt::runtime(row.format), row.ours),
                         fmt::format(fmt::runtime(row.format), row.theirs),
                         Ratio(row.ours, row.theirs, row.lower_is_better));
    }
  }
  return out;
}

std::string BarChartSvg(const GatewayRun& epp, const GatewayRun& baseline, std::string_view title,
                        std::string_view unit, double (*metric)(const StageFigures&)) {
  const size_t n = std::min(epp.stages.size(), baseline.stages.size());
  double max_value = 0;
  for (size_t i = 0; i < n; ++i) {
    max_value = std::max({max_value, metric(epp.stages[i]), metric(baseline.stages[i])});
  }
  if (max_value <= 0) max_value = 1;
  constexpr int kWidth = 520, kHeight = 280, kLeft = 60, kBottom = 40, kTop = 40;
  const int plot_h = kHeight - kTop - kBottom;
  const double group_w = (kWidth - kLeft - 20) / std::max(1.0, static_cast<double>(n));
  std::string svg = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<text x=\"{}\" y=\"20\" font-size=\"14\" font-weight=\"bold\">{} ({})</text>\n"
      "<line x1=\"{}\" y1=\"{}\" x2=\"{}\" y2=\"{}\" stroke=\"#333\"/>\n",
      kWidth, kHeight, kLeft, HtmlEscape(title), HtmlEscape(unit), kLeft, kHeight - kBottom,
      kWidth - 10, kHeight - kBottom);
  const char* colors[2] = {"#2b7bba", "#c44e52"};
  for (size_t i = 0; i < n; ++i) {
    const double values[2] = {metric(epp.stages[i]), metric(baseline.stages[i])};
    for (int k = 0; k < 2; ++k) {
      const double h = plot_h * values[k] / max_value;
      const double x = kLeft + static_cast<double>(i) * group_w + 10 + k * (group_w - 20) / 2;
      const double w = (group_w - 20) / 2 - 4;
      svg += fmt::format(
          "<rect x=\"{:.1f}\" y=\"{:.1f}\" width=\"{:.1f}\" height=\"{:.1f}\" fill=\"{}\"/>\n"
          "<text x=\"{:.1f}\" y=\"{:.1f}\" text-anchor=\"middle\">{:.0f}</text>\n",
          x, kHeight - kBottom - h, w, h, colors[k], x + w / 2, kHeight - kBottom - h - 4,
          values[k]);
    }
    svg += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{:g} req/s</text>\n",
                       kLeft + static_cast<double>(i) * group_w + group_w / 2,
                       kHeight - kBottom + 16, epp.stages[i].rate);
  }
  svg += fmt::format(
      "<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" y=\"{}\">"
      "{}</text>\n<rect x=\"{}\" y=\"{}\" width=\"10\" height=\"10\" fill=\"{}\"/><text x=\"{}\" "
      "y=\"{}\">{}</text>\n</svg>\n",
      kLeft, kHeight - 14, colors[0], kLeft + 14, kHeight - 5, HtmlEscape(epp.label), kLeft + 240,
      kHeight - 14, colors[1], kLeft + 254, kHeight - 5, HtmlEscape(baseline.label));
  return svg;
}

std::string HtmlReport(const GatewayRun& epp, const GatewayRun& baseline,
                       const ReportContext& context) {
  std::string table;
  const size_t n = std::min(epp.stages.size(), baseline.stages.size());
  for (size_t i = 0; i < n; ++i) {
    table += fmt::format(
        "<h3>Stage {}: {:g} req/s offered</h3>\n<table>\n<tr><th></th><th>{}</th><th>{}</th>"
        "<th>EPP wins</th></tr>\n",
        i + 1, epp.stages[i].rate, HtmlEscape(epp.label), HtmlEscape(baseline.label));
    for (const Row& row : Rows(epp.stages[i], baseline.stages[i])) {
      table += fmt::format("<tr><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
                           HtmlEscape(row.name), fmt::format(fmt::runtime(row.format), row.ours),
                           fmt::format(fmt::runtime(row.format), row.theirs),
                           Ratio(row.ours, row.theirs, row.lower_is_better));
    }
    table += "</table>\n";
  }
  std::string links;
  for (const auto& [label, url] : context.links) {
    links += fmt::format("<li>{}: <a href=\"{}\">{}</a></li>\n", HtmlEscape(label), HtmlEscape(url),
                         HtmlEscape(url));
  }
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">\n"
      "<title>zumik up: EPP vs round-robin</title>\n<style>\n"
      "body{{font-family:sans-serif;max-width:60em;margin:2em auto;color:#222}}\n"
      "table{{border-collapse:collapse;margin-bottom:1em}}\n"
      "td,th{{border:1px solid #ccc;padding:4px 10px;text-align:right}}\n"
      "td:first-child{{text-align:left}}\npre{{background:#f4f4f4;padding:1em}}\n"
      "</style></head><body>\n<h1>zumik up: EPP vs round-robin</h1>\n"
      "<p>Fleet: {} per gateway (simulated, real time). Cluster id: <code>{}</code>.</p>\n"
      "<p>The same workload at the same offered load through the EPP gateway "
      "(<code>zumik-default</code> policy) and a round-robin gateway, each in front of its own "
      "identical fleet. Measured, not modelled: both numbers come from this run.</p>\n"
      "{}\n<div>{}</div>\n<div>{}</div>\n<h2>Links</h2>\n<ul>\n{}</ul>\n"
      "<h2>Workload</h2>\n<pre>{}</pre>\n</body></html>\n",
      HtmlEscape(context.fleet), HtmlEscape(context.cluster_id), table,
      BarChartSvg(epp, baseline, "TTFT p90", "ms", TtftP90),
      BarChartSvg(epp, baseline, "Output throughput", "tokens/s", OutputThroughput), links,
      HtmlEscape(context.workload_yaml));
}

}  // namespace zumik::up
