// `zumik registry`: serve the control-plane registry; `zumik registry keys create|list|revoke`:
// manage an org's API keys directly in the registry's database.
#include <chrono>
#include <cmath>
#include <cstdio>
#include <cstdlib>
#include <memory>
#include <string>

#include "cli/commands.h"
#include "cli/signals.h"
#include "core/clock.h"
#include "core/config.h"
#include "core/http/url.h"
#include "core/status.h"
#include "registry/credentials.h"
#include "registry/model.h"
#include "registry/registry_server.h"
#include "registry/store.h"

namespace zumik::cli {
namespace {

void Fail(const char* what, const absl::Status& status, int code) {
  std::fprintf(stderr, "zumik registry%s: %s\n", what, std::string(MessageOf(status)).c_str());
  ExitCode() = code;
}

bool ParseDurationFlag(const std::string& name, const std::string& text, Duration& out) {
  auto parsed = ParseDuration(text);
  if (!parsed.ok() || *parsed <= Duration::zero()) {
    std::fprintf(stderr, "zumik registry: %s must be a positive duration like 15s, got '%s'\n",
                 name.c_str(), text.c_str());
    ExitCode() = 2;
    return false;
  }
  out = *parsed;
  return true;
}

// A finite number above zero (CLI::PositiveNumber lets "nan" through, which would turn a rate
// limit off).
const CLI::Validator kFinitePositive(
    [](std::string& text) -> std::string {
      char* end = nullptr;
      const double value = std::strtod(text.c_str(), &end);
      if (text.empty() || end != text.c_str() + text.size() || !std::isfinite(value) ||
          value <= 0) {
        return "must be a finite number above 0, got '" + text + "'";
      }
      return "";
    },
    "NUMBER > 0");

// The liveness settings fit together: agents accept the interval the registry tells them (the
// operator takes 0.1 s to 1 day), and 'offline' comes after 'unknown'.
bool CheckLiveness(const registry::LivenessPolicy& liveness) {
  using std::chrono::hours;
  using std::chrono::milliseconds;
  if (liveness.interval < milliseconds(100) || liveness.interval > hours(24)) {
    std::fprintf(stderr,
                 "zumik registry: --heartbeat-interval must be between 100ms and 24h (what agents "
                 "accept), got %gs\n",
                 ToSeconds(liveness.interval));
    ExitCode() = 2;
    return false;
  }
  if (liveness.offline_after <= liveness.UnknownAfter()) {
    std::fprintf(stderr,
                 "zumik registry: --offline-after (%gs) must be longer than --missed-beats x "
                 "--heartbeat-interval (%gs), after which a silent cluster is 'unknown'\n",
                 ToSeconds(liveness.offline_after), ToSeconds(liveness.UnknownAfter()));
    ExitCode() = 2;
    return false;
  }
  return true;
}

}  // namespace

void AddRegistryCommand(CLI::App& app) {
  struct Flags {
    int listen = -1;
    std::string host = "127.0.0.1";
    std::string db = "sqlite:zumik-registry.db";
    std::string heartbeat_interval = "15s";
    int missed_beats = 4;
    std::string offline_after = "15m";
    std::string startup_grace;
    std::string flush_interval = "1s";
    int threads = 2;
    double rate_limit = 50;
    double rate_burst = 100;
    double heartbeat_rate = 2;
    int page_refresh = 10;
    std::string org;
    std::string prefix;
  };
  auto flags = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand(
      "registry", "Serve the control-plane registry (clusters register and heartbeat here)");
  cmd->add_option("--listen", flags->listen, "Port to serve the API, web page and /metrics on")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--host", flags->host, "Address to listen on")->capture_default_str();
  cmd->add_option("--db", flags->db, "sqlite:PATH or postgres://user@host:port/dbname")
      ->capture_default_str();
  cmd->add_option("--heartbeat-interval", flags->heartbeat_interval,
                  "Interval the registry tells agents to heartbeat at")
      ->capture_default_str();
  cmd->add_option("--missed-beats", flags->missed_beats,
                  "Missed intervals before a cluster is 'unknown'")
      ->capture_default_str()
      ->check(CLI::Range(1, 100));
  cmd->add_option("--offline-after", flags->offline_after,
                  "Silence after which a cluster is 'offline'")
      ->capture_default_str();
  cmd->add_option("--startup-grace", flags->startup_grace,
                  "After a start, no cluster turns 'unknown' before this (default 2 x unknown)");
  cmd->add_option("--flush-interval", flags->flush_interval,
                  "How often accepted heartbeats are written to the database")
      ->capture_default_str();
  cmd->add_option("--threads", flags->threads, "I/O threads")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--rate-limit", flags->rate_limit, "Requests per second per API key")
      ->capture_default_str()
      ->check(kFinitePositive);
  cmd->add_option("--rate-burst", flags->rate_burst, "Burst per API key")
      ->capture_default_str()
      ->check(kFinitePositive);
  cmd->add_option("--heartbeat-rate", flags->heartbeat_rate,
                  "Heartbeats per second allowed per cluster (burst 10x)")
      ->capture_default_str()
      ->check(kFinitePositive);
  cmd->add_option("--page-refresh", flags->page_refresh, "Web page refresh period in seconds")
      ->capture_default_str()
      ->check(CLI::Range(1, 3600));

  auto* keys = cmd->add_subcommand("keys", "Manage an org's API keys (create prints the key once)");
  keys->require_subcommand(1);
  auto* create = keys->add_subcommand("create", "Create an API key for --org and print it once");
  auto* list = keys->add_subcommand("list", "List --org's keys (lookup prefix, created, revoked)");
  auto* revoke = keys->add_subcommand("revoke", "Revoke --org's key with this lookup prefix");
  for (CLI::App* sub : {create, list, revoke}) {
    sub->add_option("--org", flags->org, "Organisation name")->required();
    sub->add_option("--db", flags->db, "sqlite:PATH or postgres://...")->capture_default_str();
  }
  revoke->add_option("prefix", flags->prefix, "The key's lookup prefix (zk_live_xxxxxxxx)")
      ->required();

  auto open_store = [flags]() -> std::unique_ptr<registry::Store> {
    if (!registry::IsValidOrgName(flags->org)) {
      std::fprintf(stderr, "zumik registry keys: --org must be 1-63 of a-z 0-9 - _ .\n");
      ExitCode() = 2;
      return nullptr;
    }
    auto store = registry::OpenStore(flags->db);
    if (!store.ok()) {
      Fail(" keys", store.status(), 1);
      return nullptr;
    }
    return *std::move(store);
  };

  create->callback([flags, open_store] {
    auto store = open_store();
    if (!store) return;
    registry::NewApiKey key = registry::GenerateApiKey();
    registry::ApiKeyRecord record{key.lookup_prefix, flags->org, key.sha256_hex,
                                  RealClock::Instance().UnixSeconds(), std::nullopt};
    if (absl::Status status = store->InsertApiKey(record); !status.ok()) {
      Fail(" keys create", status, 1);
      return;
    }
    // The only time the key is shown: stdout carries the key alone so scripts can capture it.
    std::printf("%s\n", key.key.Reveal().c_str());
    std::fprintf(stderr,
                 "zumik registry: created key %s... for org '%s'. It is shown only now; the "
                 "registry keeps its SHA-256.\n",
                 key.lookup_prefix.c_str(), flags->org.c_str());
  });
  list->callback([flags, open_store] {
    auto store = open_store();
    if (!store) return;
    auto keys_or = store->ListApiKeys(flags->org);
    if (!keys_or.ok()) {
      Fail(" keys list", keys_or.status(), 1);
      return;
    }
    std::printf("%-18s %-22s %s\n", "PREFIX", "CREATED", "REVOKED");
    for (const auto& key : *keys_or) {
      std::printf("%-18s %-22s %s\n", key.lookup_prefix.c_str(),
                  FormatUnixUtc(key.created_unix).c_str(),
                  key.revoked_unix ? FormatUnixUtc(*key.revoked_unix).c_str() : "-");
    }
  });
  revoke->callback([flags, open_store] {
    auto store = open_store();
    if (!store) return;
    std::string prefix = flags->prefix;
    // Accept the whole key too, without echoing it.
    if (prefix.size() > registry::kApiKeyLookupLength) {
      prefix = registry::ApiKeyLookupPrefix(prefix);
    }
    if (absl::Status status =
            store->RevokeApiKey(flags->org, prefix, RealClock::Instance().UnixSeconds());
        !status.ok()) {
      Fail(" keys revoke", status, status.code() == absl::StatusCode::kNotFound ? 3 : 1);
      return;
    }
    std::printf("revoked %s for org '%s'\n", prefix.c_str(), flags->org.c_str());
  });

  cmd->callback([flags, cmd, keys] {
    if (keys->parsed()) return;
    if (flags->listen < 0) {
      std::fprintf(stderr, "zumik registry: --listen PORT is required (or use `keys`)\n%s",
                   cmd->help().c_str());
      ExitCode() = 2;
      return;
    }
    registry::RegistryServerOptions options;
    options.host = flags->host;
    options.port = static_cast<uint16_t>(flags->listen);
    options.db = flags->db;
    options.threads = flags->threads;
    registry::LivenessPolicy& liveness = options.service.liveness;
    if (!ParseDurationFlag("--heartbeat-interval", flags->heartbeat_interval, liveness.interval) ||
        !ParseDurationFlag("--offline-after", flags->offline_after, liveness.offline_after) ||
        !ParseDurationFlag("--flush-interval", flags->flush_interval, options.flush_interval)) {
      return;
    }
    if (!flags->startup_grace.empty() &&
        !ParseDurationFlag("--startup-grace", flags->startup_grace, liveness.startup_grace)) {
      return;
    }
    liveness.missed_beats = flags->missed_beats;
    if (!CheckLiveness(liveness)) return;
    options.service.api_rate_per_s = flags->rate_limit;
    options.service.api_burst = flags->rate_burst;
    options.service.heartbeat_rate_per_s = flags->heartbeat_rate;
    options.service.heartbeat_burst = 10 * flags->heartbeat_rate;
    options.service.page_refresh_s = flags->page_refresh;
    BlockTerminationSignals();
    registry::RegistryServer server(options);
    if (absl::Status status = server.Start(); !status.ok()) {
      Fail("", status, 1);
      return;
    }
    const std::string address = http::HostPort(flags->host, server.port());
    std::printf("zumik registry: listening on http://%s (%s database), heartbeat interval %gs\n",
                address.c_str(), std::string(server.store().backend()).c_str(),
                ToSeconds(liveness.interval));
    std::printf("  web page http://%s/  metrics /metrics  health /healthz\n", address.c_str());
    std::fflush(stdout);
    const int signal = WaitForTerminationSignal();
    std::printf("zumik registry: signal %d, shutting down\n", signal);
    std::fflush(stdout);
    server.Stop();
  });
}

}  // namespace zumik::cli
