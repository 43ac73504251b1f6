// A TEST DOUBLE of the Kubernetes API server, for tests only: not a conformant API server.
//
// It serves, on 127.0.0.1 and plain http://, from an in-memory store:
//   GET  .../<plural>                 list (labelSelector "a=b,c!=d,e", fieldSelector
//                                     metadata.name= / metadata.namespace=), with a
//                                     collection resourceVersion
//   GET  .../<plural>?watch=1         watch: newline-delimited JSON events over a chunked
//                                     stream, from resourceVersion (history replay; "" or "0"
//                                     starts with synthetic ADDED events), BOOKMARK events when
//                                     allowWatchBookmarks=true and SendBookmarks() is called,
//                                     ERROR 410 (Expired) for versions older than the last
//                                     ExpireWatches(), timeoutSeconds honoured
//   GET/POST/PUT/PATCH(merge)/DELETE on objects, with resourceVersion conflicts on PUT
//   GET  /version, /api, /api/v1, /apis/<group>, /apis/<group>/<version> (discovery: a group
//        is served only when a resource of it was added — that is how tests "install a CRD")
// Paths: /api/v1/[namespaces/NS/]PLURAL[/NAME] and /apis/G/V/[namespaces/NS/]PLURAL[/NAME];
// a namespaced collection path without namespaces/NS lists all namespaces.
// Errors are Kubernetes Status objects. Unknown resources are 404.
//
// Object builders for tests: kube/testing/test_objects.h.
// Built-in resources: pods, nodes, namespaces, configmaps, secrets, services (core v1) and
// deployments (apps/v1). The "kube-system" namespace exists from the start.
//
// Faults to inject: ExpireWatches() (410 Gone), SendBookmarks(), DisconnectWatches(),
// FailNextRequests(n, status). Observations: writes(), counters, open_watches(), WaitFor().
//
// Usage:
//   kube::testing::FakeApiServer api;
//   ASSERT_TRUE(api.Start().ok());
//   api.Upsert(kube::kPods, pod_json);              // emits ADDED (MODIFIED when it exists)
//   kube::Client client(io.get_executor(), api.ClientConfig());
// Thread-safe: every method may be called from any thread while it serves.
#pragma once

#include <boost/json/object.hpp>
#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/status.h"
#include "kube/client.h"

namespace zumik::kube::testing {

struct RecordedWrite {
  std::string method;  // "POST", "PUT", "PATCH", "DELETE"
  std::string path;    // "/api/v1/namespaces/ns/configmaps/x"
  std::string body;
};

class FakeApiServer {
 public:
  FakeApiServer();
  ~FakeApiServer();
  FakeApiServer(const FakeApiServer&) = delete;
  FakeApiServer& operator=(const FakeApiServer&) = delete;

  // Listens on 127.0.0.1 (an ephemeral port) with its own I/O thread.
  absl::Status Start();
  // Ends open watches and stops serving. Idempotent; the destructor calls it.
  void Stop();
  uint16_t port() const;
  // "http://127.0.0.1:PORT".
  std::string url() const;
  // A client configuration pointing here (with the required token, if any).
  Config ClientConfig() const;
  // A kubeconfig document pointing here (for `--kubeconfig` flags of child processes).
  std::string KubeconfigYaml() const;

  // Requests must then carry "Authorization: Bearer <token>" (else 401).
  void RequireToken(std::string token);
  // Serves a resource type (e.g. a CRD's). Idempotent.
  void AddResource(const Resource& resource);
  // The "gitVersion" /version reports (default "v1.30.2").
  void SetVersion(std::string git_version);

  // Creates or replaces an object (namespace from metadata.namespace, "default" when a
  // namespaced object has none); assigns uid, resourceVersion, creationTimestamp; notifies
  // watches. Adds the resource type if needed. Returns the stored object.
  boost::json::object Upsert(const Resource& resource, boost::json::object object);
  // Deletes; notifies watches. False when absent.
  bool Remove(const Resource& resource, const std::string& ns, const std::string& name);
  std::optional<boost::json::object> Find(const Resource& resource, const std::string& ns,
                                          const std::string& name) const;
  // Every object of the type (in `ns` only when non-empty), by key order.
  std::vector<boost::json::object> Objects(const Resource& resource,
                                           const std::string& ns = "") const;

  // Forgets the event history: open watches get an ERROR 410 event and end; later watches
  // from an older resourceVersion get 410 too (the client must relist).
  void ExpireWatches();
  // Every open watch that allowed bookmarks gets a BOOKMARK at the current resourceVersion.
  void SendBookmarks();
  // Ends every open watch stream (the client sees the watch end and must re-watch).
  void DisconnectWatches();
  // The next `count` requests (any path) are answered `http_status` with a Status body.
  void FailNextRequests(int count, int http_status);

  std::vector<RecordedWrite> writes() const;
  int open_watches() const;
  uint64_t list_requests() const;
  uint64_t watch_requests() const;
  std::string resource_version() const;

  // Polls `predicate` (every few ms) until true or `timeout`; returns its last value. For
  // tests that wait on background activity without sleeping a fixed time.
  static bool WaitFor(const std::function<bool()>& predicate,
                      std::chrono::milliseconds timeout = std::chrono::seconds(10));

  struct Impl;

 private:
  std::shared_ptr<Impl> impl_;
};

}  // namespace zumik::kube::testing
