// Cluster inventory for registration and heartbeats.
#include "operator/inventory.h"

#include <boost/json/array.hpp>
#include <map>

#include "core/json_path.h"
#include "core/status.h"

namespace zumik::op {
namespace json = boost::json;

namespace {

int IntOf(const json::value* value) {
  if (value == nullptr) return 0;
  if (value->is_int64()) return static_cast<int>(value->get_int64());
  if (value->is_uint64()) return static_cast<int>(value->get_uint64());
  if (value->is_string()) {
    try {
      return std::stoi(std::string(value->get_string()));
    } catch (const std::exception&) {
      return 0;
    }
  }
  return 0;
}

std::string StringOf(const json::value* value) {
  return value != nullptr && value->is_string() ? std::string(value->get_string()) : std::string();
}

std::string Annotation(const json::object& object, const std::string& key) {
  const json::value* annotations = FindPath(object, "metadata.annotations");
  if (annotations == nullptr || !annotations->is_object()) return "";
  return StringOf(annotations->get_object().if_contains(key));
}

bool ConditionTrue(const json::object& object, std::string_view type) {
  const json::value* conditions = FindPath(object, "status.conditions");
  if (conditions == nullptr || !conditions->is_array()) return false;
  for (const json::value& c : conditions->get_array()) {
    if (!c.is_object()) continue;
    if (StringOf(c.get_object().if_contains("type")) == type) {
      return StringOf(c.get_object().if_contains("status")) == "True";
    }
  }
  return false;
}

void TakeModel(const json::object& object, Inventory& inventory) {
  if (inventory.model.empty()) inventory.model = Annotation(object, "zumik.ai/model");
  if (inventory.tensor_parallel_size == 0) {
    const std::string tp = Annotation(object, "zumik.ai/tensor-parallel-size");
    json::value v(tp);
    inventory.tensor_parallel_size = IntOf(&v);
  }
}

}  // namespace

json::object StatusSnapshot(const Inventory& inventory) {
  json::object status;
  json::array gpus;
  for (const GpuCount& g : inventory.gpus) {
    json::object entry;
    entry["product"] = g.product;
    entry["count"] = g.count;
    gpus.push_back(std::move(entry));
  }
  status["gpus"] = std::move(gpus);
  status["nodes"] = inventory.nodes;
  json::object replicas;
  replicas["ready"] = inventory.replicas_ready;
  replicas["desired"] = inventory.replicas_desired;
  status["replicas"] = std::move(replicas);
  if (!inventory.model.empty()) status["model"] = inventory.model;
  if (inventory.tensor_parallel_size > 0) {
    status["tensor_parallel_size"] = inventory.tensor_parallel_size;
  }
  json::array routes;
  for (const RouteOwner& r : inventory.routes) {
    json::object entry;
    entry["path"] = r.path;
    entry["owner"] = r.owner;
    routes.push_back(std::move(entry));
  }
  status["routes"] = std::move(routes);
  return status;
}

KubeInventory::KubeInventory(KubeSession& kube, std::string ns, std::string release)
    : kube_(kube), ns_(std::move(ns)), release_(std::move(release)) {}

absl::StatusOr<Inventory> KubeInventory::Collect() {
  kube::Client& client = kube_.client();
  Inventory inventory;

  ASSIGN_OR_RETURN(json::value version, kube_.Run(client.GetPath("/version")));
  if (version.is_object()) {
    inventory.kubernetes_version = StringOf(version.get_object().if_contains("gitVersion"));
  }

  ASSIGN_OR_RETURN(json::object kube_system,
                   kube_.Run(client.Get(kube::kNamespaces, "", "kube-system")));
  inventory.fingerprint = StringOf(FindPath(kube_system, "metadata.uid"));
  if (inventory.fingerprint.empty()) {
    return absl::InternalError("the kube-system namespace has no uid");
  }

  ASSIGN_OR_RETURN(kube::ObjectList nodes,
                   kube_.Run(client.List(kube::kNodes, "", kube::ListOptions{})));
  inventory.nodes = static_cast<int>(nodes.items.size());
  std::map<std::string, int> by_product;
  for (const json::object& node : nodes.items) {
    const json::value* allocatable = FindPath(node, "status.allocatable");
    if (allocatable == nullptr || !allocatable->is_object()) continue;
    const int gpus = IntOf(allocatable->get_object().if_contains("nvidia.com/gpu"));
    if (gpus <= 0) continue;
    auto labels = kube::ObjectLabels(node);
    auto it = labels.find("nvidia.com/gpu.product");
    by_product[it == labels.end() ? "unknown" : it->second] += gpus;
  }
  for (const auto& [product, count] : by_product) inventory.gpus.push_back({product, count});

  kube::ListOptions mine;
  mine.label_selector = "app.kubernetes.io/instance=" + release_;
  ASSIGN_OR_RETURN(kube::ObjectList deployments,
                   kube_.Run(client.List(kube::kDeployments, ns_, mine)));
  bool have_model_servers = false;
  for (const json::object& d : deployments.items) {
    const auto labels = kube::ObjectLabels(d);
    auto component = labels.find("app.kubernetes.io/component");
    const int ready = IntOf(FindPath(d, "status.readyReplicas"));
    if (component != labels.end() && component->second == "epp") {
      inventory.epp_ready = inventory.epp_ready || ready > 0;
      continue;
    }
    have_model_servers = true;
    const json::value* desired = FindPath(d, "spec.replicas");
    inventory.replicas_desired += desired == nullptr ? 1 : IntOf(desired);
    inventory.replicas_ready += ready;
    TakeModel(d, inventory);
  }
  inventory.serving_ready = have_model_servers && inventory.replicas_ready > 0;

  absl::StatusOr<json::object> isvc =
      kube_.Run(client.Get(kube::kInferenceServices, ns_, release_));
  if (isvc.ok()) {
    inventory.serving_ready = ConditionTrue(*isvc, "Ready");
    TakeModel(*isvc, inventory);
  } else if (isvc.status().code() != absl::StatusCode::kNotFound) {
    return isvc.status();
  }

  absl::StatusOr<kube::ObjectList> routes = kube_.Run(client.List(kube::kHttpRoutes, ns_, mine));
  if (routes.ok()) {
    for (const json::object& route : routes->items) {
      const json::value* rules = FindPath(route, "spec.rules");
      if (rules == nullptr || !rules->is_array()) continue;
      for (const json::value& rule : rules->get_array()) {
        if (!rule.is_object()) continue;
        const json::value* matches = rule.get_object().if_contains("matches");
        if (matches == nullptr || !matches->is_array()) continue;
        for (const json::value& match : matches->get_array()) {
          if (!match.is_object()) continue;
          const std::string path = StringOf(FindPath(match.get_object(), "path.value"));
          if (!path.empty()) inventory.routes.push_back({path, "epp"});
        }
      }
    }
  } else if (routes.status().code() != absl::StatusCode::kNotFound) {
    return routes.status();
  }
  return inventory;
}

absl::StatusOr<GpuCount> ParseGpuFlag(const std::string& text) {
  const size_t colon = text.rfind(':');
  if (colon == std::string::npos || colon == 0 || colon + 1 == text.size()) {
    return Errorf(absl::StatusCode::kInvalidArgument, "--gpus '{}': expected PRODUCT:COUNT", text);
  }
  GpuCount gpu;
  gpu.product = text.substr(0, colon);
  try {
    size_t used = 0;
    gpu.count = std::stoi(text.substr(colon + 1), &used);
    if (used != text.size() - colon - 1) throw std::invalid_argument("trailing");
  } catch (const std::exception&) {
    return Errorf(absl::StatusCode::kInvalidArgument, "--gpus '{}': COUNT is not a number", text);
  }
  if (gpu.count < 0) {
    return Errorf(absl::StatusCode::kInvalidArgument, "--gpus '{}': COUNT must be >= 0", text);
  }
  return gpu;
}

}  // namespace zumik::op
