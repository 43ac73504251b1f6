// Preflight checks against the Kubernetes API double: every prerequisite present, then each
// one missing with its fix, and the table.
#include "operator/preflight.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>

#include "kube/testing/fake_api_server.h"
#include "kube/testing/test_objects.h"
#include "operator/kube_session_fixture.h"

namespace zumik::op {
namespace {

namespace json = boost::json;
using kube::testing::MakeGpuNode;

const kube::Resource kPodAutoscalers{"autoscaling.aibrix.ai", "v1alpha1", "podautoscalers", true};
const kube::Resource kRayClusterFleets{"orchestration.aibrix.ai", "v1alpha1", "rayclusterfleets",
                                       true};

class PreflightTest : public testing::KubeSessionTest {
 protected:
  void InstallEverything() {
    api_.Upsert(kube::kNodes, MakeGpuNode("gpu-a", "NVIDIA-H100-80GB-HBM3", 8));
    api_.AddResource(kube::kInferenceServices);
    api_.AddResource(kube::kInferencePoolsV1);
    api_.AddResource(kPodAutoscalers);
    api_.AddResource(kRayClusterFleets);
  }
  const CheckResult* Find(const std::vector<CheckResult>& results, const std::string& prefix) {
    for (const auto& r : results) {
      if (r.name.rfind(prefix, 0) == 0) return &r;
    }
    return nullptr;
  }
};

TEST_F(PreflightTest, PassesWhenEveryPrerequisiteIsInstalled) {
  InstallEverything();
  PreflightOptions options;
  options.gpu_product = "NVIDIA-H100-80GB-HBM3";
  auto results = RunPreflight(*session_, options);
  EXPECT_TRUE(AllPassed(results)) << FormatPreflightTable(results);
  EXPECT_EQ(results.size(), 7u);
  EXPECT_NE(FormatPreflightTable(results).find("all checks passed"), std::string::npos);
}

TEST_F(PreflightTest, EachMissingPrerequisiteFailsWithItsFix) {
  api_.Upsert(kube::kNodes, MakeGpuNode("cpu-a", "", 0));
  PreflightOptions options;
  options.gpu_product = "NVIDIA-H100-80GB-HBM3";
  auto results = RunPreflight(*session_, options);
  EXPECT_FALSE(AllPassed(results));
  for (const char* name :
       {"GPU nodes", "KServe CRDs", "InferencePool CRD", "AIBrix CRDs", "GPU product"}) {
    const CheckResult* r = Find(results, name);
    ASSERT_NE(r, nullptr) << name;
    EXPECT_FALSE(r->passed) << name;
    EXPECT_FALSE(r->fix.empty()) << name;
  }
  EXPECT_NE(Find(results, "GPU nodes")->fix.find("GPU operator"), std::string::npos);
  EXPECT_NE(Find(results, "KServe CRDs")->fix.find("kserve.enabled=false"), std::string::npos);
  EXPECT_NE(Find(results, "AIBrix CRDs")->detail.find("orchestration.aibrix.ai"),
            std::string::npos);
  const std::string table = FormatPreflightTable(results);
  EXPECT_NE(table.find("FAIL"), std::string::npos);
  EXPECT_NE(table.find("fix: install the NVIDIA GPU operator"), std::string::npos);
  EXPECT_NE(table.find("5 of 7 checks failed"), std::string::npos) << table;
}

TEST_F(PreflightTest, DisabledComponentsAreNotChecked) {
  api_.Upsert(kube::kNodes, MakeGpuNode("gpu-a", "NVIDIA-L4", 1));
  PreflightOptions options;
  options.kserve = false;
  options.aibrix = false;
  options.router = false;
  auto results = RunPreflight(*session_, options);
  EXPECT_TRUE(AllPassed(results)) << FormatPreflightTable(results);
  EXPECT_EQ(Find(results, "KServe CRDs"), nullptr);
  EXPECT_EQ(Find(results, "AIBrix CRDs"), nullptr);
}

const kube::Resource kKnativeServices{"serving.knative.dev", "v1", "services", true};

json::object ConfigFeatures(const std::string& data) {
  return json::parse(R"({"metadata":{"name":"config-features","namespace":"knative-serving"},
      "data":)" + data +
                     "}")
      .as_object();
}

TEST_F(PreflightTest, KnativeModeNeedsKnativeServingAndThePodFieldFlags) {
  InstallEverything();
  PreflightOptions options;
  options.knative = true;
  options.gpu_product = "NVIDIA-H100-80GB-HBM3";

  // Without Knative Serving: one failure, and no flag check (there is no Knative to ask).
  auto results = RunPreflight(*session_, options);
  const CheckResult* serving = Find(results, "Knative Serving");
  ASSERT_NE(serving, nullptr);
  EXPECT_FALSE(serving->passed);
  EXPECT_NE(serving->fix.find("kserve.deploymentMode=Standard"), std::string::npos);
  EXPECT_EQ(Find(results, "Knative config-features"), nullptr);

  // Knative with its default features (no config-features ConfigMap): both flags are off.
  api_.AddResource(kKnativeServices);
  results = RunPreflight(*session_, options);
  EXPECT_TRUE(Find(results, "Knative Serving")->passed);
  const CheckResult* flags = Find(results, "Knative config-features");
  ASSERT_NE(flags, nullptr);
  EXPECT_FALSE(flags->passed);
  EXPECT_EQ(flags->detail,
            "not enabled: kubernetes.podspec-tolerations, kubernetes.podspec-nodeselector");
  EXPECT_EQ(flags->fix,
            "kubectl -n knative-serving patch configmap config-features --type merge -p "
            R"('{"data":{"kubernetes.podspec-tolerations":"enabled",)"
            R"("kubernetes.podspec-nodeselector":"enabled"}}')"
            "  (where the Knative Operator manages Knative: kubectl -n knative-serving patch "
            "knativeserving knative-serving --type merge -p "
            R"('{"spec":{"config":{"features":{"kubernetes.podspec-tolerations":"enabled",)"
            R"("kubernetes.podspec-nodeselector":"enabled"}}}}'))");

  // One flag on ("Enabled": Knative ignores case), the other explicitly off: only that one.
  api_.Upsert(kube::kConfigMaps, ConfigFeatures(R"({"kubernetes.podspec-tolerations":"Enabled",
                                 "kubernetes.podspec-nodeselector":"disabled"})"));
  results = RunPreflight(*session_, options);
  flags = Find(results, "Knative config-features");
  ASSERT_NE(flags, nullptr);
  EXPECT_EQ(flags->detail, "not enabled: kubernetes.podspec-nodeselector");

  // Both on ("allowed" admits the field as "enabled" does): passes. Without --gpu-product only
  // the tolerations flag is needed.
  api_.Upsert(kube::kConfigMaps, ConfigFeatures(R"({"kubernetes.podspec-tolerations":"enabled",
                                 "kubernetes.podspec-nodeselector":"allowed"})"));
  results = RunPreflight(*session_, options);
  EXPECT_TRUE(AllPassed(results)) << FormatPreflightTable(results);
  api_.Upsert(kube::kConfigMaps, ConfigFeatures(R"({"kubernetes.podspec-tolerations":"enabled"})"));
  options.gpu_product.clear();
  EXPECT_TRUE(AllPassed(RunPreflight(*session_, options)));
}

TEST_F(PreflightTest, AnotherReplicaSelectionOwnerOnTheSameRouteFails) {
  InstallEverything();
  api_.Upsert(kube::kHttpRoutes, json::parse(R"({"metadata":{"name":"dynamo","namespace":"dynamo"},
      "spec":{"rules":[{"matches":[{"path":{"type":"PathPrefix","value":"/"}}],
      "backendRefs":[{"name":"dynamo-frontend","port":8000}]}]}})")
                                     .as_object());
  api_.Upsert(kube::kHttpRoutes, json::parse(R"({"metadata":{"name":"mine","namespace":"serving",
      "labels":{"app.kubernetes.io/instance":"zumik"}},
      "spec":{"rules":[{"matches":[{"path":{"type":"PathPrefix","value":"/"}}],
      "backendRefs":[{"group":"inference.networking.k8s.io","kind":"InferencePool","name":"pool"}]}]}})")
                                     .as_object());
  PreflightOptions options;
  auto results = RunPreflight(*session_, options);
  const CheckResult* owner = Find(results, "Single route owner");
  ASSERT_NE(owner, nullptr);
  EXPECT_FALSE(owner->passed);
  EXPECT_NE(owner->detail.find("dynamo/dynamo"), std::string::npos) << owner->detail;
  EXPECT_EQ(owner->detail.find("mine"), std::string::npos);
  options.route = "/v2";
  EXPECT_TRUE(Find(RunPreflight(*session_, options), "Single route owner")->passed);
}

TEST_F(PreflightTest, AnUnreachableApiServerIsOneFailureWithAFix) {
  kube::Config config = api_.ClientConfig();
  api_.Stop();
  KubeSession dead(config);
  auto results = RunPreflight(dead, PreflightOptions{});
  ASSERT_EQ(results.size(), 1u);
  EXPECT_FALSE(results[0].passed);
  EXPECT_NE(results[0].fix.find("kubeconfig"), std::string::npos);
}

}  // namespace
}  // namespace zumik::op
