// Scorers on router-side in-flight load (see load_scorers.h).
#include "sched/plugins/load_scorers.h"

#include <algorithm>

#include "core/status.h"

namespace zumik::sched {

absl::StatusOr<std::unique_ptr<Plugin>> ActiveRequestScorer::Create(const std::string& name,
                                                                    PluginParams& params) {
  int64_t idle = 0;
  double max_busy = 1.0;
  RETURN_IF_ERROR(params.ReadAtLeast("idleThreshold", &idle, 0));
  RETURN_IF_ERROR(params.ReadInRange("maxBusyScore", &max_busy, 0, 1));
  params.Ignore("requestTimeout");  // deprecated upstream: completions end requests here
  std::string ignored;
  RETURN_IF_ERROR(params.Read("inFlightLoadProducerName", &ignored));
  return std::make_unique<ActiveRequestScorer>(name, idle, max_busy);
}

void ActiveRequestScorer::Score(const CycleState& /*cycle*/, std::span<const Candidate> candidates,
                                std::span<double> out) {
  int64_t max_count = 0;
  for (const Candidate& c : candidates) max_count = std::max(max_count, c.load->requests);
  for (size_t i = 0; i < candidates.size(); ++i) {
    const int64_t n = candidates[i].load->requests;
    if (n <= idle_threshold_) {
      out[i] = 1.0;
    } else {
      out[i] =
          static_cast<double>(max_count - n) / static_cast<double>(max_count) * max_busy_score_;
    }
  }
}

absl::StatusOr<std::unique_ptr<Plugin>> TokenLoadScorer::Create(const std::string& name,
                                                                PluginParams& params) {
  int64_t threshold = 4194304;  // 128 requests of 32k tokens
  RETURN_IF_ERROR(params.ReadAtLeast("queueThresholdTokens", &threshold, 1));
  double non_text_weight = 1;  // accepted for compatibility: there are no multimodal tokens
  RETURN_IF_ERROR(params.Read("nonTextTokenWeight", &non_text_weight));
  std::string ignored;
  RETURN_IF_ERROR(params.Read("inFlightLoadProducerName", &ignored));
  return std::make_unique<TokenLoadScorer>(name, threshold);
}

void TokenLoadScorer::Score(const CycleState& /*cycle*/, std::span<const Candidate> candidates,
                            std::span<double> out) {
  const double threshold = static_cast<double>(threshold_tokens_);
  for (size_t i = 0; i < candidates.size(); ++i) {
    const double tokens =
        static_cast<double>(candidates[i].load->prefill_tokens + candidates[i].uncached_tokens);
    out[i] = tokens <= 0 ? 1.0 : 1.0 - std::min(tokens, threshold) / threshold;
  }
}

}  // namespace zumik::sched
