// `zumik up`: the whole Portable profile on this machine (what `make up` runs).
#include <unistd.h>

#include <chrono>
#include <climits>
#include <cstdio>
#include <ctime>
#include <string>

#include "cli/commands.h"
#include "cli/signals.h"
#include "up/up.h"

namespace zumik::cli {
namespace {

std::string SelfPath() {
  char buffer[PATH_MAX];
  const ssize_t n = readlink("/proc/self/exe", buffer, sizeof buffer - 1);
  if (n <= 0) return "zumik";
  return std::string(buffer, static_cast<size_t>(n));
}

std::string DefaultRunDir() {
  const std::time_t now = std::time(nullptr);
  char stamp[32];
  std::strftime(stamp, sizeof stamp, "%Y%m%d-%H%M%S", std::gmtime(&now));
  return std::string("zumik-run/up-") + stamp;
}

}  // namespace

void AddUpCommand(CLI::App& app) {
  auto options = std::make_shared<up::UpOptions>();
  auto no_bench = std::make_shared<bool>(false);
  auto* cmd = app.add_subcommand(
      "up",
      "Run the whole profile on this machine: registry, simulated fleet, EPP gateway (and a "
      "round-robin one), operator, Prometheus; benchmark EPP vs round-robin; serve until Ctrl-C");
  cmd->add_option("--replicas", options->replicas, "Simulated replicas per fleet")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--profile", options->profile, "Replica profile (see `zumik sim --help`)")
      ->capture_default_str();
  cmd->add_flag("--no-bench", *no_bench, "Skip the EPP vs round-robin benchmark");
  cmd->add_option("--bench-seconds", options->bench_seconds, "Length of the benchmark")
      ->capture_default_str()
      ->check(CLI::Range(5, 3600));
  cmd->add_flag("--exit", options->exit_after, "Stop everything after the report");
  cmd->add_option("--port-base", options->port_base,
                  "First port: gateways base, base+1; registry base+2; metrics base+3, base+4; "
                  "Prometheus base+5; replicas from base+10")
      ->capture_default_str()
      ->check(CLI::Range(1024, 65000));
  cmd->add_option("--run-dir", options->run_dir,
                  "Directory for logs, the registry database and the report "
                  "(default zumik-run/up-<UTC time>)");
  cmd->add_flag("--lmcache", options->lmcache,
                "Give both fleets' replicas the simulated LMCache CPU KV tier (the dashboard's "
                "LMCache panels read it)");
  cmd->add_option("--prometheus", options->prometheus_binary,
                  "Prometheus binary (skipped when not found)")
      ->capture_default_str();
  cmd->callback([options, no_bench] {
    options->bench = !*no_bench;
    options->zumik_binary = SelfPath();
    if (options->run_dir.empty()) options->run_dir = DefaultRunDir();
    BlockTerminationSignals();
    ExitCode() = up::RunUp(*options);
  });
}

}  // namespace zumik::cli
