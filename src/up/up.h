// `zumik up`: the whole Portable profile on one machine. Starts, in a run directory, the
// registry (SQLite), a simulated fleet behind the EPP gateway (`zumik-default`), an identical
// fleet behind a round-robin gateway for comparison, the operator in local mode (registering
// this machine and heartbeating) and Prometheus when installed; runs the same shared-prefix
// benchmark through both gateways; writes the table, SVG charts and an HTML report; serves
// until Ctrl-C (or stops at once with `exit_after`) and stops every process it started.
#pragma once

#include <string>

namespace zumik::up {

struct UpOptions {
  std::string zumik_binary;  // this executable
  std::string run_dir;       // created if missing
  int replicas = 4;
  std::string profile = "h100-llama-3.1-8b";
  bool bench = true;
  int bench_seconds = 30;
  bool exit_after = false;
  int port_base = 8000;
  std::string prometheus_binary = "prometheus";  // skipped when not found on PATH
  bool lmcache = false;  // both fleets' replicas get the simulated LMCache CPU tier
};

// Every port `zumik up` uses, derived from --port-base.
struct PortPlan {
  int epp_gateway, baseline_gateway, registry, epp_metrics, baseline_metrics, prometheus;
  int fleet_first, baseline_first;  // replica i of each fleet listens on first + i
  static PortPlan From(int base, int replicas);
};

// The shared-prefix workload `zumik up` benchmarks with (bench/workloads format), sized so a
// short run shows what prefix-aware routing does: more distinct system prompts than one
// replica's KV cache holds, fewer than the fleet's.
std::string UpWorkloadYaml(int bench_seconds, int replicas, double rate_per_replica);

// Runs everything; returns the process exit code: 0 ok, 1 a component failed, 2 bad flags,
// 128 + the signal when SIGINT or SIGTERM stopped it before the run finished.
int RunUp(const UpOptions& options);

}  // namespace zumik::up
