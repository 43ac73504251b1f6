// The operator's side of the registry contract: register with the org API key, heartbeat
// with the per-cluster token. Errors: 401 → kUnauthenticated, 403 → kPermissionDenied,
// 404 → kNotFound, 409 → kAlreadyExists, other 4xx → kInvalidArgument (with the registry's
// message); 5xx, refused connections and timeouts → kUnavailable / kDeadlineExceeded.
// Keys and tokens never appear in messages.
#pragma once

#include <boost/json/object.hpp>
#include <optional>
#include <string>

#include "absl/status/statusor.h"
#include "core/secret.h"

namespace zumik::op {

struct StackTags {
  std::string router = "llm-d-epp";
  std::string runtime = "vllm";
  std::string serving = "kserve";
  std::string autoscaler = "aibrix";
  std::string kv_layer = "lmcache";
};

struct RegisterRequest {
  std::string name;
  std::string profile = "byoc_epp";
  StackTags stack;
  std::string fingerprint;
  std::string kubernetes_version;
  std::string chart_version;
};

struct Registration {
  std::string id;
  Secret cluster_token;
  // Seconds (the registry may ask for fractions, 2.5); 0 when it did not say.
  double heartbeat_interval_s = 0;
};

class ControlPlane {
 public:
  virtual ~ControlPlane() = default;
  virtual absl::StatusOr<Registration> Register(const Secret& api_key,
                                                const RegisterRequest& request) = 0;
  // Returns the heartbeat interval the registry asks for, in seconds (0: it did not say).
  virtual absl::StatusOr<double> Heartbeat(const std::string& id, const Secret& cluster_token,
                                           const std::optional<boost::json::object>& status) = 0;
};

// The registry over HTTP(S) at `base_url` ("http://127.0.0.1:8090").
class HttpControlPlane : public ControlPlane {
 public:
  explicit HttpControlPlane(std::string base_url);
  absl::StatusOr<Registration> Register(const Secret& api_key,
                                        const RegisterRequest& request) override;
  absl::StatusOr<double> Heartbeat(const std::string& id, const Secret& cluster_token,
                                   const std::optional<boost::json::object>& status) override;

 private:
  std::string base_url_;
};

}  // namespace zumik::op
