// Scorers on the endpoints' scraped metrics (they use the last scrape whatever its age, as
// upstream does; freshness is the saturation filter's and predicted-ttft-scorer's concern):
//   queue-scorer                 (maxQ − q) / (maxQ − minQ) on waiting requests; all equal ⇒ 1
//   running-requests-size-scorer the same on running requests
//   kv-cache-utilization-scorer  1 − kv usage; with coldOnly (ours, default false) only for cold
//                                requests (no candidate holds any of the prompt), warm requests
//                                score 0.5 everywhere, so it places new prefixes by free KV and
//                                leaves cached ones to the prefix plugins
//   load-aware-scorer            q = 0 ⇒ 0.5; else 0.5·(1 − min(q, threshold)/threshold)
//   lora-affinity-scorer         1 adapter active; 0.8 free slot; 0.6 adapter waiting; else 0
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "sched/params.h"
#include "sched/plugin.h"

namespace zumik::sched {

class QueueScorer final : public Scorer {
 public:
  static constexpr std::string_view kType = "queue-scorer";
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  explicit QueueScorer(std::string name) : Scorer(std::string(kType), std::move(name)) {}
  void Score(const CycleState& cycle, std::span<const Candidate> candidates,
             std::span<double> out) override;
};

class RunningRequestsSizeScorer final : public Scorer {
 public:
  static constexpr std::string_view kType = "running-requests-size-scorer";
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  explicit RunningRequestsSizeScorer(std::string name)
      : Scorer(std::string(kType), std::move(name)) {}
  void Score(const CycleState& cycle, std::span<const Candidate> candidates,
             std::span<double> out) override;
};

class KvCacheUtilizationScorer final : public Scorer {
 public:
  static constexpr std::string_view kType = "kv-cache-utilization-scorer";
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  KvCacheUtilizationScorer(std::string name, bool cold_only)
      : Scorer(std::string(kType), std::move(name)), cold_only_(cold_only) {}
  bool cold_only() const { return cold_only_; }
  bool NeedsPrefixMatch() const override { return cold_only_; }
  void Score(const CycleState& cycle, std::span<const Candidate> candidates,
             std::span<double> out) override;

 private:
  bool cold_only_;
};

class LoadAwareScorer final : public Scorer {
 public:
  static constexpr std::string_view kType = "load-aware-scorer";
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  LoadAwareScorer(std::string name, int64_t threshold)
      : Scorer(std::string(kType), std::move(name)), threshold_(threshold) {}
  void Score(const CycleState& cycle, std::span<const Candidate> candidates,
             std::span<double> out) override;

 private:
  int64_t threshold_;
};

// Matches the request's target model against the endpoint's LoRA adapters.
class LoraAffinityScorer final : public Scorer {
 public:
  static constexpr std::string_view kType = "lora-affinity-scorer";
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  explicit LoraAffinityScorer(std::string name) : Scorer(std::string(kType), std::move(name)) {}
  void Score(const CycleState& cycle, std::span<const Candidate> candidates,
             std::span<double> out) override;
};

}  // namespace zumik::sched
