// Where the operator keeps its cluster id and token between restarts: a ConfigMap (id) and a
// Secret (token) named <release>-zumik-cluster in its namespace, or a JSON file in local mode.
#pragma once

#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/secret.h"
#include "operator/kube_session.h"

namespace zumik::op {

struct ClusterState {
  std::string cluster_id;
  Secret cluster_token;
};

class StateStore {
 public:
  virtual ~StateStore() = default;
  // nullopt when nothing was stored yet.
  virtual absl::StatusOr<std::optional<ClusterState>> Load() = 0;
  virtual absl::Status Save(const ClusterState& state) = 0;
};

class KubeStateStore : public StateStore {
 public:
  KubeStateStore(KubeSession& kube, std::string ns, const std::string& release);
  absl::StatusOr<std::optional<ClusterState>> Load() override;
  absl::Status Save(const ClusterState& state) override;
  // "<release>-zumik-cluster".
  const std::string& name() const { return name_; }

 private:
  KubeSession& kube_;
  std::string ns_;
  std::string name_;
};

// A 0600 JSON file {"cluster_id","cluster_token"}.
class FileStateStore : public StateStore {
 public:
  explicit FileStateStore(std::string path) : path_(std::move(path)) {}
  absl::StatusOr<std::optional<ClusterState>> Load() override;
  absl::Status Save(const ClusterState& state) override;

 private:
  std::string path_;
};

}  // namespace zumik::op
