// End to end, on SQLite and on PostgreSQL: the real `zumik registry` and `zumik operator`
// processes against the Kubernetes API test double (in this process). Register → id stored in
// the release's ConfigMap/Secret → heartbeats with GPU status visible in the API and on the
// signed-in web page; a reinstall gets the same id; another org can neither see nor touch the
// cluster; a revoked key is a clear non-retried failure; a rejected cluster token leads to
// re-registration; a control-plane outage is survived. `zumik preflight` prints its table and
// fails on missing prerequisites.
#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <fstream>
#include <memory>
#include <regex>
#include <sstream>

#include "core/base64.h"
#include "core/http/client.h"
#include "kube/testing/fake_api_server.h"
#include "kube/testing/test_objects.h"
#include "registry/postgres_instance.h"
#include "support/process.h"

namespace zumik {
namespace {

namespace json = boost::json;
using kube::testing::FakeApiServer;
using testing::ChildProcess;
using ::testing::HasSubstr;
using ::testing::Not;

constexpr std::string_view kGpuProduct = "NVIDIA-H100-80GB-HBM3";
// The release's name, which is also the cluster's name in the registry.
constexpr std::string_view kRelease = "us-east";

std::string Capture(const std::string& pattern, const std::string& text) {
  std::smatch match;
  std::regex re(pattern);
  return std::regex_search(text, match, re) ? match[1].str() : std::string();
}

std::string RegisteredId(const std::string& log) {
  return Capture("registered cluster (byc_[A-Za-z0-9_]+)", log);
}

enum class Backend { kSqlite, kPostgres };

std::string BackendName(const ::testing::TestParamInfo<Backend>& info) {
  return info.param == Backend::kSqlite ? "Sqlite" : "Postgres";
}

// The Kubernetes API double with two 8-GPU nodes and a kubeconfig pointing at it.
class KubeDoubleTest : public ::testing::Test {
 protected:
  void StartKubeDouble(const std::string& prefix) {
    dir_ = testing::MakeTempDir(prefix);
    ASSERT_TRUE(api_.Start().ok());
    api_.Upsert(kube::kNodes, kube::testing::MakeGpuNode("gpu-a", std::string(kGpuProduct), 8));
    api_.Upsert(kube::kNodes, kube::testing::MakeGpuNode("gpu-b", std::string(kGpuProduct), 8));
    kubeconfig_ = dir_ + "/kubeconfig";
    std::ofstream(kubeconfig_) << api_.KubeconfigYaml();
  }
  void TearDown() override { api_.Stop(); }

  std::string dir_;
  FakeApiServer api_;
  std::string kubeconfig_;
};

class OperatorEndToEnd : public KubeDoubleTest, public ::testing::WithParamInterface<Backend> {
 protected:
  // One PostgreSQL server for the suite (started by the first test that needs it); each test
  // gets a fresh schema in it.
  static void TearDownTestSuite() { postgres_.reset(); }

  void SetUp() override {
    StartKubeDouble("operator_e2e");
    if (HasFatalFailure()) return;
    if (GetParam() == Backend::kSqlite) {
      db_ = "sqlite:" + dir_ + "/registry.db";
    } else {
      if (!postgres_) {
        postgres_ = std::make_unique<testing::PostgresInstance>();
        const std::string error = postgres_->Start();
        if (!error.empty()) postgres_.reset();
        ASSERT_EQ(error, "");
      }
      static std::atomic<int> schemas{0};
      db_ = postgres_->FreshSchemaUrl("operator_e2e_" + std::to_string(schemas++));
      ASSERT_NE(db_, "");
    }
    api_key_ = CreateKey("acme");
    ASSERT_TRUE(api_key_.starts_with("zk_live_"));
    key_file_ = dir_ + "/api-key";
    std::ofstream(key_file_) << api_key_ << "\n";
    port_ = testing::PickFreePort();
    StartRegistry("registry.log");
  }
  void TearDown() override {
    if (registry_) registry_->Stop();
    KubeDoubleTest::TearDown();
  }

  // `zumik registry keys create --org ORG`: the key alone on a stdout line (stderr names only
  // its prefix).
  std::string CreateKey(const std::string& org) {
    ChildProcess keys(
        {testing::ZumikBinary(), "registry", "keys", "create", "--org", org, "--db", db_},
        dir_ + "/keys-" + org + "-" + std::to_string(key_count_++) + ".log");
    EXPECT_EQ(keys.Wait(std::chrono::seconds(15)), 0) << keys.ReadLog();
    std::istringstream lines(keys.ReadLog());
    for (std::string line; std::getline(lines, line);) {
      if (std::regex_match(line, std::regex("zk_live_[0-9a-f]+"))) return line;
    }
    ADD_FAILURE() << "no key printed: " << keys.ReadLog();
    return "";
  }

  void StartRegistry(const std::string& log) {
    registry_ = std::make_unique<ChildProcess>(
        std::vector<std::string>{testing::ZumikBinary(), "registry", "--listen",
                                 std::to_string(port_), "--db", db_},
        dir_ + "/" + log);
    ASSERT_TRUE(testing::WaitForPort(port_, std::chrono::seconds(10))) << registry_->ReadLog();
  }

  std::string Url() const { return "http://127.0.0.1:" + std::to_string(port_); }
  std::vector<std::string> OperatorArgs(std::vector<std::string> extra = {}) const {
    std::vector<std::string> args{testing::ZumikBinary(),
                                  "operator",
                                  "--control-plane",
                                  Url(),
                                  "--api-key-file",
                                  key_file_,
                                  "--namespace",
                                  "serving",
                                  "--release",
                                  std::string(kRelease),
                                  "--kubeconfig",
                                  kubeconfig_};
    args.insert(args.end(), extra.begin(), extra.end());
    return args;
  }

  http::ClientResponse Call(http::Method method, const std::string& path, const std::string& key,
                            const std::string& body = "") const {
    http::Headers headers;
    headers.emplace_back("Authorization", "Bearer " + key);
    headers.emplace_back("Content-Type", "application/json");
    auto response =
        http::FetchBlocking(method, Url() + path, body, headers, std::chrono::seconds(5));
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : http::ClientResponse{};
  }
  // The web page as a browser signs in to it: HTTP Basic, the key as the password.
  http::ClientResponse GetPage(const std::string& key) const {
    http::Headers headers;
    headers.emplace_back("Authorization", "Basic " + Base64Encode("operator:" + key));
    auto response =
        http::FetchBlocking(http::Method::get, Url() + "/", "", headers, std::chrono::seconds(5));
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : http::ClientResponse{};
  }
  json::object GetCluster(const std::string& id) const {
    http::ClientResponse response = Call(http::Method::get, "/v1/clusters/" + id, api_key_);
    EXPECT_EQ(response.status, 200) << response.body;
    boost::system::error_code ec;
    json::value value = json::parse(response.body, ec);
    return value.is_object() ? value.get_object() : json::object();
  }
  // Install: runs `zumik operator --once` with no stored id; returns the id it printed.
  std::string InstallOnce(const std::string& log) {
    ChildProcess op(OperatorArgs({"--once"}), dir_ + "/" + log);
    EXPECT_EQ(op.Wait(std::chrono::seconds(15)), 0) << op.ReadLog();
    std::string id = RegisteredId(op.ReadLog());
    EXPECT_FALSE(id.empty()) << op.ReadLog();
    return id;
  }
  std::string StoredClusterId() const {
    auto config_map =
        api_.Find(kube::kConfigMaps, "serving", std::string(kRelease) + "-zumik-cluster");
    if (!config_map) return "";
    return std::string(config_map->at("data").at("cluster_id").as_string());
  }

  static std::unique_ptr<testing::PostgresInstance> postgres_;
  std::string db_;
  int port_ = 0;
  int key_count_ = 0;
  std::string api_key_;
  std::string key_file_;
  std::unique_ptr<ChildProcess> registry_;
};

std::unique_ptr<testing::PostgresInstance> OperatorEndToEnd::postgres_;

TEST_P(OperatorEndToEnd, RegistersStoresTheIdHeartbeatsShowsOnThePageAndAReinstallKeepsTheId) {
  // Install: no cluster id yet → register, store, print the id, heartbeat with the inventory.
  ChildProcess first(OperatorArgs({"--once"}), dir_ + "/operator1.log");
  ASSERT_EQ(first.Wait(std::chrono::seconds(15)), 0) << first.ReadLog();
  const std::string id = RegisteredId(first.ReadLog());
  ASSERT_FALSE(id.empty()) << first.ReadLog();

  EXPECT_EQ(StoredClusterId(), id);
  auto secret = api_.Find(kube::kSecrets, "serving", std::string(kRelease) + "-zumik-cluster");
  ASSERT_TRUE(secret.has_value());
  const std::optional<std::string> token =
      Base64Decode(std::string(secret->at("data").at("cluster_token").as_string()));
  ASSERT_TRUE(token.has_value());
  EXPECT_TRUE(token->starts_with("zkc_"));

  // Visible in the API: profile, fingerprint (the kube-system UID), heartbeat, GPUs.
  json::object cluster = GetCluster(id);
  EXPECT_EQ(std::string(cluster["name"].as_string()), kRelease);
  EXPECT_EQ(cluster["profile"].as_string(), "byoc_epp");
  EXPECT_EQ(cluster["fingerprint"].as_string(),
            api_.Find(kube::kNamespaces, "", "kube-system")->at("metadata").at("uid").as_string());
  EXPECT_EQ(cluster["status"].as_string(), "healthy") << json::serialize(cluster);
  EXPECT_FALSE(cluster["last_heartbeat_at"].is_null()) << json::serialize(cluster);
  EXPECT_THAT(json::serialize(cluster["snapshot"]),
              HasSubstr(R"({"product":"NVIDIA-H100-80GB-HBM3","count":16})"));

  // Visible on the web page, signed in with the org's key.
  http::ClientResponse page = GetPage(api_key_);
  ASSERT_EQ(page.status, 200) << page.body;
  EXPECT_THAT(page.body, HasSubstr(">us-east<"));
  EXPECT_THAT(page.body, HasSubstr(id));
  EXPECT_THAT(page.body, HasSubstr("16\u00d7 NVIDIA-H100-80GB-HBM3"));
  EXPECT_THAT(page.body, HasSubstr("class=\"healthy\">healthy<"));
  if (GetParam() == Backend::kSqlite) {
    // Once, through a real browser: headless Chromium signs in with the key in the URL's
    // user-info, which it answers the page's Basic challenge with.
    ChildProcess chromium(
        {"/usr/bin/chromium", "--headless", "--no-sandbox", "--disable-gpu", "--no-first-run",
         "--disable-background-networking", "--disable-component-update", "--disable-sync",
         "--user-data-dir=" + dir_ + "/chromium", "--dump-dom",
         fmt::format("http://operator:{}@127.0.0.1:{}/", api_key_, port_)},
        dir_ + "/chromium.log");
    EXPECT_EQ(chromium.Wait(std::chrono::seconds(15)), 0);
    const std::string dom = chromium.ReadLog();  // the DOM (and Chromium's own warnings)
    EXPECT_THAT(dom, HasSubstr(">us-east<"));
    EXPECT_THAT(dom, HasSubstr(id));
    EXPECT_THAT(dom, HasSubstr("16× NVIDIA-H100-80GB-HBM3"));
  }

  // Upgrade with --cluster-id: the long-running operator resumes from the stored token.
  ChildProcess running(OperatorArgs({"--cluster-id", id}), dir_ + "/operator2.log");
  ASSERT_TRUE(FakeApiServer::WaitFor(
      [&] { return running.ReadLog().find("resuming as cluster " + id) != std::string::npos; },
      std::chrono::seconds(10)))
      << running.ReadLog();
  EXPECT_EQ(running.Stop(), 0) << running.ReadLog();
  // A status change (a new GPU node) reaches the registry with the next heartbeat. The
  // registry's interval is 15 s, so a fresh --once run sends it now instead.
  api_.Upsert(kube::kNodes, kube::testing::MakeGpuNode("gpu-c", "NVIDIA-L4", 1));
  ChildProcess again(OperatorArgs({"--once", "--cluster-id", id}), dir_ + "/operator3.log");
  ASSERT_EQ(again.Wait(std::chrono::seconds(15)), 0) << again.ReadLog();
  EXPECT_EQ(RegisteredId(again.ReadLog()), "") << again.ReadLog();
  EXPECT_THAT(json::serialize(GetCluster(id)), HasSubstr(R"({"product":"NVIDIA-L4","count":1})"));
  EXPECT_THAT(GetPage(api_key_).body, HasSubstr("1\u00d7 NVIDIA-L4"));

  // Reinstall: the release's ConfigMap and Secret are gone; registration gives the same id.
  ASSERT_TRUE(api_.Remove(kube::kConfigMaps, "serving", std::string(kRelease) + "-zumik-cluster"));
  ASSERT_TRUE(api_.Remove(kube::kSecrets, "serving", std::string(kRelease) + "-zumik-cluster"));
  EXPECT_EQ(InstallOnce("operator4.log"), id);
  EXPECT_EQ(StoredClusterId(), id);

  // Neither the API key nor a cluster token reached any log.
  for (const std::string& log :
       {first.ReadLog(), running.ReadLog(), again.ReadLog(), registry_->ReadLog()}) {
    EXPECT_THAT(log, Not(HasSubstr(api_key_)));
    EXPECT_THAT(log, Not(HasSubstr(*token)));
  }
}

TEST_P(OperatorEndToEnd, AnotherOrgCanNeitherSeeNorTouchTheCluster) {
  const std::string id = InstallOnce("operator.log");
  ASSERT_FALSE(id.empty());
  // Org beta, with its own key and its own cluster (so its own cluster token).
  const std::string beta_key = CreateKey("beta");
  ASSERT_FALSE(beta_key.empty());
  const std::string body =
      R"({"name":"beta-west","profile":"byoc_epp","stack":{"router":"epp"},"fingerprint":"beta-uid"})";
  http::ClientResponse registered = Call(http::Method::post, "/v1/clusters", beta_key, body);
  ASSERT_EQ(registered.status, 201) << registered.body;
  json::object beta = json::parse(registered.body).as_object();
  const std::string beta_id(beta["id"].as_string());
  const std::string beta_token(beta["cluster_token"].as_string());

  http::ClientResponse listed = Call(http::Method::get, "/v1/clusters", beta_key);
  ASSERT_EQ(listed.status, 200);
  EXPECT_THAT(listed.body, HasSubstr(beta_id));
  EXPECT_THAT(listed.body, Not(HasSubstr(id)));
  EXPECT_THAT(listed.body, Not(HasSubstr("us-east")));
  EXPECT_EQ(Call(http::Method::get, "/v1/clusters/" + id, beta_key).status, 404);
  EXPECT_EQ(Call(http::Method::delete_, "/v1/clusters/" + id, beta_key).status, 404);
  // beta's cluster token works for beta's cluster only.
  EXPECT_EQ(Call(http::Method::post, "/v1/clusters/" + id + "/heartbeat", beta_token, "{}").status,
            401);
  EXPECT_EQ(
      Call(http::Method::post, "/v1/clusters/" + beta_id + "/heartbeat", beta_token, "{}").status,
      200);
  // beta's page shows beta's cluster, not acme's; acme's the reverse.
  http::ClientResponse beta_page = GetPage(beta_key);
  ASSERT_EQ(beta_page.status, 200);
  EXPECT_THAT(beta_page.body, HasSubstr(">beta-west<"));
  EXPECT_THAT(beta_page.body, Not(HasSubstr(id)));
  EXPECT_THAT(beta_page.body, Not(HasSubstr("us-east")));
  EXPECT_THAT(beta_page.body, Not(HasSubstr(std::string(kGpuProduct))));
  http::ClientResponse acme_page = GetPage(api_key_);
  EXPECT_THAT(acme_page.body, HasSubstr(id));
  EXPECT_THAT(acme_page.body, Not(HasSubstr(beta_id)));
  // Untouched: acme's cluster is still there and its operator still heartbeats it.
  EXPECT_EQ(std::string(GetCluster(id)["name"].as_string()), kRelease);
  ChildProcess op(OperatorArgs({"--once", "--cluster-id", id}), dir_ + "/operator2.log");
  EXPECT_EQ(op.Wait(std::chrono::seconds(15)), 0) << op.ReadLog();
  EXPECT_EQ(RegisteredId(op.ReadLog()), "") << op.ReadLog();
}

TEST_P(OperatorEndToEnd, ARevokedOrUnknownApiKeyIsAClearNonRetriedFailure) {
  // A real key of the org, revoked by the admin while the registry runs.
  const std::string revoked = CreateKey("acme");
  ASSERT_FALSE(revoked.empty());
  ChildProcess revoke({testing::ZumikBinary(), "registry", "keys", "revoke", "--org", "acme",
                       revoked.substr(0, 16), "--db", db_},
                      dir_ + "/revoke.log");
  ASSERT_EQ(revoke.Wait(std::chrono::seconds(15)), 0) << revoke.ReadLog();
  for (const std::string& key : {revoked, std::string("zk_live_notarealkey000000000000000000")}) {
    std::ofstream(key_file_, std::ios::trunc) << key << "\n";
    // Not --once: a rejected key must end the process instead of retrying forever.
    ChildProcess op(OperatorArgs(), dir_ + "/operator-" + key.substr(8, 8) + ".log");
    EXPECT_EQ(op.Wait(std::chrono::seconds(15)), 1) << op.ReadLog();
    EXPECT_THAT(op.ReadLog(), HasSubstr("rejected the API key"));
    EXPECT_THAT(op.ReadLog(), HasSubstr("not retrying"));
    EXPECT_THAT(op.ReadLog(), Not(HasSubstr("retrying in")));
    EXPECT_THAT(op.ReadLog(), Not(HasSubstr(key)));
    EXPECT_EQ(StoredClusterId(), "");
  }
  EXPECT_THAT(registry_->ReadLog(), Not(HasSubstr(revoked)));
}

TEST_P(OperatorEndToEnd, ARejectedClusterTokenLeadsToReRegistrationWithTheApiKey) {
  const std::string id = InstallOnce("operator1.log");
  ASSERT_FALSE(id.empty());
  // The cluster is deleted through the API: its token stops working.
  ASSERT_EQ(Call(http::Method::delete_, "/v1/clusters/" + id, api_key_).status, 204);
  ChildProcess op(OperatorArgs({"--once", "--cluster-id", id}), dir_ + "/operator2.log");
  ASSERT_EQ(op.Wait(std::chrono::seconds(15)), 0) << op.ReadLog();
  EXPECT_THAT(op.ReadLog(), HasSubstr("rejected the token of cluster " + id));
  const std::string new_id = RegisteredId(op.ReadLog());
  ASSERT_FALSE(new_id.empty()) << op.ReadLog();
  EXPECT_NE(new_id, id);  // a deleted cluster's id is not reused
  EXPECT_EQ(StoredClusterId(), new_id);
  EXPECT_FALSE(GetCluster(new_id)["last_heartbeat_at"].is_null());
  EXPECT_EQ(Call(http::Method::get, "/v1/clusters/" + id, api_key_).status, 404);
}

TEST_P(OperatorEndToEnd, AnUnreachableControlPlaneIsRetriedWithoutCrashing) {
  registry_->Stop();
  ChildProcess op(OperatorArgs(), dir_ + "/operator.log");
  ASSERT_TRUE(
      FakeApiServer::WaitFor([&] { return op.ReadLog().find("retrying in") != std::string::npos; },
                             std::chrono::seconds(10)))
      << op.ReadLog();
  EXPECT_TRUE(op.running());
  // The registry comes back: the operator registers on its next attempt.
  StartRegistry("registry2.log");
  EXPECT_TRUE(FakeApiServer::WaitFor([&] { return !RegisteredId(op.ReadLog()).empty(); },
                                     std::chrono::seconds(15)))
      << op.ReadLog();
  EXPECT_EQ(op.Stop(), 0);
  EXPECT_EQ(StoredClusterId(), RegisteredId(op.ReadLog()));
}

INSTANTIATE_TEST_SUITE_P(Backends, OperatorEndToEnd,
                         ::testing::Values(Backend::kSqlite, Backend::kPostgres), BackendName);

class PreflightEndToEnd : public KubeDoubleTest {
 protected:
  void SetUp() override { StartKubeDouble("preflight_e2e"); }
};

TEST_F(PreflightEndToEnd, PrintsATableAndFailsOnMissingPrerequisites) {
  ChildProcess failing({testing::ZumikBinary(), "preflight", "--kubeconfig", kubeconfig_,
                        "--gpu-product", std::string(kGpuProduct)},
                       dir_ + "/preflight1.log");
  EXPECT_EQ(failing.Wait(std::chrono::seconds(15)), 1) << failing.ReadLog();
  const std::string table = failing.ReadLog();
  EXPECT_THAT(table, HasSubstr("GPU nodes (nvidia.com/gpu)"));
  EXPECT_THAT(table, HasSubstr("fix: install KServe"));

  ChildProcess passing({testing::ZumikBinary(), "preflight", "--kubeconfig", kubeconfig_,
                        "--no-kserve", "--no-router", "--no-aibrix"},
                       dir_ + "/preflight2.log");
  EXPECT_EQ(passing.Wait(std::chrono::seconds(15)), 0) << passing.ReadLog();
  EXPECT_THAT(passing.ReadLog(), HasSubstr("all checks passed"));
}

}  // namespace
}  // namespace zumik
