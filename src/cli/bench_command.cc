// `zumik bench`: run a workload in virtual time on a simulated fleet with scheduling policies
// side by side, or over HTTP against a target; print a table, write JSON / CSV / SVG.
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <map>
#include <mutex>

#include "bench/http_runner.h"
#include "bench/runner.h"
#include "bench/workload.h"
#include "cli/commands.h"
#include "core/status.h"

namespace zumik::cli {
namespace {

struct BenchFlags {
  bool virtual_mode = false;
  std::string target;
  std::string fleet = "h100x2-qwen3-32b-tp2:8";
  std::string workload;
  std::vector<std::string> policies;
  std::string json, svg, csv;
  int64_t seed = -1;
  std::string model;
  int jobs = 1;
  double scrape_interval_ms = 50;
  bool quiet = false;
};

bool WriteFile(const std::string& path, const std::string& text) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) {
    std::fprintf(stderr, "zumik bench: cannot write '%s'\n", path.c_str());
    return false;
  }
  return true;
}

// A one-line progress bar per policy, redrawn in place on a terminal.
class ProgressBar {
 public:
  void Update(const std::string& name, double done, int total) {
    std::lock_guard lock(mu_);
    fraction_[name] = total > 0 ? done / total : 1;
    std::string line;
    for (const auto& [n, f] : fraction_) {
      const int filled = static_cast<int>(f * 20);
      line += fmt::format("{} [{}{}] {:3.0f}%  ", n, std::string(static_cast<size_t>(filled), '#'),
                          std::string(static_cast<size_t>(20 - filled), '.'), 100 * f);
    }
    std::fprintf(stderr, "\r%s\x1b[K", line.c_str());
    std::fflush(stderr);
  }
  void Finish() { std::fprintf(stderr, "\r\x1b[K"); }

 private:
  std::mutex mu_;
  std::map<std::string, double> fraction_;
};

void Run(const BenchFlags& flags) {
  if (flags.virtual_mode == !flags.target.empty()) {
    std::fprintf(stderr, "zumik bench: give exactly one of --virtual and --target URL\n");
    ExitCode() = 2;
    return;
  }
  absl::StatusOr<bench::Workload> workload = bench::LoadWorkload(flags.workload);
  if (!workload.ok()) {
    std::fprintf(stderr, "zumik bench: %s\n", std::string(MessageOf(workload.status())).c_str());
    ExitCode() = 2;
    return;
  }
  if (flags.seed >= 0) workload->seed = static_cast<uint64_t>(flags.seed);
  const bool tty = !flags.quiet && isatty(STDERR_FILENO) == 1;
  auto bar = std::make_shared<ProgressBar>();
  bench::ProgressFn progress;
  if (tty) {
    progress = [bar](const std::string& name, double done, int total) {
      bar->Update(name, done, total);
    };
  }
  absl::StatusOr<bench::Report> report;
  if (flags.virtual_mode) {
    absl::StatusOr<std::vector<sim::Profile>> fleet = bench::ParseFleet(flags.fleet);
    if (!fleet.ok()) {
      std::fprintf(stderr, "zumik bench: %s\n", std::string(MessageOf(fleet.status())).c_str());
      ExitCode() = 2;
      return;
    }
    bench::VirtualOptions options;
    options.fleet = std::move(*fleet);
    options.fleet_text = flags.fleet;
    options.jobs = flags.jobs;
    options.scrape_interval = FromMillis(flags.scrape_interval_ms);
    options.progress = progress;
    std::vector<std::string> policies = flags.policies;
    if (policies.empty()) policies = {"round-robin", "zumik-default"};
    report = bench::RunVirtual(*workload, policies, options);
  } else {
    if (!flags.policies.empty()) {
      std::fprintf(stderr,
                   "zumik bench: --policy is for --virtual (over HTTP the target routes)\n");
      ExitCode() = 2;
      return;
    }
    bench::HttpOptions options;
    options.target = flags.target;
    options.model = flags.model;
    options.progress = progress;
    report = bench::RunHttp(*workload, options);
  }
  if (tty) bar->Finish();
  if (!report.ok()) {
    std::fprintf(stderr, "zumik bench: %s\n", std::string(MessageOf(report.status())).c_str());
    ExitCode() = 1;
    return;
  }
  std::fputs(bench::ToTable(*report).c_str(), stdout);
  bool ok = true;
  if (!flags.json.empty()) ok &= WriteFile(flags.json, bench::ToJson(*report));
  if (!flags.csv.empty()) ok &= WriteFile(flags.csv, bench::ToCsv(*report));
  if (!flags.svg.empty()) ok &= WriteFile(flags.svg, bench::ToSvg(*report));
  if (!ok) ExitCode() = 1;
}

}  // namespace

void AddBenchCommand(CLI::App& app) {
  auto flags = std::make_shared<BenchFlags>();
  auto* cmd = app.add_subcommand(
      "bench",
      "Benchmark routing: a workload on a virtual fleet with policies side by side "
      "(--virtual), or against an OpenAI-compatible endpoint (--target)");
  cmd->add_flag("--virtual", flags->virtual_mode,
                "Run in virtual time on the simulator's fleet (deterministic by seed)");
  cmd->add_option("--target", flags->target, "http://HOST:PORT of an OpenAI-compatible server");
  cmd->add_option("--fleet", flags->fleet,
                  "PROFILE:COUNT[,PROFILE:COUNT...] (profile name or file; --virtual)")
      ->capture_default_str();
  cmd->add_option("--workload", flags->workload, "Workload YAML (see bench/workloads/)")
      ->required();
  cmd->add_option("--policy", flags->policies,
                  "Policy: round-robin, random, least-request, gie-default, llm-d-default, "
                  "zumik-default, oracle (reference, cheats), or an EndpointPickerConfig file; "
                  "repeat for side by side (--virtual)");
  cmd->add_option("--json", flags->json, "Write the JSON report here");
  cmd->add_option("--csv", flags->csv, "Write per-stage CSV here");
  cmd->add_option("--svg", flags->svg, "Write TTFT p90 and throughput plots (SVG) here");
  cmd->add_option("--seed", flags->seed, "Override the workload's seed");
  cmd->add_option("--model", flags->model,
                  "Model name to request (--target; default: the "
                  "workload's, else the target's first model)");
  cmd->add_option("--jobs", flags->jobs, "Policies simulated in parallel (--virtual)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--scrape-interval-ms", flags->scrape_interval_ms,
                  "How stale the router's metrics are (--virtual)")
      ->capture_default_str();
  cmd->add_flag("--quiet", flags->quiet, "No progress bar");
  cmd->callback([flags] { Run(*flags); });
}

}  // namespace zumik::cli
