#include "up/up.h"

#include <fmt/format.h>
#include <signal.h>
#include <sys/stat.h>
#include <unistd.h>

#include <boost/json.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <functional>
#include <regex>
#include <thread>

#include "core/http/client.h"
#include "core/status.h"
#include "registry/credentials.h"
#include "sim/profile.h"
#include "up/report.h"
#include "up/supervisor.h"

namespace zumik::up {
namespace {

namespace fs = std::filesystem;
using std::chrono::milliseconds;
using std::chrono::seconds;
using SteadyClock = std::chrono::steady_clock;

constexpr int kSteps = 7;
constexpr double kRatePerReplica = 10.0;  // offered load of the comparison, per replica
constexpr int kHeartbeatIntervalS = 5;    // the local registry's interval, so beats show soon

// The SIGINT or SIGTERM that asked `up` to stop (0 while none has).
int g_stop_signal = 0;

// SIGINT/SIGTERM are blocked in every thread (the CLI does it before anything starts), so a
// Ctrl-C waits here until we look.
bool StopRequested(milliseconds wait = milliseconds(0)) {
  if (g_stop_signal != 0) return true;
  sigset_t set;
  sigemptyset(&set);
  sigaddset(&set, SIGINT);
  sigaddset(&set, SIGTERM);
  timespec ts{static_cast<time_t>(wait.count() / 1000),
              static_cast<long>((wait.count() % 1000) * 1000000)};
  const int signal = sigtimedwait(&set, nullptr, &ts);
  if (signal > 0) g_stop_signal = signal;
  return signal > 0;
}

std::string StopSignalName() { return g_stop_signal == SIGTERM ? "SIGTERM" : "Ctrl-C (SIGINT)"; }

absl::Status Interrupted() {
  return Errorf(absl::StatusCode::kCancelled, "interrupted by {} before the run finished",
                StopSignalName());
}

void Step(int n, std::string_view what) {
  std::printf("[%d/%d] %.*s ... ", n, kSteps, static_cast<int>(what.size()), what.data());
  std::fflush(stdout);
}
void Done(std::string_view detail) {
  std::printf("ok  %.*s\n", static_cast<int>(detail.size()), detail.data());
  std::fflush(stdout);
}

std::string Url(int port, std::string_view path = "") {
  return fmt::format("http://127.0.0.1:{}{}", port, path);
}

std::string Endpoints(int first, int count) {
  std::string out;
  for (int i = 0; i < count; ++i) {
    if (i > 0) out += ',';
    out += fmt::format("127.0.0.1:{}", first + i);
  }
  return out;
}

std::vector<std::string> HealthUrls(int first, int count) {
  std::vector<std::string> urls;
  urls.reserve(static_cast<size_t>(std::max(count, 0)));
  for (int i = 0; i < count; ++i) urls.push_back(Url(first + i, "/health"));
  return urls;
}

absl::Status WriteFile(const std::string& path, std::string_view text, mode_t mode = 0644) {
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  if (!out) return Errorf(absl::StatusCode::kInternal, "cannot write {}", path);
  chmod(path.c_str(), mode);
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadFile(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) return Errorf(absl::StatusCode::kNotFound, "cannot read {}", path);
  return std::string(std::istreambuf_iterator<char>(in), {});
}

// GETs `url` every 200 ms, for up to 30 s, until `done` accepts a 200 response's body. Ok
// then; else the first child that died, an interrupt, or kDeadlineExceeded (for the caller to
// say what did not happen).
absl::Status PollFor30s(Supervisor& supervisor, const std::string& url,
                        const http::Headers& headers,
                        const std::function<bool(const std::string& body)>& done) {
  const auto deadline = SteadyClock::now() + seconds(30);
  while (SteadyClock::now() < deadline) {
    if (auto dead = supervisor.FirstExited()) {
      return Errorf(absl::StatusCode::kUnavailable, "{}", *dead);
    }
    auto response = http::FetchBlocking(http::Method::get, url, {}, headers, seconds(2));
    if (response.ok() && response->status == 200 && done(response->body)) {
      return absl::OkStatus();
    }
    if (StopRequested(milliseconds(200))) return Interrupted();
  }
  return absl::DeadlineExceededError("not within 30 s");
}

// The id of the first cluster a /v1/clusters listing holds ("" when none).
std::string FirstClusterId(const std::string& body) {
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(body, ec);
  if (ec || !doc.is_object()) return "";
  const boost::json::value* clusters = doc.get_object().if_contains("clusters");
  if (clusters == nullptr || !clusters->is_array() || clusters->get_array().empty() ||
      !clusters->get_array()[0].is_object()) {
    return "";
  }
  const boost::json::value* id = clusters->get_array()[0].get_object().if_contains("id");
  return id != nullptr && id->is_string() ? std::string(id->get_string()) : "";
}

// Polls the registry until the operator's cluster appears; returns its id.
absl::StatusOr<std::string> AwaitRegisteredCluster(int registry_port, const std::string& api_key,
                                                   Supervisor& supervisor) {
  std::string id;
  absl::Status polled =
      PollFor30s(supervisor, Url(registry_port, "/v1/clusters"),
                 {{"Authorization", "Bearer " + api_key}}, [&id](const std::string& body) {
                   id = FirstClusterId(body);
                   return !id.empty();
                 });
  if (absl::IsDeadlineExceeded(polled)) {
    return Errorf(absl::StatusCode::kDeadlineExceeded,
                  "the operator did not register the cluster within 30 s (see operator.log)");
  }
  RETURN_IF_ERROR(polled);
  return id;
}

// Prometheus's /api/v1/targets: how many active targets it has scraped at least once (health
// is "unknown" until the first scrape).
int ScrapedTargets(const std::string& body) {
  boost::system::error_code ec;
  boost::json::value doc = boost::json::parse(body, ec);
  if (ec || !doc.is_object()) return 0;
  const boost::json::value* data = doc.get_object().if_contains("data");
  const boost::json::value* active =
      data && data->is_object() ? data->get_object().if_contains("activeTargets") : nullptr;
  if (active == nullptr || !active->is_array()) return 0;
  int scraped = 0;
  for (const boost::json::value& target : active->get_array()) {
    const boost::json::value* health =
        target.is_object() ? target.get_object().if_contains("health") : nullptr;
    if (health && health->is_string() && health->get_string() != "unknown") ++scraped;
  }
  return scraped;
}

// Waits until Prometheus has scraped each of its `expected` targets once, so the benchmark's
// first requests land in its series (a counter's increase before its first sample is lost).
absl::Status AwaitFirstScrapes(int prometheus_port, int expected, Supervisor& supervisor) {
  int scraped = 0;
  absl::Status polled = PollFor30s(supervisor, Url(prometheus_port, "/api/v1/targets?state=active"),
                                   {}, [&scraped, expected](const std::string& body) {
                                     scraped = ScrapedTargets(body);
                                     return scraped >= expected;
                                   });
  if (absl::IsDeadlineExceeded(polled)) {
    return Errorf(absl::StatusCode::kDeadlineExceeded,
                  "Prometheus scraped {} of its {} targets within 30 s (see prometheus.log)",
                  scraped, expected);
  }
  return polled;
}

std::string PrometheusConfig(const PortPlan& ports, int replicas, const std::string& cluster_id) {
  std::string fleet_targets, baseline_targets;
  for (int i = 0; i < replicas; ++i) {
    fleet_targets += fmt::format("\"127.0.0.1:{}\", ", ports.fleet_first + i);
    baseline_targets += fmt::format("\"127.0.0.1:{}\", ", ports.baseline_first + i);
  }
  return fmt::format(
      "# Written by zumik up. Everything of this cluster carries cluster=<byc id>, as the chart's\n"
      "# monitors add it in a real cluster; the round-robin baseline is labelled apart.\n"
      "global: {{scrape_interval: 5s, evaluation_interval: 5s}}\n"
      "scrape_configs:\n"
      "  - job_name: vllm\n"
      "    static_configs: [{{targets: [{}], labels: {{cluster: \"{}\"}}}}]\n"
      "  - job_name: epp\n"
      "    static_configs: [{{targets: [\"127.0.0.1:{}\"], labels: {{cluster: \"{}\"}}}}]\n"
      "  - job_name: registry\n"
      "    static_configs: [{{targets: [\"127.0.0.1:{}\"], labels: {{cluster: \"{}\"}}}}]\n"
      "  - job_name: baseline\n"
      "    static_configs:\n"
      "      - {{targets: [{}\"127.0.0.1:{}\"], labels: {{cluster: \"round-robin-baseline\"}}}}\n",
      fleet_targets, cluster_id, ports.epp_metrics, cluster_id, ports.registry, cluster_id,
      baseline_targets, ports.baseline_metrics);
}

std::optional<std::string> FindOnPath(const std::string& name) {
  if (name.find('/') != std::string::npos) {
    return access(name.c_str(), X_OK) == 0 ? std::optional(name) : std::nullopt;
  }
  const char* path = std::getenv("PATH");
  std::string dirs = path ? path : "/usr/bin:/bin";
  size_t start = 0;
  while (start <= dirs.size()) {
    const size_t end = std::min(dirs.find(':', start), dirs.size());
    const std::string candidate = dirs.substr(start, end - start) + "/" + name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate;
    start = end + 1;
  }
  return std::nullopt;
}

struct BenchRun {
  std::string label, url, json_path, log_path;
  pid_t pid = -1;
  std::optional<int> exit_code;
};

// Runs both benchmarks at once (same workload, separate fleets), showing progress.
absl::Status RunBenchmarks(const UpOptions& options, const std::string& workload_path,
                           std::vector<BenchRun>& runs, Supervisor& supervisor) {
  for (BenchRun& run : runs) {
    std::vector<std::string> argv = {
        options.zumik_binary, "bench",       "--target", run.url,
        "--workload",         workload_path, "--json",   run.json_path};
    ASSIGN_OR_RETURN(run.pid, Spawn(argv, run.log_path));
  }
  const bool tty = isatty(STDOUT_FILENO);
  const auto start = SteadyClock::now();
  const auto limit = seconds(options.bench_seconds * 4 + 120);
  int last_printed = -1;
  for (;;) {
    bool all_done = true;
    for (BenchRun& run : runs) {
      if (!run.exit_code) run.exit_code = PollChild(run.pid);
      all_done = all_done && run.exit_code.has_value();
    }
    const auto elapsed = SteadyClock::now() - start;
    const int secs = static_cast<int>(std::chrono::duration_cast<seconds>(elapsed).count());
    if (all_done) break;
    const bool interrupted = StopRequested(milliseconds(250));
    auto dead = supervisor.FirstExited();
    if (interrupted || dead || elapsed > limit) {
      for (BenchRun& run : runs) {
        if (!run.exit_code) KillChild(run.pid);
      }
      if (interrupted) return Interrupted();
      if (dead) return Errorf(absl::StatusCode::kUnavailable, "during the benchmark, {}", *dead);
      return Errorf(absl::StatusCode::kDeadlineExceeded, "the benchmark did not finish in {} s",
                    limit.count());
    }
    if (tty) {
      const int width = 30;
      const int filled = std::min(width, secs * width / std::max(1, options.bench_seconds));
      std::printf("\r      [%s%s] %d/%d s", std::string(filled, '#').c_str(),
                  std::string(width - filled, '.').c_str(), secs, options.bench_seconds);
      std::fflush(stdout);
    } else if (secs / 5 != last_printed) {
      last_printed = secs / 5;
      std::printf("\n      %d/%d s", secs, options.bench_seconds);
      std::fflush(stdout);
    }
  }
  std::printf("\n");
  for (const BenchRun& run : runs) {
    if (*run.exit_code != 0) {
      return Errorf(absl::StatusCode::kInternal,
                    "the benchmark through the {} failed (exit code {}); its log is {}:\n{}",
                    run.label, *run.exit_code, run.log_path, LogTail(run.log_path, 8));
    }
  }
  return absl::OkStatus();
}

class Up {
 public:
  explicit Up(const UpOptions& options)
      : options_(options), ports_(PortPlan::From(options.port_base, options.replicas)) {}

  // 0 when the run finished (and, unless --exit, served until a signal); 128 + the signal when
  // one stopped it before that (130 for Ctrl-C, 143 for SIGTERM); 1 on any failure.
  int Run() {
    absl::Status status = RunSteps();
    if (!status.ok()) {
      std::printf("\n");
      std::fprintf(stderr, "zumik up: %s\n", std::string(MessageOf(status)).c_str());
    }
    if (supervisor_.size() > 0) {
      std::printf("zumik up: stopping %zu processes ... ", supervisor_.size());
      std::fflush(stdout);
      supervisor_.StopAll(milliseconds(5000));
      std::printf("done; every port released. Run directory: %s\n", options_.run_dir.c_str());
    }
    if (status.ok()) return 0;
    if (status.code() == absl::StatusCode::kCancelled && g_stop_signal != 0) {
      return 128 + g_stop_signal;
    }
    return 1;
  }

 private:
  std::string Path(std::string_view name) const {
    return options_.run_dir + "/" + std::string(name);
  }

  absl::Status RunSteps() {
    ASSIGN_OR_RETURN(sim::Profile profile, sim::ResolveProfile(options_.profile, {}));
    RETURN_IF_ERROR(CheckPorts());  // before the run directory exists: a refusal leaves nothing
    std::error_code ec;
    fs::create_directories(options_.run_dir, ec);
    if (ec) {
      return Errorf(absl::StatusCode::kFailedPrecondition, "cannot create the run directory {}: {}",
                    options_.run_dir, ec.message());
    }
    const std::string fleet = fmt::format("{} x {}", options_.replicas, profile.name);
    std::printf("zumik up: the Portable profile on this machine, in %s\n",
                options_.run_dir.c_str());

    // 1. The registry, with an org API key the operator registers with.
    Step(1, "registry (SQLite)");
    const std::string db = "sqlite:" + Path("registry.db");
    // A run in a used run directory replaces the previous run's key (revoked below).
    const absl::StatusOr<std::string> previous_key = ReadFile(Path("api-key"));
    ASSIGN_OR_RETURN(std::string key_output,
                     RunToCompletion("registry key creation",
                                     {options_.zumik_binary, "registry", "keys", "create", "--org",
                                      "local", "--db", db},
                                     Path("registry-keys.log"), seconds(30)));
    // The key is the longest zk_live_ token printed (messages show only its prefix).
    static const std::regex kKey("zk_live_[A-Za-z0-9_\\-]+");
    for (auto it = std::sregex_iterator(key_output.begin(), key_output.end(), kKey);
         it != std::sregex_iterator(); ++it) {
      if (it->str(0).size() > api_key_.size()) api_key_ = it->str(0);
    }
    if (api_key_.empty()) {
      return Errorf(absl::StatusCode::kInternal, "registry key creation printed no key (log: {})",
                    Path("registry-keys.log"));
    }
    RETURN_IF_ERROR(WriteFile(Path("api-key"), api_key_, 0600));
    std::remove(Path("registry-keys.log").c_str());  // it holds the key; api-key is 0600
    if (previous_key.ok() && previous_key->starts_with(registry::kApiKeyPrefix) &&
        previous_key->size() > registry::kApiKeyLookupLength) {
      // Best effort: a key of another database (a deleted registry.db) is simply not found.
      (void)RunToCompletion("revoking the previous run's API key",
                            {options_.zumik_binary, "registry", "keys", "revoke", "--org", "local",
                             "--db", db, previous_key->substr(0, registry::kApiKeyLookupLength)},
                            Path("registry-keys.log"), seconds(30));
      std::remove(Path("registry-keys.log").c_str());
    }
    RETURN_IF_ERROR(Launch("registry",
                           {"registry", "--listen", std::to_string(ports_.registry), "--db", db,
                            "--heartbeat-interval", fmt::format("{}s", kHeartbeatIntervalS)},
                           {Url(ports_.registry, "/healthz")}));
    Done(Url(ports_.registry));
    if (StopRequested()) return Interrupted();

    // 2. Two identical simulated fleets: one behind the EPP, one behind round-robin.
    Step(2, fmt::format("simulated fleets (2 x {} x {})", options_.replicas, profile.name));
    const auto sim = [&](int first_port) {
      std::vector<std::string> argv = {"sim",
                                       "--replicas",
                                       std::to_string(options_.replicas),
                                       "--port",
                                       std::to_string(first_port),
                                       "--profile",
                                       options_.profile};
      if (options_.lmcache) argv.emplace_back("--lmcache");
      return argv;
    };
    RETURN_IF_ERROR(Launch("fleet", sim(ports_.fleet_first),
                           HealthUrls(ports_.fleet_first, options_.replicas)));
    RETURN_IF_ERROR(Launch("baseline fleet", sim(ports_.baseline_first),
                           HealthUrls(ports_.baseline_first, options_.replicas)));
    const auto ports = [&](int first) {
      return options_.replicas == 1
                 ? fmt::format("port {}", first)
                 : fmt::format("ports {}-{}", first, first + options_.replicas - 1);
    };
    Done(fmt::format("{} and {}", ports(ports_.fleet_first), ports(ports_.baseline_first)));
    if (StopRequested()) return Interrupted();

    // 3. The gateways.
    Step(3, "EPP gateway (zumik-default) and round-robin gateway");
    const auto gateway = [&](const std::string& name, int first_replica, int port, int metrics_port,
                             const std::string& policy) {
      return Launch(
          name,
          {"epp", "--host", "127.0.0.1", "--endpoints", Endpoints(first_replica, options_.replicas),
           "--listen-http", std::to_string(port), "--config", policy, "--metrics-port",
           std::to_string(metrics_port)},
          {fmt::format("tcp://127.0.0.1:{}", port), Url(metrics_port, "/metrics")});
    };
    RETURN_IF_ERROR(gateway("EPP gateway", ports_.fleet_first, ports_.epp_gateway,
                            ports_.epp_metrics, "zumik-default"));
    RETURN_IF_ERROR(gateway("round-robin gateway", ports_.baseline_first, ports_.baseline_gateway,
                            ports_.baseline_metrics, "round-robin"));
    Done(fmt::format("{} and {}", Url(ports_.epp_gateway), Url(ports_.baseline_gateway)));
    if (StopRequested()) return Interrupted();

    // 4. The operator registers this machine and heartbeats.
    Step(4, "operator (local mode): register and heartbeat");
    const int gpus = options_.replicas * profile.gpus_per_replica;
    RETURN_IF_ERROR(Launch("operator",
                           {"operator",
                            "--control-plane",
                            Url(ports_.registry),
                            "--api-key-file",
                            Path("api-key"),
                            "--local",
                            "--name",
                            "zumik-up",
                            "--fingerprint",
                            LocalFingerprint(),
                            "--gpus",
                            fmt::format("{}:{}", profile.gpu_product, gpus),
                            "--model",
                            profile.served_model_name,
                            "--tensor-parallel-size",
                            std::to_string(profile.gpus_per_replica),
                            "--replicas",
                            std::to_string(options_.replicas),
                            "--state-file",
                            Path("operator-state.json")},
                           {}));
    ASSIGN_OR_RETURN(cluster_id_, AwaitRegisteredCluster(ports_.registry, api_key_, supervisor_));
    Done(fmt::format("cluster {} ({} x {})", cluster_id_, gpus, profile.gpu_product));

    // 5. Prometheus, when installed.
    Step(5, "Prometheus");
    const auto prometheus = FindOnPath(options_.prometheus_binary);
    if (prometheus) {
      RETURN_IF_ERROR(WriteFile(Path("prometheus.yml"),
                                PrometheusConfig(ports_, options_.replicas, cluster_id_)));
      RETURN_IF_ERROR(supervisor_.Start(
          ComponentSpec{"prometheus",
                        {*prometheus, "--config.file=" + Path("prometheus.yml"),
                         "--storage.tsdb.path=" + Path("prometheus-data"),
                         fmt::format("--web.listen-address=127.0.0.1:{}", ports_.prometheus)},
                        Path("prometheus.log"),
                        {Url(ports_.prometheus, "/-/ready")}},
          seconds(30)));
      // The vLLM replicas of both fleets, the two gateways' metrics, the registry.
      const int targets = 2 * options_.replicas + 3;
      RETURN_IF_ERROR(AwaitFirstScrapes(ports_.prometheus, targets, supervisor_));
      Done(fmt::format("{} (every one of its {} targets scraped once)", Url(ports_.prometheus),
                       targets));
    } else {
      std::printf("skipped: '%s' is not installed (scripts/bootstrap installs it)\n",
                  options_.prometheus_binary.c_str());
    }

    // 6-7. The comparison.
    std::optional<std::string> report_path;
    if (options_.bench) {
      Step(6, fmt::format("benchmark: shared-prefix traffic through both gateways, {} s",
                          options_.bench_seconds));
      std::printf("\n");
      const std::string workload =
          UpWorkloadYaml(options_.bench_seconds, options_.replicas, kRatePerReplica);
      RETURN_IF_ERROR(WriteFile(Path("workload.yaml"), workload));
      std::vector<BenchRun> runs(2);
      runs[0].label = "EPP gateway";
      runs[0].url = Url(ports_.epp_gateway);
      runs[0].json_path = Path("bench-epp.json");
      runs[0].log_path = Path("bench-epp.log");
      runs[1].label = "round-robin gateway";
      runs[1].url = Url(ports_.baseline_gateway);
      runs[1].json_path = Path("bench-round-robin.json");
      runs[1].log_path = Path("bench-round-robin.log");
      RETURN_IF_ERROR(RunBenchmarks(options_, Path("workload.yaml"), runs, supervisor_));
      Step(7, "report");
      ASSIGN_OR_RETURN(std::string epp_json, ReadFile(runs[0].json_path));
      ASSIGN_OR_RETURN(std::string rr_json, ReadFile(runs[1].json_path));
      ASSIGN_OR_RETURN(GatewayRun epp,
                       ParseBenchReport(epp_json, "EPP (zumik-default)", runs[0].url));
      ASSIGN_OR_RETURN(GatewayRun rr, ParseBenchReport(rr_json, "round-robin", runs[1].url));
      RETURN_IF_ERROR(
          WriteFile(Path("ttft-p90.svg"), BarChartSvg(epp, rr, "TTFT p90", "ms", TtftP90)));
      RETURN_IF_ERROR(WriteFile(Path("throughput.svg"), BarChartSvg(epp, rr, "Output throughput",
                                                                    "tokens/s", OutputThroughput)));
      ReportContext context{workload, fleet, cluster_id_, Links(prometheus.has_value())};
      report_path = Path("report.html");
      RETURN_IF_ERROR(WriteFile(*report_path, HtmlReport(epp, rr, context)));
      Done(*report_path);
      std::printf("\n%s\n", SideBySideTable(epp, rr).c_str());
    } else {
      std::printf("[6/%d] benchmark ... skipped (--no-bench)\n[7/%d] report ... skipped\n", kSteps,
                  kSteps);
    }

    std::printf("\nEverything is up:\n");
    std::vector<std::pair<std::string, std::string>> lines = Links(prometheus.has_value());
    if (report_path) lines.emplace_back("report", "file://" + *report_path);
    lines.emplace_back("API key (org local)", Path("api-key"));
    lines.emplace_back("logs", options_.run_dir + "/*.log");
    size_t width = 0;
    for (const auto& line : lines) width = std::max(width, line.first.size());
    for (const auto& [label, value] : lines) {
      std::printf("  %-*s %s\n", static_cast<int>(width), label.c_str(), value.c_str());
    }
    std::printf(
        "try: curl -s %s -H 'Content-Type: application/json' -d '{\"model\":\"%s\","
        "\"prompt\":\"Hello\",\"max_tokens\":16}' -i\n",
        Url(ports_.epp_gateway, "/v1/completions").c_str(), profile.served_model_name.c_str());
    if (options_.exit_after) return absl::OkStatus();

    std::printf("Serving until Ctrl-C.\n");
    std::fflush(stdout);
    while (!StopRequested(milliseconds(500))) {
      if (auto dead = supervisor_.FirstExited()) {
        return Errorf(absl::StatusCode::kUnavailable, "{}", *dead);
      }
    }
    std::printf("\nzumik up: %s\n", StopSignalName().c_str());
    return absl::OkStatus();
  }

  std::vector<std::pair<std::string, std::string>> Links(bool prometheus) const {
    std::vector<std::pair<std::string, std::string>> links = {
        {"EPP gateway (OpenAI base URL)", Url(ports_.epp_gateway, "/v1")},
        {"round-robin gateway (base URL)", Url(ports_.baseline_gateway, "/v1")},
        // The page signs in with the org's API key (any user name, the key as password).
        {"registry page (sign in: any user, the API key)", Url(ports_.registry, "/")},
        {"EPP metrics", Url(ports_.epp_metrics, "/metrics")},
        {"replica 0 metrics", Url(ports_.fleet_first, "/metrics")},
    };
    if (prometheus) links.emplace_back("Prometheus", Url(ports_.prometheus, "/graph"));
    return links;
  }

  // A stable id for this machine and run directory, so `zumik up` twice in the same
  // directory re-registers as the same cluster (as a chart re-install does).
  std::string LocalFingerprint() const {
    std::string machine = "local";
    if (auto id = ReadFile("/etc/machine-id"); id.ok()) machine = std::string(*id);
    while (!machine.empty() && (machine.back() == '\n' || machine.back() == ' ')) {
      machine.pop_back();
    }
    const std::string dir = fs::weakly_canonical(options_.run_dir).string();
    return fmt::format("local-{}-{:016x}", machine.substr(0, 12), std::hash<std::string>{}(dir));
  }

  absl::Status CheckPorts() const {
    std::vector<std::pair<int, std::string>> wanted = {
        {ports_.epp_gateway, "EPP gateway"},
        {ports_.baseline_gateway, "round-robin gateway"},
        {ports_.registry, "registry"},
        {ports_.epp_metrics, "EPP metrics"},
        {ports_.baseline_metrics, "round-robin gateway metrics"},
        {ports_.prometheus, "Prometheus"}};
    for (int i = 0; i < options_.replicas; ++i) {
      wanted.emplace_back(ports_.fleet_first + i, fmt::format("fleet replica {}", i));
      wanted.emplace_back(ports_.baseline_first + i, fmt::format("baseline replica {}", i));
    }
    for (const auto& [port, name] : wanted) RETURN_IF_ERROR(CheckPortFree(port, name));
    return absl::OkStatus();
  }

  absl::Status Launch(const std::string& name, std::vector<std::string> args,
                      std::vector<std::string> ready) {
    std::vector<std::string> argv = {options_.zumik_binary};
    argv.insert(argv.end(), args.begin(), args.end());
    std::string log = name;
    for (char& c : log) c = c == ' ' ? '-' : c;
    return supervisor_.Start(ComponentSpec{name, argv, Path(log + ".log"), std::move(ready)},
                             seconds(30));
  }

  const UpOptions& options_;
  PortPlan ports_;
  Supervisor supervisor_;
  std::string api_key_;
  std::string cluster_id_;
};

}  // namespace

PortPlan PortPlan::From(int base, int replicas) {
  PortPlan p;
  p.epp_gateway = base;
  p.baseline_gateway = base + 1;
  p.registry = base + 2;
  p.epp_metrics = base + 3;
  p.baseline_metrics = base + 4;
  p.prometheus = base + 5;
  p.fleet_first = base + 10;
  p.baseline_first = base + 10 + replicas;
  return p;
}

std::string UpWorkloadYaml(int bench_seconds, int replicas, double rate_per_replica) {
  // 12 system prompts of 6,000 tokens per replica, 8 questions each. Round-robin sends every
  // group to every replica, so each replica prefills every system prompt before its cache is
  // warm (N times the prefill work of prefix-aware routing, which keeps a group on one
  // replica); in a short run that cost dominates TTFT. The full-length comparison, where
  // the working set also exceeds a replica's KV cache, is `make bench` (bench/RESULTS.md).
  const int groups = 12 * replicas;
  return fmt::format(
      "# The `zumik up` comparison workload (bench/workloads format, see docs/bench.md).\n"
      "name: up-shared-prefix\n"
      "kind: shared-prefix\n"
      "seed: 1\n"
      "api: completions\n"
      "stream: true\n"
      "shared_prefix: {{num_groups: {}, prompts_per_group: 8, system_prompt_len: 6000,\n"
      "                question_len: 200, output_len: 64, cycle: true}}\n"
      "load:\n"
      "  arrival: poisson\n"
      "  stages:\n"
      "    - {{rate: {:g}, duration: {}s}}\n"
      "slo: {{ttft_p90_ms: 2000}}\n",
      groups, rate_per_replica * replicas, bench_seconds);
}

int RunUp(const UpOptions& options) { return Up(options).Run(); }

}  // namespace zumik::up
