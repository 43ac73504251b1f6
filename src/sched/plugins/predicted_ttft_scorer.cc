// predicted-ttft-scorer (see predicted_ttft_scorer.h for the model).
#include "sched/plugins/predicted_ttft_scorer.h"

#include <algorithm>
#include <limits>

#include "core/status.h"

namespace zumik::sched {

PredictedTtftScorer::PredictedTtftScorer(std::string name, Options options)
    : Scorer(std::string(kType), std::move(name)), options_(options) {}

absl::StatusOr<std::unique_ptr<Plugin>> PredictedTtftScorer::Create(const std::string& name,
                                                                    PluginParams& params) {
  Options o;
  constexpr double kMax = std::numeric_limits<double>::max();
  RETURN_IF_ERROR(params.ReadInRange("prefillTokensPerSecond", &o.prior_tokens_per_s, 1, kMax));
  RETURN_IF_ERROR(params.ReadInRange("ttftScaleMs", &o.ttft_scale_ms, 1e-3, kMax));
  RETURN_IF_ERROR(params.ReadInRange("decodeMsPerRequest", &o.decode_ms_per_request, 0, kMax));
  RETURN_IF_ERROR(params.ReadInRange("uncachedPenalty", &o.uncached_penalty, 0, kMax));
  RETURN_IF_ERROR(params.ReadInRange("ewmaAlpha", &o.ewma_alpha, 1e-6, 1));
  RETURN_IF_ERROR(params.ReadAtLeast("minObservations", &o.min_observations, 1));
  RETURN_IF_ERROR(params.Read("useScrapedQueue", &o.use_scraped_queue));
  RETURN_IF_ERROR(params.Read("metricsStalenessThreshold", &o.metrics_staleness));
  return std::make_unique<PredictedTtftScorer>(name, o);
}

double PredictedTtftScorer::PrefillRate(EndpointId endpoint) const {
  if (endpoint < learned_.size()) {
    const Learned& l = learned_[endpoint];
    if (l.n >= options_.min_observations && l.seconds > 0) return l.tokens / l.seconds;
  }
  return pooled_rate_ > 0 ? pooled_rate_ : options_.prior_tokens_per_s;
}

int64_t PredictedTtftScorer::Observations(EndpointId endpoint) const {
  return endpoint < learned_.size() ? learned_[endpoint].n : 0;
}

double PredictedTtftScorer::QueuedTokens(const CycleState& cycle, const Candidate& c) const {
  double queued = static_cast<double>(c.load->prefill_tokens);
  if (options_.use_scraped_queue &&
      c.endpoint->HasFreshMetrics(cycle.now, options_.metrics_staleness)) {
    // Requests the server reports waiting beyond ours come from elsewhere (other router
    // replicas, direct clients): count them at the mean request size.
    const int64_t extra = c.endpoint->metrics.waiting_requests - c.load->prefill_requests;
    if (extra > 0) queued += static_cast<double>(extra) * mean_request_tokens_;
  }
  return queued;
}

int64_t PredictedTtftScorer::Decoding(const CycleState& cycle, const Candidate& c) const {
  int64_t decoding = c.load->decoding();
  if (options_.use_scraped_queue &&
      c.endpoint->HasFreshMetrics(cycle.now, options_.metrics_staleness)) {
    decoding = std::max(decoding, c.endpoint->metrics.running_requests - c.load->prefill_requests);
  }
  return decoding;
}

double PredictedTtftScorer::EstimateMs(const CycleState& cycle, const Candidate& c) const {
  const double rate = PrefillRate(c.id());
  const double tokens = QueuedTokens(cycle, c) + static_cast<double>(c.uncached_tokens);
  return 1000.0 * (overhead_s_ + tokens / rate) +
         options_.decode_ms_per_request * static_cast<double>(Decoding(cycle, c));
}

void PredictedTtftScorer::Score(const CycleState& cycle, std::span<const Candidate> candidates,
                                std::span<double> out) {
  const double slo = cycle.request->slo_ttft_ms;
  const double scale = slo > 0 ? slo : options_.ttft_scale_ms;
  for (size_t i = 0; i < candidates.size(); ++i) {
    const Candidate& c = candidates[i];
    const double est = EstimateMs(cycle, c);
    const double cost = est + options_.uncached_penalty * 1000.0 *
                                  static_cast<double>(c.uncached_tokens) / PrefillRate(c.id());
    const double q = scale / (scale + cost);
    if (slo > 0) {
      out[i] = est <= slo ? 0.5 + 0.5 * q : 0.5 * q;
    } else {
      out[i] = q;
    }
  }
}

void PredictedTtftScorer::PreRequest(const CycleState& /*cycle*/, const Candidate& primary,
                                     Headers& /*headers*/) {
  const double tokens = static_cast<double>(primary.uncached_tokens);
  mean_request_tokens_ =
      mean_request_tokens_ == 0
          ? tokens
          : mean_request_tokens_ + options_.ewma_alpha * (tokens - mean_request_tokens_);
}

void PredictedTtftScorer::OnPrefillDone(const InFlightRequest& request,
                                        std::optional<Duration> ttft) {
  if (!ttft || *ttft <= Duration::zero() || request.reassigned) return;
  const double tokens = static_cast<double>(request.prefill_ahead_tokens + request.uncached_tokens);
  const double observed = ToSeconds(*ttft);
  FitOverhead(tokens, observed);
  if (tokens <= 0) return;  // fully cached: says nothing about the prefill rate
  // Take out the overhead and the decode term the estimate adds, keeping at least a quarter of
  // the sample (noise must not make a rate explode).
  const double decode =
      options_.decode_ms_per_request * 1e-3 * static_cast<double>(request.decoding_at_pick);
  const double seconds = std::max(observed - overhead_s_ - decode, 0.25 * observed);
  if (request.endpoint >= learned_.size()) learned_.resize(request.endpoint + size_t{1});
  Learned& l = learned_[request.endpoint];
  const double a = l.n == 0 ? 1.0 : options_.ewma_alpha;
  l.tokens += a * (tokens - l.tokens);
  l.seconds += a * (seconds - l.seconds);
  ++l.n;
  UpdatePooledRate();
}

void PredictedTtftScorer::FitOverhead(double tokens, double seconds) {
  // A slower decay than the per-endpoint rates: the overhead is a property of the stack.
  const double keep = 1.0 - options_.ewma_alpha / 4;
  fit_w_ = keep * fit_w_ + 1;
  fit_x_ = keep * fit_x_ + tokens;
  fit_y_ = keep * fit_y_ + seconds;
  fit_xx_ = keep * fit_xx_ + tokens * tokens;
  fit_xy_ = keep * fit_xy_ + tokens * seconds;
  const double mean_x = fit_x_ / fit_w_;
  const double mean_y = fit_y_ / fit_w_;
  const double var_x = fit_xx_ / fit_w_ - mean_x * mean_x;
  // Needs samples of different sizes (coefficient of variation of tokens ≥ 10%).
  if (fit_w_ < 3 || !(var_x > 0.01 * mean_x * mean_x) || mean_x <= 0) return;
  const double slope = (fit_xy_ / fit_w_ - mean_x * mean_y) / var_x;
  if (!(slope > 0)) return;
  overhead_s_ = std::clamp(mean_y - slope * mean_x, 0.0, mean_y);
}

void PredictedTtftScorer::UpdatePooledRate() {
  double sum = 0;
  int64_t n = 0;
  for (const Learned& l : learned_) {
    if (l.n >= options_.min_observations && l.seconds > 0) {
      sum += l.tokens / l.seconds;
      ++n;
    }
  }
  pooled_rate_ = n > 0 ? sum / static_cast<double>(n) : 0;
}

void PredictedTtftScorer::OnEndpointRemoved(EndpointId endpoint) {
  if (endpoint < learned_.size()) {
    learned_[endpoint] = Learned{};
    UpdatePooledRate();
  }
}

}  // namespace zumik::sched
