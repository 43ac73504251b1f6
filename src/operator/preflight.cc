// Preflight checks of the infra/k8s-portable chart's prerequisites.
#include "operator/preflight.h"

#include <algorithm>
#include <map>
#include <set>

#include "absl/strings/ascii.h"
#include "core/json_path.h"
#include "core/status.h"

namespace zumik::op {
namespace json = boost::json;

namespace {

std::string StringOf(const json::value* value) {
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : std::string();
}

int GpusOf(const json::object& node) {
  const json::value* v = FindPath(node, "status.allocatable");
  if (v == nullptr || !v->is_object()) return 0;
  const json::value* gpu = v->get_object().if_contains("nvidia.com/gpu");
  if (gpu == nullptr) return 0;
  if (gpu->is_int64()) return static_cast<int>(gpu->get_int64());
  try {
    return gpu->is_string() ? std::stoi(std::string(gpu->get_string())) : 0;
  } catch (const std::exception&) {
    return 0;
  }
}

// True when the API group is served; an error other than 404 is returned as is.
absl::StatusOr<bool> GroupServed(KubeSession& kube, const std::string& group) {
  absl::StatusOr<json::value> found = kube.Run(kube.client().GetPath("/apis/" + group));
  if (found.ok()) return true;
  if (found.status().code() == absl::StatusCode::kNotFound) return false;
  return found.status();
}

CheckResult GroupCheck(KubeSession& kube, std::string name, const std::vector<std::string>& groups,
                       bool any, std::string fix) {
  CheckResult result;
  result.name = std::move(name);
  std::vector<std::string> present;
  std::vector<std::string> missing;
  for (const std::string& group : groups) {
    absl::StatusOr<bool> served = GroupServed(kube, group);
    if (!served.ok()) {
      result.detail = fmt::format("cannot check {}: {}", group, MessageOf(served.status()));
      result.fix = "check the API server connection and the operator's RBAC";
      return result;
    }
    (*served ? present : missing).push_back(group);
  }
  result.passed = any ? !present.empty() : missing.empty();
  if (result.passed) {
    result.detail = "served: " + fmt::format("{}", fmt::join(present, ", "));
  } else {
    result.detail = "missing: " + fmt::format("{}", fmt::join(missing, ", "));
    result.fix = std::move(fix);
  }
  return result;
}

// Knative refuses PodSpec fields whose config-features flag is off. It reads a flag's value
// case-insensitively, and "allowed" lets the field through as "enabled" does (knative serving
// pkg/apis/config/features.go: all of these default to disabled).
CheckResult KnativeFlagsCheck(KubeSession& kube, const PreflightOptions& options) {
  CheckResult result;
  result.name = "Knative config-features";
  std::vector<std::string> needed = {"kubernetes.podspec-tolerations"};
  if (!options.gpu_product.empty()) needed.emplace_back("kubernetes.podspec-nodeselector");
  absl::StatusOr<json::object> features =
      kube.Run(kube.client().Get(kube::kConfigMaps, "knative-serving", "config-features"));
  if (!features.ok() && features.status().code() != absl::StatusCode::kNotFound) {
    result.detail = fmt::format("cannot read knative-serving/config-features: {}",
                                MessageOf(features.status()));
    result.fix = "grant get on configmaps in knative-serving, or check these flags by hand: " +
                 fmt::format("{}", fmt::join(needed, ", "));
    return result;
  }
  // No ConfigMap (404) means Knative's defaults: every flag off.
  const json::value* data = features.ok() ? FindPath(*features, "data") : nullptr;
  std::vector<std::string> off;
  for (const std::string& flag : needed) {
    const json::value* set =
        data != nullptr && data->is_object() ? data->get_object().if_contains(flag) : nullptr;
    std::string value = set != nullptr && set->is_string() ? std::string(set->get_string()) : "";
    absl::AsciiStrToLower(&value);
    if (value != "enabled" && value != "allowed") off.push_back(flag);
  }
  result.passed = off.empty();
  if (result.passed) {
    result.detail = "enabled: " + fmt::format("{}", fmt::join(needed, ", "));
    return result;
  }
  result.detail = "not enabled: " + fmt::format("{}", fmt::join(off, ", "));
  std::vector<std::string> pairs;
  pairs.reserve(off.size());
  for (const std::string& flag : off) pairs.push_back(fmt::format("\"{}\":\"enabled\"", flag));
  // The Knative Operator overwrites edited ConfigMaps: there the KnativeServing object it
  // reconciles holds the flags.
  result.fix = fmt::format(
      "kubectl -n knative-serving patch configmap config-features --type merge -p "
      "'{{\"data\":{{{0}}}}}'  (where the Knative Operator manages Knative: kubectl -n "
      "knative-serving patch knativeserving knative-serving --type merge -p "
      "'{{\"spec\":{{\"config\":{{\"features\":{{{0}}}}}}}}}')",
      fmt::join(pairs, ","));
  return result;
}

}  // namespace

std::vector<CheckResult> RunPreflight(KubeSession& kube, const PreflightOptions& options) {
  std::vector<CheckResult> results;
  kube::Client& client = kube.client();

  CheckResult api;
  api.name = "Kubernetes API";
  absl::StatusOr<json::value> version = kube.Run(client.GetPath("/version"));
  if (!version.ok()) {
    api.detail = std::string(MessageOf(version.status()));
    api.fix =
        "check --kubeconfig / KUBECONFIG (or the in-cluster service account) and that the API "
        "server is reachable";
    results.push_back(std::move(api));
    return results;
  }
  api.passed = true;
  api.detail =
      version->is_object() ? StringOf(version->get_object().if_contains("gitVersion")) : "";
  results.push_back(std::move(api));

  // GPUs.
  absl::StatusOr<kube::ObjectList> nodes =
      kube.Run(client.List(kube::kNodes, "", kube::ListOptions{}));
  CheckResult gpus;
  gpus.name = "GPU nodes (nvidia.com/gpu)";
  std::map<std::string, int> products;
  if (!nodes.ok()) {
    gpus.detail = fmt::format("cannot list nodes: {}", MessageOf(nodes.status()));
    gpus.fix = "grant the operator's ClusterRole get/list on nodes";
  } else {
    int gpu_nodes = 0;
    int total = 0;
    for (const json::object& node : nodes->items) {
      const int n = GpusOf(node);
      if (n <= 0) continue;
      ++gpu_nodes;
      total += n;
      auto labels = kube::ObjectLabels(node);
      auto it = labels.find("nvidia.com/gpu.product");
      products[it == labels.end() ? "unlabelled" : it->second] += n;
    }
    gpus.passed = gpu_nodes > 0;
    gpus.detail =
        fmt::format("{} of {} nodes, {} GPUs allocatable", gpu_nodes, nodes->items.size(), total);
    if (!gpus.passed) {
      gpus.fix =
          "install the NVIDIA GPU operator (helm install gpu-operator nvidia/gpu-operator -n "
          "gpu-operator --create-namespace) or the NVIDIA device plugin";
    }
  }
  results.push_back(gpus);

  if (options.kserve) {
    results.push_back(
        GroupCheck(kube, "KServe CRDs (serving.kserve.io)", {"serving.kserve.io"}, false,
                   "install KServe (CRDs and controller, https://kserve.github.io/website/) "
                   "or set kserve.enabled=false"));
  }
  if (options.knative) {
    CheckResult serving =
        GroupCheck(kube, "Knative Serving (serving.knative.dev)", {"serving.knative.dev"}, false,
                   "install Knative Serving v1.15+ (https://knative.dev/docs/install/) or set "
                   "kserve.deploymentMode=Standard");
    const bool served = serving.passed;
    results.push_back(std::move(serving));
    if (served) results.push_back(KnativeFlagsCheck(kube, options));
  }
  if (options.router) {
    results.push_back(GroupCheck(
        kube, "InferencePool CRD", {"inference.networking.k8s.io", "inference.networking.x-k8s.io"},
        true,
        "install the Gateway API Inference Extension CRDs (kubectl apply -f https://github.com/"
        "kubernetes-sigs/gateway-api-inference-extension/releases/latest/download/manifests.yaml) "
        "or set router.enabled=false"));
  }
  if (options.aibrix) {
    results.push_back(GroupCheck(kube, "AIBrix CRDs",
                                 {"autoscaling.aibrix.ai", "orchestration.aibrix.ai"}, false,
                                 "install AIBrix (kubectl apply -f aibrix-dependency + aibrix-core "
                                 "release manifests) or set aibrix.autoscaler.enabled=false"));
  }

  if (!options.gpu_product.empty()) {
    CheckResult product;
    product.name = "GPU product " + options.gpu_product;
    if (nodes.ok()) {
      int labelled = 0;
      for (const json::object& node : nodes->items) {
        auto labels = kube::ObjectLabels(node);
        auto it = labels.find("nvidia.com/gpu.product");
        if (it != labels.end() && it->second == options.gpu_product) ++labelled;
      }
      product.passed = labelled > 0;
      std::vector<std::string> available;
      available.reserve(products.size());
      for (const auto& [name, count] : products) {
        available.push_back(fmt::format("{} x{}", name, count));
      }
      product.detail =
          product.passed
              ? fmt::format("{} node(s) labelled nvidia.com/gpu.product={}", labelled,
                            options.gpu_product)
              : fmt::format("no node labelled nvidia.com/gpu.product={}; available: {}",
                            options.gpu_product,
                            available.empty() ? std::string("none")
                                              : fmt::format("{}", fmt::join(available, ", ")));
      if (!product.passed) {
        product.fix =
            "set runtime.gpuProduct to an available product, or add nodes with that GPU "
            "(GPU feature discovery sets the label)";
      }
    } else {
      product.detail = "cannot list nodes";
      product.fix = "grant the operator's ClusterRole get/list on nodes";
    }
    results.push_back(std::move(product));
  }

  // One replica-selection owner per path.
  CheckResult owner;
  owner.name = "Single route owner for " + options.route;
  absl::StatusOr<kube::ObjectList> routes =
      kube.Run(client.List(kube::kHttpRoutes, "", kube::ListOptions{}));
  if (!routes.ok() && routes.status().code() == absl::StatusCode::kNotFound) {
    owner.passed = true;
    owner.detail = "no HTTPRoutes (Gateway API not installed)";
  } else if (!routes.ok()) {
    owner.detail = fmt::format("cannot list HTTPRoutes: {}", MessageOf(routes.status()));
    owner.fix = "grant the operator's ClusterRole list on httproutes.gateway.networking.k8s.io";
  } else {
    std::vector<std::string> conflicts;
    for (const json::object& route : routes->items) {
      const auto labels = kube::ObjectLabels(route);
      auto instance = labels.find("app.kubernetes.io/instance");
      if (instance != labels.end() && instance->second == options.release) continue;
      const json::value* rules = FindPath(route, "spec.rules");
      if (rules == nullptr || !rules->is_array()) continue;
      for (const json::value& rule : rules->get_array()) {
        if (!rule.is_object()) continue;
        bool same_path = false;
        if (const json::value* matches = rule.get_object().if_contains("matches");
            matches && matches->is_array()) {
          for (const json::value& m : matches->get_array()) {
            if (m.is_object() &&
                StringOf(FindPath(m.get_object(), "path.value")) == options.route) {
              same_path = true;
            }
          }
        }
        if (!same_path) continue;
        const json::value* refs = rule.get_object().if_contains("backendRefs");
        if (refs == nullptr || !refs->is_array()) continue;
        for (const json::value& ref : refs->get_array()) {
          if (!ref.is_object()) continue;
          const std::string kind = StringOf(ref.get_object().if_contains("kind"));
          if (kind == "InferencePool") continue;
          conflicts.push_back(fmt::format("HTTPRoute {}/{} -> {} {}", kube::ObjectNamespace(route),
                                          kube::ObjectName(route), kind.empty() ? "Service" : kind,
                                          StringOf(ref.get_object().if_contains("name"))));
        }
      }
    }
    owner.passed = conflicts.empty();
    owner.detail = owner.passed ? fmt::format("{} HTTPRoute(s), none routes {} elsewhere",
                                              routes->items.size(), options.route)
                                : fmt::format("{} also routed by {}", options.route,
                                              fmt::format("{}", fmt::join(conflicts, "; ")));
    if (!owner.passed) {
      owner.fix =
          "one scheduler owns replica selection per path: remove that route (e.g. the Dynamo "
          "router's) or serve this release on another path";
    }
  }
  results.push_back(std::move(owner));
  return results;
}

bool AllPassed(const std::vector<CheckResult>& results) {
  return std::all_of(results.begin(), results.end(), [](const CheckResult& r) { return r.passed; });
}

std::string FormatPreflightTable(const std::vector<CheckResult>& results) {
  size_t width = 5;
  for (const auto& r : results) width = std::max(width, r.name.size());
  std::string out = fmt::format("{:<{}}  {:<6}  {}\n", "CHECK", width, "RESULT", "DETAIL");
  for (const auto& r : results) {
    out += fmt::format("{:<{}}  {:<6}  {}\n", r.name, width, r.passed ? "PASS" : "FAIL", r.detail);
    if (!r.passed && !r.fix.empty()) {
      out += fmt::format("{:<{}}  {:<6}  fix: {}\n", "", width, "", r.fix);
    }
  }
  const size_t failed = static_cast<size_t>(std::count_if(
      results.begin(), results.end(), [](const CheckResult& r) { return !r.passed; }));
  out += failed == 0 ? std::string("preflight: all checks passed\n")
                     : fmt::format("preflight: {} of {} checks failed\n", failed, results.size());
  return out;
}

}  // namespace zumik::op
