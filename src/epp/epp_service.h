// The whole EPP process wired together, for `zumik epp` and integration tests: endpoint
// discovery (static list/file, DNS, or a Kubernetes InferencePool), the metric scraper, the
// pipeline, the standalone HTTP gateway, the ext_proc gRPC server (when built) and the
// Prometheus /metrics port.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "epp/gateway.h"
#include "epp/pipeline.h"
#include "epp/scraper.h"

namespace zumik::epp {

struct EppServiceOptions {
  // Discovery: exactly one of these.
  std::vector<std::string> endpoints;  // "host:port" (comma lists allowed in each entry)
  std::string endpoints_file;          // one HOST:PORT per line / comma separated; # comments
  std::string dns;                     // "NAME:PORT": A records of a headless Service
  Duration dns_interval = std::chrono::seconds(5);
  std::string pool_name;  // Kubernetes InferencePool
  std::string pool_namespace = "default";
  std::string pool_group;  // "" = v1, falling back to v1alpha2
  std::string kubeconfig;  // "" = $KUBECONFIG, in-cluster, ~/.kube/config

  std::string host = "127.0.0.1";  // listen address of every port
  int listen_http = -1;            // gateway port; -1 = off, 0 = any free port
  int listen_grpc = -1;            // ext_proc port; -1 = off
  // gRPC health alone, plaintext (for Kubernetes probes when the ext_proc port is TLS);
  // -1 = off (health is served on the ext_proc port either way).
  int grpc_health_port = -1;
  bool grpc_tls = false;
  std::string grpc_cert_file;
  std::string grpc_key_file;
  int metrics_port = 9090;  // -1 = off, 0 = any free port
  std::string pool_label = "zumik";
  // Gateway workers, nginx style: each is one thread running its own io_context with its
  // own listener on the shared port (SO_REUSEPORT) and its own upstream keep-alive pool, so
  // a request stays on one thread from accept to response. All share the one Pipeline.
  // Discovery, scraping and /metrics run on one more thread of their own.
  int threads = 2;

  PipelineOptions pipeline;
  ScraperOptions scraper;
  GatewayOptions gateway;
};

class EppService {
 public:
  // Starts everything before returning (ports bound, discovery and scraping started).
  static absl::StatusOr<std::unique_ptr<EppService>> Start(EppServiceOptions options);
  ~EppService();
  EppService(const EppService&) = delete;
  EppService& operator=(const EppService&) = delete;

  int http_port() const;
  int grpc_port() const;
  int grpc_health_port() const;  // -1 without one
  int metrics_port() const;
  Pipeline& pipeline();
  Datastore& datastore();
  // Graceful: stops accepting, drains up to `grace`, stops the io threads. Idempotent.
  void Stop(std::chrono::nanoseconds grace = std::chrono::seconds(5));

  struct Impl;

 private:
  explicit EppService(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

// Whether this build has the ext_proc server / Kubernetes discovery linked in.
bool HaveExtProc();
bool HaveKubeDiscovery();

}  // namespace zumik::epp
