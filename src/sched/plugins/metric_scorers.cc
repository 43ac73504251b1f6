// Scorers on scraped metrics (see metric_scorers.h).
#include "sched/plugins/metric_scorers.h"

#include <algorithm>

#include "core/status.h"

namespace zumik::sched {
namespace {

// (max − v) / (max − min) over the candidates; all equal ⇒ 1.
template <typename Get>
void MinMaxLowerIsBetter(std::span<const Candidate> candidates, std::span<double> out, Get get) {
  if (candidates.empty()) return;
  int64_t lo = get(candidates[0]), hi = lo;
  for (const Candidate& c : candidates) {
    lo = std::min(lo, get(c));
    hi = std::max(hi, get(c));
  }
  for (size_t i = 0; i < candidates.size(); ++i) {
    out[i] = hi == lo ? 1.0
                      : static_cast<double>(hi - get(candidates[i])) / static_cast<double>(hi - lo);
  }
}

bool Contains(const std::vector<std::string>& list, const std::string& value) {
  return std::find(list.begin(), list.end(), value) != list.end();
}

}  // namespace

absl::StatusOr<std::unique_ptr<Plugin>> QueueScorer::Create(const std::string& name,
                                                            PluginParams& /*params*/) {
  return std::make_unique<QueueScorer>(name);
}

void QueueScorer::Score(const CycleState& /*cycle*/, std::span<const Candidate> candidates,
                        std::span<double> out) {
  MinMaxLowerIsBetter(candidates, out,
                      [](const Candidate& c) { return c.endpoint->metrics.waiting_requests; });
}

absl::StatusOr<std::unique_ptr<Plugin>> RunningRequestsSizeScorer::Create(
    const std::string& name, PluginParams& /*params*/) {
  return std::make_unique<RunningRequestsSizeScorer>(name);
}

void RunningRequestsSizeScorer::Score(const CycleState& /*cycle*/,
                                      std::span<const Candidate> candidates,
                                      std::span<double> out) {
  MinMaxLowerIsBetter(candidates, out,
                      [](const Candidate& c) { return c.endpoint->metrics.running_requests; });
}

absl::StatusOr<std::unique_ptr<Plugin>> KvCacheUtilizationScorer::Create(const std::string& name,
                                                                         PluginParams& params) {
  bool cold_only = false;
  RETURN_IF_ERROR(params.Read("coldOnly", &cold_only));
  return std::make_unique<KvCacheUtilizationScorer>(name, cold_only);
}

void KvCacheUtilizationScorer::Score(const CycleState& /*cycle*/,
                                     std::span<const Candidate> candidates, std::span<double> out) {
  if (cold_only_ && !NoCandidateHoldsPrefix(candidates)) {
    std::fill(out.begin(), out.end(), 0.5);  // warm: the prefix plugins place it
    return;
  }
  for (size_t i = 0; i < candidates.size(); ++i) {
    out[i] = 1.0 - candidates[i].endpoint->metrics.kv_cache_usage;
  }
}

absl::StatusOr<std::unique_ptr<Plugin>> LoadAwareScorer::Create(const std::string& name,
                                                                PluginParams& params) {
  int64_t threshold = 128;
  RETURN_IF_ERROR(params.ReadAtLeast("threshold", &threshold, 1));
  return std::make_unique<LoadAwareScorer>(name, threshold);
}

void LoadAwareScorer::Score(const CycleState& /*cycle*/, std::span<const Candidate> candidates,
                            std::span<double> out) {
  const double threshold = static_cast<double>(threshold_);
  for (size_t i = 0; i < candidates.size(); ++i) {
    const int64_t waiting = candidates[i].endpoint->metrics.waiting_requests;
    if (waiting <= 0) {
      out[i] = 0.5;
    } else {
      out[i] = 0.5 * (1.0 - std::min(static_cast<double>(waiting), threshold) / threshold);
    }
  }
}

absl::StatusOr<std::unique_ptr<Plugin>> LoraAffinityScorer::Create(const std::string& name,
                                                                   PluginParams& /*params*/) {
  return std::make_unique<LoraAffinityScorer>(name);
}

void LoraAffinityScorer::Score(const CycleState& cycle, std::span<const Candidate> candidates,
                               std::span<double> out) {
  const std::string& model = cycle.request->TargetModel();
  for (size_t i = 0; i < candidates.size(); ++i) {
    const EndpointMetrics& m = candidates[i].endpoint->metrics;
    const int64_t loaded =
        static_cast<int64_t>(m.running_lora_adapters.size() + m.waiting_lora_adapters.size());
    if (Contains(m.running_lora_adapters, model)) {
      out[i] = 1.0;
    } else if (loaded < m.max_lora) {
      out[i] = 0.8;
    } else if (Contains(m.waiting_lora_adapters, model)) {
      out[i] = 0.6;
    } else {
      out[i] = 0.0;
    }
  }
}

}  // namespace zumik::sched
