// InferenceObjective / InferenceModelRewrite watches against the API test double: both API
// groups, a CRD installed after start, changes and deletions, the llm-d.ai object winning a
// name clash.
#include "kube/model_config_watch.h"

#include <gtest/gtest.h>

#include <mutex>

#include "core/http/test_util.h"
#include "core/json_path.h"
#include "kube/testing/fake_api_server.h"
#include "kube/testing/test_objects.h"

namespace zumik::kube {
namespace {

using http::testing::IoThreads;
using testing::FakeApiServer;
using testing::MakeMetadata;

boost::json::object Objective(const std::string& name, int priority) {
  boost::json::object object;
  object["metadata"] = MakeMetadata(name, "serving");
  object["spec"] = boost::json::object{{"priority", priority},
                                       {"poolRef", boost::json::object{{"name", "pool"}}}};
  return object;
}

boost::json::object Rewrite(const std::string& name, const std::string& target) {
  boost::json::object object;
  object["metadata"] = MakeMetadata(name, "serving");
  boost::json::array targets = {boost::json::object{{"modelRewrite", target}}};
  boost::json::array rules = {boost::json::object{{"targets", std::move(targets)}}};
  object["spec"] = boost::json::object{{"rules", std::move(rules)},
                                       {"poolRef", boost::json::object{{"name", "pool"}}}};
  return object;
}

class ModelConfigWatchTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    client_ = std::make_unique<Client>(io_.io().get_executor(), api_.ClientConfig());
  }
  void TearDown() override {
    if (watch_) watch_->Stop();
    watch_.reset();
    client_.reset();
    api_.Stop();
  }
  void StartWatch() {
    ModelConfigWatchOptions options;
    options.namespace_name = "serving";
    options.probe_interval = std::chrono::milliseconds(20);
    options.reflector.backoff.initial = std::chrono::milliseconds(1);
    options.reflector.backoff.max = std::chrono::milliseconds(20);
    watch_ = std::make_unique<ModelConfigWatch>(io_.io().get_executor(), *client_, options,
                                                [this](const ModelConfigObjects& objects) {
                                                  std::lock_guard lock(mu_);
                                                  last_ = Summary(objects);
                                                });
    watch_->Start();
  }
  // "objective:name=priority ... | rewrite:name->target ...".
  static std::string Summary(const ModelConfigObjects& objects) {
    std::string out;
    for (const auto& o : objects.objectives) {
      out += "objective:" + ObjectName(o) + "=" +
             std::to_string(FindPath(o, "spec.priority")->as_int64()) + " ";
    }
    out += "|";
    for (const auto& o : objects.rewrites) {
      const auto& rule = FindPath(o, "spec.rules")->as_array()[0].as_object();
      out += " rewrite:" + ObjectName(o) + "->" +
             std::string(rule.at("targets").as_array()[0].at("modelRewrite").as_string());
    }
    return out;
  }
  bool WaitForSummary(const std::string& expected) {
    return FakeApiServer::WaitFor([&] {
      std::lock_guard lock(mu_);
      return last_ == expected;
    });
  }
  std::string Last() {
    std::lock_guard lock(mu_);
    return last_;
  }

  FakeApiServer api_;
  IoThreads io_{2};
  std::unique_ptr<Client> client_;
  std::unique_ptr<ModelConfigWatch> watch_;
  std::mutex mu_;
  std::string last_ = "<none>";
};

TEST_F(ModelConfigWatchTest, ReportsBothGroupsAndFollowsChanges) {
  api_.Upsert(kInferenceObjectivesXK8s, Objective("batch", -1));
  api_.Upsert(kInferenceModelRewritesLlmd, Rewrite("alias", "lora-a"));
  api_.Upsert(kInferenceObjectivesLlmd, Objective("interactive", 10));
  StartWatch();
  ASSERT_TRUE(WaitForSummary("objective:interactive=10 objective:batch=-1 | rewrite:alias->lora-a"))
      << Last();

  api_.Upsert(kInferenceModelRewritesLlmd, Rewrite("alias", "lora-b"));
  ASSERT_TRUE(WaitForSummary("objective:interactive=10 objective:batch=-1 | rewrite:alias->lora-b"))
      << Last();
  // The same name under the older group: the llm-d.ai object is the one reported.
  api_.Upsert(kInferenceObjectivesXK8s, Objective("interactive", 3));
  api_.Upsert(kInferenceObjectivesXK8s, Objective("batch", -2));
  ASSERT_TRUE(WaitForSummary("objective:interactive=10 objective:batch=-2 | rewrite:alias->lora-b"))
      << Last();
  ASSERT_TRUE(api_.Remove(kInferenceObjectivesLlmd, "serving", "interactive"));
  ASSERT_TRUE(WaitForSummary("objective:batch=-2 objective:interactive=3 | rewrite:alias->lora-b"))
      << Last();
  ASSERT_TRUE(api_.Remove(kInferenceModelRewritesLlmd, "serving", "alias"));
  ASSERT_TRUE(WaitForSummary("objective:batch=-2 objective:interactive=3 |")) << Last();
}

TEST_F(ModelConfigWatchTest, ACrdInstalledLaterIsWatchedOnceServed) {
  api_.Upsert(kInferenceObjectivesLlmd, Objective("batch", -1));
  StartWatch();
  ASSERT_TRUE(WaitForSummary("objective:batch=-1 |")) << Last();
  std::vector<std::string> expected = {"inferenceobjectives.llm-d.ai"};
  EXPECT_EQ(watch_->watched(), expected);

  api_.Upsert(kInferenceModelRewritesXK8s, Rewrite("canary", "model-v2"));
  ASSERT_TRUE(WaitForSummary("objective:batch=-1 | rewrite:canary->model-v2")) << Last();
  EXPECT_EQ(watch_->watched().size(), 2u);
  // Objects of other namespaces are not the pool's.
  auto elsewhere = Objective("other", 4);
  elsewhere["metadata"].as_object()["namespace"] = "elsewhere";
  api_.Upsert(kInferenceObjectivesLlmd, elsewhere);
  api_.Upsert(kInferenceObjectivesLlmd, Objective("late", 2));
  ASSERT_TRUE(WaitForSummary("objective:batch=-1 objective:late=2 | rewrite:canary->model-v2"))
      << Last();
}

}  // namespace
}  // namespace zumik::kube
