// The registry service: request handling, in-memory cluster index, write-behind heartbeats.
#include "registry/service.h"

#include <algorithm>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/value.hpp>
#include <chrono>
#include <ctime>
#include <functional>
#include <map>

#include "core/html.h"
#include "core/http/errors.h"
#include "core/http/response_writer.h"
#include "core/log.h"
#include "core/metrics/exposition.h"
#include "core/status.h"
#include "registry/credentials.h"

namespace zumik::registry {

namespace asio = boost::asio;
namespace json = boost::json;

struct RegistryService::Reply {
  int status = 200;
  std::string body;
  std::string content_type = std::string(http::kJsonContentType);
  http::Headers headers;
};

namespace {

using Reply = RegistryService::Reply;

std::string_view ErrorCode(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
      return "invalid_argument";
    case absl::StatusCode::kUnauthenticated:
      return "unauthenticated";
    case absl::StatusCode::kNotFound:
      return "not_found";
    case absl::StatusCode::kAlreadyExists:
      return "conflict";
    case absl::StatusCode::kResourceExhausted:
      return "rate_limited";
    case absl::StatusCode::kUnavailable:
      return "unavailable";
    default:
      return "internal";
  }
}

int HttpStatus(absl::StatusCode code) {
  switch (code) {
    case absl::StatusCode::kInvalidArgument:
      return 400;
    case absl::StatusCode::kUnauthenticated:
      return 401;
    case absl::StatusCode::kNotFound:
      return 404;
    case absl::StatusCode::kAlreadyExists:
      return 409;
    case absl::StatusCode::kResourceExhausted:
      return 429;
    case absl::StatusCode::kUnavailable:
      return 503;
    default:
      return 500;
  }
}

Reply ErrorReply(const absl::Status& status) {
  Reply reply;
  reply.status = HttpStatus(status.code());
  std::string message(MessageOf(status));
  if (reply.status == 500) {
    Logger("registry")->error("internal error: {}", message);
    message = "internal error";
  }
  reply.body = http::ErrorBody(reply.status, message, {}, ErrorCode(status.code()));
  if (reply.status == 429) reply.headers.emplace_back("Retry-After", "1");
  return reply;
}

Reply JsonReply(int status, std::string body) {
  Reply reply;
  reply.status = status;
  reply.body = std::move(body);
  return reply;
}

constexpr std::string_view kHtmlContentType = "text/html; charset=utf-8";

// A minimal HTML page: a heading and one paragraph (`paragraph_html` is trusted markup).
std::string HtmlMessage(std::string_view title, std::string_view paragraph_html) {
  return fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\"><title>{0}</title>"
      "<style>body{{font-family:system-ui,sans-serif;margin:2em;color:#222;max-width:46em}}"
      "</style></head><body>\n<h1>{0}</h1>\n<p>{1}</p>\n</body></html>\n",
      HtmlEscape(title), paragraph_html);
}

// Pages show one org's clusters: never kept by a cache or a proxy.
Reply HtmlReply(int status, std::string body) {
  Reply reply;
  reply.status = status;
  reply.body = std::move(body);
  reply.content_type = std::string(kHtmlContentType);
  reply.headers.emplace_back("Cache-Control", "no-store");
  return reply;
}

// The 401 that makes a browser show its sign-in dialog (RFC 7617).
Reply SignInReply() {
  Reply reply = HtmlReply(
      401, HtmlMessage("Sign in to the Zumik registry",
                       "This page lists your org's clusters. Sign in with any user name and your "
                       "org's API key (<code>zk_live_&hellip;</code>) as the password, or send "
                       "<code>Authorization: Bearer zk_live_&hellip;</code>. An admin creates a "
                       "key with <code>zumik registry keys create --org NAME</code>."));
  reply.headers.emplace_back("WWW-Authenticate",
                             "Basic realm=\"Zumik registry\", charset=\"UTF-8\"");
  return reply;
}

std::string IsoTime(double unix_seconds) {
  const std::time_t seconds = static_cast<std::time_t>(unix_seconds);
  std::tm tm{};
  gmtime_r(&seconds, &tm);
  char buffer[32];
  std::strftime(buffer, sizeof(buffer), "%Y-%m-%dT%H:%M:%SZ", &tm);
  return buffer;
}

void AppendJsonString(std::string_view text, std::string& out) {
  out += '"';
  for (char c : text) {
    switch (c) {
      case '"':
        out += "\\\"";
        break;
      case '\\':
        out += "\\\\";
        break;
      default:
        if (static_cast<unsigned char>(c) < 0x20) {
          fmt::format_to(std::back_inserter(out), "\\u{:04x}", static_cast<int>(c));
        } else {
          out += c;
        }
    }
  }
  out += '"';
}

bool StackMatches(const Stack& stack, std::string_view filter) {
  const std::pair<std::string_view, const std::string*> tags[] = {{"router", &stack.router},
                                                                  {"runtime", &stack.runtime},
                                                                  {"serving", &stack.serving},
                                                                  {"autoscaler", &stack.autoscaler},
                                                                  {"kv_layer", &stack.kv_layer}};
  const size_t colon = filter.find(':');
  for (const auto& [key, value] : tags) {
    if (colon == std::string_view::npos) {
      if (*value == filter) return true;
    } else if (filter.substr(0, colon) == key && *value == filter.substr(colon + 1)) {
      return true;
    }
  }
  return false;
}

std::string GpuSummary(const std::optional<StatusSnapshot>& status) {
  if (!status || status->gpus.empty()) return "";
  std::string out;
  for (const GpuCount& gpu : status->gpus) {
    if (!out.empty()) out += ", ";
    out += fmt::format("{}\u00d7 {}", gpu.count, gpu.product);
  }
  return out;
}

std::string StackSummary(const Stack& stack) {
  std::string out;
  for (const std::string* tag :
       {&stack.router, &stack.runtime, &stack.serving, &stack.autoscaler, &stack.kv_layer}) {
    if (tag->empty()) continue;
    if (!out.empty()) out += " \u00b7 ";
    out += *tag;
  }
  return out;
}

// The body of a coroutine that runs on the database pool (spawned by HandleApi).
asio::awaitable<Reply> CallOnPool(std::function<Reply()> work) { co_return work(); }

}  // namespace

// ---------------------------------------------------------------------------------------------
// Metrics

class RegistryService::Metrics {
 public:
  Metrics(RegistryService& service, metrics::Registry& registry) {
    if (auto family =
            registry.AddCounter("zumik_registry_heartbeats_total", "Heartbeats accepted.");
        family.ok()) {
      heartbeats_ = (*family)->With({});
    }
    if (auto family = registry.AddCounter("zumik_registry_registrations_total",
                                          "Registrations accepted, by outcome.", {"outcome"});
        family.ok()) {
      registrations_ = *family;
    }
    if (auto family =
            registry.AddCounter("zumik_registry_auth_failures_total",
                                "Requests rejected for a bad credential.", {"credential"});
        family.ok()) {
      auth_failures_ = *family;
    }
    if (auto family = registry.AddCounter("zumik_registry_rate_limited_total",
                                          "Requests rejected with 429.", {"credential"});
        family.ok()) {
      rate_limited_ = *family;
    }
    if (auto family = registry.AddHistogram(
            "zumik_registry_request_duration_seconds", "Request handling time by route.", {"route"},
            {0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1});
        family.ok()) {
      durations_ = *family;
    }
    if (auto family = registry.AddCallbackGauge("zumik_registry_clusters",
                                                "Registered clusters by profile and status.",
                                                {"profile", "status"});
        family.ok()) {
      clusters_handle_ = (*family)->AddCollector([&service](metrics::CallbackFamily::Emitter& out) {
        std::map<std::pair<std::string_view, std::string_view>, int> counts;
        for (Profile p : {Profile::kByocEpp, Profile::kByocDynamo}) {
          for (Liveness l :
               {Liveness::kPending, Liveness::kHealthy, Liveness::kUnknown, Liveness::kOffline}) {
            counts[{ProfileName(p), LivenessName(l)}] = 0;
          }
        }
        for (const ClusterView& view : service.Snapshot("", nullptr, false)) {
          ++counts[{ProfileName(view.record.profile), LivenessName(view.liveness)}];
        }
        for (const auto& [labels, count] : counts) {
          out.Emit({labels.first, labels.second}, count);
        }
      });
    }
    if (auto family = registry.AddCallbackGauge(
            "zumik_registry_suspect",
            "1 when most clusters went stale at once and the registry suspects itself.");
        family.ok()) {
      auto handle = (*family)->Add({}, [&service] { return service.Health().suspect ? 1.0 : 0.0; });
      if (handle.ok()) suspect_handle_ = *std::move(handle);
    }
    if (auto family = registry.AddCallbackGauge("zumik_registry_pending_heartbeat_writes",
                                                "Heartbeats accepted but not yet written.");
        family.ok()) {
      auto handle = (*family)->Add(
          {}, [&service] { return static_cast<double>(service.PendingHeartbeats()); });
      if (handle.ok()) pending_handle_ = *std::move(handle);
    }
  }

  void Heartbeat() {
    if (heartbeats_) heartbeats_->Inc();
  }
  void Registration(std::string_view outcome) {
    if (registrations_ != nullptr) registrations_->With({outcome})->Inc();
  }
  void AuthFailure(std::string_view credential) {
    if (auth_failures_ != nullptr) auth_failures_->With({credential})->Inc();
  }
  void RateLimited(std::string_view credential) {
    if (rate_limited_ != nullptr) rate_limited_->With({credential})->Inc();
  }
  void Observe(std::string_view route, double seconds) {
    if (durations_ != nullptr) durations_->With({route})->Observe(seconds);
  }

 private:
  std::shared_ptr<metrics::Counter> heartbeats_;
  metrics::CounterFamily* registrations_ = nullptr;
  metrics::CounterFamily* auth_failures_ = nullptr;
  metrics::CounterFamily* rate_limited_ = nullptr;
  metrics::HistogramFamily* durations_ = nullptr;
  metrics::CallbackHandle clusters_handle_;
  metrics::CallbackHandle suspect_handle_;
  metrics::CallbackHandle pending_handle_;
};

// ---------------------------------------------------------------------------------------------

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

std::string RegistryService::ClusterJson(const ClusterView& view) const {
  std::string out;
  AppendClusterJson(view, clock_.UnixSeconds(), out);
  return out;
}

// Written by hand rather than through boost::json objects: listing 10,000 clusters must stay
// well under 100 ms, and building a DOM per cluster costs several times the text itself.
void RegistryService::AppendClusterJson(const ClusterView& view, double now_unix,
                                        std::string& out) const {
  const ClusterRecord& r = view.record;
  auto field = [&out](std::string_view key, std::string_view value) {
    out += '"';
    out += key;
    out += "\":";
    AppendJsonString(value, out);
    out += ',';
  };
  out += '{';
  field("id", r.id);
  field("name", r.name);
  field("profile", ProfileName(r.profile));
  out += "\"stack\":{";
  field("router", r.stack.router);
  field("runtime", r.stack.runtime);
  field("serving", r.stack.serving);
  field("autoscaler", r.stack.autoscaler);
  field("kv_layer", r.stack.kv_layer);
  out.back() = '}';
  out += ',';
  field("fingerprint", r.fingerprint);
  field("kubernetes_version", r.kubernetes_version);
  field("chart_version", r.chart_version);
  field("status", LivenessName(view.liveness));
  field("registered_at", IsoTime(r.registered_unix));
  if (r.last_heartbeat_unix) {
    field("last_heartbeat_at", IsoTime(*r.last_heartbeat_unix));
    fmt::format_to(std::back_inserter(out), "\"last_heartbeat_age_s\":{:.3f},",
                   std::max(0.0, now_unix - *r.last_heartbeat_unix));
  } else {
    out += "\"last_heartbeat_at\":null,\"last_heartbeat_age_s\":null,";
  }
  out += "\"snapshot\":";
  if (r.status) {
    const StatusSnapshot& st = *r.status;
    out += "{\"gpus\":[";
    for (size_t i = 0; i < st.gpus.size(); ++i) {
      if (i > 0) out += ',';
      out += "{\"product\":";
      AppendJsonString(st.gpus[i].product, out);
      fmt::format_to(std::back_inserter(out), ",\"count\":{}}}", st.gpus[i].count);
    }
    fmt::format_to(std::back_inserter(out),
                   "],\"nodes\":{},\"replicas\":{{\"ready\":{},\"desired\":{}}},\"model\":",
                   st.nodes, st.replicas_ready, st.replicas_desired);
    AppendJsonString(st.model, out);
    fmt::format_to(std::back_inserter(out), ",\"tensor_parallel_size\":{},\"routes\":[",
                   st.tensor_parallel_size);
    for (size_t i = 0; i < st.routes.size(); ++i) {
      if (i > 0) out += ',';
      out += "{\"path\":";
      AppendJsonString(st.routes[i].path, out);
      out += ",\"owner\":";
      AppendJsonString(st.routes[i].owner, out);
      out += '}';
    }
    out += "]},";
  } else {
    out += "null,";
  }
  out += "\"route_conflicts\":[";
  for (size_t i = 0; i < view.conflicts.size(); ++i) {
    const RouteConflict& c = view.conflicts[i];
    if (i > 0) out += ',';
    out += '{';
    field("path", c.path);
    field("owner", c.owner);
    field("other_cluster_id", c.other_id);
    field("other_cluster_name", c.other_name);
    field("other_owner", c.other_owner);
    out.back() = '}';
  }
  out += "]}";
}

std::string RegistryService::ListJson(std::string_view org, const ListFilter& filter) const {
  const std::vector<ClusterView> views = ListClusters(org, filter);
  const RegistryHealth health = Health();
  const double now = clock_.UnixSeconds();
  std::string out = "{\"clusters\":[";
  out.reserve(views.size() * 700);
  for (size_t i = 0; i < views.size(); ++i) {
    if (i > 0) out += ',';
    AppendClusterJson(views[i], now, out);
  }
  out += fmt::format("],\"count\":{},\"registry\":{{\"suspect\":{},\"heartbeat_interval_s\":{}}}}}",
                     views.size(), health.suspect ? "true" : "false",
                     ToSeconds(options_.liveness.interval));
  return out;
}

std::string RegistryService::RenderPage(std::string_view org) const {
  RegistryHealth health;
  // "\x01" matches no org (Snapshot("") would mean every org).
  const std::vector<ClusterView> views = Snapshot(org.empty() ? "\x01" : org, &health);
  const double now = clock_.UnixSeconds();
  std::string html = fmt::format(
      "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
      "<meta http-equiv=\"refresh\" content=\"{}\">"
      "<title>Zumik registry</title><style>"
      "body{{font-family:system-ui,sans-serif;margin:2em;color:#222}}"
      "table{{border-collapse:collapse;width:100%}}"
      "th,td{{border-bottom:1px solid #ddd;padding:.4em .6em;text-align:left;font-size:14px}}"
      "th{{background:#f4f4f4}} code{{font-size:13px}}"
      ".healthy{{color:#0a7a2f;font-weight:600}} .unknown{{color:#b26a00;font-weight:600}}"
      ".offline{{color:#b00020;font-weight:600}} .pending{{color:#555;font-weight:600}}"
      ".banner{{background:#fff3cd;border:1px solid #e0c36a;padding:.6em;margin-bottom:1em}}"
      ".conflict{{color:#b00020}}"
      "</style></head><body>\n<h1>Zumik registry</h1>\n",
      options_.page_refresh_s);
  html += fmt::format(
      "<p id=\"summary\">Org <b id=\"org\">{}</b>: {} cluster(s). Heartbeat interval {} s; "
      "unknown after {} s without one, offline after {} s. Refreshes every {} s.</p>\n",
      HtmlEscape(org), views.size(), ToSeconds(options_.liveness.interval),
      ToSeconds(options_.liveness.UnknownAfter()), ToSeconds(options_.liveness.offline_after),
      options_.page_refresh_s);
  if (health.suspect) {
    // No fleet-wide counts here: they would tell one org about the others.
    html +=
        "<div class=\"banner\" id=\"suspect\">Registry suspect: most recently alive clusters "
        "stopped heartbeating at once. The registry's own network or clock is the likely fault, "
        "so their status is held at its last value.</div>\n";
  }
  html +=
      "<table id=\"clusters\"><thead><tr><th>Name</th><th>ID</th><th>Profile</th>"
      "<th>Stack</th><th>Status</th><th>Last heartbeat</th><th>GPUs</th><th>Model</th>"
      "<th>Routes</th></tr></thead><tbody>\n";
  for (const ClusterView& view : views) {
    const ClusterRecord& r = view.record;
    std::string heartbeat = "never";
    if (r.last_heartbeat_unix) {
      heartbeat = fmt::format("{} ({:.0f} s ago)", IsoTime(*r.last_heartbeat_unix),
                              std::max(0.0, now - *r.last_heartbeat_unix));
    }
    std::string routes;
    if (r.status) {
      for (const RouteClaim& route : r.status->routes) {
        if (!routes.empty()) routes += "<br>";
        routes += HtmlEscape(route.path) + " (" + HtmlEscape(route.owner) + ")";
      }
    }
    for (const RouteConflict& c : view.conflicts) {
      routes += fmt::format(
          "<br><span class=\"conflict\">conflict: {} also claimed by {} ({}, "
          "{})</span>",
          HtmlEscape(c.path), HtmlEscape(c.other_name), HtmlEscape(c.other_id),
          HtmlEscape(c.other_owner));
    }
    const std::string_view liveness = LivenessName(view.liveness);
    html += fmt::format(
        "<tr data-id=\"{}\"><td>{}</td><td><code>{}</code></td><td>{}</td><td>{}</td>"
        "<td class=\"{}\">{}</td><td>{}</td><td>{}</td><td>{}</td><td>{}</td></tr>\n",
        HtmlEscape(r.id), HtmlEscape(r.name), HtmlEscape(r.id), ProfileName(r.profile),
        HtmlEscape(StackSummary(r.stack)), liveness, liveness, HtmlEscape(heartbeat),
        HtmlEscape(GpuSummary(r.status)), HtmlEscape(r.status ? r.status->model : ""), routes);
  }
  html += "</tbody></table>\n</body></html>\n";
  return html;
}

// ---------------------------------------------------------------------------------------------
// HTTP

RegistryService::Reply RegistryService::DoRegister(const Caller& caller, std::string_view body) {
  absl::StatusOr<RegisterRequest> request = DecodeRegisterRequest(body);
  if (!request.ok()) return ErrorReply(request.status());
  absl::StatusOr<RegisterResult> result = RegisterCluster(caller, *request);
  if (!result.ok()) return ErrorReply(result.status());
  json::object object{{"id", result->id},
                      {"cluster_token", result->cluster_token.Reveal()},
                      {"heartbeat_interval_s", ToSeconds(options_.liveness.interval)},
                      {"created", result->created}};
  return JsonReply(result->created ? 201 : 200, json::serialize(object));
}

RegistryService::Reply RegistryService::DoList(const Caller& caller,
                                               const http::QueryParams& query) {
  ListFilter filter;
  for (const auto& [key, value] : query) {
    if (value.empty()) continue;
    if (key == "profile") {
      filter.profile = ParseProfile(value);
      if (!filter.profile) {
        return ErrorReply(absl::InvalidArgumentError(
            "query parameter 'profile' must be byoc_epp or byoc_dynamo"));
      }
    } else if (key == "status") {
      filter.status = ParseLiveness(value);
      if (!filter.status) {
        return ErrorReply(absl::InvalidArgumentError(
            "query parameter 'status' must be pending, healthy, unknown or offline"));
      }
    } else if (key == "stack") {
      if (value.size() > 2 * kMaxTagLength) {
        return ErrorReply(absl::InvalidArgumentError("query parameter 'stack' is too long"));
      }
      filter.stack = value;
    }
  }
  return JsonReply(200, ListJson(caller.org, filter));
}

RegistryService::Reply RegistryService::ApiCall(std::string_view authorization,
                                                std::string_view method, std::string_view path,
                                                std::string_view body,
                                                const http::QueryParams& query) {
  absl::StatusOr<Caller> caller = AuthenticateApiKey(BearerCredential(authorization));
  if (!caller.ok()) return ErrorReply(caller.status());
  if (absl::Status charged = ChargeApiKey(*caller); !charged.ok()) return ErrorReply(charged);
  if (path == "/v1/clusters") {
    if (method == "POST") return DoRegister(*caller, body);
    return DoList(*caller, query);
  }
  const std::string_view id = path.substr(std::string_view("/v1/clusters/").size());
  if (method == "DELETE") {
    absl::Status deleted = DeleteCluster(caller->org, id);
    if (!deleted.ok()) return ErrorReply(deleted);
    Reply reply;
    reply.status = 204;
    return reply;
  }
  absl::StatusOr<ClusterView> view = GetCluster(caller->org, id);
  if (!view.ok()) return ErrorReply(view.status());
  return JsonReply(200, ClusterJson(*view));
}

asio::awaitable<void> RegistryService::HandleApi(http::Request& request,
                                                 http::ResponseWriter& writer) {
  const auto start = std::chrono::steady_clock::now();
  std::string authorization(request.Header("Authorization"));
  std::string method(request.method_name());
  std::string path(request.path());
  const std::string& body = request.body();
  const http::QueryParams& query = request.query_params();
  std::function<Reply()> work = [this, authorization, method, path, body, query] {
    return ApiCall(authorization, method, path, body, query);
  };
  // Named first: GCC 12 may destroy a temporary inside a co_await expression twice.
  asio::awaitable<Reply> call = RunBlocking(std::move(work));
  Reply reply = co_await std::move(call);
  if (reply.status == 204) {
    http::IgnoreClientGone(co_await writer.Respond(204, "", "text/plain", reply.headers));
  } else {
    http::IgnoreClientGone(
        co_await writer.Respond(reply.status, reply.body, reply.content_type, reply.headers));
  }
  if (metrics_) {
    const std::string_view route = path == "/v1/clusters" ? (method == "POST" ? "register" : "list")
                                                          : (method == "DELETE" ? "delete" : "get");
    metrics_->Observe(
        route, std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
}

asio::awaitable<void> RegistryService::HandleHeartbeatOrApi(http::Request& request,
                                                            http::ResponseWriter& writer) {
  constexpr std::string_view kSuffix = "/heartbeat";
  const std::string_view rest = request.path_suffix();
  if (!rest.ends_with(kSuffix) || rest.size() == kSuffix.size() ||
      rest.substr(0, rest.size() - kSuffix.size()).find('/') != std::string_view::npos) {
    const std::string body = http::ErrorBody(404, "no such endpoint", {}, "not_found");
    http::IgnoreClientGone(co_await writer.Respond(404, body));
    co_return;
  }
  const auto start = std::chrono::steady_clock::now();
  const std::string id(rest.substr(0, rest.size() - kSuffix.size()));
  Reply reply;
  absl::StatusOr<HeartbeatRequest> decoded = DecodeHeartbeatRequest(request.body());
  if (!decoded.ok()) {
    reply = ErrorReply(decoded.status());
  } else {
    absl::StatusOr<Duration> interval =
        Heartbeat(id, BearerCredential(request.Header("Authorization")), *decoded);
    if (!interval.ok()) {
      reply = ErrorReply(interval.status());
    } else {
      reply = JsonReply(200, fmt::format("{{\"heartbeat_interval_s\":{}}}", ToSeconds(*interval)));
    }
  }
  http::IgnoreClientGone(
      co_await writer.Respond(reply.status, reply.body, reply.content_type, reply.headers));
  if (metrics_) {
    metrics_->Observe(
        "heartbeat",
        std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
}

asio::awaitable<Reply> RegistryService::RunBlocking(std::function<Reply()> work) {
  // co_spawn runs the work on the pool and resumes this coroutine on its own executor.
  asio::awaitable<Reply> task = CallOnPool(std::move(work));
  Reply reply =
      co_await asio::co_spawn(db_pool_->get_executor(), std::move(task), asio::use_awaitable);
  co_return reply;
}

RegistryService::Reply RegistryService::PageCall(std::string_view authorization) {
  // No credential at all is a browser's first request before it asks the user to sign in:
  // challenged, but not counted as an auth failure. A wrong one is counted as on the API.
  absl::StatusOr<Caller> caller = absl::UnauthenticatedError("no credential");
  if (!authorization.empty()) caller = AuthenticateApiKey(ApiKeyFromAuthorization(authorization));
  absl::Status status = caller.status();
  if (status.ok()) status = ChargeApiKey(*caller);
  if (status.ok()) return HtmlReply(200, RenderPage(caller->org));
  if (status.code() == absl::StatusCode::kUnauthenticated) return SignInReply();
  const Reply error = ErrorReply(status);  // logs the cause of a 500
  const bool limited = error.status == 429;
  Reply reply = HtmlReply(
      error.status,
      HtmlMessage("Zumik registry", limited ? "Too many requests with this API key; the page "
                                              "retries by itself in a moment."
                                            : "The registry failed to answer; see its log."));
  if (limited) reply.headers.emplace_back("Retry-After", "1");
  return reply;
}

asio::awaitable<void> RegistryService::HandlePage(http::Request& request,
                                                  http::ResponseWriter& writer) {
  const auto start = std::chrono::steady_clock::now();
  std::string authorization(request.Header("Authorization"));
  std::function<Reply()> work = [this, authorization] { return PageCall(authorization); };
  // Named first: GCC 12 may destroy a temporary inside a co_await expression twice.
  asio::awaitable<Reply> call = RunBlocking(std::move(work));
  Reply reply = co_await std::move(call);
  http::IgnoreClientGone(
      co_await writer.Respond(reply.status, reply.body, reply.content_type, reply.headers));
  if (metrics_) {
    metrics_->Observe(
        "page", std::chrono::duration<double>(std::chrono::steady_clock::now() - start).count());
  }
}

asio::awaitable<void> RegistryService::HandleHealth(http::Request&, http::ResponseWriter& writer) {
  const RegistryHealth health = Health();
  const std::string body = fmt::format(
      "{{\"status\":\"{}\",\"suspect\":{},\"clusters\":{},\"stale\":{},\"pending_writes\":{}}}",
      health.suspect ? "suspect" : "ok", health.suspect ? "true" : "false", health.clusters,
      health.stale, PendingHeartbeats());
  http::IgnoreClientGone(co_await writer.Respond(200, body));
}

asio::awaitable<void> RegistryService::HandleMetrics(http::Request&, http::ResponseWriter& writer) {
  const std::string text = metrics_registry_->Expose();
  http::IgnoreClientGone(co_await writer.Respond(200, text, metrics::kContentType));
}

void RegistryService::DrainBlockingWork() { db_pool_->join(); }

void RegistryService::AddRoutes(http::Router& router) {
  auto api = [this](http::Request& request, http::ResponseWriter& writer) {
    return HandleApi(request, writer);
  };
  router.Get("/v1/clusters", api);
  router.Post("/v1/clusters", api);
  router.HandlePrefix(http::Method::get, "/v1/clusters/", api);
  router.HandlePrefix(http::Method::delete_, "/v1/clusters/", api);
  router.HandlePrefix(http::Method::post, "/v1/clusters/",
                      [this](http::Request& request, http::ResponseWriter& writer) {
                        return HandleHeartbeatOrApi(request, writer);
                      });
  router.Get("/", [this](http::Request& request, http::ResponseWriter& writer) {
    return HandlePage(request, writer);
  });
  router.Get("/healthz", [this](http::Request& request, http::ResponseWriter& writer) {
    return HandleHealth(request, writer);
  });
  if (metrics_registry_ != nullptr) {
    router.Get("/metrics", [this](http::Request& request, http::ResponseWriter& writer) {
      return HandleMetrics(request, writer);
    });
  }
}

}  // namespace zumik::registry
