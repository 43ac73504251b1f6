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

const std::filesystem::path kPolicyDir =
    std::filesystem::path(ZUMIK_SOURCE_DIR) / "bench" / "policies";

std::string ReadFile(const std::filesystem::path& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

TEST(BuiltinPolicies, AreTheSixNamedPolicies) {
  std::set<std::string> names;
  for (const BuiltinPolicy& p : BuiltinPolicies()) names.emplace(p.name);
  EXPECT_EQ(names, (std::set<std::string>{"round-robin", "random", "least-request", "gie-default",
                                          "llm-d-default", "zumik-default"}));
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
  EXPECT_NE((*scheduler)->FindPlugin("active-request-scorer"), nullptr);
  EXPECT_NE((*scheduler)->FindPlugin("queue-scorer"), nullptr);
  EXPECT_NE((*scheduler)->FindPlugin("prefix-cache-scorer"), nullptr);
}

// zumik-default on four idle endpoints; Pick returns the primary target of a prompt.
struct ZumikOnFourEndpoints {
  explicit ZumikOnFourEndpoints(Rng& rng) : scheduler(Scheduler::FromPolicy("zumik-default", rng)) {
    for (EndpointId id = 0; id < 4; ++id) endpoints.push_back(testing::MakeEndpoint(id));
  }
  EndpointId Pick(const std::string& prompt) {
    EXPECT_TRUE(scheduler.ok()) << scheduler.status();
    if (!scheduler.ok()) return 99;
    InferenceRequest request;
    request.model = "m";
    request.prompt = prompt;
    auto result = (*scheduler)->Pick(request, endpoints, Time{0});
    EXPECT_TRUE(result.ok()) << result.status();
    return result.ok() ? result->targets.front() : EndpointId{99};
  }
  absl::StatusOr<std::unique_ptr<Scheduler>> scheduler;
  std::vector<Endpoint> endpoints;
};

// The behaviour zumik-default was tuned for (bench/RESULTS.md): a prompt cached nowhere goes to
// the endpoint that least recently received a new prefix, unless that endpoint has clearly more
// requests in flight than another; a prompt cached on an endpoint stays there.
TEST(BuiltinPolicies, ZumikDefaultSpreadsNewPrefixesByRecencyAndLoad) {
  Rng rng(1);
  ZumikOnFourEndpoints fleet(rng);
  std::vector<std::string> prompts;
  for (char c = 'a'; c <= 'h'; ++c) prompts.push_back(std::string(4096, c));
  auto pick = [&](const std::string& prompt) { return fleet.Pick(prompt); };
  // Four new prefixes on an idle fleet: one per endpoint.
  std::set<EndpointId> first;
  for (int i = 0; i < 4; ++i) first.insert(pick(prompts[static_cast<size_t>(i)]));
  EXPECT_EQ(first.size(), 4u);
  // A cached prompt sticks to its endpoint although every endpoint is equally loaded.
  const EndpointId home = pick(prompts[0]);
  EXPECT_EQ(pick(prompts[0]), home);
  // `home` now has three requests in flight and the others one: the next new prefix goes to
  // one of the others, though `home` received a new prefix first (least recently).
  const EndpointId fresh = pick(prompts[4]);
  EXPECT_NE(fresh, home);
}

// minAffinityTokens (bench/RESULTS.md, "Sixth round"): a prompt whose 1,200-token shared prefix is
// only 17% of it goes to the endpoint holding that prefix while that endpoint is not clearly
// busier (≤ 1.2 × the least busy other's in-flight requests + 3), elsewhere beyond that.
TEST(BuiltinPolicies, ZumikDefaultKeepsALongSharedPrefixHomeUntilItIsClearlyBusier) {
  Rng rng(1);
  ZumikOnFourEndpoints fleet(rng);
  auto pick = [&](const std::string& prompt) { return fleet.Pick(prompt); };
  // 1,200 shared tokens (4 bytes each) ahead of a 6,000-token private question.
  const auto prompt = [](char group, char question) {
    return std::string(4800, group) + std::string(24000, question);
  };
  const EndpointId home = pick(prompt('s', 'A'));
  for (char group = 't'; group <= 'v'; ++group) pick(prompt(group, 'A'));  // one per endpoint
  pick(prompt('s', 'A'));  // the same prompt again: home by share, 3 in flight there vs 1
  pick(prompt('s', 'A'));
  EXPECT_EQ(pick(prompt('s', 'B')), home);  // 3 ≤ 1 × 1.2 + 3: the shared prefix wins
  EXPECT_EQ(pick(prompt('s', 'C')), home);  // 4 ≤ 4.2
  EXPECT_NE(pick(prompt('s', 'D')), home);  // 5 > 4.2: load wins
}

}  // namespace
}  // namespace zumik::sched
