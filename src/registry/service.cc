// The registry service: the in-memory cluster index, registration, heartbeats (written behind
// to the store), liveness and API-key rate limits. Its HTTP surface is in service_http.cc, its
// JSON and HTML views in service_view.cc.
#include "registry/service.h"

#include <algorithm>
#include <boost/asio/thread_pool.hpp>
#include <map>

#include "core/log.h"
#include "core/status.h"
#include "registry/credentials.h"
#include "registry/service_metrics.h"

namespace zumik::registry {

namespace asio = boost::asio;

namespace {

bool StackMatches(const Stack& stack, std::string_view filter) {
  const size_t colon = filter.find(':');
  for (const auto& [key, member] : kStackTags) {
    const std::string& value = stack.*member;
    if (colon == std::string_view::npos) {
      if (value == filter) return true;
    } else if (filter.substr(0, colon) == key && value == filter.substr(colon + 1)) {
      return true;
    }
  }
  return false;
}

}  // namespace

RegistryService::RegistryService(Store& store, const Clock& clock, ServiceOptions options,
                                 metrics::Registry* metrics)
    : store_(store),
      clock_(clock),
      options_(options),
      metrics_registry_(metrics),
      db_pool_(std::make_unique<asio::thread_pool>(std::max(1, options_.db_threads))) {
  if (metrics_registry_ != nullptr) metrics_ = std::make_unique<Metrics>(*this, *metrics_registry_);
}

RegistryService::~RegistryService() {
  // Unregister the scrape callbacks before the state they read goes away.
  metrics_.reset();
  db_pool_->join();
}

absl::Status RegistryService::Load() {
  ASSIGN_OR_RETURN(std::vector<ClusterRecord> records, store_.LoadClusters());
  std::unique_lock lock(mu_);
  clusters_.clear();
  for (ClusterRecord& record : records) {
    std::string id = record.id;
    clusters_[id].record = std::move(record);
  }
  started_unix_ = clock_.UnixSeconds();
  return absl::OkStatus();
}

bool RegistryService::Take(Bucket& bucket, double now_unix, double rate, double burst) {
  if (!bucket.initialised) {
    bucket.tokens = burst;
    bucket.last_unix = now_unix;
    bucket.initialised = true;
  }
  bucket.tokens =
      std::min(burst, bucket.tokens + std::max(0.0, now_unix - bucket.last_unix) * rate);
  bucket.last_unix = now_unix;
  if (bucket.tokens < 1) return false;
  bucket.tokens -= 1;
  return true;
}

absl::StatusOr<Caller> RegistryService::AuthenticateApiKey(std::string_view credential) {
  const std::string prefix = ApiKeyLookupPrefix(credential);
  auto fail = [this] {
    if (metrics_) metrics_->AuthFailure("api_key");
    return absl::UnauthenticatedError(
        "missing, unknown or revoked API key (send 'Authorization: Bearer zk_live_...')");
  };
  if (prefix.empty()) return fail();
  ASSIGN_OR_RETURN(std::vector<ApiKeyRecord> keys, store_.FindApiKeys(prefix));
  const std::string hash = Sha256Hex(credential);
  for (const ApiKeyRecord& key : keys) {
    if (ConstantTimeEquals(key.sha256_hex, hash) && !key.revoked_unix) {
      return Caller{key.org, key.lookup_prefix};
    }
  }
  return fail();
}

absl::Status RegistryService::ChargeApiKey(const Caller& caller) {
  std::lock_guard lock(buckets_mu_);
  if (!Take(api_buckets_[caller.key_prefix], clock_.UnixSeconds(), options_.api_rate_per_s,
            options_.api_burst)) {
    if (metrics_) metrics_->RateLimited("api_key");
    return Errorf(absl::StatusCode::kResourceExhausted,
                  "API key over its rate limit ({} requests/s, burst {}); retry later",
                  options_.api_rate_per_s, options_.api_burst);
  }
  return absl::OkStatus();
}

absl::StatusOr<RegisterResult> RegistryService::RegisterCluster(const Caller& caller,
                                                                const RegisterRequest& request) {
  ClusterRecord proposed;
  proposed.id = GenerateClusterId();
  proposed.org = caller.org;
  proposed.name = request.name;
  proposed.profile = request.profile;
  proposed.stack = request.stack;
  proposed.fingerprint = request.fingerprint;
  proposed.kubernetes_version = request.kubernetes_version;
  proposed.chart_version = request.chart_version;
  Secret token = GenerateClusterToken();
  proposed.token_sha256 = Sha256Hex(token.Reveal());
  proposed.registered_unix = clock_.UnixSeconds();
  absl::StatusOr<UpsertOutcome> outcome = store_.UpsertCluster(proposed);
  if (!outcome.ok()) {
    if (metrics_) {
      metrics_->Registration(
          outcome.status().code() == absl::StatusCode::kAlreadyExists ? "conflict" : "error");
    }
    return outcome.status();
  }
  {
    std::unique_lock lock(mu_);
    Entry& entry = clusters_[outcome->record.id];
    // Heartbeat recency and the snapshot in memory may be newer than the stored ones.
    std::optional<double> last = entry.record.last_heartbeat_unix;
    std::optional<StatusSnapshot> status = entry.record.status;
    std::optional<double> status_unix = entry.record.status_unix;
    const bool known = !entry.record.id.empty();
    entry.record = outcome->record;
    if (known && last &&
        (!entry.record.last_heartbeat_unix || *last > *entry.record.last_heartbeat_unix)) {
      entry.record.last_heartbeat_unix = last;
    }
    if (known && status && status_unix &&
        (!entry.record.status_unix || *status_unix > *entry.record.status_unix)) {
      entry.record.status = status;
      entry.record.status_unix = status_unix;
    }
  }
  if (metrics_) metrics_->Registration(outcome->created ? "created" : "existing");
  Logger("registry")
      ->info("org {}: cluster {} ({}) {}", caller.org, outcome->record.id, outcome->record.name,
             outcome->created ? "registered" : "re-registered");
  RegisterResult result;
  result.id = outcome->record.id;
  result.cluster_token = std::move(token);
  result.created = outcome->created;
  return result;
}

absl::StatusOr<Duration> RegistryService::Heartbeat(std::string_view id, std::string_view token,
                                                    const HeartbeatRequest& request) {
  const std::string hash = Sha256Hex(token);
  const double now = clock_.UnixSeconds();
  std::optional<std::string> status_json;
  {
    std::unique_lock lock(mu_);
    auto it = clusters_.find(std::string(id));
    if (it == clusters_.end() || token.empty() ||
        !ConstantTimeEquals(it->second.record.token_sha256, hash)) {
      lock.unlock();
      if (metrics_) metrics_->AuthFailure("cluster_token");
      return absl::UnauthenticatedError(
          "cluster token rejected for this cluster id (revoked, rotated by a re-registration, or "
          "the cluster was deleted): register again with the API key");
    }
    Entry& entry = it->second;
    if (!Take(entry.heartbeat_bucket, now, options_.heartbeat_rate_per_s,
              options_.heartbeat_burst)) {
      lock.unlock();
      if (metrics_) metrics_->RateLimited("cluster_token");
      return absl::ResourceExhaustedError("heartbeats for this cluster are over the rate limit");
    }
    entry.record.last_heartbeat_unix = now;
    if (request.status && (!entry.record.status || *entry.record.status != *request.status)) {
      entry.record.status = request.status;
      entry.record.status_unix = now;
      status_json = StatusToJson(*request.status);
    }
  }
  {
    std::lock_guard lock(pending_mu_);
    HeartbeatWrite& write = pending_[std::string(id)];
    write.id = std::string(id);
    write.unix = now;
    if (status_json) write.status_json = std::move(status_json);
  }
  if (metrics_) metrics_->Heartbeat();
  return options_.liveness.interval;
}

std::vector<ClusterView> RegistryService::Snapshot(std::string_view org, RegistryHealth* health,
                                                   bool with_conflicts) const {
  std::vector<ClusterView> views;
  std::vector<LivenessInput> inputs;
  std::vector<size_t> selected;  // index into inputs of each view
  {
    std::shared_lock lock(mu_);
    inputs.reserve(clusters_.size());
    for (const auto& [id, entry] : clusters_) {
      const bool wanted = org.empty() || entry.record.org == org;
      if (wanted) {
        selected.push_back(inputs.size());
        views.push_back(ClusterView{entry.record, Liveness::kPending, {}});
      }
      inputs.push_back(
          LivenessInput{entry.record.registered_unix, entry.record.last_heartbeat_unix});
    }
  }
  // Liveness is judged over the whole fleet: suspicion is about the registry, not an org.
  const FleetLiveness fleet =
      ClassifyFleet(options_.liveness, clock_.UnixSeconds(), started_unix_, inputs);
  for (size_t i = 0; i < views.size(); ++i) views[i].liveness = fleet.reported[selected[i]];
  if (health != nullptr) {
    health->suspect = fleet.suspect;
    health->stale = fleet.stale;
    health->recently_alive = fleet.recently_alive;
    health->clusters = inputs.size();
  }
  // Route ownership: a path claimed by different owners in one org is a conflict on each.
  // Claims are grouped by owner, so many clusters sharing one owner cost nothing; each cluster
  // lists at most kMaxConflictsShown of the other side.
  constexpr size_t kMaxConflictsShown = 10;
  struct Claim {
    size_t view;
    std::string_view owner;
  };
  std::map<std::pair<std::string_view, std::string_view>, std::vector<Claim>> claims;
  for (size_t i = 0; with_conflicts && i < views.size(); ++i) {
    if (!views[i].record.status || views[i].liveness == Liveness::kOffline) continue;
    for (const RouteClaim& route : views[i].record.status->routes) {
      claims[{views[i].record.org, route.path}].push_back(Claim{i, route.owner});
    }
  }
  for (auto& [key, holders] : claims) {
    if (holders.size() < 2) continue;
    std::sort(holders.begin(), holders.end(),
              [](const Claim& x, const Claim& y) { return x.owner < y.owner; });
    if (holders.front().owner == holders.back().owner) continue;
    std::vector<std::pair<size_t, size_t>> groups;  // [begin, end) of each owner
    for (size_t i = 0; i < holders.size(); ++i) {
      if (i == 0 || holders[i].owner != holders[i - 1].owner) groups.emplace_back(i, i);
      groups.back().second = i + 1;
    }
    for (const auto& [begin, end] : groups) {
      for (size_t m = begin; m < end; ++m) {
        const Claim& mine = holders[m];
        size_t shown = 0;
        for (const auto& [other_begin, other_end] : groups) {
          if (other_begin == begin) continue;
          for (size_t t = other_begin; t < other_end && shown < kMaxConflictsShown; ++t, ++shown) {
            const ClusterRecord& other = views[holders[t].view].record;
            views[mine.view].conflicts.push_back(
                RouteConflict{std::string(key.second), std::string(mine.owner), other.id,
                              other.name, std::string(holders[t].owner)});
          }
        }
      }
    }
  }
  std::sort(views.begin(), views.end(), [](const ClusterView& x, const ClusterView& y) {
    return std::tie(x.record.org, x.record.name, x.record.id) <
           std::tie(y.record.org, y.record.name, y.record.id);
  });
  return views;
}

std::vector<ClusterView> RegistryService::ListClusters(std::string_view org,
                                                       const ListFilter& filter) const {
  std::vector<ClusterView> views = Snapshot(org, nullptr);
  std::erase_if(views, [&](const ClusterView& view) {
    if (filter.profile && view.record.profile != *filter.profile) return true;
    if (filter.status && view.liveness != *filter.status) return true;
    if (!filter.stack.empty() && !StackMatches(view.record.stack, filter.stack)) return true;
    return false;
  });
  return views;
}

absl::StatusOr<ClusterView> RegistryService::GetCluster(std::string_view org,
                                                        std::string_view id) const {
  {
    std::shared_lock lock(mu_);
    auto it = clusters_.find(std::string(id));
    if (it == clusters_.end() || it->second.record.org != org) {
      return Errorf(absl::StatusCode::kNotFound, "no cluster '{}' in this org", id);
    }
  }
  for (ClusterView& view : Snapshot(org, nullptr)) {
    if (view.record.id == id) return std::move(view);
  }
  return Errorf(absl::StatusCode::kNotFound, "no cluster '{}' in this org", id);
}

absl::Status RegistryService::DeleteCluster(std::string_view org, std::string_view id) {
  {
    std::shared_lock lock(mu_);
    auto it = clusters_.find(std::string(id));
    if (it == clusters_.end() || it->second.record.org != org) {
      return Errorf(absl::StatusCode::kNotFound, "no cluster '{}' in this org", id);
    }
  }
  RETURN_IF_ERROR(store_.DeleteCluster(org, id));
  {
    std::unique_lock lock(mu_);
    clusters_.erase(std::string(id));
  }
  {
    std::lock_guard lock(pending_mu_);
    pending_.erase(std::string(id));
  }
  Logger("registry")->info("org {}: cluster {} deleted", org, id);
  return absl::OkStatus();
}

absl::Status RegistryService::Flush() {
  std::unordered_map<std::string, HeartbeatWrite> batch;
  {
    std::lock_guard lock(pending_mu_);
    batch.swap(pending_);
  }
  if (batch.empty()) return absl::OkStatus();
  std::vector<HeartbeatWrite> writes;
  writes.reserve(batch.size());
  for (auto& [id, write] : batch) writes.push_back(std::move(write));
  absl::Status status = store_.WriteHeartbeats(writes);
  if (!status.ok()) {
    // Keep them for the next attempt, unless a newer beat has arrived meanwhile.
    std::lock_guard lock(pending_mu_);
    for (HeartbeatWrite& write : writes) {
      auto [it, inserted] = pending_.try_emplace(write.id, write);
      if (!inserted && !it->second.status_json && write.status_json) {
        it->second.status_json = std::move(write.status_json);
      }
    }
  }
  return status;
}

size_t RegistryService::PendingHeartbeats() const {
  std::lock_guard lock(pending_mu_);
  return pending_.size();
}

RegistryHealth RegistryService::Health() const {
  RegistryHealth health;
  Snapshot("\x01", &health, false);  // no org matches: liveness only, no copies
  return health;
}

}  // namespace zumik::registry
