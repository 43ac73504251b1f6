// What the operator reports about its cluster: identity (kube-system UID), Kubernetes version,
// GPU inventory by product, and the readiness of this release's serving stack and EPP. Read
// from the Kubernetes API, or given on the command line in local mode (`zumik up`).
#pragma once

#include <boost/json/object.hpp>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "operator/kube_session.h"

namespace zumik::op {

struct GpuCount {
  std::string product;
  int count = 0;
  friend bool operator==(const GpuCount&, const GpuCount&) = default;
};

struct RouteOwner {
  std::string path;
  std::string owner;
  friend bool operator==(const RouteOwner&, const RouteOwner&) = default;
};

struct Inventory {
  // The kube-system namespace UID: the registry's idempotency key.
  std::string fingerprint;
  std::string kubernetes_version;
  int nodes = 0;
  // Allocatable nvidia.com/gpu summed by nvidia.com/gpu.product ("unknown" when unlabelled),
  // sorted by product.
  std::vector<GpuCount> gpus;
  int replicas_ready = 0;
  int replicas_desired = 0;
  bool serving_ready = false;
  bool epp_ready = false;
  std::string model;
  int tensor_parallel_size = 0;
  std::vector<RouteOwner> routes;
  friend bool operator==(const Inventory&, const Inventory&) = default;
};

// The heartbeat's status snapshot: {gpus:[{product,count}], nodes, replicas:{ready,desired},
// model, tensor_parallel_size, routes:[{path,owner}]}.
boost::json::object StatusSnapshot(const Inventory& inventory);

class InventorySource {
 public:
  virtual ~InventorySource() = default;
  virtual absl::StatusOr<Inventory> Collect() = 0;
};

// Reads the cluster. The release's objects are found by the label
// app.kubernetes.io/instance=<release> in `ns`: Deployments labelled
// app.kubernetes.io/component=epp are the EPP, the others the model servers; the
// InferenceService named <release> (when KServe is served) gives serving readiness; the
// model and tensor-parallel size come from the annotations zumik.ai/model and
// zumik.ai/tensor-parallel-size of the InferenceService or a model-server Deployment; HTTPRoutes
// with the instance label give the routes the EPP owns.
class KubeInventory : public InventorySource {
 public:
  KubeInventory(KubeSession& kube, std::string ns, std::string release);
  absl::StatusOr<Inventory> Collect() override;

 private:
  KubeSession& kube_;
  std::string ns_;
  std::string release_;
};

// A fixed inventory (local mode: `--gpus PRODUCT:COUNT --fingerprint X`).
class StaticInventory : public InventorySource {
 public:
  explicit StaticInventory(Inventory inventory) : inventory_(std::move(inventory)) {}
  absl::StatusOr<Inventory> Collect() override { return inventory_; }
  void Set(Inventory inventory) { inventory_ = std::move(inventory); }

 private:
  Inventory inventory_;
};

// "NVIDIA-H100-80GB-HBM3:8" → {product, 8}. kInvalidArgument naming the problem.
absl::StatusOr<GpuCount> ParseGpuFlag(const std::string& text);

}  // namespace zumik::op
