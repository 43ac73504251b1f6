// `zumik bench`: run a workload in virtual time on a simulated fleet with scheduling policies
// side by side, or over HTTP against a target; print a table, write JSON / CSV / SVG.
#include <unistd.h>

#include <cerrno>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <mutex>
#include <utility>
#include <vector>

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
  std::string seed;  // "" = the workload's
  std::string model;
  int jobs = 1;
  double scrape_interval_ms = 50;
  bool quiet = false;
};

// Why a report cannot be written to `path` ("" when it can): checked before the run, so that
// a bad path does not cost the run's time.
std::string UnwritablePath(const std::string& flag, const std::string& path) {
  namespace fs = std::filesystem;
  std::error_code ec;
  if (fs::is_directory(path, ec)) {
    return fmt::format("{} '{}' is a directory: give a file name", flag, path);
  }
  const fs::path parent = fs::path(path).parent_path();
  const std::string dir = parent.empty() ? "." : parent.string();
  if (!fs::is_directory(dir, ec)) {
    return fmt::format("{} '{}': directory '{}' does not exist: create it first", flag, path, dir);
  }
  if (access(dir.c_str(), W_OK) != 0) {
    return fmt::format("{} '{}': cannot write in '{}': {}", flag, path, dir, std::strerror(errno));
  }
  return "";
}

// Writes every report, or none: each goes to a temporary file beside its path first, and the
// files take their names only once all were written.
bool WriteReports(const std::vector<std::pair<std::string, std::string>>& files) {
  std::vector<std::string> written;
  bool ok = true;
  for (const auto& [path, text] : files) {
    const std::string temp = path + ".tmp";
    std::ofstream out(temp, std::ios::binary | std::ios::trunc);
    out << text;
    out.close();
    if (!out) {
      std::fprintf(stderr, "zumik bench: cannot write '%s': %s\n", path.c_str(),
                   std::strerror(errno));
      std::remove(temp.c_str());
      ok = false;
      break;
    }
    written.push_back(temp);
  }
  for (size_t i = 0; i < written.size(); ++i) {
    const std::string& path = files[i].first;
    if (!ok) {
      std::remove(written[i].c_str());
    } else if (std::rename(written[i].c_str(), path.c_str()) != 0) {
      std::fprintf(stderr, "zumik bench: cannot write '%s': %s\n", path.c_str(),
                   std::strerror(errno));
      ok = false;
    }
  }
  return ok;
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
  if (!flags.seed.empty()) {
    char* end = nullptr;
    errno = 0;
    const unsigned long long seed = std::strtoull(flags.seed.c_str(), &end, 10);
    if (flags.seed[0] == '-' || end != flags.seed.c_str() + flags.seed.size() || errno != 0) {
      std::fprintf(stderr, "zumik bench: --seed must be a whole number from 0 to %llu, got '%s'\n",
                   static_cast<unsigned long long>(UINT64_MAX), flags.seed.c_str());
      ExitCode() = 2;
      return;
    }
    workload->seed = static_cast<uint64_t>(seed);
  }
  for (const auto& [flag, path] : {std::pair{"--json", &flags.json}, std::pair{"--csv", &flags.csv},
                                   std::pair{"--svg", &flags.svg}}) {
    if (path->empty()) continue;
    if (const std::string why = UnwritablePath(flag, *path); !why.empty()) {
      std::fprintf(stderr, "zumik bench: %s\n", why.c_str());
      ExitCode() = 2;
      return;
    }
  }
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
  std::fflush(stdout);
  std::vector<std::pair<std::string, std::string>> files;
  if (!flags.json.empty()) files.emplace_back(flags.json, bench::ToJson(*report));
  if (!flags.csv.empty()) files.emplace_back(flags.csv, bench::ToCsv(*report));
  if (!flags.svg.empty()) files.emplace_back(flags.svg, bench::ToSvg(*report));
  if (!WriteReports(files)) ExitCode() = 1;
  const std::vector<std::string> failed = bench::FailedPolicies(*report);
  for (const std::string& line : failed) std::fprintf(stderr, "zumik bench: %s\n", line.c_str());
  if (!failed.empty()) {
    std::fprintf(stderr, "zumik bench: such a run measures nothing: check the %s\n",
                 flags.virtual_mode ? "workload's lengths against the fleet's max_model_len"
                                    : "target URL and --model (the target's /v1/models)");
    ExitCode() = 1;
  }
}

}  // namespace

// A finite number of milliseconds from 0 to an hour (nan and inf included, strtod reads all).
const CLI::Validator kScrapeInterval(
    [](std::string& text) -> std::string {
      char* end = nullptr;
      const double value = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(value) || value < 0 ||
          value > 3.6e6) {
        return "must be a number of milliseconds from 0 to 3600000, got '" + text + "'";
      }
      return "";
    },
    "MS");

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
  cmd->add_option("--seed", flags->seed, "Override the workload's seed (0 to 2^64-1)");
  cmd->add_option("--model", flags->model,
                  "Model name to request (--target; default: the "
                  "workload's, else the target's first model)");
  cmd->add_option("--jobs", flags->jobs, "Policies simulated in parallel (--virtual)")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--scrape-interval-ms", flags->scrape_interval_ms,
                  "How stale the router's metrics are (--virtual)")
      ->capture_default_str()
      ->check(kScrapeInterval);
  cmd->add_flag("--quiet", flags->quiet, "No progress bar");
  cmd->callback([flags] { Run(*flags); });
}

}  // namespace zumik::cli
