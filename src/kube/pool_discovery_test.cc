// InferencePool discovery against the API test double: ready Pods, readiness changes, selector
// and port changes, the v1alpha2 fallback and a pool that appears late.
#include "kube/pool_discovery.h"

#include <gtest/gtest.h>

#include <mutex>

#include "core/http/test_util.h"
#include "kube/testing/fake_api_server.h"
#include "kube/testing/test_objects.h"

namespace zumik::kube {
namespace {

using http::testing::IoThreads;
using testing::FakeApiServer;
using testing::MakePod;
using testing::MakePoolV1;
using testing::MakePoolV1Alpha2;

class PoolDiscoveryTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    client_ = std::make_unique<Client>(io_.io().get_executor(), api_.ClientConfig());
  }
  void TearDown() override {
    if (discovery_) discovery_->Stop();
    discovery_.reset();
    client_.reset();
    api_.Stop();
  }
  void StartDiscovery(std::string group = "") {
    PoolDiscoveryOptions options;
    options.namespace_name = "serving";
    options.pool_name = "pool";
    options.pool_group = std::move(group);
    options.reflector.backoff.initial = std::chrono::milliseconds(1);
    options.reflector.backoff.max = std::chrono::milliseconds(20);
    discovery_ =
        std::make_unique<PoolDiscovery>(io_.io().get_executor(), *client_, options,
                                        [this](const std::vector<PoolEndpoint>& endpoints) {
                                          std::vector<std::string> out;
                                          out.reserve(endpoints.size());
                                          for (const auto& e : endpoints) {
                                            out.push_back(e.pod_name + "@" + e.HostPort());
                                          }
                                          std::lock_guard lock(mu_);
                                          reports_.push_back(std::move(out));
                                        });
    discovery_->Start();
  }
  std::vector<std::string> Last() {
    std::lock_guard lock(mu_);
    return reports_.empty() ? std::vector<std::string>{"<none>"} : reports_.back();
  }
  size_t Reports() {
    std::lock_guard lock(mu_);
    return reports_.size();
  }
  bool WaitForEndpoints(const std::vector<std::string>& expected) {
    return FakeApiServer::WaitFor([&] { return Last() == expected; });
  }
  void WaitForWatches(int n) {
    ASSERT_TRUE(FakeApiServer::WaitFor([&] { return api_.open_watches() == n; }));
  }

  FakeApiServer api_;
  IoThreads io_{2};
  std::unique_ptr<Client> client_;
  std::unique_ptr<PoolDiscovery> discovery_;
  std::mutex mu_;
  std::vector<std::vector<std::string>> reports_;
};

const std::map<std::string, std::string> kVllm = {{"app", "vllm"}};

TEST_F(PoolDiscoveryTest, ReportsEveryTargetPortOfReadyPodsTheSelectorMatches) {
  api_.Upsert(kInferencePoolsV1, MakePoolV1("pool", "serving", kVllm, {8000, 8001}));
  api_.Upsert(kInferencePoolsV1, MakePoolV1("other-pool", "serving", {{"app", "x"}}, {9000}));
  api_.Upsert(kPods,
              MakePod("vllm-0", "serving", {{"app", "vllm"}, {"llm-d.ai/engine-type", "vllm"}},
                      "10.0.0.1", true));
  api_.Upsert(kPods, MakePod("vllm-1", "serving", kVllm, "10.0.0.2", false));  // not ready
  api_.Upsert(kPods, MakePod("web-0", "serving", {{"app", "web"}}, "10.0.0.3", true));
  api_.Upsert(kPods, MakePod("vllm-9", "elsewhere", kVllm, "10.0.0.4", true));
  StartDiscovery();
  ASSERT_TRUE(WaitForEndpoints({"vllm-0@10.0.0.1:8000", "vllm-0@10.0.0.1:8001"}));
  EXPECT_TRUE(discovery_->synced());
  EXPECT_EQ(discovery_->pool_group(), "inference.networking.k8s.io");
  EXPECT_TRUE(discovery_->last_error().ok()) << discovery_->last_error();
}

TEST_F(PoolDiscoveryTest, PodsBecomingReadyOrUnreadyChangeTheSet) {
  api_.Upsert(kInferencePoolsV1, MakePoolV1("pool", "serving", kVllm, {8000}));
  api_.Upsert(kPods, MakePod("vllm-0", "serving", kVllm, "10.0.0.1", true));
  api_.Upsert(kPods, MakePod("vllm-1", "serving", kVllm, "10.0.0.2", false));
  StartDiscovery();
  ASSERT_TRUE(WaitForEndpoints({"vllm-0@10.0.0.1:8000"}));
  WaitForWatches(2);
  api_.Upsert(kPods, MakePod("vllm-1", "serving", kVllm, "10.0.0.2", true));
  ASSERT_TRUE(WaitForEndpoints({"vllm-0@10.0.0.1:8000", "vllm-1@10.0.0.2:8000"}));
  api_.Upsert(kPods, MakePod("vllm-0", "serving", kVllm, "10.0.0.1", false));
  ASSERT_TRUE(WaitForEndpoints({"vllm-1@10.0.0.2:8000"}));
  api_.Remove(kPods, "serving", "vllm-1");
  ASSERT_TRUE(WaitForEndpoints({}));
  // An unrelated change does not produce a duplicate report.
  const size_t reports = Reports();
  api_.Upsert(kPods, MakePod("web-0", "serving", {{"app", "web"}}, "10.0.0.3", true));
  api_.Upsert(kPods, MakePod("vllm-2", "serving", kVllm, "10.0.0.5", true));
  ASSERT_TRUE(WaitForEndpoints({"vllm-2@10.0.0.5:8000"}));
  EXPECT_EQ(Reports(), reports + 1);
}

TEST_F(PoolDiscoveryTest, SelectorAndPortChangesTakeEffect) {
  api_.Upsert(kInferencePoolsV1, MakePoolV1("pool", "serving", kVllm, {8000}));
  api_.Upsert(kPods, MakePod("vllm-0", "serving", kVllm, "10.0.0.1", true));
  api_.Upsert(kPods, MakePod("sglang-0", "serving", {{"app", "sglang"}}, "10.0.0.2", true));
  StartDiscovery();
  ASSERT_TRUE(WaitForEndpoints({"vllm-0@10.0.0.1:8000"}));
  WaitForWatches(2);
  api_.Upsert(kInferencePoolsV1, MakePoolV1("pool", "serving", {{"app", "sglang"}}, {30000}));
  ASSERT_TRUE(WaitForEndpoints({"sglang-0@10.0.0.2:30000"}));
  api_.Remove(kInferencePoolsV1, "serving", "pool");
  ASSERT_TRUE(WaitForEndpoints({}));
}

TEST_F(PoolDiscoveryTest, FallsBackToV1Alpha2WhenV1IsNotServed) {
  api_.Upsert(kInferencePoolsV1Alpha2, MakePoolV1Alpha2("pool", "serving", kVllm, 8000));
  api_.Upsert(kPods, MakePod("vllm-0", "serving", kVllm, "10.0.0.1", true));
  StartDiscovery();
  ASSERT_TRUE(WaitForEndpoints({"vllm-0@10.0.0.1:8000"}));
  EXPECT_EQ(discovery_->pool_group(), "inference.networking.x-k8s.io");
}

TEST_F(PoolDiscoveryTest, AMissingPoolIsAnEmptySetUntilItAppears) {
  api_.AddResource(kInferencePoolsV1);
  api_.Upsert(kPods, MakePod("vllm-0", "serving", kVllm, "10.0.0.1", true));
  StartDiscovery();
  ASSERT_TRUE(WaitForEndpoints({}));
  WaitForWatches(2);
  api_.Upsert(kInferencePoolsV1, MakePoolV1("pool", "serving", kVllm, {8000}));
  ASSERT_TRUE(WaitForEndpoints({"vllm-0@10.0.0.1:8000"}));
}

TEST_F(PoolDiscoveryTest, SurvivesGoneAndDisconnects) {
  api_.Upsert(kInferencePoolsV1, MakePoolV1("pool", "serving", kVllm, {8000}));
  StartDiscovery();
  ASSERT_TRUE(WaitForEndpoints({}));
  WaitForWatches(2);
  api_.ExpireWatches();
  api_.Upsert(kPods, MakePod("vllm-0", "serving", kVllm, "10.0.0.1", true));
  ASSERT_TRUE(WaitForEndpoints({"vllm-0@10.0.0.1:8000"}));
  WaitForWatches(2);
  api_.DisconnectWatches();
  api_.Upsert(kPods, MakePod("vllm-1", "serving", kVllm, "10.0.0.2", true));
  ASSERT_TRUE(WaitForEndpoints({"vllm-0@10.0.0.1:8000", "vllm-1@10.0.0.2:8000"}));
}

}  // namespace
}  // namespace zumik::kube
