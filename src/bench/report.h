// Benchmark results: per-request samples folded into per-stage statistics, the per-policy
// summary (peak throughput, goodput at the SLO, knee), and the report formats — the JSON of
// docs/specs/workloads.md (stable keys), CSV, a terminal table and an SVG plot.
#pragma once

#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace zumik::bench {

struct Percentiles {
  double p50 = 0;
  double p90 = 0;
  double p99 = 0;
  int64_t count = 0;  // samples behind them (0: none, and the percentiles are 0)
};

// Nearest-rank percentiles (the value at rank ceil(q·n)); zeros when empty. Sorts `values`.
Percentiles ComputePercentiles(std::vector<double>& values);

// Inter-token gaps are too many to keep (reasoning: millions per stage): a log-bucketed
// histogram with 1% wide buckets from 10 µs, exact enough for percentiles in milliseconds.
class LatencyHistogram {
 public:
  void Add(double ms);
  int64_t count() const { return count_; }
  Percentiles Compute() const;

 private:
  std::vector<int64_t> buckets_;
  int64_t count_ = 0;
};

// One finished (or failed) request as a runner saw it.
struct Sample {
  bool ok = false;
  std::string error;    // kind when !ok: "rejected", "timeout", "http_503", "connect", ...
  double ttft_ms = -1;  // -1: no token arrived
  double e2e_ms = 0;
  double finished_s = 0;  // since the run's start
  int64_t prompt_tokens = 0;
  int64_t cached_tokens = -1;  // -1 unknown (an HTTP server that does not report it)
  int64_t output_tokens = 0;
};

// Accumulates a stage's samples; Finish() turns them into its statistics.
class StageAccumulator {
 public:
  void Add(const Sample& sample);
  void AddItl(double ms) { itl_.Add(ms); }
  int64_t requests() const { return requests_; }

  std::vector<double> ttft_ms, e2e_ms;
  double last_finished_s = 0;
  int64_t errors = 0;
  std::map<std::string, int64_t> errors_by_kind;
  int64_t output_tokens = 0, prompt_tokens = 0, cached_tokens = 0, cache_known_prompt = 0;
  std::vector<double> ok_ttft_ms;  // of the successful requests: what slo_attainment counts
  LatencyHistogram itl_;
  int64_t requests_ = 0;
};

struct StageStats {
  double rate = 0;
  bool warmup = false;
  bool timed_out = false;
  int64_t requests = 0;
  int64_t errors = 0;
  std::map<std::string, int64_t> errors_by_kind;
  double duration_s = 0;  // stage start → last completion
  double output_tokens_per_s = 0;
  double input_tokens_per_s = 0;
  double completed_rps = 0;  // successful requests per second over duration_s
  Percentiles ttft_ms, itl_ms, e2e_ms;
  double prefix_hit_rate = 0;  // cached / prompt tokens (of responses that report it)
  double slo_attainment = 0;   // share of requests that succeeded with TTFT within the SLO
};

StageStats FinishStage(StageAccumulator& acc, double rate, bool warmup, double start_s,
                       double slo_ttft_ms);

struct PolicyReport {
  std::string policy;
  std::vector<StageStats> stages;  // reported (non-warm-up) stages
  double peak_output_tokens_per_s = 0;
  double goodput_rps_at_slo = 0;
  double goodput_rate = 0;  // the stage rate it was measured at (0: none met the SLO)
  double knee_rate = 0;
  double prefix_hit_rate = 0;  // over all reported stages
  // What a perfect router with an unbounded cache would hit on the same requests (one global
  // cache; whole 16-token blocks; a fully cached prompt still recomputes its last block).
  double ideal_prefix_hit_rate = 0;
  // The same with the cache bounded by the fleet's total KV blocks, LRU (ideal_cache.h): the
  // reference where the working set does not fit the fleet. 0 outside virtual runs.
  double ideal_fleet_kv_prefix_hit_rate = 0;
  // Whether the ideals were computed (virtual runs); the HTTP runner cannot know them, and the
  // reports print them as null / "-" there.
  bool has_ideal = false;
};

// Peak, goodput (highest stage rate whose TTFT p90 meets the SLO → its completed-request
// rate) and knee (the lowest rate whose output throughput reaches 95% of the peak).
void Summarize(PolicyReport& report, double slo_ttft_ms);

struct Report {
  std::string workload;
  std::string fleet;  // "profile:count,..." or the target URL
  std::string mode;   // "virtual" | "http"
  std::string arrival;
  uint64_t seed = 1;
  double slo_ttft_p90_ms = 2000;
  std::vector<PolicyReport> policies;
};

// One line per policy whose reported requests all failed, with its errors by kind ("policy X:
// all N requests failed (http_404: N)"); empty when every policy had a success.
std::vector<std::string> FailedPolicies(const Report& report);

std::string ToJson(const Report& report);
std::string ToCsv(const Report& report);
std::string ToTable(const Report& report);
// Two panels: TTFT p90 (log scale) and output tokens/s against the stage rate, a line per policy.
std::string ToSvg(const Report& report);

}  // namespace zumik::bench
