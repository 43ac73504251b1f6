// The minimal SQL connection the store is written against: parameterised queries with text
// values ('?' placeholders; the PostgreSQL backend renumbers them), rows of optional text.
// Not thread-safe; the store serialises access.
#pragma once

#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"

namespace zumik::registry {

using SqlValue = std::optional<std::string>;
using SqlRow = std::vector<SqlValue>;

class SqlConnection {
 public:
  virtual ~SqlConnection() = default;
  virtual std::string_view dialect() const = 0;
  // One statement; every value is bound, never spliced into the SQL. A unique-constraint
  // violation is kAlreadyExists; other failures kInternal (kUnavailable when the connection
  // is lost).
  virtual absl::StatusOr<std::vector<SqlRow>> Query(std::string_view sql,
                                                    const std::vector<SqlValue>& params) = 0;
  // The statement that opens a write transaction ("BEGIN IMMEDIATE" on SQLite).
  virtual std::string_view BeginWrite() const = 0;
};

// PATH is a file (created if missing; WAL journal). ":memory:" works for tests.
absl::StatusOr<std::unique_ptr<SqlConnection>> OpenSqlite(const std::string& path);
// A libpq connection string or URL.
absl::StatusOr<std::unique_ptr<SqlConnection>> OpenPostgres(const std::string& conninfo);

}  // namespace zumik::registry
