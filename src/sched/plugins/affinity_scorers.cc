// session-affinity-scorer and no-hit-lru-scorer (see affinity_scorers.h).
#include "sched/plugins/affinity_scorers.h"

#include <algorithm>
#include <optional>

#include "core/base64.h"
#include "core/status.h"

namespace zumik::sched {

SessionAffinityScorer::SessionAffinityScorer(std::string name, Options options)
    : Scorer(std::string(kType), std::move(name)), options_(std::move(options)) {}

absl::StatusOr<std::unique_ptr<Plugin>> SessionAffinityScorer::Create(const std::string& name,
                                                                      PluginParams& params) {
  Options options;
  std::string strategy = "encoded_endpoint_header";
  RETURN_IF_ERROR(params.Read("strategy", &strategy));
  RETURN_IF_ERROR(params.Read("algorithm", &strategy));  // RTR's newer name
  if (strategy == "encoded_endpoint_header") {
    options.strategy = Strategy::kEncodedEndpointHeader;
    options.header_name = "x-session-token";
  } else if (strategy == "session_id" || strategy == "session_id_header") {
    options.strategy = Strategy::kSessionId;
    options.header_name = "x-session-id";
  } else {
    return params.Error(params.Has("algorithm") ? "algorithm" : "strategy",
                        "use encoded_endpoint_header or session_id");
  }
  RETURN_IF_ERROR(params.Read("headerName", &options.header_name));
  double ttl_s = 300, sweep_s = 10;
  RETURN_IF_ERROR(params.ReadInRange("evictionTtlSeconds", &ttl_s, 1e-3, 1e9));
  RETURN_IF_ERROR(params.ReadInRange("evictionSweepSeconds", &sweep_s, 1e-3, 1e9));
  options.ttl = FromSeconds(ttl_s);
  options.sweep = FromSeconds(sweep_s);
  std::string profile;
  RETURN_IF_ERROR(params.Read("profileName", &profile));
  params.Ignore("missThreshold");
  return std::make_unique<SessionAffinityScorer>(name, std::move(options));
}

void SessionAffinityScorer::Sweep(Time now) {
  if (now < next_sweep_) return;
  next_sweep_ = now + options_.sweep;
  std::erase_if(bindings_,
                [&](const auto& kv) { return now - kv.second.last_used > options_.ttl; });
}

void SessionAffinityScorer::Score(const CycleState& cycle, std::span<const Candidate> candidates,
                                  std::span<double> out) {
  std::fill(out.begin(), out.end(), 0.0);
  const std::string& key = cycle.request->session_key;
  if (key.empty()) return;
  if (options_.strategy == Strategy::kEncodedEndpointHeader) {
    const std::optional<std::string> name = Base64Decode(key);
    if (!name || name->empty()) return;
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (candidates[i].endpoint->name == *name) out[i] = 1.0;
    }
    return;
  }
  Sweep(cycle.now);
  const auto it = bindings_.find(key);
  if (it == bindings_.end() || cycle.now - it->second.last_used > options_.ttl) return;
  for (size_t i = 0; i < candidates.size(); ++i) {
    if (candidates[i].id() == it->second.endpoint) out[i] = 1.0;
  }
}

void SessionAffinityScorer::PreRequest(const CycleState& cycle, const Candidate& primary,
                                       Headers& headers) {
  if (options_.strategy == Strategy::kEncodedEndpointHeader) {
    headers.emplace_back(options_.header_name, Base64Encode(primary.endpoint->name));
    return;
  }
  const std::string& key = cycle.request->session_key;
  if (!key.empty()) bindings_[key] = Binding{primary.id(), cycle.now};
}

void SessionAffinityScorer::OnEndpointRemoved(EndpointId endpoint) {
  std::erase_if(bindings_, [&](const auto& kv) { return kv.second.endpoint == endpoint; });
}

absl::StatusOr<std::unique_ptr<Plugin>> NoHitLruScorer::Create(const std::string& name,
                                                               PluginParams& params) {
  int64_t size = 1024;
  RETURN_IF_ERROR(params.ReadAtLeast("lruSize", &size, 1));
  std::string ignored;
  RETURN_IF_ERROR(params.Read("prefixMatchInfoProducerName", &ignored));
  params.Ignore("prefixPluginType");  // deprecated upstream, never used
  params.Ignore("prefixPluginName");
  return std::make_unique<NoHitLruScorer>(name, static_cast<size_t>(size));
}

void NoHitLruScorer::Score(const CycleState& /*cycle*/, std::span<const Candidate> candidates,
                           std::span<double> out) {
  last_cold_ = NoCandidateHoldsPrefix(candidates);
  if (!last_cold_) {
    std::fill(out.begin(), out.end(), 0.5);
    return;
  }
  const size_t n = candidates.size();
  if (n == 1) {
    out[0] = 1.0;
    return;
  }
  // Never-used endpoints first (in candidate order), then by LRU position, oldest first; the
  // rank counts over the whole LRU as upstream does.
  size_t never_used = 0;
  for (const Candidate& c : candidates) {
    if (std::find(lru_.begin(), lru_.end(), c.id()) == lru_.end()) ++never_used;
  }
  const double denominator = static_cast<double>(n - 1);
  size_t next_never_used = 0;
  for (size_t i = 0; i < n; ++i) {
    const auto it = std::find(lru_.begin(), lru_.end(), candidates[i].id());
    const size_t rank =
        it == lru_.end() ? next_never_used++ : never_used + static_cast<size_t>(it - lru_.begin());
    out[i] = std::max(0.0, 1.0 - static_cast<double>(rank) / denominator);
  }
}

void NoHitLruScorer::PreRequest(const CycleState& /*cycle*/, const Candidate& primary,
                                Headers& /*headers*/) {
  if (!last_cold_) return;
  last_cold_ = false;  // consumed: a later cycle that does not score must not reuse it
  std::erase(lru_, primary.id());
  lru_.push_back(primary.id());
  if (lru_.size() > lru_size_) lru_.erase(lru_.begin());
}

void NoHitLruScorer::OnEndpointRemoved(EndpointId endpoint) { std::erase(lru_, endpoint); }

}  // namespace zumik::sched
