// `zumik preflight`: the chart's prerequisites checked against the cluster, each with the fix
// to apply when it fails.
#pragma once

#include <string>
#include <vector>

#include "operator/kube_session.h"

namespace zumik::op {

struct PreflightOptions {
  bool kserve = true;
  bool router = true;
  bool aibrix = true;
  // kserve.deploymentMode=Knative: Knative Serving and the config-features flags the vLLM pod
  // needs (tolerations always, nodeSelector with gpu_product).
  bool knative = false;
  // runtime.gpuProduct: a node must carry nvidia.com/gpu.product=<this> (skipped when empty).
  std::string gpu_product;
  // The path this release's EPP will own; another HTTPRoute sending it elsewhere (e.g. to a
  // Dynamo router) is a second replica-selection owner.
  std::string route = "/";
  // This release's name: its own HTTPRoutes are not a conflict.
  std::string release = "zumik";
};

struct CheckResult {
  std::string name;
  bool passed = false;
  // What was found.
  std::string detail;
  // What to do about a failure.
  std::string fix;
};

std::vector<CheckResult> RunPreflight(KubeSession& kube, const PreflightOptions& options);

// A fixed-width table: CHECK | RESULT | DETAIL, then "fix:" lines under failures.
std::string FormatPreflightTable(const std::vector<CheckResult>& results);
bool AllPassed(const std::vector<CheckResult>& results);

}  // namespace zumik::op
