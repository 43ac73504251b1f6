// EndpointPickerConfig: the GIE / llm-d router policy file (apiVersion
// inference.networking.x-k8s.io/v1alpha1 or llm-d.ai/v1alpha1, kind EndpointPickerConfig):
//   plugins: [{type, name (defaults to type), parameters}]
//   schedulingProfiles: [{name, plugins: [{pluginRef, weight (scorers; default 1)}]}]
// This file parses the structure; plugin parameters are validated when the Scheduler builds the
// plugins, and the upstream defaulting rules (no profile, no picker, no handler) apply there.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sched/saturation.h"
#include "yaml-cpp/yaml.h"

namespace zumik::sched {

struct PluginSpec {
  std::string name;  // defaults to type
  std::string type;
  YAML::Node parameters;  // null when absent
  std::string where;      // "file:line" of the entry, for messages
};

struct ProfilePluginRef {
  std::string plugin_ref;
  std::optional<double> weight;  // scorers only; default 1
  std::string where;
};

struct ProfileSpec {
  std::string name;
  std::vector<ProfilePluginRef> plugins;
  std::string where;
};

struct PolicyConfig {
  std::string name;    // the built-in name, or the file path
  std::string source;  // where it came from, for messages ("x.yaml", "<builtin:random>")
  std::string api_version;
  std::vector<std::string> feature_gates;  // accepted, no effect here
  std::vector<PluginSpec> plugins;
  std::vector<ProfileSpec> profiles;
  // GIE v1.x top-level `saturationDetector` (queueDepthThreshold, kvCacheUtilThreshold,
  // metricsStalenessThreshold): the EPP's admission thresholds.
  SaturationThresholds saturation;
};

absl::StatusOr<PolicyConfig> ParsePolicyConfig(std::string_view yaml_text, std::string source);
absl::StatusOr<PolicyConfig> LoadPolicyFile(const std::string& path);
// A built-in policy name (see builtin_policies.h) or a path to an EndpointPickerConfig file.
absl::StatusOr<PolicyConfig> LoadPolicy(std::string_view name_or_file);

}  // namespace zumik::sched
