// `zumik preflight`: check the infra/k8s-portable chart's prerequisites; a pass/fail table
// with the fix for each failure; non-zero exit when any check fails.
#include <cstdio>

#include "cli/commands.h"
#include "core/status.h"
#include "kube/client.h"
#include "operator/kube_session.h"
#include "operator/preflight.h"

namespace zumik::cli {

void AddPreflightCommand(CLI::App& app) {
  struct Flags {
    std::string kubeconfig;
    op::PreflightOptions options;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd =
      app.add_subcommand("preflight", "Check the cluster's prerequisites for the portable chart");
  cmd->add_option("--kubeconfig", flags->kubeconfig,
                  "Kubeconfig (default: KUBECONFIG, in-cluster, ~/.kube/config)");
  cmd->add_flag("--kserve,!--no-kserve", flags->options.kserve,
                "Check the KServe CRDs (kserve.enabled)")
      ->capture_default_str();
  cmd->add_flag("--router,!--no-router", flags->options.router,
                "Check the InferencePool CRD (router.enabled)")
      ->capture_default_str();
  cmd->add_flag("--aibrix,!--no-aibrix", flags->options.aibrix,
                "Check the AIBrix CRDs (aibrix.autoscaler.enabled)")
      ->capture_default_str();
  cmd->add_flag(
         "--knative,!--no-knative", flags->options.knative,
         "Check Knative Serving and its config-features flags (kserve.deploymentMode=Knative)")
      ->capture_default_str();
  cmd->add_option("--gpu-product", flags->options.gpu_product,
                  "Require a node labelled nvidia.com/gpu.product=<this> (runtime.gpuProduct)");
  cmd->add_option("--route", flags->options.route, "Path the EPP will own")->capture_default_str();
  cmd->add_option("--release", flags->options.release, "Helm release name")->capture_default_str();
  cmd->callback([flags] {
    auto config = kube::ResolveConfig(flags->kubeconfig);
    if (!config.ok()) {
      std::vector<op::CheckResult> results(1);
      results[0].name = "Kubernetes API";
      results[0].detail = std::string(MessageOf(config.status()));
      results[0].fix = "pass --kubeconfig or set KUBECONFIG";
      std::fputs(op::FormatPreflightTable(results).c_str(), stdout);
      ExitCode() = 1;
      return;
    }
    op::KubeSession session(*config);
    auto results = op::RunPreflight(session, flags->options);
    std::fputs(op::FormatPreflightTable(results).c_str(), stdout);
    std::fflush(stdout);
    if (!op::AllPassed(results)) ExitCode() = 1;
  });
}

}  // namespace zumik::cli
