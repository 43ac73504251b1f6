// InferenceObjective priorities and InferenceModelRewrite precedence, weights and parsing.
#include "epp/model_rules.h"

#include <fmt/format.h>
#include <gtest/gtest.h>

#include <boost/json.hpp>
#include <map>

#include "core/rng.h"

namespace zumik::epp {
namespace {

namespace json = boost::json;

json::object Parse(std::string_view text) { return json::parse(text).as_object(); }

json::object Objective(std::string_view name, std::string_view pool, std::string_view spec_extra) {
  return Parse(fmt::format(
      R"({{"metadata":{{"name":"{}","namespace":"ns"}},"spec":{{"poolRef":{{"name":"{}"}}{}}}}})",
      name, pool, spec_extra));
}

json::object Rewrite(std::string_view name, std::string_view created, std::string_view rules,
                     std::string_view pool = "pool") {
  return Parse(fmt::format(
      R"({{"metadata":{{"name":"{}","namespace":"ns","creationTimestamp":"{}"}},)"
      R"("spec":{{"poolRef":{{"group":"inference.networking.k8s.io","name":"{}"}},"rules":{}}}}})",
      name, created, pool, rules));
}

std::string ExactRule(std::string_view model, std::string_view targets) {
  return fmt::format(R"({{"matches":[{{"model":{{"type":"Exact","value":"{}"}}}}],"targets":{}}})",
                     model, targets);
}

// How often each target is picked over `n` draws of one seeded stream.
std::map<std::string, int> Picks(const RewriteRule& rule, int n) {
  std::map<std::string, int> out;
  Rng rng(7);
  for (int i = 0; i < n; ++i) ++out[ModelRules::PickTarget(rule, rng.Next())];
  return out;
}

TEST(ModelRules, ObjectivesGivePrioritiesForTheirPoolOnly) {
  std::vector<json::object> objectives = {Objective("batch", "pool", R"(,"priority":-5)"),
                                          Objective("interactive", "pool", ""),
                                          Objective("other-pools", "elsewhere", R"(,"priority":9)"),
                                          Objective("huge", "pool", R"(,"priority":99999999999)")};
  std::vector<std::string> problems;
  ModelRules rules = ModelRules::FromObjects(objectives, {}, "pool", &problems);
  EXPECT_EQ(rules.Priority("batch"), -5);
  EXPECT_EQ(rules.Priority("interactive"), 0);  // unset priority = 0
  EXPECT_EQ(rules.Priority("other-pools"), std::nullopt);
  EXPECT_EQ(rules.Priority("huge"), std::nullopt);
  ASSERT_EQ(problems.size(), 1u);
  EXPECT_NE(problems[0].find("InferenceObjective ns/huge"), std::string::npos) << problems[0];
  EXPECT_EQ(rules.objective_count(), 2u);
}

TEST(ModelRules, ExactMatchesBeatGenericRulesAndTheOldestObjectWins) {
  std::vector<json::object> rewrites = {
      Rewrite("newer", "2026-03-01T00:00:00Z",
              fmt::format("[{}]", ExactRule("alias", R"([{"modelRewrite":"from-newer"}])"))),
      Rewrite("older", "2026-01-01T00:00:00Z",
              fmt::format("[{}]", ExactRule("alias", R"([{"modelRewrite":"from-older"}])"))),
      Rewrite("catch-all", "2025-01-01T00:00:00Z",
              R"([{"matches":[],"targets":[{"modelRewrite":"default-model"}]}])"),
      Rewrite("not-ours", "2020-01-01T00:00:00Z",
              fmt::format("[{}]", ExactRule("alias", R"([{"modelRewrite":"wrong"}])")), "other")};
  ModelRules rules = ModelRules::FromObjects({}, rewrites, "pool");
  ASSERT_NE(rules.RuleFor("alias"), nullptr);
  EXPECT_EQ(rules.RuleFor("alias")->source, "older");
  EXPECT_EQ(rules.RuleFor("alias")->targets[0].model, "from-older");
  ASSERT_NE(rules.RuleFor("anything-else"), nullptr);
  EXPECT_EQ(rules.RuleFor("anything-else")->targets[0].model, "default-model");
  EXPECT_EQ(rules.rule_count(), 3u);

  // Without the generic rule an unmatched model has no rule; same timestamp: by name.
  std::vector<json::object> tied = {
      Rewrite("b", "2026-01-01T00:00:00Z",
              fmt::format("[{}]", ExactRule("m", R"([{"modelRewrite":"from-b"}])"))),
      Rewrite("a", "2026-01-01T00:00:00Z",
              fmt::format("[{}]", ExactRule("m", R"([{"modelRewrite":"from-a"}])")))};
  ModelRules by_name = ModelRules::FromObjects({}, tied, "pool");
  EXPECT_EQ(by_name.RuleFor("m")->targets[0].model, "from-a");
  EXPECT_EQ(by_name.RuleFor("unmatched"), nullptr);
}

TEST(ModelRules, MalformedRulesAreSkippedAndDescribed) {
  std::vector<json::object> rewrites = {
      Rewrite("mixed", "2026-01-01T00:00:00Z",
              fmt::format("[{},{},{},{}]", ExactRule("no-targets", "[]"),
                          ExactRule("bad-weight", R"([{"modelRewrite":"x","weight":-1}])"),
                          R"({"matches":[{"model":{"type":"RegularExpression","value":"a.*"}}],)"
                          R"("targets":[{"modelRewrite":"never"}]})",
                          ExactRule("fine", R"([{"modelRewrite":"ok","weight":5}])")))};
  std::vector<std::string> problems;
  ModelRules rules = ModelRules::FromObjects({}, rewrites, "pool", &problems);
  EXPECT_EQ(rules.RuleFor("no-targets"), nullptr);
  EXPECT_EQ(rules.RuleFor("bad-weight"), nullptr);
  // A rule whose matches are all of an unsupported type matches nothing (not everything).
  EXPECT_EQ(rules.RuleFor("abc"), nullptr);
  ASSERT_NE(rules.RuleFor("fine"), nullptr);
  ASSERT_EQ(problems.size(), 2u);
  EXPECT_NE(problems[0].find("rule 0 has no targets"), std::string::npos) << problems[0];
  EXPECT_NE(problems[1].find("weight outside 0..1000000"), std::string::npos) << problems[1];
}

TEST(ModelRules, TargetsArePickedByWeight) {
  RewriteRule weighted{"r", {{"a", 90}, {"b", 10}}};
  auto picks = Picks(weighted, 10000);
  EXPECT_NEAR(picks["a"], 9000, 150);
  EXPECT_NEAR(picks["b"], 1000, 150);

  RewriteRule unweighted{"r", {{"a", 0}, {"b", 0}, {"c", 0}}};
  picks = Picks(unweighted, 9000);
  for (const char* name : {"a", "b", "c"}) EXPECT_NEAR(picks[name], 3000, 150) << name;

  // A target without a weight next to weighted ones is never chosen.
  RewriteRule mixed{"r", {{"a", 0}, {"b", 1}}};
  picks = Picks(mixed, 1000);
  EXPECT_EQ(picks["a"], 0);
  EXPECT_EQ(picks["b"], 1000);
}

TEST(ModelRules, CommandLineRules) {
  ModelRules rules;
  ASSERT_TRUE(rules.AddRewriteFlag("alias=model-v1:90,model-v2:10").ok());
  ASSERT_TRUE(rules.AddRewriteFlag("*=fallback").ok());
  ASSERT_TRUE(rules.AddRewriteFlag("colon=org/model:7b").ok());
  ASSERT_TRUE(rules.AddRewriteFlag("alias=ignored").ok());  // a later rule ranks after
  const RewriteRule* alias = rules.RuleFor("alias");
  ASSERT_NE(alias, nullptr);
  ASSERT_EQ(alias->targets.size(), 2u);
  EXPECT_EQ(alias->targets[0].model, "model-v1");
  EXPECT_EQ(alias->targets[0].weight, 90);
  EXPECT_EQ(alias->targets[1].model, "model-v2");
  EXPECT_EQ(alias->source, "flag");
  EXPECT_EQ(rules.RuleFor("colon")->targets[0].model, "org/model:7b");  // "7b" is no weight
  EXPECT_EQ(rules.RuleFor("other")->targets[0].model, "fallback");

  for (const char* bad : {"no-equals", "=target", "m=", "m=a,", "m=a:2000000"}) {
    absl::Status status = rules.AddRewriteFlag(bad);
    EXPECT_EQ(status.code(), absl::StatusCode::kInvalidArgument) << bad;
    EXPECT_NE(status.message().find("MODEL=TARGET[:WEIGHT]"), std::string_view::npos) << bad;
  }
}

}  // namespace
}  // namespace zumik::epp
