// predicted-ttft-scorer (ours): estimates, per endpoint, this request's time to first token
//   est_ms = 1000 · (queued + uncached) / rate  +  decodeMsPerRequest · decoding
// where queued is the endpoint's uncached prefill tokens in flight from this router (fresh),
// plus, when the scrape is fresh and shows more waiting requests than this router knows of, the
// excess × the mean uncached request size; uncached is this request's tokens the endpoint has
// not cached (prefix index); decoding is the requests there past their first token; and rate
// is the endpoint's prefill rate learned online from observed TTFTs (never a simulator
// constant): an EWMA ratio of (tokens ahead + own uncached tokens) over (TTFT − overhead −
// decode term), with prefillTokensPerSecond as the prior until minObservations samples exist,
// and the mean of the learned endpoints' rates for endpoints not yet observed. The overhead is
// the fixed part of every TTFT (HTTP, tokenization, one engine step), learned fleet-wide as the
// intercept of a decayed least-squares fit of TTFT on tokens; without it, endpoints serving
// mostly cached (short) prefills would look slow and lose the traffic their cache deserves.
// The overhead is added to every estimate (it matters for the SLO, not for ranking).
// Ranking cost = est_ms + uncachedPenalty · 1000 · uncached / rate (recomputation also delays
// the requests that queue behind it); q = S / (S + cost) with S = the request's TTFT SLO
// (x-llm-d-slo-ttft-ms) or ttftScaleMs. Without an SLO the score is q; with one, endpoints
// predicted to meet it score 0.5 + 0.5·q and the others 0.5·q, so meeting the SLO comes first.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sched/params.h"
#include "sched/plugin.h"

namespace zumik::sched {

class PredictedTtftScorer final : public Scorer {
 public:
  static constexpr std::string_view kType = "predicted-ttft-scorer";
  struct Options {
    double prior_tokens_per_s = 15928;   // prefillTokensPerSecond
    double ttft_scale_ms = 1000;         // ttftScaleMs
    double decode_ms_per_request = 0.2;  // decodeMsPerRequest
    double uncached_penalty = 1.0;       // uncachedPenalty
    double ewma_alpha = 0.1;             // ewmaAlpha: weight of each new observation
    int64_t min_observations = 3;        // minObservations
    bool use_scraped_queue = true;       // useScrapedQueue
    Duration metrics_staleness = std::chrono::seconds(2);  // metricsStalenessThreshold
  };
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);
  PredictedTtftScorer(std::string name, Options options);

  bool NeedsPrefixMatch() const override { return true; }
  void Score(const CycleState& cycle, std::span<const Candidate> candidates,
             std::span<double> out) override;
  void PreRequest(const CycleState& cycle, const Candidate& primary, Headers& headers) override;
  void OnPrefillDone(const InFlightRequest& request, std::optional<Duration> ttft) override;
  void OnEndpointRemoved(EndpointId endpoint) override;

  // The prefill rate (tokens/s) used for an endpoint now.
  double PrefillRate(EndpointId endpoint) const;
  // The learned fixed part of a TTFT (seconds), 0 until the fit is well conditioned.
  double OverheadSeconds() const { return overhead_s_; }
  // The predicted TTFT (ms) of the cycle's request on a candidate.
  double EstimateMs(const CycleState& cycle, const Candidate& candidate) const;
  int64_t Observations(EndpointId endpoint) const;

 private:
  struct Learned {
    double tokens = 0;   // EWMA of tokens per observation
    double seconds = 0;  // EWMA of prefill seconds per observation
    int64_t n = 0;
  };
  double QueuedTokens(const CycleState& cycle, const Candidate& c) const;
  int64_t Decoding(const CycleState& cycle, const Candidate& c) const;
  void UpdatePooledRate();
  void FitOverhead(double tokens, double seconds);

  Options options_;
  // Decayed sums of the fleet-wide fit seconds = overhead + tokens / rate.
  double fit_w_ = 0, fit_x_ = 0, fit_y_ = 0, fit_xx_ = 0, fit_xy_ = 0;
  double overhead_s_ = 0;
  std::vector<Learned> learned_;    // by EndpointId
  double pooled_rate_ = 0;          // mean learned rate; 0 until any endpoint qualifies
  double mean_request_tokens_ = 0;  // EWMA of uncached tokens per picked request
};

}  // namespace zumik::sched
