// The prefix-affinity plugins that read the approximate prefix index's match:
//   prefix-cache-scorer          matched / total blocks (+ optional absolute-length term)
//   prefix-cache-affinity-filter keep "sticky" endpoints (score ≥ affinityThreshold) unless
//                                their in-flight prefill makes them too slow (llm-d default)
#pragma once

#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "sched/params.h"
#include "sched/plugin.h"
#include "sched/plugins/prefix_producer.h"

namespace zumik::sched {

// Score = (1 − w)·matched/total + w·min(1, matched_tokens / matchLengthScaleTokens)², with
// w = matchLengthWeight (default 0: the ratio alone, as in GIE). 0 when nothing was hashed.
class PrefixCacheScorer final : public Scorer {
 public:
  static constexpr std::string_view kType = "prefix-cache-scorer";
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  PrefixCacheScorer(std::string name, double length_weight, double length_scale_tokens,
                    std::optional<PrefixProducerOptions> index_options);

  bool NeedsPrefixMatch() const override { return true; }
  void Score(const CycleState& cycle, std::span<const Candidate> candidates,
             std::span<double> out) override;
  // GIE v1 put the index parameters on the scorer; when present they configure the producer.
  const std::optional<PrefixProducerOptions>& index_options() const { return index_options_; }

 private:
  double length_weight_;
  double length_scale_tokens_;
  std::optional<PrefixProducerOptions> index_options_;
};

// A load gate on prefix-cache-affinity-filter's stickiness: it opens (the filter keeps every
// endpoint) when the least busy sticky endpoint has more in-flight requests than the least busy
// other one x (1 + slack) + requests.
struct AffinityLoadGate {
  std::optional<double> slack;  // unset = no gate
  int64_t requests = 0;

  bool Opens(int64_t sticky_requests, int64_t other_requests) const {
    return slack &&
           static_cast<double>(sticky_requests) >
               static_cast<double>(other_requests) * (1 + *slack) + static_cast<double>(requests);
  }
};

// Length-based stickiness of prefix-cache-affinity-filter (its parameters, see below).
struct TokenAffinity {
  int64_t min_tokens = 0;  // minAffinityTokens; 0 = off
  AffinityLoadGate load;   // minAffinityLoadSlack, minAffinityLoadSlackRequests
};

// RTR prefix-cache-affinity-filter. An endpoint is sticky when matched/total ≥
// affinityThreshold (0.8). No sticky endpoint: keep all. With probability
// explorationProbability (0) skip the gate. TTFT load gate: estimate each endpoint's TTFT as
// its router in-flight prefill tokens / peakPrefillThroughput (15928 tok/s, upstream's Qwen3-32B
// TP2 calibration); if the best sticky estimate exceeds the best non-sticky one by more than
// maxTTFTPenaltyMs (18000; 0 = always stick), keep all. The gate is the "saturation valve"
// tau = R_peak × T_max of perf-anchors §5: stickiness breaks once the warm endpoint's queued
// uncached prefill exceeds 15928 × 18 s ≈ 287k tokens more than the coldest one's.
// minAffinityTokens (ours, 0 = off): when no endpoint reaches affinityThreshold and none holds
// half of the prompt, endpoints holding at least this many leading prompt tokens are sticky
// instead (same TTFT gate), so a long shared prefix ahead of a longer private suffix (a group's
// system prompt before a private document) keeps one home instead of being copied onto, and
// evicted from, every endpoint the load scorers choose. Such stickiness saves less than a
// mostly cached prompt, so with minAffinityLoadSlack (unset = no gate) it also gives way when
// the least busy sticky endpoint has more in-flight requests than the least busy other one
// × (1 + minAffinityLoadSlack) + minAffinityLoadSlackRequests (0). affinityLoadSlack and
// affinityLoadSlackRequests (ours; unset = no gate) put the same gate on share-based stickiness.
class PrefixCacheAffinityFilter final : public Filter {
 public:
  static constexpr std::string_view kType = "prefix-cache-affinity-filter";
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  PrefixCacheAffinityFilter(std::string name, double threshold, double exploration,
                            double max_ttft_penalty_ms, double peak_prefill_tps,
                            TokenAffinity token_affinity, AffinityLoadGate share_load = {});

  bool NeedsPrefixMatch() const override { return true; }
  void Apply(const CycleState& cycle, std::vector<Candidate>& candidates) override;

 private:
  double threshold_;
  double exploration_;
  double max_ttft_penalty_ms_;
  double peak_prefill_tps_;
  TokenAffinity token_affinity_;
  AffinityLoadGate share_load_;
};

}  // namespace zumik::sched
