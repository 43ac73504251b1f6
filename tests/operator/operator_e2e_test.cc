// End to end: the real `zumik registry` on SQLite and `zumik operator` processes against the
// Kubernetes API test double (in this process): register → id stored in the release's
// ConfigMap/Secret → heartbeats with GPU status visible in the registry; a reinstall gets the
// same id; `zumik preflight` prints its table and fails on missing prerequisites.
#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fstream>
#include <regex>
#include <sstream>

#include "core/http/client.h"
#include "kube/testing/fake_api_server.h"
#include "kube/testing/test_objects.h"
#include "support/process.h"

namespace zumik {
namespace {

namespace json = boost::json;
using kube::testing::FakeApiServer;
using testing::ChildProcess;

std::string Capture(const std::string& pattern, const std::string& text) {
  std::smatch match;
  std::regex re(pattern);
  return std::regex_search(text, match, re) ? match[1].str() : std::string();
}

class OperatorEndToEnd : public ::testing::Test {
 protected:
  void SetUp() override {
    dir_ = testing::MakeTempDir("operator_e2e");
    ASSERT_TRUE(api_.Start().ok());
    api_.Upsert(kube::kNodes, kube::testing::MakeGpuNode("gpu-a", "NVIDIA-H100-80GB-HBM3", 8));
    api_.Upsert(kube::kNodes, kube::testing::MakeGpuNode("gpu-b", "NVIDIA-H100-80GB-HBM3", 8));
    kubeconfig_ = dir_ + "/kubeconfig";
    std::ofstream(kubeconfig_) << api_.KubeconfigYaml();

    port_ = testing::PickFreePort();
    db_ = "sqlite:" + dir_ + "/registry.db";
    ChildProcess keys({testing::ZumikBinary(), "registry", "keys", "create", "--org", "acme", "--db", db_},
                      dir_ + "/keys.log");
    ASSERT_EQ(keys.Wait(std::chrono::seconds(15)), 0) << keys.ReadLog();
    // stdout carries the key alone on its line; stderr names only its prefix.
    std::istringstream lines(keys.ReadLog());
    for (std::string line; std::getline(lines, line);) {
      if (std::regex_match(line, std::regex("zk_live_[A-Za-z0-9_\\-]+"))) api_key_ = line;
    }
    ASSERT_FALSE(api_key_.empty()) << keys.ReadLog();
    key_file_ = dir_ + "/api-key";
    std::ofstream(key_file_) << api_key_ << "\n";

    registry_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{testing::ZumikBinary(), "registry", "--listen", std::to_string(port_),
                                 "--db", db_},
        dir_ + "/registry.log");
    ASSERT_TRUE(testing::WaitForPort(port_, std::chrono::seconds(10))) << registry_->ReadLog();
  }
  void TearDown() override {
    if (registry_) registry_->Stop();
    api_.Stop();
  }
  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> OperatorArgs(const std::string& extra_flag = "") {
    std::vector<std::string> args{testing::ZumikBinary(), "operator", "--control-plane", Url(),
                                  "--api-key-file", key_file_, "--namespace", "serving",
                                  "--release", "us-east", "--kubeconfig", kubeconfig_};
    if (!extra_flag.empty()) args.push_back(extra_flag);
    return args;
  }
  json::object GetCluster(const std::string& id) {
    auto response = http::FetchBlocking(http::Method::get, Url() + "/v1/clusters/" + id, "",
                                        {{"Authorization", "Bearer " + api_key_}});
    EXPECT_TRUE(response.ok());
    if (!response.ok()) return {};
    EXPECT_EQ(response->status, 200) << response->body;
    boost::system::error_code ec;
    json::value value = json::parse(response->body, ec);
    return value.is_object() ? value.get_object() : json::object();
  }

  std::string dir_;
  FakeApiServer api_;
  std::string kubeconfig_;
  int port_ = 0;
  std::string db_;
  std::string api_key_;
  std::string key_file_;
  std::unique_ptr<ChildProcess> registry_;
};

TEST_F(OperatorEndToEnd, RegistersStoresTheIdHeartbeatsAndAReinstallKeepsTheId) {
  // Install: no cluster id yet → register, store, print the id.
  ChildProcess first(OperatorArgs("--once"), dir_ + "/operator1.log");
  ASSERT_EQ(first.Wait(std::chrono::seconds(15)), 0) << first.ReadLog();
  const std::string id = Capture("registered cluster (byc_[A-Za-z0-9_]+)", first.ReadLog());
  ASSERT_FALSE(id.empty()) << first.ReadLog();
  EXPECT_EQ(first.ReadLog().find(api_key_), std::string::npos) << "the API key reached the log";

  auto config_map = api_.Find(kube::kConfigMaps, "serving", "us-east-zumik-cluster");
  ASSERT_TRUE(config_map.has_value());
  EXPECT_EQ(config_map->at("data").at("cluster_id").as_string(), id);
  auto secret = api_.Find(kube::kSecrets, "serving", "us-east-zumik-cluster");
  ASSERT_TRUE(secret.has_value());
  EXPECT_FALSE(secret->at("data").at("cluster_token").as_string().empty());

  json::object cluster = GetCluster(id);
  EXPECT_EQ(cluster["profile"].as_string(), "byoc_epp");
  EXPECT_EQ(cluster["fingerprint"].as_string(),
            api_.Find(kube::kNamespaces, "", "kube-system")->at("metadata").at("uid").as_string());
  EXPECT_FALSE(cluster["last_heartbeat_at"].is_null()) << json::serialize(cluster);
  EXPECT_NE(json::serialize(cluster).find("NVIDIA-H100-80GB-HBM3"), std::string::npos)
      << json::serialize(cluster);

  // Upgrade with --cluster-id: the long-running operator resumes from the stored token and
  // heartbeats; a status change (a new GPU node) shows up in the registry.
  std::vector<std::string> args = OperatorArgs();
  args.push_back("--cluster-id");
  args.push_back(id);
  ChildProcess running(args, dir_ + "/operator2.log");
  ASSERT_TRUE(FakeApiServer::WaitFor([&] { return running.ReadLog().find("resuming as cluster") != std::string::npos; },
                                     std::chrono::seconds(10)))
      << running.ReadLog();
  const std::string first_heartbeat(cluster["last_heartbeat_at"].as_string());
  api_.Upsert(kube::kNodes, kube::testing::MakeGpuNode("gpu-c", "NVIDIA-L4", 1));
  // The interval is the registry's (15 s by default), so restart the operator to see the next
  // heartbeat at once rather than waiting an interval.
  running.Stop();
  ChildProcess again(OperatorArgs("--once"), dir_ + "/operator3.log");
  ASSERT_EQ(again.Wait(std::chrono::seconds(15)), 0) << again.ReadLog();
  EXPECT_EQ(again.ReadLog().find("registered cluster"), std::string::npos) << again.ReadLog();
  EXPECT_TRUE(FakeApiServer::WaitFor([&] {
    return json::serialize(GetCluster(id)).find("NVIDIA-L4") != std::string::npos;
  }, std::chrono::seconds(5))) << json::serialize(GetCluster(id));

  // Reinstall: the release's ConfigMap and Secret are gone; registration gives the same id.
  ASSERT_TRUE(api_.Remove(kube::kConfigMaps, "serving", "us-east-zumik-cluster"));
  ASSERT_TRUE(api_.Remove(kube::kSecrets, "serving", "us-east-zumik-cluster"));
  ChildProcess reinstall(OperatorArgs("--once"), dir_ + "/operator4.log");
  ASSERT_EQ(reinstall.Wait(std::chrono::seconds(15)), 0) << reinstall.ReadLog();
  EXPECT_EQ(Capture("registered cluster (byc_[A-Za-z0-9_]+)", reinstall.ReadLog()), id) << reinstall.ReadLog();
}

TEST_F(OperatorEndToEnd, ARevokedOrWrongApiKeyIsAClearNonRetriedFailure) {
  std::ofstream(key_file_) << "zk_live_notarealkey000000000000000000\n";
  ChildProcess op(OperatorArgs(), dir_ + "/operator.log");
  // Not --once: a rejected key must still end the process instead of retrying forever.
  const int code = op.Wait(std::chrono::seconds(15));
  EXPECT_EQ(code, 1) << op.ReadLog();
  EXPECT_NE(op.ReadLog().find("rejected the API key"), std::string::npos) << op.ReadLog();
  EXPECT_EQ(op.ReadLog().find("zk_live_notarealkey"), std::string::npos);
}

TEST_F(OperatorEndToEnd, AnUnreachableControlPlaneIsRetriedWithoutCrashing) {
  registry_->Stop();
  ChildProcess op(OperatorArgs(), dir_ + "/operator.log");
  ASSERT_TRUE(FakeApiServer::WaitFor([&] { return op.ReadLog().find("retrying in") != std::string::npos; },
                                     std::chrono::seconds(10)))
      << op.ReadLog();
  EXPECT_TRUE(op.running());
  // The registry comes back: the operator registers on its next attempt.
  registry_ = std::make_unique<ChildProcess>(
      std::vector<std::string>{testing::ZumikBinary(), "registry", "--listen", std::to_string(port_), "--db", db_},
      dir_ + "/registry2.log");
  ASSERT_TRUE(testing::WaitForPort(port_, std::chrono::seconds(10)));
  EXPECT_TRUE(FakeApiServer::WaitFor([&] { return op.ReadLog().find("registered cluster") != std::string::npos; },
                                     std::chrono::seconds(15)))
      << op.ReadLog();
  EXPECT_EQ(op.Stop(), 0);
}

TEST_F(OperatorEndToEnd, PreflightPrintsATableAndFailsOnMissingPrerequisites) {
  ChildProcess failing({testing::ZumikBinary(), "preflight", "--kubeconfig", kubeconfig_,
                        "--gpu-product", "NVIDIA-H100-80GB-HBM3"},
                       dir_ + "/preflight1.log");
  EXPECT_EQ(failing.Wait(std::chrono::seconds(15)), 1) << failing.ReadLog();
  const std::string table = failing.ReadLog();
  EXPECT_NE(table.find("GPU nodes (nvidia.com/gpu)"), std::string::npos) << table;
  EXPECT_NE(table.find("fix: install KServe"), std::string::npos) << table;

  ChildProcess passing({testing::ZumikBinary(), "preflight", "--kubeconfig", kubeconfig_, "--no-kserve",
                        "--no-router", "--no-aibrix"},
                       dir_ + "/preflight2.log");
  EXPECT_EQ(passing.Wait(std::chrono::seconds(15)), 0) << passing.ReadLog();
  EXPECT_NE(passing.ReadLog().find("all checks passed"), std::string::npos) << passing.ReadLog();
}

}  // namespace
}  // namespace zumik
