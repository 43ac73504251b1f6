// PostgreSQL backend of SqlConnection over libpq: text parameters ($1..$n), one connection,
// reset once when it was lost.
#include <libpq-fe.h>

#include <cstring>

#include "core/status.h"
#include "registry/sql_connection.h"

namespace zumik::registry {
namespace {

// "a = ? AND b = ?" -> "a = $1 AND b = $2". Our SQL has no '?' inside string literals.
std::string Renumber(std::string_view sql) {
  std::string out;
  out.reserve(sql.size() + 16);
  int next = 1;
  for (char c : sql) {
    if (c == '?') {
      out += fmt::format("${}", next++);
    } else {
      out += c;
    }
  }
  return out;
}

std::string Trimmed(const char* message) {
  std::string text = message != nullptr ? message : "";
  while (!text.empty() && (text.back() == '\n' || text.back() == ' ')) text.pop_back();
  return text;
}

void IgnoreNotice(void*, const char*) {}

class PostgresConnection final : public SqlConnection {
 public:
  explicit PostgresConnection(PGconn* conn) : conn_(conn) {}
  ~PostgresConnection() override { PQfinish(conn_); }

  std::string_view dialect() const override { return "postgres"; }
  std::string_view BeginWrite() const override { return "BEGIN"; }

  absl::StatusOr<std::vector<SqlRow>> Query(std::string_view sql,
                                            const std::vector<SqlValue>& params) override {
    if (PQstatus(conn_) != CONNECTION_OK) {
      PQreset(conn_);
      if (PQstatus(conn_) != CONNECTION_OK) {
        return Errorf(absl::StatusCode::kUnavailable, "postgres connection lost: {}",
                      Trimmed(PQerrorMessage(conn_)));
      }
    }
    const std::string text = Renumber(sql);
    std::vector<const char*> values(params.size());
    for (size_t i = 0; i < params.size(); ++i) {
      values[i] = params[i] ? params[i]->c_str() : nullptr;
    }
    PGresult* result = PQexecParams(conn_, text.c_str(), static_cast<int>(params.size()), nullptr,
                                    values.data(), nullptr, nullptr, 0);
    const ExecStatusType state = PQresultStatus(result);
    if (state != PGRES_COMMAND_OK && state != PGRES_TUPLES_OK) {
      const char* sqlstate = PQresultErrorField(result, PG_DIAG_SQLSTATE);
      const absl::StatusCode code = sqlstate != nullptr && std::strcmp(sqlstate, "23505") == 0
                                        ? absl::StatusCode::kAlreadyExists
                                    : PQstatus(conn_) != CONNECTION_OK
                                        ? absl::StatusCode::kUnavailable
                                        : absl::StatusCode::kInternal;
      absl::Status status = Errorf(code, "postgres: {}", Trimmed(PQresultErrorMessage(result)));
      PQclear(result);
      return status;
    }
    std::vector<SqlRow> rows;
    const int tuples = PQntuples(result);
    const int fields = PQnfields(result);
    rows.reserve(static_cast<size_t>(tuples));
    for (int r = 0; r < tuples; ++r) {
      SqlRow row(static_cast<size_t>(fields));
      for (int f = 0; f < fields; ++f) {
        if (PQgetisnull(result, r, f)) continue;
        row[static_cast<size_t>(f)] =
            std::string(PQgetvalue(result, r, f), static_cast<size_t>(PQgetlength(result, r, f)));
      }
      rows.push_back(std::move(row));
    }
    PQclear(result);
    return rows;
  }

 private:
  PGconn* conn_;
};

}  // namespace

absl::StatusOr<std::unique_ptr<SqlConnection>> OpenPostgres(const std::string& conninfo) {
  // Defaults for a database that stops answering rather than refusing (a dead host, a network
  // partition): libpq's own are to wait without end to connect (at start and on every
  // reconnection) and for the kernel's TCP retries (~15 minutes) on a query. The URL's own
  // values win: each keyword given after the defaults overrides them (libpq expand_dbname).
  const char* const keywords[] = {"connect_timeout",
                                  "keepalives_idle",
                                  "keepalives_interval",
                                  "keepalives_count",
                                  "tcp_user_timeout",
                                  "dbname",
                                  nullptr};
  const char* const values[] = {"10", "30", "10", "3", "30000", conninfo.c_str(), nullptr};
  PGconn* conn = PQconnectdbParams(keywords, values, /*expand_dbname=*/1);
  if (conn == nullptr || PQstatus(conn) != CONNECTION_OK) {
    // The message names host/port, never the password.
    std::string message = conn != nullptr ? Trimmed(PQerrorMessage(conn)) : "out of memory";
    PQfinish(conn);
    return Errorf(absl::StatusCode::kUnavailable, "cannot connect to postgres: {}", message);
  }
  PQsetNoticeProcessor(conn, IgnoreNotice, nullptr);
  return std::unique_ptr<SqlConnection>(new PostgresConnection(conn));
}

}  // namespace zumik::registry
