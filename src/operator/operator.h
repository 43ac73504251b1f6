// The portable operator's control loop: register the cluster (API key → cluster id + token,
// stored in its namespace), then heartbeat it on the registry's schedule with a status
// snapshot only when the inventory changed (and every `status_refresh`).
//
// Failure policy
// - Control-plane or Kubernetes outages: exponential backoff with jitter, forever; never a crash.
// - The API key rejected (401/403) or registration refused (409 name conflict, 400): a clear
//   error, not retried (Step() returns kFatal).
// - The cluster token rejected (401/403, or 404: the cluster was deleted): re-register with the
//   API key, once per rejection.
//
// Time is injected: Step() does one unit of work and says how long to wait before the next,
// so tests drive it with a VirtualClock; Run() is the real loop.
#pragma once

#include <cstdint>
#include <functional>
#include <optional>
#include <string>

#include "absl/status/status.h"
#include "core/clock.h"
#include "core/rng.h"
#include "kube/reflector.h"
#include "operator/control_plane.h"
#include "operator/inventory.h"
#include "operator/state_store.h"

namespace zumik::op {

struct OperatorOptions {
  // --cluster-id: the id this install was told to heartbeat (empty: register).
  std::string cluster_id;
  // The mounted API key file (first line; surrounding whitespace ignored).
  std::string api_key_file;
  // Registration fields.
  std::string name = "zumik";
  std::string chart_version;
  StackTags stack;
  // Until the registry says otherwise.
  Duration heartbeat_interval = std::chrono::seconds(15);
  // A status snapshot is also sent this long after the last one, changed or not.
  Duration status_refresh = std::chrono::minutes(5);
  // Heartbeats are spread by ±jitter of the interval.
  double heartbeat_jitter = 0.1;
  kube::Backoff backoff{std::chrono::seconds(1), std::chrono::minutes(2), 2.0, 0.2};
  uint64_t seed = 1;
};

struct StepResult {
  enum class Kind { kWait, kFatal };
  Kind kind = Kind::kWait;
  // For kWait: how long until the next Step().
  Duration wait{0};
  // For kFatal: why it stopped; for kWait, the error that caused a backoff (OK otherwise).
  absl::Status status;
};

struct OperatorStats {
  uint64_t registrations = 0;
  uint64_t heartbeats = 0;
  uint64_t status_snapshots = 0;
  uint64_t failures = 0;
  uint64_t token_rejections = 0;
  uint64_t refused_snapshots = 0;  // status snapshots the registry answered 400
};

class Operator {
 public:
  // `on_registered(id)` runs after each successful registration (the CLI prints the id).
  Operator(OperatorOptions options, InventorySource& inventory, StateStore& store,
           ControlPlane& control_plane, Clock& clock,
           std::function<void(const std::string& id)> on_registered = nullptr);

  StepResult Step();
  // Steps until kFatal or until `sleep(d)` returns false (asked to stop). With `once`, returns
  // after the first successful heartbeat (OK) or the first failure (its status).
  absl::Status Run(const std::function<bool(Duration)>& sleep, bool once = false);

  const std::string& cluster_id() const { return cluster_id_; }
  const OperatorStats& stats() const { return stats_; }
  Duration heartbeat_interval() const { return interval_; }

 private:
  StepResult Backoff(absl::Status status);
  StepResult Register(const Inventory& inventory);
  StepResult Heartbeat(const Inventory& inventory);

  OperatorOptions options_;
  InventorySource& inventory_;
  StateStore& store_;
  ControlPlane& control_plane_;
  Clock& clock_;
  std::function<void(const std::string&)> on_registered_;
  Rng rng_;

  bool loaded_ = false;
  bool save_pending_ = false;
  std::string cluster_id_;
  Secret token_;
  Duration interval_;
  bool once_ = false;  // Run(once): failures end the run instead of being retried
  int attempt_ = 0;
  std::optional<uint64_t> last_status_hash_;
  // A snapshot the registry refused (400): not sent again until the cluster's state changes.
  std::optional<uint64_t> refused_status_hash_;
  Time last_status_time_{0};
  OperatorStats stats_;
};

// The first line of the API key file, trimmed. kFailedPrecondition naming the file (never its
// content) when it is missing or empty.
absl::StatusOr<Secret> ReadApiKeyFile(const std::string& path);

}  // namespace zumik::op
