// A small Kubernetes REST client: where the API server is and how to authenticate
// (in-cluster service account, kubeconfig for development), typed resource paths, and
// GET / LIST / WATCH / create / update / merge-patch / delete on JSON objects.
//
// Errors are absl::Status: an HTTP error is mapped with StatusCodeFromHttp (404 →
// kNotFound, 409 → kAlreadyExists, 401 → kUnauthenticated, 403 → kPermissionDenied, ...)
// with the API server's Status message. A watch whose resourceVersion is too old (410 Gone,
// as an HTTP status or an ERROR event) is kOutOfRange: see IsGone(); the caller relists.
// The bearer token never reaches a log line or an error message.
#pragma once

#include <boost/asio/any_io_executor.hpp>
#include <boost/asio/awaitable.hpp>
#include <boost/json/object.hpp>
#include <boost/json/value.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "core/http/client.h"
#include "core/http/tls.h"
#include "core/secret.h"

namespace zumik::kube {

inline constexpr std::string_view kServiceAccountDir =
    "/var/run/secrets/kubernetes.io/serviceaccount";

// Where the API server is and how to reach it.
struct Config {
  // "https://10.96.0.1:443", or "http://127.0.0.1:PORT" (the test double).
  std::string server;
  Secret token;
  // CA (ca_file / ca_pem), client certificate, verify_peer (off only for
  // insecure-skip-tls-verify).
  http::TlsOptions tls;
  // The service account's namespace, or the kubeconfig context's; "default" otherwise.
  std::string default_namespace = "default";
};

// From the service account mount (token, ca.crt, namespace under `dir`) and
// KUBERNETES_SERVICE_HOST / KUBERNETES_SERVICE_PORT. kFailedPrecondition when not in a Pod.
absl::StatusOr<Config> InClusterConfig(std::string dir = std::string(kServiceAccountDir));
// A kubeconfig file: the named context (empty: current-context), its cluster's server,
// certificate-authority(-data), insecure-skip-tls-verify, and its user's token / tokenFile /
// client-certificate(-data) / client-key(-data).
absl::StatusOr<Config> LoadKubeconfig(const std::string& path, const std::string& context = "");
// `kubeconfig` when given, else $KUBECONFIG, else in-cluster, else ~/.kube/config.
absl::StatusOr<Config> ResolveConfig(const std::string& kubeconfig = "");

// A resource type: {"", "v1", "pods"}, {"apps", "v1", "deployments"}.
struct Resource {
  std::string group;  // "" for the core API
  std::string version;
  std::string plural;
  bool namespaced = true;

  // "v1" or "apps/v1".
  std::string ApiVersion() const;
  // "/api/v1" or "/apis/apps/v1".
  std::string GroupVersionPath() const;
  // The collection or object path; an empty namespace of a namespaced resource means all
  // namespaces.
  std::string Path(std::string_view ns, std::string_view name = {}) const;
  friend bool operator==(const Resource&, const Resource&) = default;
};

inline const Resource kPods{"", "v1", "pods", true};
inline const Resource kNodes{"", "v1", "nodes", false};
inline const Resource kNamespaces{"", "v1", "namespaces", false};
inline const Resource kConfigMaps{"", "v1", "configmaps", true};
inline const Resource kSecrets{"", "v1", "secrets", true};
inline const Resource kDeployments{"apps", "v1", "deployments", true};
inline const Resource kInferencePoolsV1{"inference.networking.k8s.io", "v1", "inferencepools",
                                        true};
inline const Resource kInferencePoolsV1Alpha2{"inference.networking.x-k8s.io", "v1alpha2",
                                              "inferencepools", true};
inline const Resource kInferenceServices{"serving.kserve.io", "v1beta1", "inferenceservices", true};
inline const Resource kHttpRoutes{"gateway.networking.k8s.io", "v1", "httproutes", true};

struct ListOptions {
  // "app=vllm,tier=gpu" (equality selectors).
  std::string label_selector;
  // "metadata.name=my-pool".
  std::string field_selector;
};

struct ObjectList {
  std::vector<boost::json::object> items;
  std::string resource_version;
};

struct WatchOptions {
  ListOptions selector;
  // Start after this version (from a list or the last event/bookmark).
  std::string resource_version;
  bool allow_bookmarks = true;
  // The server ends the watch after this long; the client then re-watches.
  int timeout_seconds = 300;
};

enum class EventType { kAdded, kModified, kDeleted, kBookmark };
std::string_view EventTypeName(EventType type);

struct WatchEvent {
  EventType type = EventType::kAdded;
  // The object (for a bookmark only metadata.resourceVersion is meaningful).
  boost::json::object object;
};

// True for "resourceVersion too old" (410 Gone / reason Expired): relist.
bool IsGone(const absl::Status& status);

// Accessors for the usual object fields; empty when absent.
std::string ObjectName(const boost::json::object& object);
std::string ObjectNamespace(const boost::json::object& object);
std::string ObjectResourceVersion(const boost::json::object& object);
std::map<std::string, std::string> ObjectLabels(const boost::json::object& object);

// One open watch: newline-delimited JSON events read from a chunked response. Move-only.
class WatchStream {
 public:
  WatchStream(WatchStream&&) noexcept;
  WatchStream& operator=(WatchStream&&) noexcept;
  ~WatchStream();

  // The next event; nullopt when the server ended the watch (timeout or closed connection:
  // re-watch from the last resourceVersion). An ERROR event is returned as its status
  // (IsGone() for 410).
  boost::asio::awaitable<absl::StatusOr<std::optional<WatchEvent>>> Next();
  // Ends the watch; a pending Next returns kCancelled. Any thread.
  void Cancel();

 private:
  friend class Client;
  struct Impl;
  explicit WatchStream(std::unique_ptr<Impl> impl);
  std::unique_ptr<Impl> impl_;
};

class Client {
 public:
  Client(boost::asio::any_io_executor executor, Config config);
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  const Config& config() const { return config_; }
  // Why requests cannot work (an unusable CA, ...); OK otherwise.
  absl::Status tls_status() const { return http_.tls_status(); }

  // Any API path ("/version", "/apis/serving.kserve.io"), the parsed JSON body.
  boost::asio::awaitable<absl::StatusOr<boost::json::value>> GetPath(std::string path);
  boost::asio::awaitable<absl::StatusOr<boost::json::object>> Get(Resource resource, std::string ns,
                                                                  std::string name);
  boost::asio::awaitable<absl::StatusOr<ObjectList>> List(Resource resource, std::string ns,
                                                          ListOptions options);
  boost::asio::awaitable<absl::StatusOr<WatchStream>> Watch(Resource resource, std::string ns,
                                                            WatchOptions options);
  // POST; kAlreadyExists when the name is taken.
  boost::asio::awaitable<absl::StatusOr<boost::json::object>> Create(Resource resource,
                                                                     std::string ns,
                                                                     boost::json::object object);
  // PUT of the whole object (metadata.resourceVersion, when set, must match: kAborted on
  // a conflict, kNotFound when absent).
  boost::asio::awaitable<absl::StatusOr<boost::json::object>> Update(Resource resource,
                                                                     std::string ns,
                                                                     boost::json::object object);
  // PATCH with application/merge-patch+json.
  boost::asio::awaitable<absl::StatusOr<boost::json::object>> MergePatch(Resource resource,
                                                                         std::string ns,
                                                                         std::string name,
                                                                         boost::json::value patch);
  // Creates the object, or replaces an existing one of the same name (create, then
  // update with the current resourceVersion on kAlreadyExists).
  boost::asio::awaitable<absl::StatusOr<boost::json::object>> Apply(Resource resource,
                                                                    std::string ns,
                                                                    boost::json::object object);
  boost::asio::awaitable<absl::Status> Delete(Resource resource, std::string ns, std::string name);

 private:
  boost::asio::awaitable<absl::StatusOr<boost::json::value>> Send(http::ClientRequest request);
  http::ClientRequest MakeRequest(http::Method method, const std::string& path, std::string body,
                                  std::string content_type) const;

  Config config_;
  http::Client http_;
};

}  // namespace zumik::kube
