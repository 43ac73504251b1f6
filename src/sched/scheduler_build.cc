// Building a Scheduler from a PolicyConfig: plugins, the prefix producer, profiles and the
// profile handler, with the upstream defaulting rules (see scheduler.h).
#include <utility>

#include "core/status.h"
#include "fmt/format.h"
#include "sched/plugins/affinity_scorers.h"
#include "sched/plugins/pickers.h"
#include "sched/plugins/prefix_plugins.h"
#include "sched/plugins/prefix_producer.h"
#include "sched/registry.h"
#include "sched/scheduler.h"

namespace zumik::sched {
namespace {

absl::Status ConfigError(std::string_view where, std::string_view message) {
  return absl::InvalidArgumentError(fmt::format("{}: {}", where, message));
}

}  // namespace

absl::Status Scheduler::Build() {
  const std::string& source = config_.source;
  // 1. Plugins, in declaration order.
  std::vector<std::string> wheres;
  for (const PluginSpec& spec : config_.plugins) {
    ASSIGN_OR_RETURN(std::unique_ptr<Plugin> plugin, CreatePlugin(spec, source));
    plugins_.push_back(std::move(plugin));
    wheres.push_back(spec.where);
  }

  // 2. The prefix producer: declared, or implicit when a plugin needs the match. GIE v1 put the
  // index parameters on prefix-cache-scorer; they configure the implicit producer.
  bool needs_prefix = false;
  const PrefixCacheScorer* configuring_scorer = nullptr;
  for (size_t i = 0; i < plugins_.size(); ++i) {
    Plugin* plugin = plugins_[i].get();
    needs_prefix = needs_prefix || plugin->NeedsPrefixMatch();
    if (plugin->kind() == PluginKind::kProducer) {
      if (producer_ != nullptr) {
        return ConfigError(wheres[i], fmt::format("plugin '{}': only one "
                                                  "approx-prefix-cache-producer is supported",
                                                  plugin->name()));
      }
      producer_ = static_cast<ApproxPrefixCacheProducer*>(plugin);
    }
    if (plugin->type() == PrefixCacheScorer::kType) {
      const auto* scorer = static_cast<const PrefixCacheScorer*>(plugin);
      if (scorer->index_options()) {
        if (configuring_scorer != nullptr) {
          return ConfigError(wheres[i],
                             fmt::format("plugin '{}': index parameters are already set on "
                                         "'{}'; set them once, on approx-prefix-cache-producer",
                                         plugin->name(), configuring_scorer->name()));
        }
        configuring_scorer = scorer;
      }
    }
  }
  if (producer_ != nullptr && configuring_scorer != nullptr) {
    return absl::InvalidArgumentError(
        fmt::format("{}: plugin '{}' sets prefix index parameters, but the policy declares "
                    "approx-prefix-cache-producer '{}': move them there",
                    source, configuring_scorer->name(), producer_->name()));
  }
  if (producer_ == nullptr && needs_prefix) {
    PrefixProducerOptions options;
    if (configuring_scorer != nullptr) options = *configuring_scorer->index_options();
    auto producer = std::make_unique<ApproxPrefixCacheProducer>(
        FindPlugin(ApproxPrefixCacheProducer::kType) == nullptr
            ? std::string(ApproxPrefixCacheProducer::kType)
            : std::string("approx-prefix-cache-producer-implicit"),
        options);
    producer_ = producer.get();
    plugins_.push_back(std::move(producer));
  }

  // 3. Profiles. None declared: one `default` profile with every filter, scorer and picker.
  std::vector<ProfileSpec> specs = config_.profiles;
  if (specs.empty()) {
    ProfileSpec profile{.name = "default", .plugins = {}, .where = source};
    for (const PluginSpec& spec : config_.plugins) {
      const PluginKind kind = FindPlugin(spec.name)->kind();
      if (kind == PluginKind::kFilter || kind == PluginKind::kScorer ||
          kind == PluginKind::kPicker) {
        profile.plugins.push_back({spec.name, std::nullopt, spec.where});
      }
    }
    specs.push_back(std::move(profile));
  }
  for (const ProfileSpec& spec : specs) {
    Profile profile;
    profile.name = spec.name;
    for (const ProfilePluginRef& ref : spec.plugins) {
      Plugin* plugin = FindPlugin(ref.plugin_ref);
      if (plugin == nullptr) {
        return ConfigError(ref.where, fmt::format("profile '{}': pluginRef '{}' names no "
                                                  "plugin in 'plugins'",
                                                  spec.name, ref.plugin_ref));
      }
      if (ref.weight && plugin->kind() != PluginKind::kScorer) {
        return ConfigError(ref.where,
                           fmt::format("profile '{}': plugin '{}' is a {}; weight "
                                       "applies to scorers only",
                                       spec.name, ref.plugin_ref, KindName(plugin->kind())));
      }
      switch (plugin->kind()) {
        case PluginKind::kFilter:
          profile.filters.push_back(static_cast<Filter*>(plugin));
          break;
        case PluginKind::kScorer:
          profile.scorers.push_back({static_cast<Scorer*>(plugin), ref.weight.value_or(1.0)});
          break;
        case PluginKind::kPicker:
          if (profile.picker != nullptr) {
            return ConfigError(ref.where,
                               fmt::format("profile '{}': a second picker '{}' "
                                           "(already '{}'): keep one",
                                           spec.name, ref.plugin_ref, profile.picker->name()));
          }
          profile.picker = static_cast<Picker*>(plugin);
          break;
        case PluginKind::kProfileHandler:
        case PluginKind::kProducer:
          return ConfigError(ref.where,
                             fmt::format("profile '{}': plugin '{}' is a {}; list "
                                         "it under 'plugins' only",
                                         spec.name, ref.plugin_ref, KindName(plugin->kind())));
      }
    }
    if (profile.picker == nullptr) {
      Plugin* picker = FindPlugin(MaxScorePicker::kType);
      if (picker == nullptr || picker->type() != MaxScorePicker::kType) {
        auto created = std::make_unique<MaxScorePicker>(
            picker == nullptr ? std::string(MaxScorePicker::kType)
                              : std::string("max-score-picker-default"),
            1);
        picker = created.get();
        plugins_.push_back(std::move(created));
      }
      profile.picker = static_cast<Picker*>(picker);
    }
    profiles_.push_back(std::move(profile));
  }

  // 4. The profile handler.
  for (size_t i = 0; i < config_.plugins.size(); ++i) {
    if (plugins_[i]->kind() != PluginKind::kProfileHandler) continue;
    if (handler_ != nullptr) {
      return ConfigError(wheres[i], fmt::format("plugin '{}': a second profile handler "
                                                "(already '{}')",
                                                plugins_[i]->name(), handler_->name()));
    }
    handler_ = static_cast<ProfileHandler*>(plugins_[i].get());
  }
  if (handler_ == nullptr) {
    if (profiles_.size() != 1) {
      return absl::InvalidArgumentError(fmt::format(
          "{}: {} scheduling profiles need a profile handler plugin", source, profiles_.size()));
    }
    auto handler = std::make_unique<SingleProfileHandler>(std::string(SingleProfileHandler::kType));
    handler_ = handler.get();
    plugins_.push_back(std::move(handler));
  }
  if (handler_->type() == SingleProfileHandler::kType && profiles_.size() != 1) {
    return absl::InvalidArgumentError(
        fmt::format("{}: single-profile-handler needs exactly one scheduling profile, got {}",
                    source, profiles_.size()));
  }

  for (const auto& plugin : plugins_) {
    if (plugin->type() == SessionAffinityScorer::kType) {
      session_header_ = static_cast<const SessionAffinityScorer*>(plugin.get())->header_name();
      break;
    }
  }
  return absl::OkStatus();
}

}  // namespace zumik::sched
