// prefix-cache-scorer and prefix-cache-affinity-filter (see prefix_plugins.h).
#include "sched/plugins/prefix_plugins.h"

#include <algorithm>
#include <limits>

#include "core/status.h"

namespace zumik::sched {
namespace {

double MatchRatio(const CycleState& cycle, const Candidate& c) {
  if (!cycle.prefix_matched || cycle.total_blocks <= 0) return 0;
  return static_cast<double>(c.prefix_blocks) / cycle.total_blocks;
}

}  // namespace

PrefixCacheScorer::PrefixCacheScorer(std::string name, double length_weight,
                                     double length_scale_tokens,
                                     std::optional<PrefixProducerOptions> index_options)
    : Scorer(std::string(kType), std::move(name)),
      length_weight_(length_weight),
      length_scale_tokens_(length_scale_tokens),
      index_options_(index_options) {}

absl::StatusOr<std::unique_ptr<Plugin>> PrefixCacheScorer::Create(const std::string& name,
                                                                  PluginParams& params) {
  double weight = 0;
  double scale = 8192;
  // Names from gie-llmd.md §4, with the RTR README's spellings as aliases.
  RETURN_IF_ERROR(params.ReadInRange("matchLengthWeight", &weight, 0, 1));
  RETURN_IF_ERROR(params.ReadInRange("prefixLengthWeight", &weight, 0, 1));
  RETURN_IF_ERROR(params.Read("matchLengthScaleTokens", &scale));
  RETURN_IF_ERROR(params.Read("maxModelLen", &scale));
  if (!(scale > 0)) {
    return params.Error(params.Has("maxModelLen") ? "maxModelLen" : "matchLengthScaleTokens",
                        "must be > 0");
  }
  std::string producer;
  RETURN_IF_ERROR(params.Read("prefixMatchInfoProducerName", &producer));
  PrefixProducerOptions options;
  ASSIGN_OR_RETURN(const bool has_index_options, options.Read(params));
  std::optional<PrefixProducerOptions> index_options;
  if (has_index_options) index_options = options;
  return std::make_unique<PrefixCacheScorer>(name, weight, scale, index_options);
}

void PrefixCacheScorer::Score(const CycleState& cycle, std::span<const Candidate> candidates,
                              std::span<double> out) {
  for (size_t i = 0; i < candidates.size(); ++i) {
    const double ratio = MatchRatio(cycle, candidates[i]);
    double score = ratio;
    if (length_weight_ > 0) {
      const double tokens = double{1} * candidates[i].prefix_blocks * cycle.block_tokens;
      const double length = std::min(1.0, tokens / length_scale_tokens_);
      score = (1 - length_weight_) * ratio + length_weight_ * length * length;
    }
    out[i] = score;
  }
}

PrefixCacheAffinityFilter::PrefixCacheAffinityFilter(std::string name, double threshold,
                                                     double exploration, double max_ttft_penalty_ms,
                                                     double peak_prefill_tps,
                                                     TokenAffinity token_affinity,
                                                     AffinityLoadGate share_load)
    : Filter(std::string(kType), std::move(name)),
      threshold_(threshold),
      exploration_(exploration),
      max_ttft_penalty_ms_(max_ttft_penalty_ms),
      peak_prefill_tps_(peak_prefill_tps),
      token_affinity_(token_affinity),
      share_load_(share_load) {}

namespace {

absl::Status ReadLoadGate(PluginParams& params, std::string_view slack_key,
                          std::string_view requests_key, AffinityLoadGate& gate) {
  if (params.Has(slack_key)) {
    double slack = 0;
    RETURN_IF_ERROR(params.ReadInRange(slack_key, &slack, 0, std::numeric_limits<double>::max()));
    gate.slack = slack;
  }
  return params.ReadAtLeast(requests_key, &gate.requests, 0);
}

}  // namespace

absl::StatusOr<std::unique_ptr<Plugin>> PrefixCacheAffinityFilter::Create(const std::string& name,
                                                                          PluginParams& params) {
  double threshold = 0.8;
  double exploration = 0;
  double penalty = 18000;
  double peak = 15928;
  TokenAffinity token;
  std::string ttft_source = "prefillThroughput";
  RETURN_IF_ERROR(params.ReadInRange("affinityThreshold", &threshold, 0, 1));
  RETURN_IF_ERROR(params.ReadInRange("explorationProbability", &exploration, 0, 1));
  RETURN_IF_ERROR(
      params.ReadInRange("maxTTFTPenaltyMs", &penalty, 0, std::numeric_limits<double>::max()));
  RETURN_IF_ERROR(
      params.ReadInRange("peakPrefillThroughput", &peak, 0, std::numeric_limits<double>::max()));
  RETURN_IF_ERROR(params.ReadAtLeast("minAffinityTokens", &token.min_tokens, 0));
  RETURN_IF_ERROR(
      ReadLoadGate(params, "minAffinityLoadSlack", "minAffinityLoadSlackRequests", token.load));
  AffinityLoadGate share_load;
  RETURN_IF_ERROR(
      ReadLoadGate(params, "affinityLoadSlack", "affinityLoadSlackRequests", share_load));
  RETURN_IF_ERROR(params.Read("ttftSource", &ttft_source));
  if (ttft_source != "prefillThroughput") {
    return params.Error("ttftSource",
                        "only prefillThroughput is available here (no latency "
                        "predictor); use predicted-ttft-scorer for a learned "
                        "estimate");
  }
  if (penalty > 0 && peak <= 0) {
    return params.Error("peakPrefillThroughput", "must be > 0 when maxTTFTPenaltyMs > 0");
  }
  std::string ignored;
  RETURN_IF_ERROR(params.Read("prefixMatchInfoProducerName", &ignored));
  RETURN_IF_ERROR(params.Read("inFlightLoadProducerName", &ignored));
  return std::make_unique<PrefixCacheAffinityFilter>(name, threshold, exploration, penalty, peak,
                                                     token, share_load);
}

void PrefixCacheAffinityFilter::Apply(const CycleState& cycle, std::vector<Candidate>& candidates) {
  if (candidates.size() <= 1 || threshold_ <= 0) return;
  if (exploration_ > 0 && cycle.rng->Bernoulli(exploration_)) return;
  // Sticky by share: at least threshold_ of the prompt cached. Where no candidate is, sticky by
  // length: at least token_affinity_.min_tokens cached, as long as no candidate holds half of
  // the prompt (a shared prefix ahead of a longer private suffix; from half up to threshold_ the
  // share-based prefix-cache-scorer already favours the holder).
  bool by_share = false;
  int32_t best_blocks = 0;
  for (const Candidate& c : candidates) {
    by_share = by_share || MatchRatio(cycle, c) >= threshold_;
    best_blocks = std::max(best_blocks, c.prefix_blocks);
  }
  const bool by_length = !by_share && token_affinity_.min_tokens > 0 && cycle.prefix_matched &&
                         2 * int64_t{best_blocks} < cycle.total_blocks;
  const auto is_sticky = [&](const Candidate& c) {
    if (by_length) {
      return int64_t{c.prefix_blocks} * cycle.block_tokens >= token_affinity_.min_tokens;
    }
    return MatchRatio(cycle, c) >= threshold_;
  };
  double best_sticky = std::numeric_limits<double>::infinity();
  double best_other = std::numeric_limits<double>::infinity();
  int64_t sticky_requests = std::numeric_limits<int64_t>::max();
  int64_t other_requests = std::numeric_limits<int64_t>::max();
  size_t sticky = 0;
  for (const Candidate& c : candidates) {
    const double ttft_ms =
        max_ttft_penalty_ms_ > 0
            ? 1000.0 * static_cast<double>(c.load->prefill_tokens) / peak_prefill_tps_
            : 0.0;
    if (is_sticky(c)) {
      ++sticky;
      best_sticky = std::min(best_sticky, ttft_ms);
      sticky_requests = std::min(sticky_requests, c.load->requests);
    } else {
      best_other = std::min(best_other, ttft_ms);
      other_requests = std::min(other_requests, c.load->requests);
    }
  }
  if (sticky == 0 || sticky == candidates.size()) return;
  if (max_ttft_penalty_ms_ > 0 && best_sticky - best_other > max_ttft_penalty_ms_) return;
  // Stickiness gives way to a clearly busier holder, when its gate is set.
  if ((by_length ? token_affinity_.load : share_load_).Opens(sticky_requests, other_requests)) {
    return;
  }
  std::erase_if(candidates, [&](const Candidate& c) { return !is_sticky(c); });
}

}  // namespace zumik::sched
