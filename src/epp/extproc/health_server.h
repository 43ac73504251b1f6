// grpc.health.v1.Health alone, plaintext, on a port of its own (`zumik epp --grpc-health-port`;
// the upstream EPP's 9003). With TLS on the ext_proc port this is what Kubernetes probes:
// kubelet's gRPC probes do not speak TLS. It serves no ext_proc, so the plaintext port gives
// nothing away. Its statuses follow the ext_proc server's (ExtProcServer keeps both in step).
#pragma once

#include <grpcpp/grpcpp.h>

#include <memory>
#include <string>
#include <thread>

#include "absl/status/statusor.h"
#include "epp/extproc/completion_tag.h"
#include "epp/extproc/health_service.h"

namespace zumik::epp::extproc {

class HealthServer {
 public:
  // Listens on host:port (0 = any free port) before returning; an IPv6 `host` comes in
  // brackets, as gRPC takes it. Errors: kUnavailable (cannot bind).
  static absl::StatusOr<std::unique_ptr<HealthServer>> Start(const std::string& host, int port);
  ~HealthServer();
  HealthServer(const HealthServer&) = delete;
  HealthServer& operator=(const HealthServer&) = delete;

  int port() const { return port_; }
  HealthService& health() { return health_; }
  // Everything NOT_SERVING, then the server stops. Idempotent; also run by the destructor.
  void Shutdown();

 private:
  HealthServer() = default;

  HealthService health_;
  CallTracker tracker_;
  std::unique_ptr<grpc::ServerCompletionQueue> queue_;
  std::unique_ptr<grpc::Server> server_;
  std::thread thread_;
  int port_ = 0;
  bool shut_down_ = false;
};

}  // namespace zumik::epp::extproc
