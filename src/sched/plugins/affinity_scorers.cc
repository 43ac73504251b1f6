// session-affinity-scorer and no-hit-lru-scorer (see affinity_scorers.h).
#include "sched/plugins/affinity_scorers.h"

#include <algorithm>

#include "core/status.h"

namespace zumik::sched {
namespace {

constexpr char kAlphabet[] = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

int Sextet(char c) {
  if (c >= 'A' && c <= 'Z') return c - 'A';
  if (c >= 'a' && c <= 'z') return c - 'a' + 26;
  if (c >= '0' && c <= '9') return c - '0' + 52;
  if (c == '+') return 62;
  if (c == '/') return 63;
  return -1;
}

}  // namespace

std::string EncodeBase64(std::string_view bytes) {
  std::string out;
  out.reserve((bytes.size() + 2) / 3 * 4);
  size_t i = 0;
  for (; i + 2 < bytes.size(); i += 3) {
    const uint32_t v = (uint32_t{static_cast<unsigned char>(bytes[i])} << 16) |
                       (uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8) |
                       uint32_t{static_cast<unsigned char>(bytes[i + 2])};
    for (int s = 18; s >= 0; s -= 6) out.push_back(kAlphabet[(v >> s) & 63]);
  }
  if (i < bytes.size()) {
    uint32_t v = uint32_t{static_cast<unsigned char>(bytes[i])} << 16;
    if (i + 1 < bytes.size()) v |= uint32_t{static_cast<unsigned char>(bytes[i + 1])} << 8;
    out.push_back(kAlphabet[(v >> 18) & 63]);
    out.push_back(kAlphabet[(v >> 12) & 63]);
    out.push_back(i + 1 < bytes.size() ? kAlphabet[(v >> 6) & 63] : '=');
    out.push_back('=');
  }
  return out;
}

bool DecodeBase64(std::string_view text, std::string* out) {
  out->clear();
  if (text.size() % 4 != 0) return false;
  for (size_t i = 0; i < text.size(); i += 4) {
    uint32_t v = 0;
    int pad = 0;
    for (size_t k = 0; k < 4; ++k) {
      const char c = text[i + k];
      if (c == '=' && i + 4 == text.size() && k >= 2) {
        ++pad;
        v <<= 6;
        continue;
      }
      const int s = Sextet(c);
      if (s < 0 || pad > 0) return false;
      v = (v << 6) | static_cast<uint32_t>(s);
    }
    out->push_back(static_cast<char>((v >> 16) & 0xff));
    if (pad < 2) out->push_back(static_cast<char>((v >> 8) & 0xff));
    if (pad < 1) out->push_back(static_cast<char>(v & 0xff));
  }
  return true;
}

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
  std::erase_if(bindings_, [&](const auto& kv) { return now - kv.second.last_used > options_.ttl; });
}

void SessionAffinityScorer::Score(const CycleState& cycle, std::span<const Candidate> candidates,
                                  std::span<double> out) {
  std::fill(out.begin(), out.end(), 0.0);
  const std::string& key = cycle.request->session_key;
  if (key.empty()) return;
  if (options_.strategy == Strategy::kEncodedEndpointHeader) {
    std::string name;
    if (!DecodeBase64(key, &name) || name.empty()) return;
    for (size_t i = 0; i < candidates.size(); ++i) {
      if (candidates[i].endpoint->name == name) out[i] = 1.0;
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
    headers.emplace_back(options_.header_name, EncodeBase64(primary.endpoint->name));
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
  last_cold_ = std::none_of(candidates.begin(), candidates.end(),
                            [](const Candidate& c) { return c.prefix_blocks > 0; });
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
    const size_t rank = it == lru_.end() ? next_never_used++
                                         : never_used + static_cast<size_t>(it - lru_.begin());
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
