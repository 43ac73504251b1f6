// Kubernetes mode end to end: `zumik epp --pool-name --pool-namespace --kubeconfig
// --listen-http` as a real process against the Kubernetes API TEST DOUBLE
// (kube/testing/fake_api_server.h: list + watch, 410 Gone, bookmarks, disconnects — not a
// real API server), serving an InferencePool whose selector matches Pods backed by real
// `zumik sim` processes.
//
// An InferencePool has one target port for all its Pods, and every Pod has its own IP. So each
// "Pod" here is a one-replica `zumik sim` on its own loopback address (127.0.0.2, 127.0.0.3, …)
// and the same port, exactly the shape of a real pool.
#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <chrono>
#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <string>
#include <vector>

#include "core/http/client.h"
#include "epp_support/epp_test_helpers.h"
#include "kube/client.h"
#include "kube/model_config_watch.h"
#include "kube/testing/fake_api_server.h"
#include "kube/testing/test_objects.h"
#include "support/process.h"

namespace zumik {
namespace {

using epp_testing::Eventually;
using epp_testing::LabelValues;
using epp_testing::MetricSum;
using kube::testing::FakeApiServer;
using kube::testing::MakePod;
using testing::ChildProcess;

constexpr char kNamespace[] = "serving";
constexpr char kPool[] = "llama";
constexpr char kModel[] = "meta-llama/Llama-3.1-8B-Instruct";
const std::map<std::string, std::string> kPodLabels = {{"app", "llama-sim"}};

std::string Fetch(const std::string& url) {
  auto r = http::FetchBlocking(http::Method::get, url);
  return r.ok() && r->status == 200 ? r->body : std::string();
}

class EppKubeTest : public ::testing::Test {
 protected:
  // Pod i is a one-replica sim on 127.0.0.(i+2), all on the same port.
  static constexpr int kPods = 4;

  static void SetUpTestSuite() {
    dir_ = testing::MakeTempDir("epp-kube");
    port_ = testing::PickFreePort();
    for (int i = 0; i < kPods; ++i) {
      sims_[i] = std::make_unique<ChildProcess>(
          std::vector<std::string>{testing::ZumikBinary(), "sim", "--replicas", "1", "--host",
                                   Ip(i), "--port", std::to_string(port_)},
          fmt::format("{}/sim-{}.log", dir_, i));
    }
    for (int i = 0; i < kPods; ++i) {
      ASSERT_TRUE(epp_testing::WaitForAddress(Ip(i), port_)) << sims_[i]->ReadLog();
    }
  }
  static void TearDownTestSuite() {
    for (auto& sim : sims_) sim.reset();
  }

  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    kubeconfig_ =
        dir_ + "/kubeconfig-" + ::testing::UnitTest::GetInstance()->current_test_info()->name();
    std::ofstream(kubeconfig_) << api_.KubeconfigYaml();
  }

  static std::string Ip(int pod) { return fmt::format("127.0.0.{}", pod + 2); }
  static std::string Address(int pod) { return fmt::format("{}:{}", Ip(pod), port_); }
  static std::string PodName(int pod) { return fmt::format("llama-{}", pod); }

  void SetPod(int pod, bool ready) {
    api_.Upsert(kube::kPods, MakePod(PodName(pod), kNamespace, kPodLabels, Ip(pod), ready));
  }

  void StartEpp(std::vector<std::string> extra = {}) {
    gateway_port_ = testing::PickFreePort();
    metrics_port_ = testing::PickFreePort();
    std::vector<std::string> argv = {testing::ZumikBinary(),
                                     "epp",
                                     "--pool-name",
                                     kPool,
                                     "--pool-namespace",
                                     kNamespace,
                                     "--kubeconfig",
                                     kubeconfig_,
                                     "--listen-http",
                                     std::to_string(gateway_port_),
                                     "--metrics-port",
                                     std::to_string(metrics_port_),
                                     "--host",
                                     "127.0.0.1",
                                     "--scrape-interval",
                                     "20ms"};
    argv.insert(argv.end(), extra.begin(), extra.end());
    epp_ = std::make_unique<ChildProcess>(argv, kubeconfig_ + ".epp.log");
    ASSERT_TRUE(testing::WaitForPort(gateway_port_, std::chrono::seconds(15))) << epp_->ReadLog();
    ASSERT_TRUE(testing::WaitForPort(metrics_port_, std::chrono::seconds(15))) << epp_->ReadLog();
  }

  // The endpoints in the EPP's datastore, as its /metrics lists them.
  std::set<std::string> EppEndpoints() {
    return LabelValues(Fetch(fmt::format("http://127.0.0.1:{}/metrics", metrics_port_)),
                       "llm_d_epp_per_endpoint_queue_size", "model_server_endpoint");
  }
  // Waits until the EPP routes to exactly `pods`.
  ::testing::AssertionResult Serves(const std::set<int>& pods) {
    std::set<std::string> want;
    for (int pod : pods) want.insert(Address(pod));
    if (Eventually([&] { return EppEndpoints() == want; })) return ::testing::AssertionSuccess();
    std::string have;
    for (const auto& e : EppEndpoints()) have += e + " ";
    return ::testing::AssertionFailure() << "the EPP serves [" << have << "]\n" << epp_->ReadLog();
  }

  // Completed requests of each pod's model server.
  static std::vector<double> Completed() {
    std::vector<double> out;
    out.reserve(kPods);
    for (int i = 0; i < kPods; ++i) {
      out.push_back(MetricSum(Fetch(fmt::format("http://{}/metrics", Address(i))),
                              "vllm:request_success_total{"));
    }
    return out;
  }

  // Sends `n` requests through the gateway (all must succeed) and returns how many each pod
  // served.
  std::vector<double> SendThroughGateway(int n) {
    std::vector<double> before = Completed();
    for (int i = 0; i < n; ++i) {
      boost::json::object body{{"model", kModel},
                               {"prompt", fmt::format("request {} of {}", i, ++sent_)},
                               {"max_tokens", 2}};
      http::Headers headers = {{"Content-Type", "application/json"}};
      auto r = http::FetchBlocking(http::Method::post,
                                   fmt::format("http://127.0.0.1:{}/v1/completions", gateway_port_),
                                   boost::json::serialize(body), headers);
      EXPECT_TRUE(r.ok()) << r.status();
      if (r.ok()) {
        EXPECT_EQ(r->status, 200) << r->body;
      }
    }
    std::vector<double> served(kPods, 0);
    // The sims count a request when it completes; wait (bounded) until all n are counted.
    Eventually([&] {
      std::vector<double> now = Completed();
      double total = 0;
      for (int i = 0; i < kPods; ++i) total += (served[i] = now[i] - before[i]);
      return total >= n;
    });
    return served;
  }

  // Requests reach exactly the pods in `pods`, all of them.
  void ExpectOnlyPodsServe(const std::set<int>& pods, int n = 12) {
    std::vector<double> served = SendThroughGateway(n);
    double total = 0;
    for (int i = 0; i < kPods; ++i) {
      total += served[i];
      if (!pods.count(i)) {
        EXPECT_EQ(served[i], 0) << PodName(i) << " is not in the pool";
      }
    }
    EXPECT_EQ(total, n);
  }

  static inline std::string dir_;
  static inline int port_ = 0;
  static inline std::unique_ptr<ChildProcess> sims_[kPods];
  FakeApiServer api_;
  std::string kubeconfig_;
  std::unique_ptr<ChildProcess> epp_;
  int gateway_port_ = 0;
  int metrics_port_ = 0;
  int sent_ = 0;
};

TEST_F(EppKubeTest, RoutesToTheReadyPodsOfAV1PoolAndFollowsTheirChanges) {
  api_.Upsert(kube::kInferencePoolsV1,
              kube::testing::MakePoolV1(kPool, kNamespace, kPodLabels, {port_}));
  SetPod(0, true);
  SetPod(1, true);
  SetPod(2, false);  // its sim runs, but the Pod is not Ready: never routed to
  // A ready Pod the selector does not match, and a matching one in another namespace.
  api_.Upsert(kube::kPods, MakePod("other", kNamespace, {{"app", "other"}}, Ip(3), true));
  api_.Upsert(kube::kPods, MakePod("llama-elsewhere", "default", kPodLabels, Ip(3), true));
  StartEpp();
  ASSERT_TRUE(Serves({0, 1}));
  ExpectOnlyPodsServe({0, 1});

  // A Pod turning Ready is picked up; one turning unready leaves the rotation.
  SetPod(2, true);
  ASSERT_TRUE(Serves({0, 1, 2}));
  SetPod(0, false);
  ASSERT_TRUE(Serves({1, 2}));
  ExpectOnlyPodsServe({1, 2});

  // Deleted, and being deleted (deletionTimestamp set), Pods leave too.
  ASSERT_TRUE(api_.Remove(kube::kPods, kNamespace, PodName(1)));
  ASSERT_TRUE(Serves({2}));
  ExpectOnlyPodsServe({2});
  SetPod(3, true);  // a new Pod
  ASSERT_TRUE(Serves({2, 3}));
  auto terminating = MakePod(PodName(3), kNamespace, kPodLabels, Ip(3), true);
  terminating["metadata"].as_object()["deletionTimestamp"] = "2026-01-01T00:00:00Z";
  api_.Upsert(kube::kPods, terminating);
  ASSERT_TRUE(Serves({2}));
  ExpectOnlyPodsServe({2});
}

TEST_F(EppKubeTest, SurvivesWatchDisconnectsGoneAndBookmarks) {
  api_.Upsert(kube::kInferencePoolsV1,
              kube::testing::MakePoolV1(kPool, kNamespace, kPodLabels, {port_}));
  SetPod(0, true);
  StartEpp();
  ASSERT_TRUE(Serves({0}));

  // The watch streams end: the EPP re-watches and sees later changes.
  uint64_t watches = api_.watch_requests();
  api_.DisconnectWatches();
  ASSERT_TRUE(Eventually([&] { return api_.watch_requests() > watches; }));
  SetPod(1, true);
  ASSERT_TRUE(Serves({0, 1}));

  // History expired (410 Gone): the EPP relists, and keeps the set meanwhile.
  uint64_t lists = api_.list_requests();
  api_.ExpireWatches();
  ASSERT_TRUE(Eventually([&] { return api_.list_requests() > lists; }));
  EXPECT_EQ(EppEndpoints(), (std::set<std::string>{Address(0), Address(1)}));
  SetPod(0, false);
  SetPod(2, true);
  ASSERT_TRUE(Serves({1, 2}));
  ExpectOnlyPodsServe({1, 2});

  // Bookmarks change nothing; the watch stays usable after them.
  api_.SendBookmarks();
  SetPod(3, true);
  ASSERT_TRUE(Serves({1, 2, 3}));

  // The API server failing for a while: the EPP keeps serving what it knows, then catches up.
  api_.FailNextRequests(3, 503);
  api_.DisconnectWatches();
  ExpectOnlyPodsServe({1, 2, 3});
  SetPod(1, false);
  ASSERT_TRUE(Serves({2, 3}));
  EXPECT_TRUE(epp_->running());
}

TEST_F(EppKubeTest, ServesAV1Alpha2PoolSelectedWithPoolGroup) {
  // Only the v1alpha2 API is served (the v1 CRD is not installed).
  api_.Upsert(kube::kInferencePoolsV1Alpha2,
              kube::testing::MakePoolV1Alpha2(kPool, kNamespace, kPodLabels, port_));
  SetPod(0, false);
  SetPod(1, true);
  StartEpp({"--pool-group", "inference.networking.x-k8s.io"});
  ASSERT_TRUE(Serves({1}));
  ExpectOnlyPodsServe({1}, 6);
  SetPod(0, true);
  ASSERT_TRUE(Serves({0, 1}));
}

TEST_F(EppKubeTest, FallsBackToV1Alpha2WhenV1IsNotServed) {
  api_.Upsert(kube::kInferencePoolsV1Alpha2,
              kube::testing::MakePoolV1Alpha2(kPool, kNamespace, kPodLabels, port_));
  SetPod(2, true);
  StartEpp();
  ASSERT_TRUE(Serves({2}));
  ExpectOnlyPodsServe({2}, 4);
}

TEST_F(EppKubeTest, MissingPoolServesNothingUntilItAppears) {
  SetPod(0, true);
  api_.AddResource(kube::kInferencePoolsV1);  // the CRD is installed, the pool not yet created
  StartEpp();
  EXPECT_TRUE(EppEndpoints().empty());
  http::Headers headers = {{"Content-Type", "application/json"}};
  auto r = http::FetchBlocking(
      http::Method::post, fmt::format("http://127.0.0.1:{}/v1/completions", gateway_port_),
      fmt::format(R"({{"model":"{}","prompt":"x","max_tokens":2}})", kModel), headers);
  ASSERT_TRUE(r.ok()) << r.status();
  EXPECT_EQ(r->status, 503) << r->body;
  api_.Upsert(kube::kInferencePoolsV1,
              kube::testing::MakePoolV1(kPool, kNamespace, kPodLabels, {port_}));
  ASSERT_TRUE(Serves({0}));
  ExpectOnlyPodsServe({0}, 4);
}

// The pool's InferenceModelRewrite (llm-d.ai/v1alpha2) serves a client-facing alias as the
// model the Pods serve, and the client reads its alias back; deleting the object ends it.
TEST_F(EppKubeTest, ThePoolsInferenceModelRewriteServesAnAlias) {
  api_.Upsert(kube::kInferencePoolsV1,
              kube::testing::MakePoolV1(kPool, kNamespace, kPodLabels, {port_}));
  SetPod(0, true);
  auto rewrite =
      boost::json::parse(
          fmt::format(R"({{"metadata":{{"name":"alias","namespace":"{}"}},)"
                      R"("spec":{{"poolRef":{{"name":"{}"}},"rules":[{{)"
                      R"("matches":[{{"model":{{"type":"Exact","value":"team-alias"}}}}],)"
                      R"("targets":[{{"modelRewrite":"{}"}}]}}]}}}})",
                      kNamespace, kPool, kModel))
          .as_object();
  api_.Upsert(kube::kInferenceModelRewritesLlmd, rewrite);
  StartEpp();
  ASSERT_TRUE(Serves({0}));
  auto post = [&] {
    http::Headers headers = {{"Content-Type", "application/json"}};
    return http::FetchBlocking(http::Method::post,
                               fmt::format("http://127.0.0.1:{}/v1/completions", gateway_port_),
                               R"({"model":"team-alias","prompt":"x","max_tokens":2})", headers);
  };
  ASSERT_TRUE(Eventually([&] {
    auto r = post();
    return r.ok() && r->status == 200;
  })) << epp_->ReadLog();
  auto served = post();
  ASSERT_TRUE(served.ok());
  EXPECT_EQ(boost::json::parse(served->body).at("model").as_string(), "team-alias");

  ASSERT_TRUE(api_.Remove(kube::kInferenceModelRewritesLlmd, kNamespace, "alias"));
  EXPECT_TRUE(Eventually([&] {
    auto r = post();
    return r.ok() && r->status == 404;  // the sims do not know the alias
  })) << epp_->ReadLog();
}

}  // namespace
}  // namespace zumik
