// The registry service: org API keys and cluster tokens, registration, heartbeats, listing,
// liveness, route-ownership conflicts, the web page, /metrics and /healthz.
// Everything that shows clusters — the API and the page at `/` — needs an org API key and
// shows that org's only; /healthz and /metrics give fleet-wide totals, never a cluster.
//
// State: the Store is the source of truth for keys and registrations (written before a
// request is answered, so an acknowledged registration survives a crash). Clusters are also
// held in memory (loaded at start) so that heartbeats and reads never wait on the database;
// heartbeats are written behind in batches by Flush() (the server calls it every
// flush interval), so a crash loses at most that much heartbeat recency, never a cluster.
// One registry process per database (the in-memory index is not shared).
//
// Thread-safety: every public method may be called from any thread.
#pragma once

#include <boost/asio/awaitable.hpp>
#include <boost/asio/thread_pool.hpp>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <shared_mutex>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

#include "absl/status/statusor.h"
#include "core/clock.h"
#include "core/http/router.h"
#include "core/metrics/registry.h"
#include "core/secret.h"
#include "registry/liveness.h"
#include "registry/model.h"
#include "registry/store.h"

namespace zumik::registry {

struct ServiceOptions {
  LivenessPolicy liveness;
  // Token bucket per API key (all API-key endpoints together).
  double api_rate_per_s = 50;
  double api_burst = 100;
  // Token bucket per cluster for heartbeats (an agent beats every interval; this leaves
  // room for retries and status pushes).
  double heartbeat_rate_per_s = 2;
  double heartbeat_burst = 20;
  // The web page's refresh period.
  int page_refresh_s = 10;
  // Threads that run database calls for request handlers.
  int db_threads = 2;
};

struct Caller {
  std::string org;
  std::string key_prefix;
};

struct RouteConflict {
  std::string path;
  std::string owner;
  std::string other_id;
  std::string other_name;
  std::string other_owner;
};

struct ClusterView {
  ClusterRecord record;
  Liveness liveness = Liveness::kPending;
  std::vector<RouteConflict> conflicts;
};

struct ListFilter {
  std::optional<Profile> profile;
  // A stack tag: "vllm" matches any tag with that value, "runtime:vllm" only that tag.
  std::string stack;
  std::optional<Liveness> status;
};

struct RegisterResult {
  std::string id;
  // A fresh token on every registration: re-registering rotates it (the old one stops working).
  Secret cluster_token;
  bool created = false;
};

struct RegistryHealth {
  bool suspect = false;
  size_t stale = 0;
  size_t recently_alive = 0;
  size_t clusters = 0;
};

// The `code` of the registry's error bodies for an HTTP status ("invalid_argument" for 400,
// "not_found", "method_not_allowed", "payload_too_large", ...): its handlers' errors and the
// HTTP server's own (http::ServerOptions::error_code_for_status).
std::string_view ErrorCodeForStatus(int http_status);

class RegistryService {
 public:
  // `store` and `clock` must outlive the service. `metrics` may be null.
  RegistryService(Store& store, const Clock& clock, ServiceOptions options,
                  metrics::Registry* metrics);
  ~RegistryService();
  RegistryService(const RegistryService&) = delete;
  RegistryService& operator=(const RegistryService&) = delete;

  // Loads every cluster from the store and records the start time (for the start-up grace).
  absl::Status Load();

  // kUnauthenticated for a missing, unknown or revoked key (the message never echoes it).
  absl::StatusOr<Caller> AuthenticateApiKey(std::string_view credential);
  // kResourceExhausted when the caller's key is over its rate.
  absl::Status ChargeApiKey(const Caller& caller);

  absl::StatusOr<RegisterResult> RegisterCluster(const Caller& caller,
                                                 const RegisterRequest& request);
  // kUnauthenticated when the token is not this cluster's (or the cluster is unknown:
  // the two are indistinguishable to the caller); kResourceExhausted over the rate.
  // Returns the heartbeat interval the agent should use.
  absl::StatusOr<Duration> Heartbeat(std::string_view id, std::string_view token,
                                     const HeartbeatRequest& request);
  std::vector<ClusterView> ListClusters(std::string_view org, const ListFilter& filter) const;
  // kNotFound for an id the org does not have.
  absl::StatusOr<ClusterView> GetCluster(std::string_view org, std::string_view id) const;
  absl::Status DeleteCluster(std::string_view org, std::string_view id);

  // Writes pending heartbeats to the store (one transaction). On failure they stay pending.
  absl::Status Flush();
  size_t PendingHeartbeats() const;

  RegistryHealth Health() const;
  // One org's clusters as an HTML page (the page at `/`, for a caller with that org's key).
  // An empty org shows no clusters.
  std::string RenderPage(std::string_view org) const;
  // {"clusters":[...], "registry":{...}} for GET /v1/clusters.
  std::string ListJson(std::string_view org, const ListFilter& filter) const;
  std::string ClusterJson(const ClusterView& view) const;
  void AppendClusterJson(const ClusterView& view, double now_unix, std::string& out) const;

  // Waits for database work started by handlers to finish; call after the HTTP server has
  // stopped and before its io_context stops (that work resumes handlers on it).
  void DrainBlockingWork();

  // Adds /, /healthz, /metrics (when metrics were given) and the /v1/clusters API.
  void AddRoutes(http::Router& router);

  const ServiceOptions& options() const { return options_; }

  // A prepared HTTP answer (internal to the handlers; public so helpers can build one).
  struct Reply;

 private:
  struct Bucket {
    double tokens = 0;
    double last_unix = 0;
    bool initialised = false;
  };
  struct Entry {
    ClusterRecord record;
    Bucket heartbeat_bucket;
  };
  class Metrics;

  static bool Take(Bucket& bucket, double now_unix, double rate, double burst);
  // All clusters (optionally one org's) with their reported liveness and conflicts.
  std::vector<ClusterView> Snapshot(std::string_view org, RegistryHealth* health,
                                    bool with_conflicts = true) const;

  Reply ApiCall(std::string_view authorization, std::string_view method, std::string_view path,
                std::string_view body, const http::QueryParams& query);
  Reply DoRegister(const Caller& caller, std::string_view body);
  Reply DoList(const Caller& caller, const http::QueryParams& query);
  // The page for the key in `authorization` (Bearer or Basic), or a 401 that asks a browser to
  // sign in.
  Reply PageCall(std::string_view authorization);
  // Runs `work` (blocking database calls) on db_pool_ and resumes the caller on its executor.
  boost::asio::awaitable<Reply> RunBlocking(std::function<Reply()> work);

  boost::asio::awaitable<void> HandleApi(http::Request& request, http::ResponseWriter& writer);
  boost::asio::awaitable<void> HandleHeartbeatOrApi(http::Request& request,
                                                    http::ResponseWriter& writer);
  boost::asio::awaitable<void> HandlePage(http::Request& request, http::ResponseWriter& writer);
  boost::asio::awaitable<void> HandleHealth(http::Request& request, http::ResponseWriter& writer);
  boost::asio::awaitable<void> HandleMetrics(http::Request& request, http::ResponseWriter& writer);

  Store& store_;
  const Clock& clock_;
  const ServiceOptions options_;
  metrics::Registry* metrics_registry_;
  std::unique_ptr<Metrics> metrics_;
  double started_unix_ = 0;

  mutable std::shared_mutex mu_;
  std::unordered_map<std::string, Entry> clusters_;

  mutable std::mutex pending_mu_;
  std::unordered_map<std::string, HeartbeatWrite> pending_;

  std::mutex buckets_mu_;
  std::unordered_map<std::string, Bucket> api_buckets_;

  std::unique_ptr<boost::asio::thread_pool> db_pool_;
};

}  // namespace zumik::registry
