// The plugin registry: upstream `type` name → factory. An explicit table (registry.cc) rather
// than static self-registration, which a static library's linker would silently drop.
#pragma once

#include <memory>
#include <span>
#include <string>
#include <string_view>

#include "absl/status/statusor.h"
#include "sched/config.h"
#include "sched/params.h"
#include "sched/plugin.h"

namespace zumik::sched {

using PluginFactory = absl::StatusOr<std::unique_ptr<Plugin>> (*)(const std::string& name,
                                                                  PluginParams& params);

struct PluginTypeInfo {
  std::string_view type;
  PluginFactory create;
};

std::span<const PluginTypeInfo> PluginTypes();
const PluginTypeInfo* FindPluginType(std::string_view type);

// Builds one plugin from its config entry: unknown types and bad or unknown parameters are
// errors naming the file, line, plugin and parameter.
absl::StatusOr<std::unique_ptr<Plugin>> CreatePlugin(const PluginSpec& spec,
                                                     const std::string& source);

}  // namespace zumik::sched
