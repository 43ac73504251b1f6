// The operator loop against a scripted control plane and the Kubernetes API double: register
// and store, heartbeats with status only on change, backoff in virtual time, 401 handling and
// re-registration after a rejected token.
#include "operator/operator.h"

#include <gtest/gtest.h>
#include <unistd.h>

#include <deque>
#include <filesystem>
#include <fstream>

#include "core/status.h"
#include "kube/testing/fake_api_server.h"

namespace zumik::op {
namespace {

namespace json = boost::json;

// A control plane whose answers the test scripts; records what it was sent.
class ScriptedControlPlane : public ControlPlane {
 public:
  std::deque<absl::Status> register_errors;   // consumed first, then success
  std::deque<absl::Status> heartbeat_errors;  // consumed first, then success
  std::string id = "byc_test1";
  double interval_s = 15;
  int token_generation = 0;
  std::vector<RegisterRequest> registrations;
  std::vector<std::optional<json::object>> heartbeats;
  std::vector<std::string> keys_seen;
  bool refuse_snapshots = false;  // a status snapshot gets a 400, as the registry's validation

  absl::StatusOr<Registration> Register(const Secret& api_key,
                                        const RegisterRequest& request) override {
    keys_seen.push_back(api_key.Reveal());
    if (!register_errors.empty()) {
      absl::Status error = register_errors.front();
      register_errors.pop_front();
      return error;
    }
    registrations.push_back(request);
    Registration r;
    r.id = id;
    r.cluster_token = Secret(fmt::format("ct_{}", ++token_generation));
    r.heartbeat_interval_s = interval_s;
    return r;
  }
  absl::StatusOr<double> Heartbeat(const std::string& cluster_id, const Secret& token,
                                   const std::optional<json::object>& status) override {
    if (cluster_id != id) return absl::NotFoundError("no such cluster");
    if (token.Reveal() != fmt::format("ct_{}", token_generation)) {
      return absl::UnauthenticatedError("bad cluster token");
    }
    if (!heartbeat_errors.empty()) {
      absl::Status error = heartbeat_errors.front();
      heartbeat_errors.pop_front();
      return error;
    }
    if (refuse_snapshots && status.has_value()) {
      return absl::InvalidArgumentError("HTTP 400: field 'status.model': must be printable ASCII");
    }
    heartbeats.push_back(status);
    return interval_s;
  }
};

class MemoryStateStore : public StateStore {
 public:
  std::optional<ClusterState> state;
  int saves = 0;
  absl::StatusOr<std::optional<ClusterState>> Load() override { return state; }
  absl::Status Save(const ClusterState& s) override {
    ++saves;
    state = s;
    return absl::OkStatus();
  }
};

Inventory SampleInventory() {
  Inventory inventory;
  inventory.fingerprint = "uid-kube-system";
  inventory.kubernetes_version = "v1.30.2";
  inventory.nodes = 2;
  inventory.gpus = {{"NVIDIA-H100-80GB-HBM3", 8}};
  inventory.replicas_desired = 2;
  inventory.replicas_ready = 1;
  return inventory;
}

class OperatorTest : public ::testing::Test {
 protected:
  void SetUp() override {
    // One file per test process: ctest runs the cases in parallel.
    key_file_ = std::filesystem::temp_directory_path() /
                ("operator_test_api_key." + std::to_string(getpid()));
    std::ofstream(key_file_) << "zk_live_testkey\n";
    options_.api_key_file = key_file_;
    options_.name = "us-east";
  }
  void TearDown() override { std::filesystem::remove(key_file_); }
  Operator Make() {
    return Operator(options_, inventory_, store_, control_plane_, clock_,
                    [this](const std::string& id) { printed_.push_back(id); });
  }
  // Steps until `n` heartbeats were acknowledged, advancing virtual time by each wait.
  void StepUntilHeartbeats(Operator& op, uint64_t n) {
    for (int i = 0; i < 100 && op.stats().heartbeats < n; ++i) {
      StepResult step = op.Step();
      ASSERT_EQ(step.kind, StepResult::Kind::kWait) << step.status;
      clock_.Advance(step.wait);
    }
    ASSERT_EQ(op.stats().heartbeats, n);
  }

  std::string key_file_;
  OperatorOptions options_;
  StaticInventory inventory_{SampleInventory()};
  MemoryStateStore store_;
  ScriptedControlPlane control_plane_;
  VirtualClock clock_;
  std::vector<std::string> printed_;
};

TEST_F(OperatorTest, RegistersStoresTheIdAndTokenAndPrintsTheId) {
  Operator op = Make();
  StepUntilHeartbeats(op, 1);
  ASSERT_EQ(control_plane_.registrations.size(), 1u);
  const RegisterRequest& request = control_plane_.registrations[0];
  EXPECT_EQ(request.name, "us-east");
  EXPECT_EQ(request.profile, "byoc_epp");
  EXPECT_EQ(request.fingerprint, "uid-kube-system");
  EXPECT_EQ(request.kubernetes_version, "v1.30.2");
  EXPECT_EQ(request.stack.router, "llm-d-epp");
  EXPECT_EQ(control_plane_.keys_seen, std::vector<std::string>{"zk_live_testkey"});
  ASSERT_TRUE(store_.state.has_value());
  EXPECT_EQ(store_.state->cluster_id, "byc_test1");
  EXPECT_EQ(store_.state->cluster_token.Reveal(), "ct_1");
  EXPECT_EQ(printed_, std::vector<std::string>{"byc_test1"});
  EXPECT_EQ(op.cluster_id(), "byc_test1");
}

TEST_F(OperatorTest, ResumesFromTheStoredTokenWithoutRegistering) {
  control_plane_.token_generation = 4;
  store_.state = ClusterState{"byc_test1", Secret("ct_4")};
  options_.cluster_id = "byc_test1";
  Operator op = Make();
  StepUntilHeartbeats(op, 1);
  EXPECT_TRUE(control_plane_.registrations.empty());
  EXPECT_TRUE(control_plane_.keys_seen.empty());
}

TEST_F(OperatorTest, SendsTheStatusSnapshotOnlyWhenItChanges) {
  control_plane_.interval_s = 10;
  Operator op = Make();
  StepUntilHeartbeats(op, 3);
  ASSERT_EQ(control_plane_.heartbeats.size(), 3u);
  ASSERT_TRUE(control_plane_.heartbeats[0].has_value());
  EXPECT_EQ(control_plane_.heartbeats[0]->at("gpus").as_array()[0].at("count").as_int64(), 8);
  EXPECT_EQ(control_plane_.heartbeats[0]->at("replicas").at("ready").as_int64(), 1);
  EXPECT_FALSE(control_plane_.heartbeats[1].has_value());
  EXPECT_FALSE(control_plane_.heartbeats[2].has_value());

  Inventory changed = SampleInventory();
  changed.replicas_ready = 2;
  inventory_.Set(changed);
  StepUntilHeartbeats(op, 4);
  ASSERT_TRUE(control_plane_.heartbeats[3].has_value());
  EXPECT_EQ(control_plane_.heartbeats[3]->at("replicas").at("ready").as_int64(), 2);
  EXPECT_EQ(op.stats().status_snapshots, 2u);
  // The registry's interval is used, within the heartbeat jitter.
  EXPECT_EQ(op.heartbeat_interval(), std::chrono::seconds(10));
}

TEST_F(OperatorTest, TakesAFractionalIntervalAndKeepsItsOwnWhenTheRegistryDoesNotSay) {
  options_.heartbeat_interval = std::chrono::seconds(7);
  control_plane_.interval_s = 0;  // the registry names no interval
  Operator op = Make();
  StepUntilHeartbeats(op, 2);
  EXPECT_EQ(op.heartbeat_interval(), std::chrono::seconds(7));

  control_plane_.interval_s = 2.5;
  StepUntilHeartbeats(op, 3);
  EXPECT_EQ(op.heartbeat_interval(), std::chrono::milliseconds(2500));
}

TEST_F(OperatorTest, RefreshesTheStatusAfterTheRefreshPeriodEvenWithoutChange) {
  control_plane_.interval_s = 60;
  options_.status_refresh = std::chrono::minutes(5);
  Operator op = Make();
  StepUntilHeartbeats(op, 8);  // ~7 minutes of virtual time
  int snapshots = 0;
  for (const auto& h : control_plane_.heartbeats) snapshots += h.has_value() ? 1 : 0;
  EXPECT_EQ(snapshots, 2);
}

TEST_F(OperatorTest, BacksOffExponentiallyWithJitterDuringAnOutageAndRecovers) {
  options_.backoff = kube::Backoff{std::chrono::seconds(1), std::chrono::seconds(60), 2.0, 0.2};
  for (int i = 0; i < 8; ++i) {
    control_plane_.register_errors.push_back(absl::UnavailableError("down"));
  }
  Operator op = Make();
  std::vector<double> waits;
  for (int i = 0; i < 8; ++i) {
    StepResult step = op.Step();
    ASSERT_EQ(step.kind, StepResult::Kind::kWait);
    EXPECT_FALSE(step.status.ok());
    waits.push_back(ToSeconds(step.wait));
    clock_.Advance(step.wait);
  }
  for (size_t i = 0; i < waits.size(); ++i) {
    const double expected = std::min(std::pow(2.0, static_cast<double>(i)), 60.0);
    EXPECT_GE(waits[i], expected * 0.8 - 1e-9) << i;
    EXPECT_LE(waits[i], expected * 1.2 + 1e-9) << i;
  }
  StepUntilHeartbeats(op, 1);
  EXPECT_EQ(op.stats().failures, 8u);
  // After recovery the next wait is the heartbeat interval again, not a backoff.
  StepResult step = op.Step();
  EXPECT_LE(ToSeconds(step.wait), 15 * 1.1 + 1e-9);
  EXPECT_GE(ToSeconds(step.wait), 15 * 0.9 - 1e-9);
}

TEST_F(OperatorTest, ARejectedApiKeyIsFatalAndNotRetried) {
  control_plane_.register_errors.push_back(
      absl::UnauthenticatedError("register: HTTP 401: invalid API key"));
  Operator op = Make();
  StepResult step = op.Step();
  EXPECT_EQ(step.kind, StepResult::Kind::kFatal);
  EXPECT_EQ(step.status.code(), absl::StatusCode::kUnauthenticated);
  EXPECT_NE(std::string(MessageOf(step.status)).find("not retrying"), std::string::npos);
  EXPECT_EQ(std::string(MessageOf(step.status)).find("zk_live_testkey"), std::string::npos);
  // Run() stops on it too instead of looping.
  int sleeps = 0;
  control_plane_.register_errors.push_back(absl::PermissionDeniedError("403"));
  Operator again = Make();
  absl::Status run = again.Run([&](Duration) { return ++sleeps < 100; });
  EXPECT_EQ(run.code(), absl::StatusCode::kPermissionDenied);
  EXPECT_EQ(sleeps, 0);
}

TEST_F(OperatorTest, ARejectedClusterTokenLeadsToReRegistrationWithTheApiKey) {
  Operator op = Make();
  StepUntilHeartbeats(op, 1);
  // The registry rotated/revoked the token (e.g. the cluster was re-created there).
  control_plane_.token_generation = 7;
  StepResult rejected = op.Step();
  EXPECT_EQ(rejected.kind, StepResult::Kind::kWait);
  EXPECT_EQ(rejected.status.code(), absl::StatusCode::kUnauthenticated);
  StepUntilHeartbeats(op, 2);
  EXPECT_EQ(op.stats().token_rejections, 1u);
  EXPECT_EQ(op.stats().registrations, 2u);
  EXPECT_EQ(store_.state->cluster_token.Reveal(), "ct_8");
}

// A snapshot the registry refuses (a model annotation it will not store) must not stop the
// heartbeats: the cluster would show as dead while its agent runs.
TEST_F(OperatorTest, ARefusedStatusSnapshotFallsBackToBareHeartbeatsUntilTheStateChanges) {
  control_plane_.refuse_snapshots = true;
  options_.status_refresh = std::chrono::seconds(20);
  Operator op = Make();
  ASSERT_EQ(op.Step().kind, StepResult::Kind::kWait);  // registers
  StepResult refused = op.Step();
  EXPECT_EQ(refused.kind, StepResult::Kind::kWait);
  EXPECT_EQ(refused.status.code(), absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(refused.wait, Duration{0});  // the bare beat goes at once
  StepUntilHeartbeats(op, 4);            // past the refresh period: still no snapshot
  for (const auto& sent : control_plane_.heartbeats) EXPECT_FALSE(sent.has_value());
  EXPECT_EQ(op.stats().refused_snapshots, 1u);
  EXPECT_EQ(op.stats().failures, 0u);  // no backoff

  // The cluster's state changes (the annotation was fixed): its snapshot is sent again.
  control_plane_.refuse_snapshots = false;
  Inventory changed = SampleInventory();
  changed.replicas_ready = 2;
  inventory_.Set(changed);
  StepUntilHeartbeats(op, 5);
  ASSERT_TRUE(control_plane_.heartbeats[4].has_value());
  EXPECT_EQ(control_plane_.heartbeats[4]->at("replicas").at("ready").as_int64(), 2);
}

TEST_F(OperatorTest, RunOnceSucceedsWithABareHeartbeatAfterARefusedSnapshot) {
  control_plane_.refuse_snapshots = true;
  Operator op = Make();
  absl::Status status = op.Run(
      [&](Duration d) {
        clock_.Advance(d);
        return true;
      },
      true);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(op.stats().heartbeats, 1u);
  EXPECT_EQ(op.stats().refused_snapshots, 1u);
}

TEST_F(OperatorTest, AMissingApiKeyFileIsAClearError) {
  options_.api_key_file = "/nonexistent/api-key";
  Operator op = Make();
  StepResult step = op.Step();
  EXPECT_EQ(step.kind, StepResult::Kind::kFatal);
  EXPECT_NE(std::string(MessageOf(step.status)).find("/nonexistent/api-key"), std::string::npos);
}

TEST_F(OperatorTest, RunOnceReturnsAfterTheFirstHeartbeat) {
  Operator op = Make();
  int sleeps = 0;
  absl::Status status = op.Run(
      [&](Duration d) {
        clock_.Advance(d);
        ++sleeps;
        return true;
      },
      true);
  EXPECT_TRUE(status.ok()) << status;
  EXPECT_EQ(op.stats().heartbeats, 1u);
  EXPECT_EQ(sleeps, 1);  // after registration, before the heartbeat
}

TEST(FileStateStore, RoundTripsAndStartsEmpty) {
  const std::string path =
      std::filesystem::temp_directory_path() / "operator_state_test" / "state.json";
  std::filesystem::remove(path);
  FileStateStore store(path);
  auto empty = store.Load();
  ASSERT_TRUE(empty.ok());
  EXPECT_FALSE(empty->has_value());
  ASSERT_TRUE(store.Save(ClusterState{"byc_9", Secret("tok")}).ok());
  auto loaded = store.Load();
  ASSERT_TRUE(loaded.ok() && loaded->has_value());
  EXPECT_EQ((*loaded)->cluster_id, "byc_9");
  EXPECT_EQ((*loaded)->cluster_token.Reveal(), "tok");
  EXPECT_EQ(std::filesystem::status(path).permissions() & std::filesystem::perms::others_read,
            std::filesystem::perms::none);
}

TEST(ParseGpuFlag, AcceptsProductColonCountAndRejectsTheRest) {
  auto gpu = ParseGpuFlag("NVIDIA-H100-80GB-HBM3:8");
  ASSERT_TRUE(gpu.ok());
  EXPECT_EQ(gpu->product, "NVIDIA-H100-80GB-HBM3");
  EXPECT_EQ(gpu->count, 8);
  EXPECT_FALSE(ParseGpuFlag("H100").ok());
  EXPECT_FALSE(ParseGpuFlag("H100:x").ok());
  EXPECT_FALSE(ParseGpuFlag(":3").ok());
  EXPECT_FALSE(ParseGpuFlag("H100:-1").ok());
}

}  // namespace
}  // namespace zumik::op
