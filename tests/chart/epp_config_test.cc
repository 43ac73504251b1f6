// The EndpointPickerConfig the chart renders for our EPP loads in our scheduler, and the chart's
// default scorer values are the shipped zumik-default policy (bench/policies/zumik-default.yaml).
// Reads the reviewed golden rendering, which chart_golden keeps identical to `helm template`.
#include <gtest/gtest.h>

#include <fstream>
#include <sstream>
#include <string>

#include "core/rng.h"
#include "core/status.h"
#include "sched/config.h"
#include "sched/scheduler.h"
#include "yaml-cpp/yaml.h"

namespace zumik {
namespace {

std::string ReadFile(const std::string& path) {
  std::ifstream in(path);
  std::stringstream text;
  text << in.rdbuf();
  return text.str();
}

// data["config.yaml"] of the ConfigMap named <release>-k8s-portable-epp in a rendered manifest.
std::string RenderedEppConfig(const std::string& manifest_path) {
  std::vector<YAML::Node> docs;
  try {
    docs = YAML::LoadAll(ReadFile(manifest_path));
  } catch (const YAML::Exception& e) {
    ADD_FAILURE() << manifest_path << ": " << e.what();
    return "";
  }
  for (const YAML::Node& doc : docs) {
    if (!doc.IsMap() || doc["kind"].as<std::string>("") != "ConfigMap") continue;
    const std::string name = doc["metadata"]["name"].as<std::string>("");
    if (name.size() >= 4 && name.compare(name.size() - 4, 4, "-epp") == 0) {
      return doc["data"]["config.yaml"].as<std::string>("");
    }
  }
  ADD_FAILURE() << manifest_path << " has no EPP ConfigMap";
  return "";
}

// Helm renders 1.0 as 1: numbers compare as numbers, anything else as text.
bool SameScalar(const YAML::Node& a, const YAML::Node& b) {
  try {
    return a.as<double>() == b.as<double>();
  } catch (const YAML::Exception&) {
    return a.as<std::string>("") == b.as<std::string>("");
  }
}

YAML::Node PluginParameters(const sched::PolicyConfig& config, const std::string& type) {
  for (const sched::PluginSpec& plugin : config.plugins) {
    if (plugin.type == type) return plugin.parameters;
  }
  return YAML::Node();
}

TEST(ChartEppConfig, RenderedZumikConfigBuildsAScheduler) {
  const std::string text =
      RenderedEppConfig(std::string(ZUMIK_SOURCE_DIR) + "/tests/chart/golden/doc-install.yaml");
  ASSERT_FALSE(text.empty());
  auto config = sched::ParsePolicyConfig(text, "chart:epp/config.yaml");
  ASSERT_TRUE(config.ok()) << MessageOf(config.status());
  EXPECT_EQ(config->api_version, "llm-d.ai/v1alpha1");
  Rng rng(1);
  auto scheduler = sched::Scheduler::Create(*config, rng);
  EXPECT_TRUE(scheduler.ok()) << MessageOf(scheduler.status());
}

TEST(ChartEppConfig, DefaultScorerValuesAreTheZumikDefaultPolicy) {
  const std::string text =
      RenderedEppConfig(std::string(ZUMIK_SOURCE_DIR) + "/tests/chart/golden/doc-install.yaml");
  auto rendered = sched::ParsePolicyConfig(text, "chart:epp/config.yaml");
  auto shipped =
      sched::LoadPolicyFile(std::string(ZUMIK_SOURCE_DIR) + "/bench/policies/zumik-default.yaml");
  ASSERT_TRUE(rendered.ok()) << MessageOf(rendered.status());
  ASSERT_TRUE(shipped.ok()) << MessageOf(shipped.status());
  ASSERT_EQ(rendered->plugins.size(), shipped->plugins.size());
  for (const sched::PluginSpec& plugin : shipped->plugins) {
    const YAML::Node want = plugin.parameters;
    const YAML::Node got = PluginParameters(*rendered, plugin.type);
    if (!want.IsMap()) continue;
    for (const auto& entry : want) {
      const std::string key = entry.first.as<std::string>();
      ASSERT_TRUE(got.IsMap() && got[key]) << plugin.type << "." << key << " missing";
      EXPECT_TRUE(SameScalar(got[key], entry.second))
          << plugin.type << "." << key << ": " << got[key].as<std::string>("?") << " vs "
          << entry.second.as<std::string>("?");
    }
  }
  ASSERT_EQ(rendered->profiles.size(), 1u);
  ASSERT_EQ(shipped->profiles.size(), 1u);
  ASSERT_EQ(rendered->profiles[0].plugins.size(), shipped->profiles[0].plugins.size());
  for (size_t i = 0; i < shipped->profiles[0].plugins.size(); ++i) {
    EXPECT_EQ(rendered->profiles[0].plugins[i].plugin_ref,
              shipped->profiles[0].plugins[i].plugin_ref);
    EXPECT_EQ(rendered->profiles[0].plugins[i].weight.value_or(-1),
              shipped->profiles[0].plugins[i].weight.value_or(-1));
  }
}

}  // namespace
}  // namespace zumik
