// Scorers on the router's own in-flight accounting (fresh at every pick, unlike scrapes):
//   active-request-scorer  in-flight requests: ≤ idleThreshold ⇒ 1; else
//                          maxBusyScore·(max − n)/max over the candidates
//   token-load-scorer      1 − min(1, (in-flight prefill tokens + this request's uncached
//                          tokens there) / queueThresholdTokens)
#pragma once

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "sched/params.h"
#include "sched/plugin.h"

namespace zumik::sched {

class ActiveRequestScorer final : public Scorer {
 public:
  static constexpr std::string_view kType = "active-request-scorer";
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  ActiveRequestScorer(std::string name, int64_t idle_threshold, double max_busy_score)
      : Scorer(std::string(kType), std::move(name)),
        idle_threshold_(idle_threshold),
        max_busy_score_(max_busy_score) {}
  void Score(const CycleState& cycle, std::span<const Candidate> candidates,
             std::span<double> out) override;

 private:
  int64_t idle_threshold_;
  double max_busy_score_;
};

class TokenLoadScorer final : public Scorer {
 public:
  static constexpr std::string_view kType = "token-load-scorer";
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  TokenLoadScorer(std::string name, int64_t threshold_tokens)
      : Scorer(std::string(kType), std::move(name)), threshold_tokens_(threshold_tokens) {}
  // The current request's load is discounted by its cached prefix, as upstream's in-flight
  // load producer does.
  bool NeedsPrefixMatch() const override { return true; }
  void Score(const CycleState& cycle, std::span<const Candidate> candidates,
             std::span<double> out) override;

 private:
  int64_t threshold_tokens_;
};

}  // namespace zumik::sched
