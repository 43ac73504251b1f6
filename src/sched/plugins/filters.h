// Filters on endpoint labels and load:
//   label-selector-filter (old name by-label-selector)  Kubernetes label selector
//   decode-filter   llm-d.ai/role ∈ {decode, prefill-decode, both, encode-prefill-decode} or
//                   no role label
//   prefill-filter  llm-d.ai/role ∈ {prefill, encode-prefill, prefill-decode, both,
//                   encode-prefill-decode} (label required)
//   saturation-filter (also accepted as utilization-detector)  drops endpoints whose fresh
//                   metrics exceed threshold × (1 + headroom) on queue or KV use; if that would
//                   drop all, keeps all (RTR utilization-detector used as a filter, §7)
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sched/params.h"
#include "sched/plugin.h"
#include "sched/saturation.h"

namespace zumik::sched {

class LabelSelectorFilter final : public Filter {
 public:
  static constexpr std::string_view kType = "label-selector-filter";
  enum class Op { kIn, kNotIn, kExists, kDoesNotExist };
  struct Requirement {
    std::string key;
    Op op = Op::kIn;
    std::vector<std::string> values;
  };
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  LabelSelectorFilter(std::string type, std::string name, std::vector<Requirement> requirements)
      : Filter(std::move(type), std::move(name)), requirements_(std::move(requirements)) {}

  void Apply(const CycleState& cycle, std::vector<Candidate>& candidates) override;
  bool Matches(const Labels& labels) const;

 private:
  std::vector<Requirement> requirements_;
};

class DecodeFilter final : public Filter {
 public:
  static constexpr std::string_view kType = "decode-filter";
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  explicit DecodeFilter(std::string name) : Filter(std::string(kType), std::move(name)) {}
  void Apply(const CycleState& cycle, std::vector<Candidate>& candidates) override;
};

class PrefillFilter final : public Filter {
 public:
  static constexpr std::string_view kType = "prefill-filter";
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  explicit PrefillFilter(std::string name) : Filter(std::string(kType), std::move(name)) {}
  void Apply(const CycleState& cycle, std::vector<Candidate>& candidates) override;
};

class SaturationFilter final : public Filter {
 public:
  static constexpr std::string_view kType = "saturation-filter";
  static constexpr std::string_view kUpstreamType = "utilization-detector";
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  SaturationFilter(std::string type, std::string name, SaturationThresholds thresholds,
                   double headroom)
      : Filter(std::move(type), std::move(name)), thresholds_(thresholds), headroom_(headroom) {}
  void Apply(const CycleState& cycle, std::vector<Candidate>& candidates) override;

 private:
  bool Overloaded(const Endpoint& endpoint, Time now) const;

  SaturationThresholds thresholds_;
  double headroom_;
};

}  // namespace zumik::sched
