// Statistics and report formats for `zumik bench`.
#include "bench/report.h"

#include <fmt/format.h>

#include <algorithm>
#include <boost/json.hpp>
#include <cmath>
#include <iterator>
#include <string>

namespace zumik::bench {
namespace {

// Rounded so reports are short and byte-stable.
double R(double x, int digits = 3) {
  const double scale = std::pow(10.0, digits);
  const double v = std::round(x * scale) / scale;
  return v == 0 ? 0.0 : v;  // no "-0"
}

boost::json::object PercentilesJson(const Percentiles& p) {
  boost::json::object o;
  o["p50"] = R(p.p50);
  o["p90"] = R(p.p90);
  o["p99"] = R(p.p99);
  return o;
}

// Boost.JSON writes doubles in shortest round-trip form with an exponent ("1.48312E4"), which
// is valid JSON but hard to read and diff; reports carry rounded values, so plain decimals
// ("14831.2") say the same. A value that happens to be whole keeps a ".0" so readers still see
// a floating-point number where they expect one.
void WriteJson(const boost::json::value& v, std::string& out) {
  switch (v.kind()) {
    case boost::json::kind::double_: {
      const double d = v.get_double();
      if (!std::isfinite(d)) {
        out += "null";
      } else if (d == std::trunc(d) && std::fabs(d) < 1e15) {
        fmt::format_to(std::back_inserter(out), "{:.1f}", d);
      } else {
        fmt::format_to(std::back_inserter(out), "{}", d);
      }
      return;
    }
    case boost::json::kind::object: {
      out += '{';
      bool first = true;
      for (const auto& [key, value] : v.get_object()) {
        if (!first) out += ',';
        first = false;
        out += boost::json::serialize(boost::json::string_view(key));
        out += ':';
        WriteJson(value, out);
      }
      out += '}';
      return;
    }
    case boost::json::kind::array: {
      out += '[';
      bool first = true;
      for (const auto& value : v.get_array()) {
        if (!first) out += ',';
        first = false;
        WriteJson(value, out);
      }
      out += ']';
      return;
    }
    default:
      out += boost::json::serialize(v);
  }
}

constexpr double kHistMinMs = 0.01;
constexpr double kHistGrowth = 1.01;

}  // namespace

Percentiles ComputePercentiles(std::vector<double>& values) {
  Percentiles p;
  if (values.empty()) return p;
  std::sort(values.begin(), values.end());
  auto at = [&](double q) {
    const auto rank = static_cast<size_t>(std::ceil(q * static_cast<double>(values.size())));
    return values[std::clamp<size_t>(rank, 1, values.size()) - 1];
  };
  p.p50 = at(0.5);
  p.p90 = at(0.9);
  p.p99 = at(0.99);
  p.count = static_cast<int64_t>(values.size());
  return p;
}

void LatencyHistogram::Add(double ms) {
  size_t b = 0;
  if (ms > kHistMinMs) {
    b = static_cast<size_t>(std::log(ms / kHistMinMs) / std::log(kHistGrowth)) + 1;
  }
  if (b >= buckets_.size()) buckets_.resize(b + 1, 0);
  ++buckets_[b];
  ++count_;
}

Percentiles LatencyHistogram::Compute() const {
  Percentiles p;
  if (count_ == 0) return p;
  auto at = [&](double q) {
    const auto rank =
        std::max<int64_t>(1, static_cast<int64_t>(std::ceil(q * static_cast<double>(count_))));
    int64_t seen = 0;
    for (size_t b = 0; b < buckets_.size(); ++b) {
      seen += buckets_[b];
      if (seen >= rank) {
        // The bucket's geometric middle.
        if (b == 0) return kHistMinMs;
        return kHistMinMs * std::pow(kHistGrowth, static_cast<double>(b) - 0.5);
      }
    }
    return 0.0;
  };
  p.p50 = at(0.5);
  p.p90 = at(0.9);
  p.p99 = at(0.99);
  p.count = count_;
  return p;
}

void StageAccumulator::Add(const Sample& s) {
  ++requests_;
  if (!s.ok) {
    ++errors;
    ++errors_by_kind[s.error.empty() ? "error" : s.error];
  } else {
    e2e_ms.push_back(s.e2e_ms);
    output_tokens += s.output_tokens;
    if (s.ttft_ms >= 0) ok_ttft_ms.push_back(s.ttft_ms);
  }
  if (s.ttft_ms >= 0) ttft_ms.push_back(s.ttft_ms);
  // Input throughput counts the prompts the server prefilled: a request refused (400, 404,
  // over max_model_len) or cut before its first token never was.
  if (s.ok || s.ttft_ms >= 0) prompt_tokens += s.prompt_tokens;
  if (s.cached_tokens >= 0) {
    cached_tokens += s.cached_tokens;
    cache_known_prompt += s.prompt_tokens;
  }
  last_finished_s = std::max(last_finished_s, s.finished_s);
}

StageStats FinishStage(StageAccumulator& acc, double rate, bool warmup, double start_s,
                       double slo_ttft_ms) {
  StageStats st;
  st.rate = rate;
  st.warmup = warmup;
  st.requests = acc.requests_;
  st.errors = acc.errors;
  st.errors_by_kind = acc.errors_by_kind;
  // A failed request is a miss, however early its first token came.
  const auto slo_met = std::count_if(acc.ok_ttft_ms.begin(), acc.ok_ttft_ms.end(),
                                     [&](double t) { return t <= slo_ttft_ms; });
  st.slo_attainment =
      acc.requests_ > 0 ? static_cast<double>(slo_met) / static_cast<double>(acc.requests_) : 0;
  st.duration_s = std::max(0.0, acc.last_finished_s - start_s);
  if (st.duration_s > 0) {
    st.output_tokens_per_s = static_cast<double>(acc.output_tokens) / st.duration_s;
    st.input_tokens_per_s = static_cast<double>(acc.prompt_tokens) / st.duration_s;
    st.completed_rps = static_cast<double>(acc.e2e_ms.size()) / st.duration_s;
  }
  st.ttft_ms = ComputePercentiles(acc.ttft_ms);
  st.e2e_ms = ComputePercentiles(acc.e2e_ms);
  st.itl_ms = acc.itl_.Compute();
  st.prefix_hit_rate = acc.cache_known_prompt > 0 ? static_cast<double>(acc.cached_tokens) /
                                                        static_cast<double>(acc.cache_known_prompt)
                                                  : 0;
  return st;
}

void Summarize(PolicyReport& report, double slo_ttft_ms) {
  report.peak_output_tokens_per_s = 0;
  report.goodput_rps_at_slo = 0;
  report.goodput_rate = 0;
  report.knee_rate = 0;
  for (const StageStats& s : report.stages) {
    report.peak_output_tokens_per_s =
        std::max(report.peak_output_tokens_per_s, s.output_tokens_per_s);
    const bool meets =
        s.requests > 0 && s.errors == 0 && !s.timed_out && s.ttft_ms.p90 <= slo_ttft_ms;
    if (meets && s.rate >= report.goodput_rate) {
      report.goodput_rate = s.rate;
      report.goodput_rps_at_slo = s.completed_rps;
    }
  }
  // Stages in rate order (ladders usually are; a warm-up-like first stage may not be).
  std::vector<const StageStats*> by_rate;
  for (const StageStats& s : report.stages) by_rate.push_back(&s);
  std::stable_sort(by_rate.begin(), by_rate.end(),
                   [](const StageStats* a, const StageStats* b) { return a->rate < b->rate; });
  for (const StageStats* s : by_rate) {
    if (report.peak_output_tokens_per_s <= 0) break;  // nothing completed: no knee
    if (s->output_tokens_per_s >= 0.95 * report.peak_output_tokens_per_s) {
      report.knee_rate = s->rate;
      break;
    }
  }
}

std::vector<std::string> FailedPolicies(const Report& report) {
  std::vector<std::string> out;
  for (const PolicyReport& p : report.policies) {
    int64_t requests = 0, errors = 0;
    std::map<std::string, int64_t> by_kind;
    for (const StageStats& s : p.stages) {
      requests += s.requests;
      errors += s.errors;
      for (const auto& [kind, n] : s.errors_by_kind) by_kind[kind] += n;
    }
    if (requests == 0 || errors < requests) continue;
    std::string kinds;
    for (const auto& [kind, n] : by_kind) {
      kinds += fmt::format("{}{}: {}", kinds.empty() ? "" : ", ", kind, n);
    }
    out.push_back(fmt::format(
        "policy {}: {} failed ({})", p.policy,
        requests == 1 ? "its one request" : fmt::format("all {} requests", requests), kinds));
  }
  return out;
}

std::string ToJson(const Report& report) {
  boost::json::object root;
  root["workload"] = report.workload;
  root["fleet"] = report.fleet;
  root["mode"] = report.mode;
  root["arrival"] = report.arrival;
  root["seed"] = report.seed;
  root["slo_ttft_p90_ms"] = R(report.slo_ttft_p90_ms);
  boost::json::array policies;
  for (const PolicyReport& p : report.policies) {
    boost::json::object po;
    po["policy"] = p.policy;
    po["peak_output_tokens_per_s"] = R(p.peak_output_tokens_per_s, 1);
    po["goodput_rps_at_slo"] = R(p.goodput_rps_at_slo);
    po["goodput_rate"] = R(p.goodput_rate);
    po["knee_rate"] = R(p.knee_rate);
    po["prefix_hit_rate"] = R(p.prefix_hit_rate, 4);
    if (p.has_ideal) {
      po["ideal_prefix_hit_rate"] = R(p.ideal_prefix_hit_rate, 4);
      po["ideal_fleet_kv_prefix_hit_rate"] = R(p.ideal_fleet_kv_prefix_hit_rate, 4);
    } else {
      po["ideal_prefix_hit_rate"] = nullptr;
      po["ideal_fleet_kv_prefix_hit_rate"] = nullptr;
    }
    boost::json::array stages;
    for (const StageStats& s : p.stages) {
      boost::json::object so;
      so["rate"] = R(s.rate);
      so["requests"] = s.requests;
      so["errors"] = s.errors;
      if (!s.errors_by_kind.empty()) {
        boost::json::object kinds;
        for (const auto& [kind, n] : s.errors_by_kind) kinds[kind] = n;
        so["errors_by_kind"] = std::move(kinds);
      }
      so["timed_out"] = s.timed_out;
      so["duration_s"] = R(s.duration_s);
      so["output_tokens_per_s"] = R(s.output_tokens_per_s, 1);
      so["input_tokens_per_s"] = R(s.input_tokens_per_s, 1);
      so["completed_rps"] = R(s.completed_rps);
      so["ttft_ms"] = PercentilesJson(s.ttft_ms);
      so["itl_ms"] = PercentilesJson(s.itl_ms);
      so["e2e_ms"] = PercentilesJson(s.e2e_ms);
      so["prefix_hit_rate"] = R(s.prefix_hit_rate, 4);
      so["slo_attainment"] = R(s.slo_attainment, 4);
      stages.push_back(std::move(so));
    }
    po["stages"] = std::move(stages);
    policies.push_back(std::move(po));
  }
  root["policies"] = std::move(policies);
  std::string out;
  WriteJson(root, out);
  out += '\n';
  return out;
}

std::string ToCsv(const Report& report) {
  std::string out =
      "workload,policy,rate,requests,errors,output_tokens_per_s,input_tokens_per_s,"
      "completed_rps,ttft_p50_ms,ttft_p90_ms,ttft_p99_ms,itl_p50_ms,itl_p90_ms,itl_p99_ms,"
      "e2e_p50_ms,e2e_p90_ms,e2e_p99_ms,prefix_hit_rate,slo_attainment\n";
  for (const PolicyReport& p : report.policies) {
    for (const StageStats& s : p.stages) {
      out += fmt::format(
          "{},{},{},{},{},{:.1f},{:.1f},{:.3f},{:.1f},{:.1f},{:.1f},{:.2f},{:.2f},{:.2f},{:.1f},"
          "{:.1f},{:.1f},{:.4f},{:.4f}\n",
          report.workload, p.policy, s.rate, s.requests, s.errors, s.output_tokens_per_s,
          s.input_tokens_per_s, s.completed_rps, s.ttft_ms.p50, s.ttft_ms.p90, s.ttft_ms.p99,
          s.itl_ms.p50, s.itl_ms.p90, s.itl_ms.p99, s.e2e_ms.p50, s.e2e_ms.p90, s.e2e_ms.p99,
          s.prefix_hit_rate, s.slo_attainment);
    }
  }
  return out;
}

std::string ToTable(const Report& report) {
  std::string out = fmt::format("workload {} · {} {} · arrival {} · seed {} · SLO TTFT p90 {} ms\n",
                                report.workload, report.mode, report.fleet, report.arrival,
                                report.seed, report.slo_ttft_p90_ms);
  const bool concurrency = report.arrival == "concurrency";
  for (const PolicyReport& p : report.policies) {
    out += fmt::format("\n{}\n", p.policy);
    out += fmt::format("{:>7} {:>6} {:>5} {:>9} {:>9} {:>9} {:>9} {:>7} {:>7} {:>6} {:>6}\n",
                       concurrency ? "clients" : "rate", "reqs", "err", "out tok/s", "TTFT p50",
                       "TTFT p90", "TTFT p99", "ITL p50", "ITL p90", "hit%", "SLO%");
    // A latency with no sample behind it is "-", not a 0 that reads as instant.
    auto ms = [](double value, const Percentiles& of, int width, int precision) {
      return of.count > 0 ? fmt::format("{:>{}.{}f}", value, width, precision)
                          : fmt::format("{:>{}}", "-", width);
    };
    for (const StageStats& s : p.stages) {
      out += fmt::format("{:>7.4g} {:>6} {:>5} {:>9.0f} {} {} {} {} {} {:>6.1f} {:>6.1f}{}\n",
                         s.rate, s.requests, s.errors, s.output_tokens_per_s,
                         ms(s.ttft_ms.p50, s.ttft_ms, 9, 0), ms(s.ttft_ms.p90, s.ttft_ms, 9, 0),
                         ms(s.ttft_ms.p99, s.ttft_ms, 9, 0), ms(s.itl_ms.p50, s.itl_ms, 7, 1),
                         ms(s.itl_ms.p90, s.itl_ms, 7, 1), 100 * s.prefix_hit_rate,
                         100 * s.slo_attainment, s.timed_out ? "  (timed out)" : "");
    }
  }
  out += fmt::format("\n{:<16} {:>12} {:>14} {:>10} {:>8} {:>8} {:>9}\n", "policy", "peak tok/s",
                     "goodput rps", "knee", "hit%", "ideal%", "ideal-kv%");
  for (const PolicyReport& p : report.policies) {
    auto percent = [&](double rate, int width) {
      return p.has_ideal ? fmt::format("{:>{}.1f}", 100 * rate, width)
                         : fmt::format("{:>{}}", "-", width);
    };
    out += fmt::format("{:<16} {:>12.0f} {:>8.2f} @{:<5.4g} {:>10.4g} {:>8.1f} {} {}\n", p.policy,
                       p.peak_output_tokens_per_s, p.goodput_rps_at_slo, p.goodput_rate,
                       p.knee_rate, 100 * p.prefix_hit_rate, percent(p.ideal_prefix_hit_rate, 8),
                       percent(p.ideal_fleet_kv_prefix_hit_rate, 9));
  }
  return out;
}

std::string ToSvg(const Report& report) {
  static constexpr const char* kColors[] = {"#1f77b4", "#d62728", "#2ca02c", "#ff7f0e",
                                            "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"};
  constexpr double kW = 520, kH = 340, kLeft = 70, kRight = 20, kTop = 40, kBottom = 50;
  constexpr double kPlotW = kW - kLeft - kRight, kPlotH = kH - kTop - kBottom;
  double max_rate = 0, min_rate = 1e300, max_tput = 0, max_ttft = 1, min_ttft = 1e300;
  for (const PolicyReport& p : report.policies) {
    for (const StageStats& s : p.stages) {
      max_rate = std::max(max_rate, s.rate);
      min_rate = std::min(min_rate, s.rate);
      max_tput = std::max(max_tput, s.output_tokens_per_s);
      if (s.ttft_ms.p90 > 0) {
        max_ttft = std::max(max_ttft, s.ttft_ms.p90);
        min_ttft = std::min(min_ttft, s.ttft_ms.p90);
      }
    }
  }
  if (min_rate > max_rate) min_rate = 0;
  if (min_ttft > max_ttft) min_ttft = 1;
  const double x_lo = 0, x_hi = max_rate > 0 ? max_rate * 1.05 : 1;
  const double log_lo = std::floor(std::log10(std::max(min_ttft, 1.0)));
  const double log_hi = std::max(log_lo + 1, std::ceil(std::log10(max_ttft)));
  const double y_hi = max_tput > 0 ? max_tput * 1.1 : 1;
  const std::string x_label =
      report.arrival == "concurrency" ? "concurrent clients" : "rate (req/s)";

  const size_t legend_rows = (report.policies.size() + 3) / 4;  // 4 policies a row
  std::string out = fmt::format(
      "<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"{}\" height=\"{}\" "
      "font-family=\"sans-serif\" font-size=\"12\">\n"
      "<rect width=\"100%\" height=\"100%\" fill=\"white\"/>\n"
      "<text x=\"{}\" y=\"18\" font-size=\"14\" text-anchor=\"middle\">{} · {} · seed {}</text>\n",
      2 * kW, kH + 20 + 18 * static_cast<double>(legend_rows), kW, report.workload, report.fleet,
      report.seed);
  for (int panel = 0; panel < 2; ++panel) {
    const double ox = panel * kW;
    auto px = [&](double rate) { return ox + kLeft + (rate - x_lo) / (x_hi - x_lo) * kPlotW; };
    auto py = [&](double v) {
      double f = 0;
      if (panel == 0) {
        f = (std::log10(std::max(v, std::pow(10.0, log_lo))) - log_lo) / (log_hi - log_lo);
      } else {
        f = v / y_hi;
      }
      return kTop + (1 - f) * kPlotH;
    };
    out += fmt::format(
        "<g><rect x=\"{}\" y=\"{}\" width=\"{}\" height=\"{}\" fill=\"none\" stroke=\"#333\"/>\n"
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n"
        "<text x=\"{}\" y=\"{}\" text-anchor=\"middle\">{}</text>\n",
        ox + kLeft, kTop, kPlotW, kPlotH, ox + kLeft + kPlotW / 2, kTop - 8,
        panel == 0 ? "TTFT p90 (ms, log scale)" : "output tokens/s", ox + kLeft + kPlotW / 2,
        kH - 12, x_label);
    // Axis ticks.
    for (int i = 0; i <= 5; ++i) {
      const double rate = x_lo + (x_hi - x_lo) * i / 5;
      out += fmt::format("<text x=\"{:.1f}\" y=\"{}\" text-anchor=\"middle\">{:.3g}</text>\n",
                         px(rate), kTop + kPlotH + 16, rate);
    }
    if (panel == 0) {
      if (report.slo_ttft_p90_ms > 0) {
        out += fmt::format(
            "<line x1=\"{}\" x2=\"{}\" y1=\"{:.1f}\" y2=\"{:.1f}\" stroke=\"#999\" "
            "stroke-dasharray=\"4 3\"/><text x=\"{}\" y=\"{:.1f}\" fill=\"#666\">SLO</text>\n",
            ox + kLeft, ox + kLeft + kPlotW, py(report.slo_ttft_p90_ms), py(report.slo_ttft_p90_ms),
            ox + kLeft + 4, py(report.slo_ttft_p90_ms) - 3);
      }
      for (double e = log_lo; e <= log_hi; e += 1) {
        const double v = std::pow(10.0, e);
        out += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:g}</text>\n",
                           ox + kLeft - 4, py(v) + 4, v);
      }
    } else {
      for (int i = 0; i <= 5; ++i) {
        const double v = y_hi * i / 5;
        out += fmt::format("<text x=\"{}\" y=\"{:.1f}\" text-anchor=\"end\">{:.0f}</text>\n",
                           ox + kLeft - 4, py(v) + 4, v);
      }
    }
    for (size_t k = 0; k < report.policies.size(); ++k) {
      const PolicyReport& p = report.policies[k];
      const char* color = kColors[k % std::size(kColors)];
      std::string points;
      for (const StageStats& s : p.stages) {
        const double v = panel == 0 ? s.ttft_ms.p90 : s.output_tokens_per_s;
        points += fmt::format("{:.1f},{:.1f} ", px(s.rate), py(v));
        out += fmt::format("<circle cx=\"{:.1f}\" cy=\"{:.1f}\" r=\"2.5\" fill=\"{}\"/>\n",
                           px(s.rate), py(v), color);
      }
      out += fmt::format(
          "<polyline points=\"{}\" fill=\"none\" stroke=\"{}\" stroke-width=\"1.5\"/>\n", points,
          color);
    }
    out += "</g>\n";
  }
  for (size_t k = 0; k < report.policies.size(); ++k) {
    const size_t row = k / 4;
    const double x = 80 + static_cast<double>(k % 4) * 240;
    const double y = kH + 10 + 18 * static_cast<double>(row);
    out += fmt::format(
        "<rect x=\"{}\" y=\"{}\" width=\"14\" height=\"4\" fill=\"{}\"/>"
        "<text x=\"{}\" y=\"{}\">{}</text>\n",
        x, y, kColors[k % std::size(kColors)], x + 20, y + 5, report.policies[k].policy);
  }
  out += "</svg>\n";
  return out;
}

}  // namespace zumik::bench
