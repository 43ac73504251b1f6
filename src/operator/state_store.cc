// Persistence of the cluster id and token.
#include "operator/state_store.h"

#include <sys/stat.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <filesystem>
#include <fstream>
#include <sstream>

#include "core/base64.h"
#include "core/json_path.h"
#include "core/status.h"

namespace zumik::op {
namespace json = boost::json;

KubeStateStore::KubeStateStore(KubeSession& kube, std::string ns, const std::string& release)
    : kube_(kube), ns_(std::move(ns)), name_(release + "-zumik-cluster") {}

absl::StatusOr<std::optional<ClusterState>> KubeStateStore::Load() {
  kube::Client& client = kube_.client();
  absl::StatusOr<json::object> config_map = kube_.Run(client.Get(kube::kConfigMaps, ns_, name_));
  if (config_map.status().code() == absl::StatusCode::kNotFound) {
    return std::optional<ClusterState>();
  }
  if (!config_map.ok()) return config_map.status();
  const json::value* id = FindPath(*config_map, "data.cluster_id");
  if (id == nullptr || !id->is_string() || id->get_string().empty()) {
    return std::optional<ClusterState>();
  }
  ClusterState state;
  state.cluster_id = std::string(id->get_string());
  absl::StatusOr<json::object> secret = kube_.Run(client.Get(kube::kSecrets, ns_, name_));
  if (secret.ok()) {
    const json::value* token = FindPath(*secret, "data.cluster_token");
    if (token != nullptr && token->is_string()) {
      auto decoded =
          Base64Decode(std::string_view(token->get_string().data(), token->get_string().size()));
      if (decoded) state.cluster_token = Secret(*decoded);
    }
  } else if (secret.status().code() != absl::StatusCode::kNotFound) {
    return secret.status();
  }
  return std::optional<ClusterState>(std::move(state));
}

absl::Status KubeStateStore::Save(const ClusterState& state) {
  kube::Client& client = kube_.client();
  json::object labels;
  labels["app.kubernetes.io/managed-by"] = "zumik-operator";
  json::object metadata;
  metadata["name"] = name_;
  metadata["namespace"] = ns_;
  metadata["labels"] = labels;

  // The token first: a stored id always has its token next to it.
  json::object secret;
  secret["kind"] = "Secret";
  secret["metadata"] = metadata;
  secret["type"] = "Opaque";
  json::object secret_data;
  secret_data["cluster_token"] = Base64Encode(state.cluster_token.Reveal());
  secret["data"] = std::move(secret_data);
  absl::StatusOr<json::object> saved_secret = kube_.Run(client.Apply(kube::kSecrets, ns_, secret));
  if (!saved_secret.ok()) return saved_secret.status();

  json::object config_map;
  config_map["kind"] = "ConfigMap";
  config_map["metadata"] = metadata;
  json::object data;
  data["cluster_id"] = state.cluster_id;
  config_map["data"] = std::move(data);
  absl::StatusOr<json::object> saved = kube_.Run(client.Apply(kube::kConfigMaps, ns_, config_map));
  return saved.status();
}

absl::StatusOr<std::optional<ClusterState>> FileStateStore::Load() {
  std::ifstream in(path_);
  if (!in) return std::optional<ClusterState>();
  std::stringstream text;
  text << in.rdbuf();
  boost::system::error_code ec;
  json::value value = json::parse(text.str(), ec);
  if (ec || !value.is_object()) {
    return Errorf(absl::StatusCode::kDataLoss, "{}: not a cluster state file", path_);
  }
  const json::object& object = value.get_object();
  const json::value* id = object.if_contains("cluster_id");
  const json::value* token = object.if_contains("cluster_token");
  if (id == nullptr || !id->is_string() || token == nullptr || !token->is_string()) {
    return std::optional<ClusterState>();
  }
  ClusterState state;
  state.cluster_id = std::string(id->get_string());
  state.cluster_token = Secret(std::string(token->get_string()));
  return std::optional<ClusterState>(std::move(state));
}

absl::Status FileStateStore::Save(const ClusterState& state) {
  std::error_code ec;
  const auto parent = std::filesystem::path(path_).parent_path();
  if (!parent.empty()) std::filesystem::create_directories(parent, ec);
  json::object object;
  object["cluster_id"] = state.cluster_id;
  object["cluster_token"] = state.cluster_token.Reveal();
  const std::string tmp = path_ + ".tmp";
  {
    std::ofstream out(tmp, std::ios::trunc);
    if (!out) return Errorf(absl::StatusCode::kUnavailable, "cannot write {}", tmp);
    out << json::serialize(object) << "\n";
  }
  ::chmod(tmp.c_str(), 0600);
  std::filesystem::rename(tmp, path_, ec);
  if (ec) return Errorf(absl::StatusCode::kUnavailable, "cannot write {}: {}", path_, ec.message());
  return absl::OkStatus();
}

}  // namespace zumik::op
