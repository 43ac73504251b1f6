// InferencePool discovery for the EPP: watches one InferencePool
// (inference.networking.k8s.io/v1, falling back to inference.networking.x-k8s.io/v1alpha2 when
// the v1 API is not served) and the Pods of its namespace, and reports the ready endpoints its
// selector matches: one endpoint per (ready Pod, target port), "podIP:port".
//
// A Pod is ready when it is not being deleted, has a podIP, phase Running and condition
// Ready=True. Selector and target-port changes of the pool take effect at once (Pods are
// watched namespace-wide and matched locally, so no watch restarts on a selector change).
// A missing pool yields an empty set; it is picked up when it appears.
//
// Threading: the callback runs on an internal strand of `executor`, never concurrently with
// itself, after the first complete sync and then on every change of the endpoint set (an
// identical set is not reported again). It must not block and must not call Stop().
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "kube/client.h"
#include "kube/reflector.h"

namespace zumik::kube {

struct PoolEndpoint {
  std::string pod_name;
  // The Pod's IP (status.podIP).
  std::string address;
  // One of the pool's target ports.
  uint16_t port = 0;
  std::map<std::string, std::string> labels;

  // "10.0.0.7:8000", "[fd00::7]:8000" (http::HostPort).
  std::string HostPort() const;
  friend bool operator==(const PoolEndpoint&, const PoolEndpoint&) = default;
};

struct PoolDiscoveryOptions {
  std::string namespace_name = "default";
  std::string pool_name;
  // Empty: try inference.networking.k8s.io/v1, then inference.networking.x-k8s.io/v1alpha2.
  // Otherwise exactly this group (its version is v1 for inference.networking.k8s.io, else
  // v1alpha2).
  std::string pool_group;
  // Reconnect backoff and watch timeouts of the underlying reflectors.
  ReflectorOptions reflector;
};

class PoolDiscovery {
 public:
  // Endpoints sorted by (pod_name, port).
  using Callback = std::function<void(const std::vector<PoolEndpoint>& endpoints)>;

  // `client` must outlive this object.
  PoolDiscovery(const boost::asio::any_io_executor& executor, Client& client,
                PoolDiscoveryOptions options, Callback callback);
  // Stops (see Stop).
  ~PoolDiscovery();
  PoolDiscovery(const PoolDiscovery&) = delete;
  PoolDiscovery& operator=(const PoolDiscovery&) = delete;

  // Starts watching in the background. Call once.
  void Start();
  // Ends the watches and waits for them to finish: no callback runs after it returns. Call it
  // from a thread that is not the only one running the executor. Idempotent.
  void Stop();

  // True once the pool and the Pods have been listed at least once.
  bool synced() const;
  // The group in use ("inference.networking.k8s.io" or "inference.networking.x-k8s.io"),
  // empty until known.
  std::string pool_group() const;
  // The last list/watch error (OK when the last attempt succeeded), for readiness reporting.
  absl::Status last_error() const;

  // Implementation detail (shared with the background coroutines).
  struct State;

 private:
  std::shared_ptr<State> state_;
};

}  // namespace zumik::kube
