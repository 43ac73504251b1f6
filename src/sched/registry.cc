// The plugin registry table (see registry.h).
#include "sched/registry.h"

#include "core/status.h"
#include "sched/plugins/affinity_scorers.h"
#include "sched/plugins/filters.h"
#include "sched/plugins/load_scorers.h"
#include "sched/plugins/metric_scorers.h"
#include "sched/plugins/pickers.h"
#include "sched/plugins/predicted_ttft_scorer.h"
#include "sched/plugins/prefix_plugins.h"
#include "sched/plugins/prefix_producer.h"

namespace zumik::sched {
namespace {

constexpr PluginTypeInfo kTypes[] = {
    // producers and profile handlers
    {ApproxPrefixCacheProducer::kType, &ApproxPrefixCacheProducer::Create},
    {SingleProfileHandler::kType, &SingleProfileHandler::Create},
    // filters
    {PrefixCacheAffinityFilter::kType, &PrefixCacheAffinityFilter::Create},
    {LabelSelectorFilter::kType, &LabelSelectorFilter::Create},
    {"by-label-selector", &LabelSelectorFilter::Create},
    {DecodeFilter::kType, &DecodeFilter::Create},
    {PrefillFilter::kType, &PrefillFilter::Create},
    {SaturationFilter::kType, &SaturationFilter::Create},
    {SaturationFilter::kUpstreamType, &SaturationFilter::Create},
    // scorers
    {PrefixCacheScorer::kType, &PrefixCacheScorer::Create},
    {QueueScorer::kType, &QueueScorer::Create},
    {KvCacheUtilizationScorer::kType, &KvCacheUtilizationScorer::Create},
    {RunningRequestsSizeScorer::kType, &RunningRequestsSizeScorer::Create},
    {ActiveRequestScorer::kType, &ActiveRequestScorer::Create},
    {TokenLoadScorer::kType, &TokenLoadScorer::Create},
    {LoadAwareScorer::kType, &LoadAwareScorer::Create},
    {SessionAffinityScorer::kType, &SessionAffinityScorer::Create},
    {NoHitLruScorer::kType, &NoHitLruScorer::Create},
    {LoraAffinityScorer::kType, &LoraAffinityScorer::Create},
    {PredictedTtftScorer::kType, &PredictedTtftScorer::Create},
    // pickers
    {MaxScorePicker::kType, &MaxScorePicker::Create},
    {RandomPicker::kType, &RandomPicker::Create},
    {WeightedRandomPicker::kType, &WeightedRandomPicker::Create},
    {RoundRobinPicker::kType, &RoundRobinPicker::Create},
};

}  // namespace

std::span<const PluginTypeInfo> PluginTypes() { return kTypes; }

const PluginTypeInfo* FindPluginType(std::string_view type) {
  for (const PluginTypeInfo& info : kTypes) {
    if (info.type == type) return &info;
  }
  return nullptr;
}

absl::StatusOr<std::unique_ptr<Plugin>> CreatePlugin(const PluginSpec& spec,
                                                     const std::string& source) {
  const PluginTypeInfo* info = FindPluginType(spec.type);
  if (info == nullptr) {
    std::string known;
    for (const PluginTypeInfo& t : kTypes) {
      known += known.empty() ? "" : ", ";
      known += t.type;
    }
    return Errorf(absl::StatusCode::kInvalidArgument,
                  "{}: plugin '{}' (type {}): unknown plugin type; known types: {}", spec.where,
                  spec.name, spec.type, known);
  }
  PluginParams params(spec.parameters, source, spec.where, spec.name, spec.type);
  RETURN_IF_ERROR(params.CheckIsMap());
  ASSIGN_OR_RETURN(std::unique_ptr<Plugin> plugin, info->create(spec.name, params));
  RETURN_IF_ERROR(params.Finish());
  return plugin;
}

std::string_view KindName(PluginKind kind) {
  switch (kind) {
    case PluginKind::kFilter:
      return "filter";
    case PluginKind::kScorer:
      return "scorer";
    case PluginKind::kPicker:
      return "picker";
    case PluginKind::kProfileHandler:
      return "profile handler";
    case PluginKind::kProducer:
      return "data producer";
  }
  return "plugin";
}

}  // namespace zumik::sched
