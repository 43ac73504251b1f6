// The registry's vocabulary (profiles, runtime stacks, status snapshots) and the decoding and
// validation of request bodies: every field is checked here, and a bad one is a
// kInvalidArgument whose message names it, so handlers can answer 400 with that message.
#pragma once

#include <array>
#include <boost/json/object.hpp>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "absl/status/statusor.h"

namespace zumik::registry {

enum class Profile { kByocEpp, kByocDynamo };

// "byoc_epp" / "byoc_dynamo".
std::string_view ProfileName(Profile profile);
std::optional<Profile> ParseProfile(std::string_view name);

// The runtime stack tags a cluster reports ("router": "epp", "runtime": "vllm", ...).
struct Stack {
  std::string router;
  std::string runtime;
  std::string serving;
  std::string autoscaler;
  std::string kv_layer;
  bool operator==(const Stack&) const = default;
};

// The Stack's tags by name, in the order the API writes them: the one list that decoding,
// filtering and every output go by.
inline constexpr std::array<std::pair<std::string_view, std::string Stack::*>, 5> kStackTags = {{
    {"router", &Stack::router},
    {"runtime", &Stack::runtime},
    {"serving", &Stack::serving},
    {"autoscaler", &Stack::autoscaler},
    {"kv_layer", &Stack::kv_layer},
}};

struct GpuCount {
  std::string product;
  int64_t count = 0;
  bool operator==(const GpuCount&) const = default;
};

// A route (path) whose replica selection `owner` ("epp", "dynamo-router") claims.
struct RouteClaim {
  std::string path;
  std::string owner;
  bool operator==(const RouteClaim&) const = default;
};

struct StatusSnapshot {
  std::vector<GpuCount> gpus;
  int64_t nodes = 0;
  int64_t replicas_ready = 0;
  int64_t replicas_desired = 0;
  std::string model;
  int64_t tensor_parallel_size = 0;
  std::vector<RouteClaim> routes;
  bool operator==(const StatusSnapshot&) const = default;
};

struct RegisterRequest {
  std::string name;
  Profile profile = Profile::kByocEpp;
  Stack stack;
  std::string fingerprint;
  std::string kubernetes_version;
  std::string chart_version;
};

struct HeartbeatRequest {
  // Absent for a plain liveness beat.
  std::optional<StatusSnapshot> status;
};

// Limits the decoders enforce (the HTTP layer caps the whole body separately).
inline constexpr size_t kMaxNameLength = 63;
inline constexpr size_t kMaxTagLength = 64;
inline constexpr size_t kMaxFingerprintLength = 128;
inline constexpr size_t kMaxGpuEntries = 64;
inline constexpr size_t kMaxRoutes = 256;
inline constexpr int64_t kMaxCount = 1'000'000;

// POST /v1/clusters body. Unknown fields are ignored (newer operators may send more), except in
// `stack`, whose tags are a closed set.
absl::StatusOr<RegisterRequest> DecodeRegisterRequest(std::string_view body);
// POST /v1/clusters/{id}/heartbeat body: {} or {"status": {...}}. An empty body is {}.
absl::StatusOr<HeartbeatRequest> DecodeHeartbeatRequest(std::string_view body);

// The snapshot as stored and served: {"gpus":[{"product","count"}],"nodes",...}.
boost::json::object EncodeStatus(const StatusSnapshot& status);
std::string StatusToJson(const StatusSnapshot& status);
// Parses what StatusToJson wrote (the same validation as a heartbeat's "status").
absl::StatusOr<StatusSnapshot> StatusFromJson(std::string_view json);

boost::json::object EncodeStack(const Stack& stack);

// One of the Stack's tag names: router, runtime, serving, autoscaler, kv_layer.
bool IsStackTag(std::string_view key);
// Printable ASCII without quotes, backslashes or angle brackets: what the registry stores of
// free text (a snapshot's model, route paths), which ends up in HTML and logs.
bool IsPlainText(std::string_view text);
// A DNS label: lower-case letters, digits and '-', starting and ending alphanumeric.
bool IsValidClusterName(std::string_view name);
// "byc_" followed by lower-case hex.
bool IsValidClusterId(std::string_view id);
// Organisation names: 1-63 of [a-z0-9-_.].
bool IsValidOrgName(std::string_view org);

}  // namespace zumik::registry
