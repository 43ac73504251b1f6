// `zumik operator`: register this cluster with the control plane and heartbeat it (in the
// cluster, from the Kubernetes API; or `--local` for `zumik up`, from flags).
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <mutex>
#include <thread>

#include "cli/commands.h"
#include "cli/signals.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/status.h"
#include "kube/client.h"
#include "operator/control_plane.h"
#include "operator/inventory.h"
#include "operator/kube_session.h"
#include "operator/operator.h"
#include "operator/state_store.h"
#include "registry/model.h"

namespace zumik::cli {
namespace {

struct OperatorFlags {
  std::string control_plane;
  std::string api_key_file;
  std::string cluster_id;
  std::string ns;
  std::string release = "zumik";
  std::string name;
  std::string kubeconfig;
  std::string chart_version;
  bool once = false;
  bool local = false;
  std::vector<std::string> gpus;
  std::string fingerprint;
  std::string kubernetes_version = "local";
  std::string state_file;
  std::string model;
  int tensor_parallel_size = 0;
  int nodes = 1;
  int replicas = 0;
  double status_refresh_s = 300;
  std::string heartbeat_interval = "15s";
};

void Fail(const std::string& message, int code) {
  std::fprintf(stderr, "zumik operator: %s\n", message.c_str());
  ExitCode() = code;
}

void RunOperator(const OperatorFlags& flags) {
  if (!flags.once) BlockTerminationSignals();
  op::OperatorOptions options;
  options.cluster_id = flags.cluster_id;
  options.api_key_file = flags.api_key_file;
  options.name = flags.name.empty() ? flags.release : flags.name;
  options.chart_version = flags.chart_version;
  options.status_refresh = FromSeconds(flags.status_refresh_s);
  auto interval = ParseDuration(flags.heartbeat_interval);
  if (!interval.ok() || *interval <= Duration(0)) {
    Fail(
        "--heartbeat-interval (or ZUMIK_HEARTBEAT_INTERVAL) must be a positive duration such as "
        "30s, not '" +
            flags.heartbeat_interval + "'",
        2);
    return;
  }
  options.heartbeat_interval = *interval;
  options.seed = static_cast<uint64_t>(std::chrono::steady_clock::now().time_since_epoch().count());

  std::unique_ptr<op::InventorySource> inventory;
  std::unique_ptr<op::StateStore> store;
  std::unique_ptr<op::KubeSession> session;
  if (flags.local) {
    if (flags.fingerprint.empty()) return Fail("--local needs --fingerprint", 2);
    op::Inventory fixed;
    fixed.fingerprint = flags.fingerprint;
    fixed.kubernetes_version = flags.kubernetes_version;
    fixed.nodes = flags.nodes;
    for (const std::string& text : flags.gpus) {
      auto gpu = op::ParseGpuFlag(text);
      if (!gpu.ok()) return Fail(std::string(MessageOf(gpu.status())), 2);
      fixed.gpus.push_back(*gpu);
    }
    fixed.model = flags.model;
    fixed.tensor_parallel_size = flags.tensor_parallel_size;
    fixed.replicas_ready = fixed.replicas_desired = flags.replicas;
    inventory = std::make_unique<op::StaticInventory>(fixed);
    std::string path = flags.state_file;
    if (path.empty()) {
      const char* home = std::getenv("HOME");
      path = fmt::format("{}/.zumik/operator-{}.json", home ? home : ".", flags.release);
    }
    store = std::make_unique<op::FileStateStore>(path);
  } else {
    auto config = kube::ResolveConfig(flags.kubeconfig);
    if (!config.ok()) return Fail(std::string(MessageOf(config.status())), 2);
    const std::string ns = flags.ns.empty() ? config->default_namespace : flags.ns;
    session = std::make_unique<op::KubeSession>(*config);
    inventory = std::make_unique<op::KubeInventory>(*session, ns, flags.release);
    store = std::make_unique<op::KubeStateStore>(*session, ns, flags.release);
  }
  op::HttpControlPlane control_plane(flags.control_plane);
  const std::string release = flags.release;
  const bool local = flags.local;
  op::Operator the_operator(options, *inventory, *store, control_plane, RealClock::Instance(),
                            [release, local](const std::string& id) {
                              std::printf("zumik operator: registered cluster %s\n", id.c_str());
                              if (!local) {  // local mode keeps the id in its state file
                                std::printf(
                                    "  wire heartbeats: helm upgrade %s ./infra/k8s-portable "
                                    "--reuse-values --set operator.clusterId=%s\n",
                                    release.c_str(), id.c_str());
                              }
                              std::fflush(stdout);
                            });

  std::mutex mu;
  std::condition_variable cv;
  bool stop = false;
  if (!flags.once) {
    std::thread([&mu, &cv, &stop] {
      WaitForTerminationSignal();
      std::lock_guard lock(mu);
      stop = true;
      cv.notify_all();
    }).detach();
  }
  auto sleep = [&](Duration d) {
    std::unique_lock lock(mu);
    return !cv.wait_for(lock, d, [&] { return stop; });
  };
  absl::Status status = the_operator.Run(sleep, flags.once);
  if (!status.ok()) return Fail(std::string(MessageOf(status)), 1);
  if (flags.once) {
    std::printf("zumik operator: cluster %s heartbeat ok\n", the_operator.cluster_id().c_str());
  } else {
    std::printf("zumik operator: stopped\n");
  }
  std::fflush(stdout);
}

}  // namespace

void AddOperatorCommand(CLI::App& app) {
  auto flags = std::make_shared<OperatorFlags>();
  auto* cmd = app.add_subcommand(
      "operator", "Register this cluster with the Zumik control plane and heartbeat it");
  cmd->add_option("--control-plane", flags->control_plane, "Registry URL, e.g. https://cp.zumik.ai")
      ->required();
  cmd->add_option("--api-key-file", flags->api_key_file,
                  "File holding the org API key (the mounted zumik-control-plane secret)");
  cmd->add_option("--cluster-id", flags->cluster_id,
                  "The id to heartbeat (byc_...); empty: register");
  cmd->add_option("--namespace", flags->ns,
                  "Namespace of the release (default: the service account's)");
  cmd->add_option("--release", flags->release, "Helm release name")->capture_default_str();
  cmd->add_option("--name", flags->name, "Cluster name in the registry (default: the release)");
  cmd->add_option("--kubeconfig", flags->kubeconfig,
                  "Kubeconfig for development (default: in-cluster)");
  cmd->add_option("--chart-version", flags->chart_version,
                  "Chart version reported at registration");
  cmd->add_option("--status-refresh", flags->status_refresh_s,
                  "Seconds after which an unchanged status is sent again")
      ->capture_default_str();
  cmd->add_option(
         "--heartbeat-interval", flags->heartbeat_interval,
         "Heartbeat interval until the registry answers with its own (chart: operator.schedule)")
      ->envname("ZUMIK_HEARTBEAT_INTERVAL")
      ->capture_default_str();
  cmd->add_flag("--once", flags->once, "Register if needed, send one heartbeat, exit");
  cmd->add_flag("--local", flags->local,
                "Take the inventory from flags instead of Kubernetes (zumik up)");
  cmd->add_option("--gpus", flags->gpus, "Local mode: PRODUCT:COUNT (repeatable)");
  cmd->add_option("--fingerprint", flags->fingerprint, "Local mode: the cluster fingerprint");
  cmd->add_option("--kubernetes-version", flags->kubernetes_version, "Local mode: reported version")
      ->capture_default_str();
  // What the registry stores of a snapshot (registry/model.h), checked here rather than as a
  // 400 on every heartbeat.
  cmd->add_option("--nodes", flags->nodes, "Local mode: node count")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, registry::kMaxCount));
  cmd->add_option("--replicas", flags->replicas, "Local mode: model replicas running")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, registry::kMaxCount));
  cmd->add_option("--model", flags->model, "Local mode: model served")
      ->check(CLI::Validator(
          [](std::string& model) -> std::string {
            if (model.size() <= 256 && registry::IsPlainText(model)) return "";
            return "must be at most 256 bytes of printable ASCII without quotes, backslashes or "
                   "<> (what the registry stores)";
          },
          "MODEL"));
  cmd->add_option("--tensor-parallel-size", flags->tensor_parallel_size, "Local mode: TP size")
      ->check(CLI::Range(int64_t{0}, registry::kMaxCount));
  cmd->add_option(
      "--state-file", flags->state_file,
      "Local mode: where the id and token are kept (default ~/.zumik/operator-<release>.json)");
  cmd->callback([flags] { RunOperator(*flags); });
}

}  // namespace zumik::cli
