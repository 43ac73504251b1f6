// EndpointPickerConfig parsing (see config.h).
#include "sched/config.h"

#include <fstream>
#include <set>
#include <sstream>
#include <utility>

#include "core/config.h"
#include "core/status.h"
#include "fmt/format.h"
#include "sched/builtin_policies.h"

namespace zumik::sched {
namespace {

constexpr std::string_view kApiVersions[] = {"inference.networking.x-k8s.io/v1alpha1",
                                             "llm-d.ai/v1alpha1"};
// Upstream sections that configure parts of the EPP this scheduler does not have.
constexpr std::string_view kUnsupportedSections[] = {"dataLayer", "flowControl", "requestHandler",
                                                     "parser"};

absl::Status ParsePlugins(const YAML::Node& list, const std::string& source, PolicyConfig& config) {
  if (!list || list.IsNull()) return absl::OkStatus();
  if (!list.IsSequence()) {
    return Errorf(absl::StatusCode::kInvalidArgument, "{}: 'plugins' must be a list",
                  Where(list, source));
  }
  std::set<std::string, std::less<>> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    FieldReader r(item, source, fmt::format("plugins[{}]", i));
    RETURN_IF_ERROR(r.CheckIsMap());
    PluginSpec spec;
    spec.where = Where(item, source);
    RETURN_IF_ERROR(r.Read("type", &spec.type));
    RETURN_IF_ERROR(r.Read("name", &spec.name));
    spec.parameters.reset(r.Child("parameters"));
    RETURN_IF_ERROR(r.Finish());
    if (spec.type.empty()) {
      return Errorf(absl::StatusCode::kInvalidArgument,
                    "{}: plugins[{}] has no 'type': name an upstream plugin type such as "
                    "queue-scorer",
                    spec.where, i);
    }
    if (spec.name.empty()) spec.name = spec.type;
    if (!names.insert(spec.name).second) {
      return Errorf(absl::StatusCode::kInvalidArgument,
                    "{}: plugin name '{}' is used twice: give each instance its own 'name'",
                    spec.where, spec.name);
    }
    config.plugins.push_back(std::move(spec));
  }
  return absl::OkStatus();
}

absl::Status ParseProfiles(const YAML::Node& list, const std::string& source,
                           PolicyConfig& config) {
  if (!list || list.IsNull()) return absl::OkStatus();
  if (!list.IsSequence()) {
    return Errorf(absl::StatusCode::kInvalidArgument, "{}: 'schedulingProfiles' must be a list",
                  Where(list, source));
  }
  std::set<std::string, std::less<>> names;
  for (size_t i = 0; i < list.size(); ++i) {
    const YAML::Node item = list[i];
    const std::string path = fmt::format("schedulingProfiles[{}]", i);
    FieldReader r(item, source, path);
    RETURN_IF_ERROR(r.CheckIsMap());
    ProfileSpec profile;
    profile.where = Where(item, source);
    RETURN_IF_ERROR(r.Read("name", &profile.name));
    if (profile.name.empty()) return r.Error("name", "every profile needs a name");
    if (!names.insert(profile.name).second) {
      return r.Error("name", fmt::format("profile '{}' is defined twice", profile.name));
    }
    const YAML::Node refs = r.Child("plugins");
    RETURN_IF_ERROR(r.Finish());
    if (refs && !refs.IsNull() && !refs.IsSequence()) {
      return r.Error("plugins", "expected a list of {pluginRef, weight}");
    }
    for (size_t j = 0; refs && refs.IsSequence() && j < refs.size(); ++j) {
      const YAML::Node ref_node = refs[j];
      FieldReader rr(ref_node, source, fmt::format("{}.plugins[{}]", path, j));
      RETURN_IF_ERROR(rr.CheckIsMap());
      ProfilePluginRef ref;
      ref.where = Where(ref_node, source);
      RETURN_IF_ERROR(rr.Read("pluginRef", &ref.plugin_ref));
      if (ref.plugin_ref.empty()) return rr.Error("pluginRef", "missing: name a plugin");
      if (rr.Has("weight")) {
        double weight = 1;
        RETURN_IF_ERROR(rr.Read("weight", &weight));
        if (!(weight >= 0)) return rr.Error("weight", "must be a number ≥ 0");
        ref.weight = weight;
      }
      RETURN_IF_ERROR(rr.Finish());
      profile.plugins.push_back(std::move(ref));
    }
    config.profiles.push_back(std::move(profile));
  }
  return absl::OkStatus();
}

absl::Status ParseSaturation(const YAML::Node& node, const std::string& source,
                             SaturationThresholds& out) {
  if (!node || node.IsNull()) return absl::OkStatus();
  FieldReader r(node, source, "saturationDetector");
  RETURN_IF_ERROR(r.CheckIsMap());
  RETURN_IF_ERROR(r.Read("queueDepthThreshold", &out.queue_depth));
  RETURN_IF_ERROR(r.Read("kvCacheUtilThreshold", &out.kv_cache_util));
  RETURN_IF_ERROR(r.Read("metricsStalenessThreshold", &out.metrics_staleness));
  if (out.queue_depth < 0) return r.Error("queueDepthThreshold", "must be ≥ 0");
  if (!(out.kv_cache_util >= 0 && out.kv_cache_util <= 1)) {
    return r.Error("kvCacheUtilThreshold", "must be between 0 and 1");
  }
  return r.Finish();
}

}  // namespace

absl::StatusOr<PolicyConfig> ParsePolicyConfig(std::string_view yaml_text, std::string source) {
  ASSIGN_OR_RETURN(YamlDoc doc, ParseYaml(yaml_text, source));
  if (!doc.root || doc.root.IsNull()) {
    return Errorf(absl::StatusCode::kInvalidArgument,
                  "{}: the policy is empty: write an EndpointPickerConfig or use a built-in "
                  "name such as zumik-default",
                  source);
  }
  PolicyConfig config;
  config.name = source;
  config.source = source;
  FieldReader top(doc.root, source);
  RETURN_IF_ERROR(top.CheckIsMap());
  for (std::string_view section : kUnsupportedSections) {
    if (top.Has(section)) {
      return top.Error(section,
                       "is not supported by zumik's scheduler: remove it (metrics "
                       "and flow control are configured on the EPP)");
    }
  }
  std::string kind;
  RETURN_IF_ERROR(top.Read("apiVersion", &config.api_version));
  RETURN_IF_ERROR(top.Read("kind", &kind));
  if (!config.api_version.empty()) {
    bool known = false;
    for (std::string_view v : kApiVersions) known = known || config.api_version == v;
    if (!known) {
      return top.Error("apiVersion",
                       fmt::format("'{}' is not supported: use {} or {}", config.api_version,
                                   kApiVersions[0], kApiVersions[1]));
    }
  }
  if (!kind.empty() && kind != "EndpointPickerConfig") {
    return top.Error("kind", fmt::format("'{}': expected EndpointPickerConfig", kind));
  }
  RETURN_IF_ERROR(top.Read("featureGates", &config.feature_gates));
  RETURN_IF_ERROR(ParsePlugins(top.Child("plugins"), source, config));
  RETURN_IF_ERROR(ParseProfiles(top.Child("schedulingProfiles"), source, config));
  RETURN_IF_ERROR(ParseSaturation(top.Child("saturationDetector"), source, config.saturation));
  RETURN_IF_ERROR(top.Finish());
  return config;
}

absl::StatusOr<PolicyConfig> LoadPolicyFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) {
    std::string names;
    for (const BuiltinPolicy& p : BuiltinPolicies()) {
      names += names.empty() ? "" : ", ";
      names += p.name;
    }
    return Errorf(absl::StatusCode::kNotFound,
                  "policy '{}' is neither a built-in policy ({}) nor a readable file", path, names);
  }
  std::stringstream text;
  text << in.rdbuf();
  return ParsePolicyConfig(text.str(), path);
}

absl::StatusOr<PolicyConfig> LoadPolicy(std::string_view name_or_file) {
  if (const BuiltinPolicy* builtin = FindBuiltinPolicy(name_or_file)) {
    ASSIGN_OR_RETURN(PolicyConfig config,
                     ParsePolicyConfig(builtin->yaml, fmt::format("<builtin:{}>", builtin->name)));
    config.name = std::string(builtin->name);
    return config;
  }
  return LoadPolicyFile(std::string(name_or_file));
}

}  // namespace zumik::sched
