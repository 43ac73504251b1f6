// The operator's register / heartbeat loop.
#include "operator/operator.h"

#include <boost/json/serialize.hpp>
#include <fstream>

#include "core/log.h"
#include "core/status.h"
#include "xxhash.h"

namespace zumik::op {
namespace {

std::shared_ptr<spdlog::logger> Log() {
  static auto logger = Logger("operator");
  return logger;
}

bool IsAuthFailure(const absl::Status& status) {
  return status.code() == absl::StatusCode::kUnauthenticated ||
         status.code() == absl::StatusCode::kPermissionDenied;
}

}  // namespace

absl::StatusOr<Secret> ReadApiKeyFile(const std::string& path) {
  if (path.empty()) return absl::FailedPreconditionError("no API key file: pass --api-key-file");
  std::ifstream in(path);
  if (!in) {
    return Errorf(absl::StatusCode::kFailedPrecondition,
                  "cannot read the API key file {} (is the zumik-control-plane secret mounted?)",
                  path);
  }
  std::string line;
  std::getline(in, line);
  const size_t begin = line.find_first_not_of(" \t\r\n");
  const size_t end = line.find_last_not_of(" \t\r\n");
  if (begin == std::string::npos) {
    return Errorf(absl::StatusCode::kFailedPrecondition, "the API key file {} is empty", path);
  }
  return Secret(line.substr(begin, end - begin + 1));
}

Operator::Operator(OperatorOptions options, InventorySource& inventory, StateStore& store,
                   ControlPlane& control_plane, Clock& clock,
                   std::function<void(const std::string&)> on_registered)
    : options_(std::move(options)),
      inventory_(inventory),
      store_(store),
      control_plane_(control_plane),
      clock_(clock),
      on_registered_(std::move(on_registered)),
      rng_(options_.seed),
      interval_(options_.heartbeat_interval) {}

StepResult Operator::Backoff(absl::Status status) {
  ++stats_.failures;
  StepResult result;
  result.wait = options_.backoff.Delay(attempt_++, rng_);
  if (once_) {
    Log()->warn("{}", MessageOf(status));  // --once: no retry, the run ends with this failure
  } else {
    Log()->warn("{}; retrying in {:.1f}s", MessageOf(status), ToSeconds(result.wait));
  }
  result.status = std::move(status);
  return result;
}

StepResult Operator::Step() {
  if (!loaded_) {
    absl::StatusOr<std::optional<ClusterState>> stored = store_.Load();
    if (!stored.ok()) return Backoff(stored.status());
    loaded_ = true;
    if (stored->has_value()) {
      ClusterState& state = **stored;
      if (!options_.cluster_id.empty() && state.cluster_id != options_.cluster_id) {
        Log()->warn("stored cluster id {} differs from --cluster-id {}; registering again",
                    state.cluster_id, options_.cluster_id);
      } else if (!state.cluster_token.empty()) {
        cluster_id_ = state.cluster_id;
        token_ = state.cluster_token;
        Log()->info("resuming as cluster {}", cluster_id_);
      }
    }
  }
  absl::StatusOr<Inventory> inventory = inventory_.Collect();
  if (!inventory.ok()) {
    absl::Status status(inventory.status().code(),
                        fmt::format("cluster inventory: {}", MessageOf(inventory.status())));
    return Backoff(status);
  }
  if (token_.empty()) return Register(*inventory);
  if (save_pending_) {
    ClusterState state{cluster_id_, token_};
    if (absl::Status saved = store_.Save(state); !saved.ok()) {
      Log()->warn("storing the cluster id failed (will retry): {}", MessageOf(saved));
    } else {
      save_pending_ = false;
    }
  }
  return Heartbeat(*inventory);
}

StepResult Operator::Register(const Inventory& inventory) {
  absl::StatusOr<Secret> key = ReadApiKeyFile(options_.api_key_file);
  if (!key.ok()) return StepResult{StepResult::Kind::kFatal, Duration{0}, key.status()};
  RegisterRequest request;
  request.name = options_.name;
  request.stack = options_.stack;
  request.fingerprint = inventory.fingerprint;
  request.kubernetes_version = inventory.kubernetes_version;
  request.chart_version = options_.chart_version;
  absl::StatusOr<Registration> registration = control_plane_.Register(*key, request);
  if (!registration.ok()) {
    const absl::Status& status = registration.status();
    if (IsAuthFailure(status)) {
      return StepResult{StepResult::Kind::kFatal, Duration{0},
                        Errorf(status.code(),
                               "the control plane rejected the API key from {} ({}); check the "
                               "zumik-control-plane secret; not retrying",
                               options_.api_key_file, MessageOf(status))};
    }
    if (status.code() == absl::StatusCode::kAlreadyExists ||
        status.code() == absl::StatusCode::kInvalidArgument) {
      return StepResult{
          StepResult::Kind::kFatal, Duration{0},
          Errorf(status.code(), "registration refused: {}; not retrying", MessageOf(status))};
    }
    return Backoff(status);
  }
  if (!options_.cluster_id.empty() && registration->id != options_.cluster_id) {
    Log()->warn("the registry knows this cluster as {}, not --cluster-id {}", registration->id,
                options_.cluster_id);
  }
  cluster_id_ = registration->id;
  token_ = registration->cluster_token;
  if (registration->heartbeat_interval_s > 0) {
    interval_ = FromSeconds(registration->heartbeat_interval_s);
  }
  last_status_hash_.reset();
  attempt_ = 0;
  ++stats_.registrations;
  ClusterState state{cluster_id_, token_};
  if (absl::Status saved = store_.Save(state); !saved.ok()) {
    Log()->warn("storing the cluster id failed (will retry): {}", MessageOf(saved));
    save_pending_ = true;
  }
  Log()->info("registered cluster {}", cluster_id_);
  if (on_registered_) on_registered_(cluster_id_);
  return StepResult{StepResult::Kind::kWait, Duration{0}, absl::OkStatus()};
}

StepResult Operator::Heartbeat(const Inventory& inventory) {
  const boost::json::object snapshot = StatusSnapshot(inventory);
  const std::string text = boost::json::serialize(snapshot);
  const uint64_t hash = XXH3_64bits(text.data(), text.size());
  const Time now = clock_.Now();
  const bool send_status =
      refused_status_hash_ != hash && (!last_status_hash_ || *last_status_hash_ != hash ||
                                       now - last_status_time_ >= options_.status_refresh);
  std::optional<boost::json::object> status;
  if (send_status) status = snapshot;
  absl::StatusOr<double> answer = control_plane_.Heartbeat(cluster_id_, token_, status);
  if (!answer.ok()) {
    const absl::Status& error = answer.status();
    if (IsAuthFailure(error) || error.code() == absl::StatusCode::kNotFound) {
      ++stats_.token_rejections;
      Log()->warn(
          "the registry rejected the token of cluster {} ({}); registering again with the API key",
          cluster_id_, MessageOf(error));
      token_ = Secret();
      return StepResult{StepResult::Kind::kWait, Duration{0}, error};
    }
    if (error.code() == absl::StatusCode::kInvalidArgument && status.has_value()) {
      // The snapshot (something in this cluster's state) was refused, not the heartbeat: the
      // next beat goes at once without it, so the cluster still shows as alive.
      ++stats_.refused_snapshots;
      refused_status_hash_ = hash;
      Log()->error(
          "the registry refused this cluster's status snapshot ({}); heartbeating without it "
          "until the cluster's state changes",
          MessageOf(error));
      return StepResult{StepResult::Kind::kWait, Duration{0}, error};
    }
    return Backoff(error);
  }
  if (*answer > 0) interval_ = FromSeconds(*answer);
  if (send_status) {
    last_status_hash_ = hash;
    last_status_time_ = now;
    ++stats_.status_snapshots;
  }
  ++stats_.heartbeats;
  attempt_ = 0;
  const double factor = 1.0 + options_.heartbeat_jitter * (2.0 * rng_.Uniform() - 1.0);
  return StepResult{StepResult::Kind::kWait, FromSeconds(ToSeconds(interval_) * factor),
                    absl::OkStatus()};
}

absl::Status Operator::Run(const std::function<bool(Duration)>& sleep, bool once) {
  once_ = once;
  while (true) {
    const uint64_t heartbeats = stats_.heartbeats;
    StepResult step = Step();
    if (step.kind == StepResult::Kind::kFatal) {
      Log()->error("{}", MessageOf(step.status));
      return step.status;
    }
    if (once) {
      if (stats_.heartbeats > heartbeats) return absl::OkStatus();
      // A re-registration after a rejected token continues at once; anything else is the end.
      const bool reregister =
          token_.empty() && step.wait == Duration{0} && stats_.token_rejections <= 1;
      // Likewise the bare heartbeat after a refused snapshot.
      const bool bare_beat = refused_status_hash_.has_value() && step.wait == Duration{0} &&
                             stats_.refused_snapshots <= 1;
      if (!step.status.ok() && !reregister && !bare_beat) return step.status;
    }
    if (!sleep(step.wait)) return absl::OkStatus();
  }
}

}  // namespace zumik::op
