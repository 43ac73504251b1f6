// The Store implementation shared by SQLite and PostgreSQL: schema migrations and queries.
#include <cstdlib>
#include <mutex>

#include "core/status.h"
#include "registry/sql_connection.h"
#include "registry/store.h"

namespace zumik::registry {
namespace {

// Each migration runs once, in order, in its own transaction; the applied versions are
// recorded in schema_migrations. Append new steps; never edit an applied one.
const std::vector<std::vector<std::string>>& Migrations() {
  static const auto* migrations = new std::vector<std::vector<std::string>>{
      // 1: orgs' API keys and clusters.
      {
          "CREATE TABLE api_keys ("
          " sha256 TEXT PRIMARY KEY,"
          " lookup_prefix TEXT NOT NULL,"
          " org TEXT NOT NULL,"
          " created_unix DOUBLE PRECISION NOT NULL,"
          " revoked_unix DOUBLE PRECISION)",
          "CREATE INDEX api_keys_lookup ON api_keys (lookup_prefix)",
          "CREATE INDEX api_keys_org ON api_keys (org)",
          "CREATE TABLE clusters ("
          " id TEXT PRIMARY KEY,"
          " org TEXT NOT NULL,"
          " name TEXT NOT NULL,"
          " profile TEXT NOT NULL,"
          " stack_router TEXT NOT NULL,"
          " stack_runtime TEXT NOT NULL,"
          " stack_serving TEXT NOT NULL,"
          " stack_autoscaler TEXT NOT NULL,"
          " stack_kv_layer TEXT NOT NULL,"
          " fingerprint TEXT NOT NULL,"
          " kubernetes_version TEXT NOT NULL,"
          " chart_version TEXT NOT NULL,"
          " token_sha256 TEXT NOT NULL,"
          " registered_unix DOUBLE PRECISION NOT NULL,"
          " last_heartbeat_unix DOUBLE PRECISION,"
          " status_json TEXT,"
          " status_unix DOUBLE PRECISION,"
          " UNIQUE (org, fingerprint),"
          " UNIQUE (org, name))",
      },
  };
  return *migrations;
}

std::string Num(double value) { return fmt::format("{}", value); }

std::optional<double> ParseDouble(const SqlValue& value) {
  if (!value) return std::nullopt;
  char* end = nullptr;
  const double parsed = std::strtod(value->c_str(), &end);
  if (end == value->c_str()) return std::nullopt;
  return parsed;
}

constexpr std::string_view kClusterColumns =
    "id, org, name, profile, stack_router, stack_runtime, stack_serving, stack_autoscaler,"
    " stack_kv_layer, fingerprint, kubernetes_version, chart_version, token_sha256,"
    " registered_unix, last_heartbeat_unix, status_json, status_unix";

absl::StatusOr<ClusterRecord> ClusterFromRow(const SqlRow& row) {
  if (row.size() != 17) return absl::InternalError("clusters row has the wrong column count");
  auto text = [&](size_t i) { return row[i].value_or(""); };
  ClusterRecord record;
  record.id = text(0);
  record.org = text(1);
  record.name = text(2);
  std::optional<Profile> profile = ParseProfile(text(3));
  if (!profile) {
    return Errorf(absl::StatusCode::kDataLoss, "cluster {} has profile '{}'", record.id, text(3));
  }
  record.profile = *profile;
  record.stack = Stack{text(4), text(5), text(6), text(7), text(8)};
  record.fingerprint = text(9);
  record.kubernetes_version = text(10);
  record.chart_version = text(11);
  record.token_sha256 = text(12);
  record.registered_unix = ParseDouble(row[13]).value_or(0);
  record.last_heartbeat_unix = ParseDouble(row[14]);
  if (row[15]) {
    absl::StatusOr<StatusSnapshot> status = StatusFromJson(*row[15]);
    // A stored snapshot that no longer parses is dropped, not fatal: the next one replaces it.
    if (status.ok()) record.status = *std::move(status);
  }
  record.status_unix = ParseDouble(row[16]);
  return record;
}

ApiKeyRecord KeyFromRow(const SqlRow& row) {
  ApiKeyRecord key;
  key.sha256_hex = row[0].value_or("");
  key.lookup_prefix = row[1].value_or("");
  key.org = row[2].value_or("");
  key.created_unix = ParseDouble(row[3]).value_or(0);
  key.revoked_unix = ParseDouble(row[4]);
  return key;
}

class SqlStore final : public Store {
 public:
  explicit SqlStore(std::unique_ptr<SqlConnection> conn) : conn_(std::move(conn)) {}

  std::string_view backend() const override { return conn_->dialect(); }

  absl::Status Migrate() {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Run("CREATE TABLE IF NOT EXISTS schema_migrations ("
                        " version INTEGER PRIMARY KEY, applied_unix DOUBLE PRECISION)")
                        .status());
    const auto& migrations = Migrations();
    for (size_t i = 0; i < migrations.size(); ++i) {
      const int version = static_cast<int>(i + 1);
      RETURN_IF_ERROR(Run(conn_->BeginWrite()).status());
      absl::Status status = [&]() -> absl::Status {
        if (conn_->dialect() == "postgres") {
          // Two processes migrating at once: the second waits, then sees the version.
          RETURN_IF_ERROR(Run("LOCK TABLE schema_migrations IN EXCLUSIVE MODE").status());
        }
        ASSIGN_OR_RETURN(auto rows, Run("SELECT version FROM schema_migrations WHERE version = ?",
                                        {std::to_string(version)}));
        if (!rows.empty()) return absl::OkStatus();
        for (const std::string& statement : migrations[i]) RETURN_IF_ERROR(Run(statement).status());
        return Run("INSERT INTO schema_migrations (version, applied_unix) VALUES (?, ?)",
                   {std::to_string(version), "0"})
            .status();
      }();
      RETURN_IF_ERROR(Finish(status));
    }
    return absl::OkStatus();
  }

  absl::StatusOr<int> SchemaVersion() override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto rows, Run("SELECT MAX(version) FROM schema_migrations"));
    if (rows.empty() || !rows[0][0]) return 0;
    return std::atoi(rows[0][0]->c_str());
  }

  absl::Status InsertApiKey(const ApiKeyRecord& key) override {
    std::lock_guard lock(mu_);
    return Run("INSERT INTO api_keys (sha256, lookup_prefix, org, created_unix, revoked_unix)"
               " VALUES (?, ?, ?, ?, NULL)",
               {key.sha256_hex, key.lookup_prefix, key.org, Num(key.created_unix)})
        .status();
  }

  absl::StatusOr<std::vector<ApiKeyRecord>> FindApiKeys(std::string_view lookup_prefix) override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto rows, Run("SELECT sha256, lookup_prefix, org, created_unix, revoked_unix"
                                    " FROM api_keys WHERE lookup_prefix = ?",
                                    {std::string(lookup_prefix)}));
    std::vector<ApiKeyRecord> keys;
    keys.reserve(rows.size());
    for (const SqlRow& row : rows) keys.push_back(KeyFromRow(row));
    return keys;
  }

  absl::StatusOr<std::vector<ApiKeyRecord>> ListApiKeys(std::string_view org) override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto rows,
                     Run("SELECT sha256, lookup_prefix, org, created_unix, revoked_unix"
                         " FROM api_keys WHERE org = ? ORDER BY created_unix, lookup_prefix",
                         {std::string(org)}));
    std::vector<ApiKeyRecord> keys;
    keys.reserve(rows.size());
    for (const SqlRow& row : rows) keys.push_back(KeyFromRow(row));
    return keys;
  }

  absl::Status RevokeApiKey(std::string_view org, std::string_view lookup_prefix,
                            double now_unix) override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto rows, Run("UPDATE api_keys SET revoked_unix = ?"
                                    " WHERE org = ? AND lookup_prefix = ? AND revoked_unix IS NULL"
                                    " RETURNING sha256",
                                    {Num(now_unix), std::string(org), std::string(lookup_prefix)}));
    if (rows.empty()) {
      return Errorf(absl::StatusCode::kNotFound, "org '{}' has no active key '{}'", org,
                    lookup_prefix);
    }
    return absl::OkStatus();
  }

  absl::StatusOr<UpsertOutcome> UpsertCluster(const ClusterRecord& proposed) override {
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Run(conn_->BeginWrite()).status());
    UpsertOutcome outcome;
    absl::Status status = [&]() -> absl::Status {
      ASSIGN_OR_RETURN(auto holders, Run("SELECT id FROM clusters WHERE org = ? AND name = ?"
                                         " AND fingerprint <> ?",
                                         {proposed.org, proposed.name, proposed.fingerprint}));
      if (!holders.empty()) {
        return Errorf(absl::StatusCode::kAlreadyExists,
                      "cluster name '{}' is already registered to another cluster ({}) in this org;"
                      " pick another name or delete that cluster",
                      proposed.name, holders[0][0].value_or(""));
      }
      const std::vector<SqlValue> fields = {
          proposed.name,           std::string(ProfileName(proposed.profile)),
          proposed.stack.router,   proposed.stack.runtime,
          proposed.stack.serving,  proposed.stack.autoscaler,
          proposed.stack.kv_layer, proposed.kubernetes_version,
          proposed.chart_version,  proposed.token_sha256};
      std::vector<SqlValue> update = fields;
      update.push_back(proposed.org);
      update.push_back(proposed.fingerprint);
      ASSIGN_OR_RETURN(
          auto updated,
          Run(fmt::format("UPDATE clusters SET name = ?, profile = ?, stack_router = ?,"
                          " stack_runtime = ?, stack_serving = ?, stack_autoscaler = ?,"
                          " stack_kv_layer = ?, kubernetes_version = ?,"
                          " chart_version = ?, token_sha256 = ?"
                          " WHERE org = ? AND fingerprint = ? RETURNING {}",
                          kClusterColumns),
              update));
      if (!updated.empty()) {
        ASSIGN_OR_RETURN(outcome.record, ClusterFromRow(updated[0]));
        outcome.created = false;
        return absl::OkStatus();
      }
      std::vector<SqlValue> insert = {proposed.id, proposed.org};
      insert.insert(insert.end(), fields.begin(), fields.end());
      insert.push_back(proposed.fingerprint);
      insert.push_back(Num(proposed.registered_unix));
      ASSIGN_OR_RETURN(
          auto inserted,
          Run(fmt::format("INSERT INTO clusters (id, org, name, profile, stack_router,"
                          " stack_runtime, stack_serving, stack_autoscaler, stack_kv_layer,"
                          " kubernetes_version, chart_version, token_sha256, fingerprint,"
                          " registered_unix) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)"
                          " RETURNING {}",
                          kClusterColumns),
              insert));
      if (inserted.empty()) return absl::InternalError("INSERT returned no row");
      ASSIGN_OR_RETURN(outcome.record, ClusterFromRow(inserted[0]));
      outcome.created = true;
      return absl::OkStatus();
    }();
    RETURN_IF_ERROR(Finish(status));
    return outcome;
  }

  absl::StatusOr<std::vector<ClusterRecord>> LoadClusters() override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(
        auto rows, Run(fmt::format("SELECT {} FROM clusters ORDER BY org, name", kClusterColumns)));
    std::vector<ClusterRecord> clusters;
    clusters.reserve(rows.size());
    for (const SqlRow& row : rows) {
      ASSIGN_OR_RETURN(ClusterRecord record, ClusterFromRow(row));
      clusters.push_back(std::move(record));
    }
    return clusters;
  }

  absl::StatusOr<std::optional<ClusterRecord>> GetCluster(std::string_view org,
                                                          std::string_view id) override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto rows, Run(fmt::format("SELECT {} FROM clusters WHERE org = ? AND id = ?",
                                                kClusterColumns),
                                    {std::string(org), std::string(id)}));
    if (rows.empty()) return std::optional<ClusterRecord>();
    ASSIGN_OR_RETURN(ClusterRecord record, ClusterFromRow(rows[0]));
    return std::optional<ClusterRecord>(std::move(record));
  }

  absl::Status DeleteCluster(std::string_view org, std::string_view id) override {
    std::lock_guard lock(mu_);
    ASSIGN_OR_RETURN(auto rows, Run("DELETE FROM clusters WHERE org = ? AND id = ? RETURNING id",
                                    {std::string(org), std::string(id)}));
    if (rows.empty()) return Errorf(absl::StatusCode::kNotFound, "no cluster '{}'", id);
    return absl::OkStatus();
  }

  absl::Status WriteHeartbeats(std::span<const HeartbeatWrite> writes) override {
    if (writes.empty()) return absl::OkStatus();
    std::lock_guard lock(mu_);
    RETURN_IF_ERROR(Run(conn_->BeginWrite()).status());
    absl::Status status = [&]() -> absl::Status {
      if (conn_->dialect() == "postgres") {
        // One statement for the whole batch: a round trip per row would cap the rate.
        std::string ids = "{";
        std::string times = "{";
        for (size_t i = 0; i < writes.size(); ++i) {
          if (i > 0) {
            ids += ',';
            times += ',';
          }
          ids += writes[i].id;  // ids are "byc_" + hex: no quoting needed in an array literal
          times += Num(writes[i].unix);
        }
        ids += '}';
        times += '}';
        RETURN_IF_ERROR(Run("UPDATE clusters AS c SET last_heartbeat_unix = v.t"
                            " FROM (SELECT unnest(?::text[]) AS id,"
                            " unnest(?::double precision[]) AS t) AS v WHERE c.id = v.id",
                            {ids, times})
                            .status());
      } else {
        for (const HeartbeatWrite& write : writes) {
          RETURN_IF_ERROR(Run("UPDATE clusters SET last_heartbeat_unix = ? WHERE id = ?",
                              {Num(write.unix), write.id})
                              .status());
        }
      }
      for (const HeartbeatWrite& write : writes) {
        if (!write.status_json) continue;
        RETURN_IF_ERROR(Run("UPDATE clusters SET status_json = ?, status_unix = ? WHERE id = ?",
                            {*write.status_json, Num(write.unix), write.id})
                            .status());
      }
      return absl::OkStatus();
    }();
    return Finish(status);
  }

 private:
  absl::StatusOr<std::vector<SqlRow>> Run(std::string_view sql,
                                          const std::vector<SqlValue>& params = {}) {
    return conn_->Query(sql, params);
  }

  // Commits when `status` is OK, else rolls back; returns the first failure.
  absl::Status Finish(const absl::Status& status) {
    if (status.ok()) {
      absl::Status commit = Run("COMMIT").status();
      if (!commit.ok()) (void)Run("ROLLBACK");
      return commit;
    }
    (void)Run("ROLLBACK");
    return status;
  }

  std::mutex mu_;
  std::unique_ptr<SqlConnection> conn_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<Store>> OpenStore(std::string_view url) {
  std::unique_ptr<SqlConnection> conn;
  if (url.starts_with("sqlite:")) {
    std::string path(url.substr(7));
    if (path.starts_with("//")) path = path.substr(2);
    if (path.empty()) return absl::InvalidArgumentError("sqlite: needs a file path (sqlite:PATH)");
    ASSIGN_OR_RETURN(conn, OpenSqlite(path));
  } else if (url.starts_with("postgres://") || url.starts_with("postgresql://")) {
    ASSIGN_OR_RETURN(conn, OpenPostgres(std::string(url)));
  } else if (url.ends_with(".db") || url.ends_with(".sqlite")) {
    ASSIGN_OR_RETURN(conn, OpenSqlite(std::string(url)));
  } else {
    return absl::InvalidArgumentError(
        "--db must be sqlite:PATH or postgres://user@host:port/dbname");
  }
  auto store = std::make_unique<SqlStore>(std::move(conn));
  RETURN_IF_ERROR(store->Migrate());
  return std::unique_ptr<Store>(std::move(store));
}

}  // namespace zumik::registry
