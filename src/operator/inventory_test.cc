// Inventory and state storage against the Kubernetes API double.
#include "operator/inventory.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "core/base64.h"
#include "kube/testing/fake_api_server.h"
#include "kube/testing/test_objects.h"
#include "operator/kube_session_fixture.h"
#include "operator/state_store.h"

namespace zumik::op {
namespace {

namespace json = boost::json;
using kube::testing::MakeGpuNode;

json::object Deployment(const std::string& name, const std::string& component, int desired,
                        int ready) {
  json::value v = json::parse(fmt::format(
      R"({{"metadata":{{"name":"{}","namespace":"serving","labels":{{"app.kubernetes.io/instance":"us-east",
          "app.kubernetes.io/component":"{}"}},"annotations":{{"zumik.ai/model":"meta-llama/Llama-3.1-8B-Instruct",
          "zumik.ai/tensor-parallel-size":"2"}}}},"spec":{{"replicas":{}}},"status":{{"readyReplicas":{}}}}})",
      name, component, desired, ready));
  return v.as_object();
}

using KubeInventoryTest = testing::KubeSessionTest;

TEST_F(KubeInventoryTest, CountsGpusByProductAndReadsTheReleaseReadiness) {
  api_.Upsert(kube::kNodes, MakeGpuNode("gpu-a", "NVIDIA-H100-80GB-HBM3", 8));
  api_.Upsert(kube::kNodes, MakeGpuNode("gpu-b", "NVIDIA-H100-80GB-HBM3", 8));
  api_.Upsert(kube::kNodes, MakeGpuNode("gpu-c", "NVIDIA-L4", 1));
  api_.Upsert(kube::kNodes, MakeGpuNode("cpu-a", "", 0));
  api_.Upsert(kube::kDeployments, Deployment("us-east-vllm", "model-server", 3, 2));
  api_.Upsert(kube::kDeployments, Deployment("us-east-epp", "epp", 1, 1));
  json::object foreign = Deployment("other-vllm", "model-server", 5, 5);
  foreign["metadata"].as_object()["labels"].as_object()["app.kubernetes.io/instance"] = "other";
  api_.Upsert(kube::kDeployments, foreign);
  api_.SetVersion("v1.31.1");

  KubeInventory source(*session_, "serving", "us-east");
  auto inventory = source.Collect();
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  EXPECT_EQ(inventory->kubernetes_version, "v1.31.1");
  const auto ns = api_.Find(kube::kNamespaces, "", "kube-system");
  EXPECT_EQ(inventory->fingerprint, ns->at("metadata").at("uid").as_string());
  EXPECT_EQ(inventory->nodes, 4);
  ASSERT_EQ(inventory->gpus.size(), 2u);
  EXPECT_EQ(inventory->gpus[0], (GpuCount{"NVIDIA-H100-80GB-HBM3", 16}));
  EXPECT_EQ(inventory->gpus[1], (GpuCount{"NVIDIA-L4", 1}));
  EXPECT_EQ(inventory->replicas_desired, 3);
  EXPECT_EQ(inventory->replicas_ready, 2);
  EXPECT_TRUE(inventory->epp_ready);
  EXPECT_TRUE(inventory->serving_ready);
  EXPECT_EQ(inventory->model, "meta-llama/Llama-3.1-8B-Instruct");
  EXPECT_EQ(inventory->tensor_parallel_size, 2);
}

TEST_F(KubeInventoryTest, UsesTheInferenceServiceReadyConditionWhenKServeIsServed) {
  api_.Upsert(kube::kDeployments, Deployment("us-east-predictor", "model-server", 1, 1));
  api_.Upsert(kube::kInferenceServices,
              json::parse(R"({"metadata":{"name":"us-east","namespace":"serving"},
      "status":{"conditions":[{"type":"Ready","status":"False"}]}})")
                  .as_object());
  KubeInventory source(*session_, "serving", "us-east");
  auto inventory = source.Collect();
  ASSERT_TRUE(inventory.ok()) << inventory.status();
  EXPECT_FALSE(inventory->serving_ready);
}

TEST_F(KubeInventoryTest, AnApiOutageIsAnErrorNotACrash) {
  api_.FailNextRequests(1, 503);
  KubeInventory source(*session_, "serving", "us-east");
  EXPECT_EQ(source.Collect().status().code(), absl::StatusCode::kUnavailable);
  EXPECT_TRUE(source.Collect().ok());
}

TEST_F(KubeInventoryTest, StateStoreKeepsTheIdInAConfigMapAndTheTokenInASecret) {
  KubeStateStore store(*session_, "serving", "us-east");
  auto empty = store.Load();
  ASSERT_TRUE(empty.ok()) << empty.status();
  EXPECT_FALSE(empty->has_value());
  ASSERT_TRUE(store.Save(ClusterState{"byc_1", Secret("ct_secret")}).ok());
  auto cm = api_.Find(kube::kConfigMaps, "serving", "us-east-zumik-cluster");
  ASSERT_TRUE(cm.has_value());
  EXPECT_EQ(cm->at("data").at("cluster_id").as_string(), "byc_1");
  EXPECT_FALSE(cm->at("data").as_object().contains("cluster_token"));
  auto secret = api_.Find(kube::kSecrets, "serving", "us-east-zumik-cluster");
  ASSERT_TRUE(secret.has_value());
  EXPECT_EQ(Base64Decode(std::string(secret->at("data").at("cluster_token").as_string())),
            "ct_secret");
  // Saving again replaces both.
  ASSERT_TRUE(store.Save(ClusterState{"byc_1", Secret("ct_rotated")}).ok());
  auto loaded = store.Load();
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->cluster_id, "byc_1");
  EXPECT_EQ((*loaded)->cluster_token.Reveal(), "ct_rotated");
}

TEST(StatusSnapshot, HasTheRegistryFields) {
  Inventory inventory;
  inventory.nodes = 3;
  inventory.gpus = {{"NVIDIA-L4", 2}};
  inventory.replicas_ready = 1;
  inventory.replicas_desired = 2;
  inventory.model = "m";
  inventory.tensor_parallel_size = 1;
  inventory.routes = {{"/v1", "epp"}};
  json::object s = StatusSnapshot(inventory);
  EXPECT_EQ(s.at("nodes").as_int64(), 3);
  EXPECT_EQ(s.at("gpus").as_array()[0].at("product").as_string(), "NVIDIA-L4");
  EXPECT_EQ(s.at("replicas").at("desired").as_int64(), 2);
  EXPECT_EQ(s.at("model").as_string(), "m");
  EXPECT_EQ(s.at("tensor_parallel_size").as_int64(), 1);
  EXPECT_EQ(s.at("routes").as_array()[0].at("owner").as_string(), "epp");
}

}  // namespace
}  // namespace zumik::op
