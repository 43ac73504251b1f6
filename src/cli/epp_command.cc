// `zumik epp`: the endpoint picker as a standalone OpenAI-compatible gateway (--listen-http)
// and/or an Envoy ext_proc server (--listen-grpc), until SIGINT/SIGTERM.
#include <malloc.h>

#include <cstdio>

#include "cli/commands.h"
#include "cli/signals.h"
#include "core/config.h"
#include "core/http/url.h"
#include "core/status.h"
#include "epp/epp_service.h"

namespace zumik::cli {

void AddEppCommand(CLI::App& app) {
  struct Flags {
    std::vector<std::string> endpoints;
    std::string endpoints_file;
    std::string dns;
    std::string dns_interval = "5s";
    std::string pool_name;
    std::string pool_namespace = "default";
    std::string pool_group;
    std::string kubeconfig;
    std::string host = "0.0.0.0";
    int listen_http = -1;
    int listen_grpc = -1;
    int grpc_health_port = -1;
    bool grpc_tls = false;
    std::string grpc_cert;
    std::string grpc_key;
    int metrics_port = 9090;
    std::string config = "zumik-default";
    std::string profile_header = "byoc_epp";
    std::string scrape_interval = "50ms";
    int model_server_metrics_port = 0;
    std::string connect_timeout = "2s";
    std::string upstream_timeout = "10m";
    int max_queued = 0;
    std::string queue_ttl = "5s";
    std::string unresponsive_after = "5s";
    std::vector<std::string> objectives;
    std::vector<std::string> model_rewrites;
    bool subset_ip_only = false;
    int threads = 2;
    uint64_t seed = 1;
    int64_t max_body_bytes = 64 << 20;
    int64_t max_remembered_responses = 100'000;
  };
  auto f = std::make_shared<Flags>();
  auto* cmd = app.add_subcommand(
      "epp", "Endpoint picker: standalone OpenAI gateway and/or Envoy ext_proc server");
  cmd->add_option("--endpoints", f->endpoints, "Model servers, HOST:PORT[,HOST:PORT...]")
      ->delimiter(',');
  cmd->add_option("--endpoints-file", f->endpoints_file, "File of HOST:PORT entries");
  cmd->add_option("--dns", f->dns, "NAME:PORT: endpoints from the A records of a headless Service");
  cmd->add_option("--dns-interval", f->dns_interval, "DNS re-resolution interval")
      ->capture_default_str();
  cmd->add_option("--pool-name", f->pool_name, "Kubernetes InferencePool to serve");
  cmd->add_option("--pool-namespace", f->pool_namespace, "Namespace of the InferencePool")
      ->capture_default_str();
  cmd->add_option("--pool-group", f->pool_group,
                  "InferencePool API group (default: v1, falling back to v1alpha2)");
  cmd->add_option("--kubeconfig", f->kubeconfig, "kubeconfig (default: in-cluster)");
  cmd->add_option("--host", f->host, "Address every port listens on")->capture_default_str();
  cmd->add_option("--listen-http", f->listen_http, "Gateway port (OpenAI-compatible proxy)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--listen-grpc", f->listen_grpc, "Envoy ext_proc gRPC port (upstream: 9002)")
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--grpc-health-port", f->grpc_health_port,
                  "gRPC health alone, plaintext, on this port too (upstream: 9003): for "
                  "Kubernetes probes, which speak no TLS, with --grpc-tls")
      ->check(CLI::Range(0, 65535));
  cmd->add_flag("--grpc-tls", f->grpc_tls, "TLS on the gRPC port (self-signed unless certs given)");
  cmd->add_option("--grpc-cert", f->grpc_cert, "PEM certificate for --grpc-tls");
  cmd->add_option("--grpc-key", f->grpc_key, "PEM key for --grpc-tls");
  cmd->add_option("--metrics-port", f->metrics_port, "Prometheus /metrics port, -1 = off")
      ->capture_default_str()
      ->check(CLI::Range(-1, 65535));
  cmd->add_option("--config", f->config,
                  "Scheduling policy: built-in name or EndpointPickerConfig file")
      ->capture_default_str();
  cmd->add_option("--profile-header", f->profile_header,
                  "Value of the Agent-Execution-Profile response header")
      ->capture_default_str();
  cmd->add_option("--scrape-interval", f->scrape_interval, "Model-server /metrics interval")
      ->capture_default_str();
  cmd->add_option("--model-server-metrics-port", f->model_server_metrics_port,
                  "Scrape /metrics on this port of each endpoint instead of the port requests go "
                  "to (0 = that port); e.g. past Knative's queue-proxy")
      ->capture_default_str()
      ->check(CLI::Range(0, 65535));
  cmd->add_option("--connect-timeout", f->connect_timeout, "Upstream connect timeout")
      ->capture_default_str();
  cmd->add_option("--upstream-timeout", f->upstream_timeout, "Whole upstream exchange timeout")
      ->capture_default_str();
  cmd->add_option("--max-queued", f->max_queued,
                  "Queue up to N sheddable requests while saturated instead of 429 (0 = off)")
      ->capture_default_str()
      ->check(CLI::Range(0, 1000000));
  cmd->add_option("--queue-ttl", f->queue_ttl, "How long a queued request may wait")
      ->capture_default_str();
  cmd->add_option("--unresponsive-after", f->unresponsive_after,
                  "Pick no endpoint whose /metrics went unanswered this long while others answer "
                  "(at least 2 scrape intervals + 1s; 0 = off)")
      ->capture_default_str();
  cmd->add_option("--objective", f->objectives,
                  "InferenceObjective priority, NAME=PRIORITY (negative = sheddable); repeatable");
  cmd->add_option("--model-rewrite", f->model_rewrites,
                  "Serve MODEL as another model, MODEL=TARGET[:WEIGHT][,TARGET[:WEIGHT]...] "
                  "(weighted split; MODEL '*' = any model); repeatable. In Kubernetes mode the "
                  "pool's InferenceModelRewrites rank first");
  cmd->add_flag("--subset-ip-only", f->subset_ip_only,
                "Match envoy.lb.subset_hint entries by IP only (GIE v1.0.0)");
  cmd->add_option("--max-body-bytes", f->max_body_bytes,
                  "Largest request body accepted (413 above)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{1}, int64_t{1} << 32));
  cmd->add_option("--max-remembered-responses", f->max_remembered_responses,
                  "Responses API ids remembered with the endpoint that stored them, so "
                  "previous_response_id follow-ups go there (0 = off)")
      ->capture_default_str()
      ->check(CLI::Range(int64_t{0}, int64_t{100'000'000}));
  cmd->add_option("--threads", f->threads,
                  "Gateway worker threads, each with its own event loop and upstream pool; "
                  "new connections go to the worker with the fewest")
      ->capture_default_str()
      ->check(CLI::Range(1, 64));
  cmd->add_option("--seed", f->seed, "Seed of the scheduler's random choices")
      ->capture_default_str();

  cmd->callback([f] {
    auto fail = [](std::string_view message) {
      std::fprintf(stderr, "zumik epp: %.*s\n", static_cast<int>(message.size()), message.data());
      ExitCode() = 2;
    };
    if (f->listen_http < 0 && f->listen_grpc < 0) {
      return fail("nothing to serve: give --listen-http PORT and/or --listen-grpc PORT");
    }
    if (f->grpc_health_port >= 0 && f->listen_grpc < 0) {
      return fail("--grpc-health-port serves the ext_proc server's health: give --listen-grpc too");
    }
    epp::EppServiceOptions o;
    o.endpoints = f->endpoints;
    o.endpoints_file = f->endpoints_file;
    o.dns = f->dns;
    o.pool_name = f->pool_name;
    o.pool_namespace = f->pool_namespace;
    o.pool_group = f->pool_group;
    o.kubeconfig = f->kubeconfig;
    o.host = f->host;
    o.listen_http = f->listen_http;
    o.listen_grpc = f->listen_grpc;
    o.grpc_health_port = f->grpc_health_port;
    o.grpc_tls = f->grpc_tls;
    o.grpc_cert_file = f->grpc_cert;
    o.grpc_key_file = f->grpc_key;
    o.metrics_port = f->metrics_port;
    o.scraper.port = f->model_server_metrics_port;
    o.threads = f->threads;
    o.pipeline.policy = f->config;
    o.pipeline.profile_header = f->profile_header;
    o.pipeline.max_queued = f->max_queued;
    o.pipeline.subset_match_ip_only = f->subset_ip_only;
    o.pipeline.seed = f->seed;
    o.pipeline.max_body_bytes = static_cast<size_t>(f->max_body_bytes);
    o.pipeline.max_remembered_responses = static_cast<size_t>(f->max_remembered_responses);
    o.gateway.max_body_bytes = static_cast<size_t>(f->max_body_bytes);
    struct DurationFlag {
      const char* name;
      const std::string* text;
      Duration* out;
    };
    DurationFlag durations[] = {
        {"--dns-interval", &f->dns_interval, &o.dns_interval},
        {"--scrape-interval", &f->scrape_interval, &o.scraper.interval},
        {"--connect-timeout", &f->connect_timeout, &o.gateway.connect_timeout},
        {"--upstream-timeout", &f->upstream_timeout, &o.gateway.upstream_timeout},
        {"--queue-ttl", &f->queue_ttl, &o.pipeline.queue_ttl},
    };
    if (f->unresponsive_after == "0") {
      o.pipeline.unresponsive_after = Duration::zero();
    } else {
      auto parsed = ParseDuration(f->unresponsive_after);
      if (!parsed.ok() || *parsed <= Duration::zero()) {
        return fail(
            fmt::format("--unresponsive-after '{}': not a positive duration (e.g. 5s) or 0 (off)",
                        f->unresponsive_after));
      }
      o.pipeline.unresponsive_after = *parsed;
    }
    for (const auto& d : durations) {
      auto parsed = ParseDuration(*d.text);
      if (!parsed.ok() || *parsed <= Duration::zero()) {
        return fail(
            fmt::format("{} '{}': not a positive duration (e.g. 50ms, 2s)", d.name, *d.text));
      }
      *d.out = *parsed;
    }
    for (const auto& objective : f->objectives) {
      size_t eq = objective.find('=');
      int priority = 0;
      if (eq == std::string::npos || eq == 0) {
        return fail(fmt::format("--objective '{}' is not NAME=PRIORITY", objective));
      }
      try {
        priority = std::stoi(objective.substr(eq + 1));
      } catch (...) {
        return fail(fmt::format("--objective '{}': priority is not an integer", objective));
      }
      o.pipeline.rules.AddObjective(objective.substr(0, eq), priority);
    }
    for (const auto& rewrite : f->model_rewrites) {
      if (absl::Status added = o.pipeline.rules.AddRewriteFlag(rewrite); !added.ok()) {
        return fail(std::string(added.message()));
      }
    }

    // A proxy frees and reallocates the same buffer sizes at a high rate: by default glibc
    // hands freed arena tops back to the kernel (madvise) and serves large bodies with fresh
    // mmaps, so each request pays page faults and TLB-shootdown IPIs. Keep that memory.
    mallopt(M_TRIM_THRESHOLD, 64 << 20);
    mallopt(M_MMAP_THRESHOLD, 16 << 20);
    BlockTerminationSignals();
    auto service = epp::EppService::Start(std::move(o));
    if (!service.ok()) {
      std::fprintf(stderr, "zumik epp: %s\n", std::string(MessageOf(service.status())).c_str());
      ExitCode() = service.status().code() == absl::StatusCode::kInvalidArgument ? 2 : 1;
      return;
    }
    auto& s = **service;
    std::printf("zumik epp: policy %s, %zu endpoint(s) at start\n", f->config.c_str(),
                s.datastore().size());
    if (s.http_port() >= 0) {
      std::printf("  gateway  http://%s\n",
                  http::HostPort(f->host, static_cast<uint16_t>(s.http_port())).c_str());
    }
    if (s.grpc_port() >= 0) {
      std::printf("  ext_proc grpc://%s%s\n",
                  http::HostPort(f->host, static_cast<uint16_t>(s.grpc_port())).c_str(),
                  f->grpc_tls ? " (TLS)" : "");
    }
    if (s.grpc_health_port() >= 0) {
      std::printf("  health   grpc://%s (grpc.health.v1 only, plaintext)\n",
                  http::HostPort(f->host, static_cast<uint16_t>(s.grpc_health_port())).c_str());
    }
    if (s.metrics_port() >= 0) {
      std::printf("  metrics  http://%s/metrics\n",
                  http::HostPort(f->host, static_cast<uint16_t>(s.metrics_port())).c_str());
    }
    std::fflush(stdout);
    const int signal = WaitForTerminationSignal();
    std::printf("zumik epp: signal %d, shutting down\n", signal);
    std::fflush(stdout);
    s.Stop(std::chrono::seconds(5));
  });
}

}  // namespace zumik::cli
