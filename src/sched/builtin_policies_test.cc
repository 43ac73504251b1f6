// Built-in policies: the embedded text is exactly bench/policies/<name>.yaml, and each one
// builds a working Scheduler.
#include "sched/builtin_policies.h"

#include <gtest/gtest.h>

#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "core/rng.h"
#include "sched/scheduler.h"
#include "sched/test_util.h"

namespace zumik::sched {
namespace {

const std::filesystem::path kPolicyDir = std::filesystem::path(ZUMIK_SOURCE_DIR) / "bench" /
                                         "policies";

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(BuiltinPolicies, AreTheSixNamedPolicies) {
  std::set<std::string> names;
  for (const BuiltinPolicy& p : BuiltinPolicies()) names.emplace(p.name);
  EXPECT_EQ(names, (std::set<std::string>{"round-robin", "random", "least-request",
                                          "gie-default", "llm-d-default", "zumik-default"}));
  EXPECT_EQ(FindBuiltinPolicy("nope"), nullptr);
}

TEST(BuiltinPolicies, EmbeddedTextIsIdenticalToTheShippedFiles) {
  std::set<std::string> files;
  for (const auto& entry : std::filesystem::directory_iterator(kPolicyDir)) {
    if (entry.path().extension() == ".yaml") files.insert(entry.path().stem().string());
  }
  std::set<std::string> names;
  for (const BuiltinPolicy& p : BuiltinPolicies()) {
    names.emplace(p.name);
    EXPECT_EQ(std::string(p.yaml), ReadFile(kPolicyDir / (std::string(p.name) + ".yaml")))
        << p.name << ": bench/policies and builtin_policies.cc differ; edit both together";
  }
  EXPECT_EQ(files, names) << "every shipped policy file is a built-in and vice versa";
}

TEST(BuiltinPolicies, EachBuildsASchedulerThatPicks) {
  for (const BuiltinPolicy& p : BuiltinPolicies()) {
    Rng rng(3);
    auto scheduler = Scheduler::FromPolicy(p.name, rng);
    ASSERT_TRUE(scheduler.ok()) << p.name << ": " << scheduler.status();
    EXPECT_EQ((*scheduler)->policy_name(), p.name);
    std::vector<Endpoint> endpoints = {testing::MakeEndpoint(0), testing::MakeEndpoint(1)};
    const std::string prompt(4096, 'p');
    InferenceRequest request;
    request.model = "m";
    request.prompt = prompt;
    auto pick = (*scheduler)->Pick(request, endpoints, Time{0});
    ASSERT_TRUE(pick.ok()) << p.name << ": " << pick.status();
    EXPECT_EQ(pick->targets.size(), 1u);
    EXPECT_TRUE((*scheduler)->OnComplete(pick->handle, Time{1}));
  }
}

TEST(BuiltinPolicies, ShippedFilesLoadByPath) {
  Rng rng(1);
  auto scheduler = Scheduler::FromPolicy((kPolicyDir / "zumik-default.yaml").string(), rng);
  ASSERT_TRUE(scheduler.ok()) << scheduler.status();
  EXPECT_EQ((*scheduler)->config().source, (kPolicyDir / "zumik-default.yaml").string());
  EXPECT_NE((*scheduler)->FindPlugin("prefix-cache-affinity-filter"), nullptr);
  EXPECT_NE((*scheduler)->FindPlugin("no-hit-lru-scorer"), nullptr);
}

}  // namespace
}  // namespace zumik::sched
