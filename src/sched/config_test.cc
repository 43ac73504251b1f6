// EndpointPickerConfig: parsing, the upstream defaulting rules, and errors that name the file,
// line, plugin and parameter.
#include "sched/config.h"

#include <gtest/gtest.h>

#include <string>

#include "core/rng.h"
#include "core/status.h"
#include "sched/plugin.h"
#include "sched/scheduler.h"

namespace zumik::sched {
namespace {

absl::StatusOr<std::unique_ptr<Scheduler>> Build(const std::string& yaml, Rng& rng) {
  ASSIGN_OR_RETURN(PolicyConfig config, ParsePolicyConfig(yaml, "t.yaml"));
  return Scheduler::Create(config, rng);
}

std::vector<std::string> Names(const std::vector<WeightedScorer>& scorers) {
  std::vector<std::string> out;
  out.reserve(scorers.size());
  for (const auto& s : scorers) out.push_back(s.scorer->name());
  return out;
}

TEST(PolicyConfig, ParsesPluginsAndProfiles) {
  const char* yaml = R"(apiVersion: llm-d.ai/v1alpha1
kind: EndpointPickerConfig
featureGates: [prepareDataPlugins]
plugins:
- type: queue-scorer
- name: kv
  type: kv-cache-utilization-scorer
- type: max-score-picker
  parameters:
    maxNumOfEndpoints: 2
schedulingProfiles:
- name: main
  plugins:
  - pluginRef: queue-scorer
    weight: 2.5
  - pluginRef: kv
  - pluginRef: max-score-picker
saturationDetector:
  queueDepthThreshold: 7
  metricsStalenessThreshold: 150ms
)";
  auto config = ParsePolicyConfig(yaml, "t.yaml");
  ASSERT_TRUE(config.ok()) << config.status();
  ASSERT_EQ(config->plugins.size(), 3u);
  EXPECT_EQ(config->plugins[0].name, "queue-scorer");  // name defaults to type
  EXPECT_EQ(config->plugins[1].name, "kv");
  EXPECT_EQ(config->plugins[1].where, "t.yaml:6");
  EXPECT_EQ(config->feature_gates, std::vector<std::string>{"prepareDataPlugins"});
  EXPECT_EQ(config->saturation.queue_depth, 7);
  EXPECT_DOUBLE_EQ(config->saturation.kv_cache_util, 0.8);
  EXPECT_EQ(config->saturation.metrics_staleness, std::chrono::milliseconds(150));

  Rng rng(1);
  auto scheduler = Scheduler::Create(*config, rng);
  ASSERT_TRUE(scheduler.ok()) << scheduler.status();
  const auto& profiles = (*scheduler)->profiles();
  ASSERT_EQ(profiles.size(), 1u);
  EXPECT_EQ(profiles[0].name, "main");
  EXPECT_EQ(Names(profiles[0].scorers), (std::vector<std::string>{"queue-scorer", "kv"}));
  EXPECT_DOUBLE_EQ(profiles[0].scorers[0].weight, 2.5);
  EXPECT_DOUBLE_EQ(profiles[0].scorers[1].weight, 1.0);  // weight defaults to 1
  EXPECT_EQ(profiles[0].picker->max_endpoints(), 2);
  EXPECT_NE((*scheduler)->FindPlugin("single-profile-handler"), nullptr);
}

TEST(PolicyConfig, NoProfileMeansOneDefaultProfileWithEveryPluginAndAMaxScorePicker) {
  Rng rng(1);
  auto scheduler = Build(R"(plugins:
- type: decode-filter
- type: queue-scorer
- type: prefix-cache-scorer
)",
                         rng);
  ASSERT_TRUE(scheduler.ok()) << scheduler.status();
  const auto& profiles = (*scheduler)->profiles();
  ASSERT_EQ(profiles.size(), 1u);
  EXPECT_EQ(profiles[0].name, "default");
  ASSERT_EQ(profiles[0].filters.size(), 1u);
  EXPECT_EQ(profiles[0].filters[0]->type(), "decode-filter");
  EXPECT_EQ(Names(profiles[0].scorers),
            (std::vector<std::string>{"queue-scorer", "prefix-cache-scorer"}));
  ASSERT_NE(profiles[0].picker, nullptr);
  EXPECT_EQ(profiles[0].picker->type(), "max-score-picker");
  // The prefix scorer brought an implicit prefix producer.
  EXPECT_NE((*scheduler)->FindPlugin("approx-prefix-cache-producer"), nullptr);
  EXPECT_NE((*scheduler)->prefix_index(), nullptr);
}

TEST(PolicyConfig, ColdOnlyKvScorerBringsAnImplicitPrefixProducer) {
  Rng rng(1);
  auto cold_only = Build(
      "plugins:\n- type: kv-cache-utilization-scorer\n  parameters:\n    coldOnly: true\n", rng);
  ASSERT_TRUE(cold_only.ok()) << cold_only.status();
  EXPECT_NE((*cold_only)->FindPlugin("approx-prefix-cache-producer"), nullptr);
  auto plain = Build("plugins:\n- type: kv-cache-utilization-scorer\n", rng);
  ASSERT_TRUE(plain.ok()) << plain.status();
  EXPECT_EQ((*plain)->FindPlugin("approx-prefix-cache-producer"), nullptr);
}

TEST(PolicyConfig, AProfileWithoutPickerGetsMaxScorePicker) {
  Rng rng(1);
  auto scheduler = Build(R"(plugins:
- type: queue-scorer
schedulingProfiles:
- name: p
  plugins:
  - pluginRef: queue-scorer
)",
                         rng);
  ASSERT_TRUE(scheduler.ok()) << scheduler.status();
  EXPECT_EQ((*scheduler)->profiles()[0].picker->type(), "max-score-picker");
  EXPECT_EQ((*scheduler)->prefix_index(), nullptr);  // nothing needs the prefix match
}

TEST(PolicyConfig, PrefixScorerIndexParametersConfigureTheImplicitProducer) {
  Rng rng(1);
  auto scheduler = Build(R"(plugins:
- type: prefix-cache-scorer
  parameters:
    blockSize: 128
    maxPrefixBlocksToMatch: 4
    autoTune: false
)",
                         rng);
  ASSERT_TRUE(scheduler.ok()) << scheduler.status();
  InferenceRequest request;
  request.model = "m";
  const std::string prompt(size_t{128} * 10, 'a');
  request.prompt = prompt;
  (*scheduler)->PrepareRequest(request);
  EXPECT_EQ(request.hashes.block_bytes, 128);
  EXPECT_EQ(request.hashes.blocks.size(), 4u);
}

struct BadCase {
  const char* name;
  const char* yaml;
  const char* message;  // expected substring
};

class BadPolicy : public ::testing::TestWithParam<BadCase> {};

TEST_P(BadPolicy, IsRejectedWithAMessageThatNamesWhereAndWhat) {
  Rng rng(1);
  auto scheduler = Build(GetParam().yaml, rng);
  ASSERT_FALSE(scheduler.ok());
  EXPECT_EQ(scheduler.status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(std::string(MessageOf(scheduler.status())).find(GetParam().message), std::string::npos)
      << MessageOf(scheduler.status());
}

INSTANTIATE_TEST_SUITE_P(
    Table, BadPolicy,
    ::testing::Values(
        BadCase{"UnknownType", "plugins:\n- type: queue-scorer\n- name: x\n  type: nope\n",
                "t.yaml:3: plugin 'x' (type nope): unknown plugin type; known types: "},
        BadCase{"UnknownParameter",
                "plugins:\n- type: queue-scorer\n  name: q\n  parameters:\n    foo: 1\n",
                "t.yaml:5: plugin 'q' (type queue-scorer): parameter 'foo': unknown parameter"},
        BadCase{"WrongValueType",
                "plugins:\n- type: prefix-cache-affinity-filter\n  parameters:\n"
                "    affinityThreshold: high\n",
                "t.yaml:4: plugin 'prefix-cache-affinity-filter' (type "
                "prefix-cache-affinity-filter): parameter 'affinityThreshold': expected a "
                "number, got 'high'"},
        BadCase{"OutOfRange",
                "plugins:\n- type: prefix-cache-affinity-filter\n  parameters:\n"
                "    affinityThreshold: 1.5\n",
                "parameter 'affinityThreshold': must be between 0 and 1, got 1.5"},
        BadCase{"NegativeCount",
                "plugins:\n- type: max-score-picker\n  parameters:\n    maxNumOfEndpoints: 0\n",
                "parameter 'maxNumOfEndpoints': must be at least 1"},
        BadCase{"ParametersNotAMap", "plugins:\n- type: queue-scorer\n  parameters: [1, 2]\n",
                "t.yaml:3: plugin 'queue-scorer' (type queue-scorer): parameters must be a "
                "mapping"},
        BadCase{"MissingType", "plugins:\n- name: x\n", "t.yaml:2: plugins[0] has no 'type'"},
        BadCase{"DuplicateName", "plugins:\n- type: queue-scorer\n- type: queue-scorer\n",
                "plugin name 'queue-scorer' is used twice"},
        BadCase{"UnknownPluginRef",
                "plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: p\n  plugins:\n"
                "  - pluginRef: kv\n",
                "t.yaml:6: profile 'p': pluginRef 'kv' names no plugin"},
        BadCase{"WeightOnAPicker",
                "plugins:\n- type: random-picker\nschedulingProfiles:\n- name: p\n  plugins:\n"
                "  - pluginRef: random-picker\n    weight: 2\n",
                "plugin 'random-picker' is a picker; weight applies to scorers only"},
        BadCase{"TwoPickers", "plugins:\n- type: random-picker\n- type: max-score-picker\n",
                "a second picker 'max-score-picker'"},
        BadCase{"NegativeWeight",
                "plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: p\n  plugins:\n"
                "  - pluginRef: queue-scorer\n    weight: -1\n",
                "weight': must be a number"},
        BadCase{"TwoProfilesWithoutHandler",
                "plugins:\n- type: queue-scorer\nschedulingProfiles:\n- name: a\n- name: b\n",
                "2 scheduling profiles need a profile handler"},
        BadCase{"ProducerInAProfile",
                "plugins:\n- type: approx-prefix-cache-producer\nschedulingProfiles:\n"
                "- name: p\n  plugins:\n  - pluginRef: approx-prefix-cache-producer\n",
                "is a data producer; list it under 'plugins' only"},
        BadCase{"IndexParametersTwice",
                "plugins:\n- type: approx-prefix-cache-producer\n- type: prefix-cache-scorer\n"
                "  parameters:\n    blockSize: 32\n",
                "move them there"},
        BadCase{"BadApiVersion", "apiVersion: v9\nplugins: []\n",
                "t.yaml:1: key 'apiVersion': 'v9' is not supported"},
        BadCase{"BadKind", "kind: Deployment\n", "expected EndpointPickerConfig"},
        BadCase{"UnknownTopLevelKey", "plugins: []\nprofiles: []\n",
                "t.yaml:2: unknown key 'profiles'"},
        BadCase{"UnsupportedSection", "flowControl: {}\n", "key 'flowControl': is not supported"},
        BadCase{"BadStrategy",
                "plugins:\n- type: session-affinity-scorer\n  parameters:\n"
                "    strategy: cookie\n",
                "parameter 'strategy': use encoded_endpoint_header or session_id"},
        BadCase{"ColdOnlyNotABool",
                "plugins:\n- type: kv-cache-utilization-scorer\n  parameters:\n"
                "    coldOnly: sometimes\n",
                "t.yaml:4: plugin 'kv-cache-utilization-scorer' (type "
                "kv-cache-utilization-scorer): parameter 'coldOnly': expected true or false, "
                "got 'sometimes'"},
        BadCase{"BadSelectorOperator",
                "plugins:\n- type: label-selector-filter\n  parameters:\n"
                "    matchExpressions:\n    - {key: a, operator: Near, values: [x]}\n",
                "parameter 'matchExpressions': operator 'Near'"},
        BadCase{"InvalidYaml", "plugins: [\n", "t.yaml:"},
        BadCase{"Empty", "", "the policy is empty"}),
    [](const ::testing::TestParamInfo<BadCase>& param_info) { return param_info.param.name; });

TEST(PolicyConfig, UnknownParameterMessageIsExact) {
  Rng rng(1);
  auto scheduler = Build(
      "plugins:\n- type: queue-scorer\n  name: q\n  parameters:\n"
      "    foo: 1\n",
      rng);
  ASSERT_FALSE(scheduler.ok());
  EXPECT_EQ(MessageOf(scheduler.status()),
            "t.yaml:5: plugin 'q' (type queue-scorer): parameter 'foo': unknown parameter for "
            "queue-scorer; check its spelling against the plugin's documentation");
}

TEST(PolicyConfig, LoadPolicyResolvesBuiltinsAndReportsUnknownNames) {
  auto builtin = LoadPolicy("gie-default");
  ASSERT_TRUE(builtin.ok()) << builtin.status();
  EXPECT_EQ(builtin->name, "gie-default");
  EXPECT_EQ(builtin->source, "<builtin:gie-default>");
  auto missing = LoadPolicy("/nonexistent/policy.yaml");
  ASSERT_FALSE(missing.ok());
  EXPECT_EQ(missing.status().code(), absl::StatusCode::kNotFound);
  EXPECT_NE(std::string(MessageOf(missing.status())).find("zumik-default"), std::string::npos);
}

}  // namespace
}  // namespace zumik::sched
