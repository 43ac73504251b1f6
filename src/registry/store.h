// Durable registry state behind one interface, with SQLite (default; WAL) and PostgreSQL
// (libpq) backends sharing one schema, one set of migrations and one implementation of the
// queries (every value a bound parameter). Methods are thread-safe; each is one transaction.
#pragma once

#include <memory>
#include <optional>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "registry/model.h"

namespace zumik::registry {

struct ApiKeyRecord {
  std::string lookup_prefix;
  std::string org;
  std::string sha256_hex;
  double created_unix = 0;
  std::optional<double> revoked_unix;
};

struct ClusterRecord {
  std::string id;
  std::string org;
  std::string name;
  Profile profile = Profile::kByocEpp;
  Stack stack;
  std::string fingerprint;
  std::string kubernetes_version;
  std::string chart_version;
  std::string token_sha256;
  double registered_unix = 0;
  // Unset until the first heartbeat.
  std::optional<double> last_heartbeat_unix;
  std::optional<StatusSnapshot> status;
  std::optional<double> status_unix;
};

struct UpsertOutcome {
  ClusterRecord record;
  // False when (org, fingerprint) was already registered: the record keeps its id.
  bool created = false;
};

// One cluster's latest heartbeat, written behind (batched) by the service.
struct HeartbeatWrite {
  std::string id;
  double unix = 0;
  // Set when the heartbeat carried a changed status snapshot.
  std::optional<std::string> status_json;
};

class Store {
 public:
  virtual ~Store() = default;

  // "sqlite" or "postgres".
  virtual std::string_view backend() const = 0;
  // The schema version after migrations.
  virtual absl::StatusOr<int> SchemaVersion() = 0;

  virtual absl::Status InsertApiKey(const ApiKeyRecord& key) = 0;
  // Every key (revoked ones too) with this lookup prefix.
  virtual absl::StatusOr<std::vector<ApiKeyRecord>> FindApiKeys(std::string_view lookup_prefix) = 0;
  virtual absl::StatusOr<std::vector<ApiKeyRecord>> ListApiKeys(std::string_view org) = 0;
  // kNotFound when the org has no unrevoked key with that prefix.
  virtual absl::Status RevokeApiKey(std::string_view org, std::string_view lookup_prefix,
                                    double now_unix) = 0;

  // Registers `proposed` or, when (org, fingerprint) exists, updates that row's name, profile,
  // stack, versions and token hash and returns it with its original id. kAlreadyExists when
  // another fingerprint in the org holds the name.
  virtual absl::StatusOr<UpsertOutcome> UpsertCluster(const ClusterRecord& proposed) = 0;
  // Every cluster of every org (the service's startup load), ordered by org, name.
  virtual absl::StatusOr<std::vector<ClusterRecord>> LoadClusters() = 0;
  virtual absl::StatusOr<std::optional<ClusterRecord>> GetCluster(std::string_view org,
                                                                  std::string_view id) = 0;
  // kNotFound when the org has no such cluster.
  virtual absl::Status DeleteCluster(std::string_view org, std::string_view id) = 0;
  // All writes in one transaction; ids that no longer exist are skipped.
  virtual absl::Status WriteHeartbeats(std::span<const HeartbeatWrite> writes) = 0;
};

// "sqlite:PATH" (or a bare path ending in .db), "postgres://..." / "postgresql://...". Opens,
// migrates the schema and returns the store. kInvalidArgument for an unknown scheme,
// kUnavailable when the database cannot be reached.
absl::StatusOr<std::unique_ptr<Store>> OpenStore(std::string_view url);

}  // namespace zumik::registry
