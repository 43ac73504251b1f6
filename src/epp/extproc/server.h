// The EPP's Envoy ext_proc gRPC server: `envoy.service.ext_proc.v3.ExternalProcessor/Process`
// (one bidirectional stream per HTTP request, FULL_DUPLEX_STREAMED) and `grpc.health.v1.Health`
// (services "", "liveness", "readiness", "envoy.service.ext_proc.v3.ExternalProcessor") on one
// port, plaintext or TLS; optionally the same health service alone on a plaintext port of its
// own (health_server.h), for Kubernetes probes when the ext_proc port speaks TLS.
//
// Use from `zumik epp --listen-grpc PORT`:
//   extproc::ExtProcOptions options;
//   options.port = port;            // 0 = pick a free port; see server->port()
//   options.tls.enabled = true;     // self-signed unless cert_file/key_file are given
//   ASSIGN_OR_RETURN(auto server, extproc::StartExtProcServer(options, pipeline));
//   ... wait for SIGTERM ...
//   server->Shutdown();             // readiness NOT_SERVING, drain, cancel what remains
#pragma once

#include <chrono>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "epp/extproc/backend.h"

namespace zumik::epp {
class Pipeline;
}

namespace zumik::epp::extproc {

inline constexpr char kExtProcServiceName[] = "envoy.service.ext_proc.v3.ExternalProcessor";

struct ExtProcTlsOptions {
  bool enabled = false;
  // PEM files (e.g. a mounted Kubernetes TLS secret). Both empty = a self-signed certificate
  // generated at start.
  std::string cert_file;
  std::string key_file;
};

struct ExtProcOptions {
  std::string host = "0.0.0.0";
  int port = 9002;  // the upstream EPP's ext_proc port; 0 = any free port
  ExtProcTlsOptions tls;
  // Largest ProcessingRequest accepted (Envoy sends body chunks well below this).
  int max_receive_message_bytes = 16 << 20;
  // HTTP/2 concurrent streams per gateway connection (one stream = one HTTP request in
  // flight); beyond it the gateway queues or opens another connection.
  int max_concurrent_streams_per_connection = 4096;
  // Readiness (and the ext_proc service's health) at start; see ExtProcServer::SetReady.
  bool ready = true;
  // >= 0: grpc.health.v1.Health is also served alone, plaintext, on this port of `host`
  // (0 = any free port; the upstream EPP uses 9003): Kubernetes' gRPC probes speak no TLS.
  int health_port = -1;
  // How long Shutdown waits for open streams before cancelling them.
  std::chrono::milliseconds drain_timeout{5000};
  // Threads serving the streams, each polling its own completion queue and handling its
  // streams' messages inline; 0 = one per core. One is the cheapest per request: gRPC's
  // epoll poller is shared by all threads, so with several, one thread's socket reads are
  // handed to another (measured 1.5-5x the CPU per request on 2 cores).
  int worker_threads = 1;
};

class ExtProcServer {
 public:
  virtual ~ExtProcServer() = default;
  // The bound port (useful with options.port = 0).
  virtual int port() const = 0;
  // The health-only port's bound port; -1 without one (options.health_port < 0).
  virtual int health_port() const = 0;
  // Readiness: "readiness" and the ext_proc service report SERVING / NOT_SERVING;
  // "liveness" stays SERVING until Shutdown.
  virtual void SetReady(bool ready) = 0;
  // Stops accepting streams, drains open ones up to drain_timeout, then cancels the rest.
  // Idempotent; also run by the destructor.
  virtual void Shutdown() = 0;
};

// Streams are served on options.worker_threads threads: Backend::Admit must not block. A
// request the backend queues (a queueable rejection, see Backend::TryEnterQueue) waits on an
// alarm of its completion queue, retried every kAdmitRetryInterval, while the thread serves
// the other streams; Shutdown answers such requests with the queue timeout at once.
// Starts serving on options.host:options.port before returning. Errors: kInvalidArgument
// (unreadable cert/key files), kUnavailable (cannot bind), kInternal (TLS setup).
absl::StatusOr<std::unique_ptr<ExtProcServer>> StartExtProcServer(const ExtProcOptions& options,
                                                                  std::shared_ptr<Backend> backend);

// The same, serving the EPP pipeline (defined in pipeline_backend.cc).
absl::StatusOr<std::unique_ptr<ExtProcServer>> StartExtProcServer(
    const ExtProcOptions& options, std::shared_ptr<Pipeline> pipeline);

}  // namespace zumik::epp::extproc
