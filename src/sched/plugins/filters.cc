// Label and saturation filters (see filters.h).
#include "sched/plugins/filters.h"

#include <algorithm>
#include <limits>

#include "core/status.h"
#include "fmt/format.h"

namespace zumik::sched {
namespace {

constexpr std::string_view kRoleLabel = "llm-d.ai/role";

bool OneOf(std::string_view value, std::initializer_list<std::string_view> set) {
  return std::find(set.begin(), set.end(), value) != set.end();
}

absl::Status ReadStringList(PluginParams& params, const YAML::Node& node, std::string_view param,
                            std::vector<std::string>& out) {
  if (!node || node.IsNull()) return absl::OkStatus();
  if (!node.IsSequence()) return params.Error(param, "'values' must be a list of strings");
  for (const auto& item : node) {
    if (!item.IsScalar()) return params.Error(param, "'values' must be a list of strings");
    out.push_back(item.Scalar());
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Plugin>> LabelSelectorFilter::Create(const std::string& name,
                                                                    PluginParams& params) {
  std::vector<Requirement> requirements;
  const YAML::Node labels = params.Child("matchLabels");
  if (labels && !labels.IsNull()) {
    if (!labels.IsMap()) return params.Error("matchLabels", "must be a map of label: value");
    for (const auto& kv : labels) {
      if (!kv.second.IsScalar()) {
        return params.Error("matchLabels",
                            fmt::format("label '{}' must have a string value", kv.first.Scalar()));
      }
      requirements.push_back({kv.first.Scalar(), Op::kIn, {kv.second.Scalar()}});
    }
  }
  const YAML::Node expressions = params.Child("matchExpressions");
  if (expressions && !expressions.IsNull()) {
    if (!expressions.IsSequence()) {
      return params.Error("matchExpressions", "must be a list of {key, operator, values}");
    }
    for (const auto& e : expressions) {
      if (!e.IsMap() || !e["key"] || !e["operator"]) {
        return params.Error("matchExpressions", "each entry needs 'key' and 'operator'");
      }
      Requirement r;
      r.key = e["key"].Scalar();
      const std::string op = e["operator"].Scalar();
      if (op == "In") {
        r.op = Op::kIn;
      } else if (op == "NotIn") {
        r.op = Op::kNotIn;
      } else if (op == "Exists") {
        r.op = Op::kExists;
      } else if (op == "DoesNotExist") {
        r.op = Op::kDoesNotExist;
      } else {
        return params.Error(
            "matchExpressions",
            fmt::format("operator '{}': use In, NotIn, Exists or DoesNotExist", op));
      }
      RETURN_IF_ERROR(ReadStringList(params, e["values"], "matchExpressions", r.values));
      const bool needs_values = r.op == Op::kIn || r.op == Op::kNotIn;
      if (needs_values == r.values.empty()) {
        return params.Error("matchExpressions", fmt::format("operator '{}' {} values", op,
                                                            needs_values ? "needs" : "takes no"));
      }
      requirements.push_back(std::move(r));
    }
  }
  return std::make_unique<LabelSelectorFilter>(std::string(params.plugin_type()), name,
                                               std::move(requirements));
}

bool LabelSelectorFilter::Matches(const Labels& labels) const {
  for (const Requirement& r : requirements_) {
    const std::string* value = FindLabel(labels, r.key);
    const bool listed =
        value != nullptr && std::find(r.values.begin(), r.values.end(), *value) != r.values.end();
    switch (r.op) {
      case Op::kIn:
        if (!listed) return false;
        break;
      case Op::kNotIn:
        if (listed) return false;
        break;
      case Op::kExists:
        if (value == nullptr) return false;
        break;
      case Op::kDoesNotExist:
        if (value != nullptr) return false;
        break;
    }
  }
  return true;
}

void LabelSelectorFilter::Apply(const CycleState& /*cycle*/, std::vector<Candidate>& candidates) {
  std::erase_if(candidates, [&](const Candidate& c) { return !Matches(c.endpoint->labels); });
}

absl::StatusOr<std::unique_ptr<Plugin>> DecodeFilter::Create(const std::string& name,
                                                             PluginParams& /*params*/) {
  return std::make_unique<DecodeFilter>(name);
}

void DecodeFilter::Apply(const CycleState& /*cycle*/, std::vector<Candidate>& candidates) {
  std::erase_if(candidates, [](const Candidate& c) {
    const std::string* role = FindLabel(c.endpoint->labels, kRoleLabel);
    return role != nullptr &&
           !OneOf(*role, {"decode", "prefill-decode", "both", "encode-prefill-decode"});
  });
}

absl::StatusOr<std::unique_ptr<Plugin>> PrefillFilter::Create(const std::string& name,
                                                              PluginParams& /*params*/) {
  return std::make_unique<PrefillFilter>(name);
}

void PrefillFilter::Apply(const CycleState& /*cycle*/, std::vector<Candidate>& candidates) {
  std::erase_if(candidates, [](const Candidate& c) {
    const std::string* role = FindLabel(c.endpoint->labels, kRoleLabel);
    return role == nullptr || !OneOf(*role, {"prefill", "encode-prefill", "prefill-decode", "both",
                                             "encode-prefill-decode"});
  });
}

absl::StatusOr<std::unique_ptr<Plugin>> SaturationFilter::Create(const std::string& name,
                                                                 PluginParams& params) {
  SaturationThresholds t;
  double headroom = 0;
  RETURN_IF_ERROR(params.ReadAtLeast("queueDepthThreshold", &t.queue_depth, 0));
  RETURN_IF_ERROR(params.ReadInRange("kvCacheUtilThreshold", &t.kv_cache_util, 0, 1));
  RETURN_IF_ERROR(params.Read("metricsStalenessThreshold", &t.metrics_staleness));
  RETURN_IF_ERROR(params.ReadInRange("headroom", &headroom, 0, std::numeric_limits<double>::max()));
  return std::make_unique<SaturationFilter>(std::string(params.plugin_type()), name, t, headroom);
}

bool SaturationFilter::Overloaded(const Endpoint& endpoint, Time now) const {
  // Stale metrics score exactly 1.0 upstream, which is never "above" the threshold.
  if (!endpoint.HasFreshMetrics(now, thresholds_.metrics_staleness)) return false;
  const double scale = 1.0 + headroom_;
  return static_cast<double>(endpoint.metrics.waiting_requests) >
             static_cast<double>(thresholds_.queue_depth) * scale ||
         endpoint.metrics.kv_cache_usage > thresholds_.kv_cache_util * scale;
}

void SaturationFilter::Apply(const CycleState& cycle, std::vector<Candidate>& candidates) {
  const bool any_ok = std::any_of(candidates.begin(), candidates.end(), [&](const Candidate& c) {
    return !Overloaded(*c.endpoint, cycle.now);
  });
  if (!any_ok) return;
  std::erase_if(candidates, [&](const Candidate& c) { return Overloaded(*c.endpoint, cycle.now); });
}

}  // namespace zumik::sched
