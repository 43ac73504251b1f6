// A throwaway PostgreSQL 15 server for tests: initdb in a temp dir, pg_ctl start on a free
// loopback port (fsync off), trust auth for user "zumik", stopped (immediate) on destruction.
// When the tests run as root it runs the server as the "postgres" user, since PostgreSQL
// refuses to run as root.
#pragma once

#include <libpq-fe.h>
#include <pwd.h>
#include <unistd.h>

#include <cstdlib>
#include <fstream>
#include <sstream>
#include <string>
#include <string_view>

#include "fmt/format.h"
#include "support/process.h"

namespace zumik::testing {

inline constexpr const char* kPostgresBin = "/usr/lib/postgresql/15/bin";

class PostgresInstance {
 public:
  PostgresInstance() = default;
  ~PostgresInstance() { Stop(); }
  PostgresInstance(const PostgresInstance&) = delete;
  PostgresInstance& operator=(const PostgresInstance&) = delete;

  // Returns "" on success, else what went wrong (with the server log).
  std::string Start() {
    dir_ = MakeTempDir("registry-pg");
    port_ = PickFreePort();
    if (geteuid() == 0) {
      const passwd* pw = getpwnam("postgres");
      if (pw == nullptr) return "running as root and there is no 'postgres' user";
      if (chown(dir_.c_str(), pw->pw_uid, pw->pw_gid) != 0) return "cannot chown the temp dir";
      as_user_ = "runuser -u postgres -- ";
    }
    // initdb is the slow part (seconds): do it once per machine and copy the result.
    const std::string tmpl = fmt::format("/tmp/zumik-registry-pg-template-{}", geteuid());
    if (access((tmpl + "/ready").c_str(), F_OK) == 0) {
      const std::string copy = fmt::format("cp -a {}/data {}/data", tmpl, dir_);
      if (std::system(copy.c_str()) != 0) return "copying the initdb template failed";
    } else {
      const std::string init = fmt::format(
          "{}{}/initdb -D {}/data -U zumik --auth=trust -E UTF8 --no-sync > {}/initdb.log 2>&1",
          as_user_, kPostgresBin, dir_, dir_);
      if (std::system(init.c_str()) != 0) return "initdb failed: " + ReadFile(dir_ + "/initdb.log");
      const std::string staging = fmt::format("{}.{}", tmpl, getpid());
      const std::string save = fmt::format(
          "mkdir -p {0} && cp -a {1}/data {0}/data && touch {0}/ready && "
          "(mv -T {0} {2} 2>/dev/null || rm -rf {0})",
          staging, dir_, tmpl);
      (void)std::system(save.c_str());
    }
    return StartServer();
  }

  // Starts the stopped server again on the same data and port (a database restart).
  std::string Restart() { return running_ ? "already running" : StartServer(); }

 private:
  std::string StartServer() {
    const std::string start = fmt::format(
        "{}{}/pg_ctl -D {}/data -l {}/server.log -w -t 30 -o \"-p {} -k {} "
        "-c listen_addresses=127.0.0.1 -c fsync=off -c synchronous_commit=off\" start > "
        "{}/pg_ctl.log 2>&1",
        as_user_, kPostgresBin, dir_, dir_, port_, dir_, dir_);
    if (std::system(start.c_str()) != 0) {
      return "pg_ctl start failed: " + ReadFile(dir_ + "/pg_ctl.log") +
             ReadFile(dir_ + "/server.log");
    }
    running_ = true;
    return "";
  }

 public:
  // "immediate" is a crash: with this instance's synchronous_commit=off, the last few hundred
  // milliseconds of commits are lost. "fast" ends the sessions and keeps every commit.
  void Stop(std::string_view mode = "immediate") {
    if (!running_) return;
    running_ = false;
    const std::string stop = fmt::format("{}{}/pg_ctl -D {}/data -m {} -w stop > /dev/null 2>&1",
                                         as_user_, kPostgresBin, dir_, mode);
    (void)std::system(stop.c_str());
  }

  int port() const { return port_; }
  std::string Url(const std::string& database = "postgres") const {
    return fmt::format("postgres://zumik@127.0.0.1:{}/{}", port_, database);
  }
  // A URL whose connections use `schema` (created here) instead of public: a fresh, empty
  // namespace per test without the cost of CREATE DATABASE.
  std::string FreshSchemaUrl(const std::string& schema) const {
    if (!Exec("CREATE SCHEMA " + schema).empty()) return "";
    return Url() + "?options=-c%20search_path%3D" + schema;
  }

  // Runs SQL (no parameters) as the superuser; returns "" or the error.
  std::string Exec(const std::string& sql, const std::string& database = "postgres") const {
    PGconn* conn = PQconnectdb(Url(database).c_str());
    std::string error;
    if (PQstatus(conn) != CONNECTION_OK) {
      error = PQerrorMessage(conn);
    } else {
      PGresult* result = PQexec(conn, sql.c_str());
      if (PQresultStatus(result) != PGRES_COMMAND_OK && PQresultStatus(result) != PGRES_TUPLES_OK) {
        error = PQresultErrorMessage(result);
      }
      PQclear(result);
    }
    PQfinish(conn);
    return error;
  }

 private:
  static std::string ReadFile(const std::string& path) {
    std::ifstream in(path);
    std::stringstream text;
    text << in.rdbuf();
    return text.str();
  }

  std::string dir_;
  std::string as_user_;
  int port_ = 0;
  bool running_ = false;
};

}  // namespace zumik::testing
