// grpc.health.v1.Health (Check and Watch) on the async API, served from the ext_proc
// workers' completion queues. gRPC's stock health service is callback-based, and any callback
// service makes gRPC start its own polling threads, which then take the ext_proc streams'
// socket events and hand every message to a worker (a futex wake per message).
#pragma once

#include <grpcpp/grpcpp.h>

#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <set>
#include <string>

#include "epp/extproc/completion_tag.h"
#include "grpc/health/v1/health.grpc.pb.h"

namespace zumik::epp::extproc {

class HealthService {
 public:
  using ServingStatus = ::grpc::health::v1::HealthCheckResponse::ServingStatus;
  class WatchCall;

  HealthService() = default;
  HealthService(const HealthService&) = delete;
  HealthService& operator=(const HealthService&) = delete;

  // Register before the server is built.
  grpc::Service* service() { return &service_; }
  // After the server is built: serves Check and Watch from `cq`.
  // Open calls are counted in `tracker`.
  void Start(grpc::ServerCompletionQueue& cq, CallTracker& tracker);

  // Unknown services: Check is NOT_FOUND, Watch reports SERVICE_UNKNOWN until set.
  void SetServingStatus(const std::string& service, bool serving);
  // Everything NOT_SERVING from now on (later SetServingStatus calls are ignored); open
  // Watch streams get NOT_SERVING and end.
  void Shutdown();

  // Used by the calls.
  std::optional<ServingStatus> StatusOf(const std::string& service);
  void AddWatcher(WatchCall* call);
  void RemoveWatcher(WatchCall* call);
  CallTracker& tracker() { return *tracker_; }

 private:
  ::grpc::health::v1::Health::AsyncService service_;
  std::mutex mu_;
  CallTracker* tracker_ = nullptr;
  std::map<std::string, ServingStatus> statuses_;
  std::set<WatchCall*> watchers_;
  bool shut_down_ = false;
};

}  // namespace zumik::epp::extproc
