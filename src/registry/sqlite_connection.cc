// SQLite backend of SqlConnection: WAL journal, prepared statements cached per SQL text.
#include <sqlite3.h>

#include <unordered_map>

#include "core/status.h"
#include "registry/sql_connection.h"

namespace zumik::registry {
namespace {

class SqliteConnection final : public SqlConnection {
 public:
  explicit SqliteConnection(sqlite3* db) : db_(db) {}
  ~SqliteConnection() override {
    for (auto& [sql, statement] : statements_) sqlite3_finalize(statement);
    sqlite3_close_v2(db_);
  }

  std::string_view dialect() const override { return "sqlite"; }
  std::string_view BeginWrite() const override { return "BEGIN IMMEDIATE"; }

  absl::StatusOr<std::vector<SqlRow>> Query(std::string_view sql,
                                            const std::vector<SqlValue>& params) override {
    ASSIGN_OR_RETURN(sqlite3_stmt * statement, Prepare(sql));
    sqlite3_reset(statement);
    sqlite3_clear_bindings(statement);
    for (size_t i = 0; i < params.size(); ++i) {
      const int index = static_cast<int>(i + 1);
      const int rc = params[i]
                         ? sqlite3_bind_text(statement, index, params[i]->data(),
                                             static_cast<int>(params[i]->size()), SQLITE_TRANSIENT)
                         : sqlite3_bind_null(statement, index);
      if (rc != SQLITE_OK) return Error("bind", rc);
    }
    std::vector<SqlRow> rows;
    while (true) {
      const int rc = sqlite3_step(statement);
      if (rc == SQLITE_DONE) break;
      if (rc != SQLITE_ROW) {
        absl::Status status = Error("step", rc);
        sqlite3_reset(statement);
        return status;
      }
      const int columns = sqlite3_column_count(statement);
      SqlRow row(static_cast<size_t>(columns));
      for (int c = 0; c < columns; ++c) {
        if (sqlite3_column_type(statement, c) == SQLITE_NULL) continue;
        const unsigned char* text = sqlite3_column_text(statement, c);
        const int size = sqlite3_column_bytes(statement, c);
        row[static_cast<size_t>(c)] =
            std::string(reinterpret_cast<const char*>(text), static_cast<size_t>(size));
      }
      rows.push_back(std::move(row));
    }
    sqlite3_reset(statement);
    return rows;
  }

 private:
  absl::StatusOr<sqlite3_stmt*> Prepare(std::string_view sql) {
    auto it = statements_.find(std::string(sql));
    if (it != statements_.end()) return it->second;
    sqlite3_stmt* statement = nullptr;
    const int rc =
        sqlite3_prepare_v2(db_, sql.data(), static_cast<int>(sql.size()), &statement, nullptr);
    if (rc != SQLITE_OK) return Error("prepare", rc);
    statements_.emplace(std::string(sql), statement);
    return statement;
  }

  absl::Status Error(std::string_view what, int rc) const {
    const int extended = sqlite3_extended_errcode(db_);
    const absl::StatusCode code =
        (extended == SQLITE_CONSTRAINT_UNIQUE || extended == SQLITE_CONSTRAINT_PRIMARYKEY)
            ? absl::StatusCode::kAlreadyExists
        : (rc == SQLITE_BUSY || rc == SQLITE_LOCKED) ? absl::StatusCode::kUnavailable
                                                     : absl::StatusCode::kInternal;
    return Errorf(code, "sqlite {}: {}", what, sqlite3_errmsg(db_));
  }

  sqlite3* db_;
  std::unordered_map<std::string, sqlite3_stmt*> statements_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SqlConnection>> OpenSqlite(const std::string& path) {
  sqlite3* db = nullptr;
  const int rc = sqlite3_open_v2(
      path.c_str(), &db, SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX, nullptr);
  if (rc != SQLITE_OK) {
    std::string message = db != nullptr ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
    sqlite3_close_v2(db);
    return Errorf(absl::StatusCode::kUnavailable, "cannot open sqlite database '{}': {}", path,
                  message);
  }
  // WAL: readers never block the writer; synchronous=NORMAL keeps every committed transaction
  // across a process crash (the WAL is in the OS page cache), fsyncing only at checkpoints.
  // busy_timeout: the admin CLI (keys create/revoke) writes while a server runs.
  const char* pragmas =
      "PRAGMA busy_timeout=5000; PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL;"
      "PRAGMA foreign_keys=ON;";
  char* error = nullptr;
  if (sqlite3_exec(db, pragmas, nullptr, nullptr, &error) != SQLITE_OK) {
    std::string message = error != nullptr ? error : "unknown error";
    sqlite3_free(error);
    sqlite3_close_v2(db);
    return Errorf(absl::StatusCode::kUnavailable, "cannot configure sqlite database '{}': {}", path,
                  message);
  }
  return std::unique_ptr<SqlConnection>(new SqliteConnection(db));
}

}  // namespace zumik::registry
