// The Kubernetes client against the API test double: configuration, CRUD, list and watch.
#include "kube/client.h"

#include <gtest/gtest.h>

#include <boost/json/parse.hpp>
#include <cstdlib>
#include <filesystem>
#include <fstream>

#include "core/base64.h"
#include "core/http/test_util.h"
#include "core/json_path.h"
#include "core/status.h"
#include "kube/testing/fake_api_server.h"
#include "kube/testing/test_objects.h"

namespace zumik::kube {
namespace {

namespace asio = boost::asio;
namespace json = boost::json;
using http::testing::IoThreads;
using http::testing::RunOn;
using http::testing::Spawn;
using testing::FakeApiServer;
using testing::MakePod;

asio::awaitable<absl::StatusOr<std::vector<WatchEvent>>> CollectEvents(
    Client* client, Resource resource, std::string ns, WatchOptions options, size_t count) {
  absl::StatusOr<WatchStream> stream = co_await client->Watch(resource, ns, options);
  if (!stream.ok()) co_return stream.status();
  std::vector<WatchEvent> events;
  while (events.size() < count) {
    absl::StatusOr<std::optional<WatchEvent>> event = co_await stream->Next();
    if (!event.ok()) co_return event.status();
    if (!event->has_value()) break;
    events.push_back(std::move(**event));
  }
  co_return events;
}

class ClientTest : public ::testing::Test {
 protected:
  void SetUp() override {
    ASSERT_TRUE(api_.Start().ok());
    client_ = std::make_unique<Client>(io_.io().get_executor(), api_.ClientConfig());
  }
  void TearDown() override {
    client_.reset();
    api_.Stop();
  }
  FakeApiServer api_;
  IoThreads io_{1};
  std::unique_ptr<Client> client_;
};

TEST_F(ClientTest, ListsObjectsMatchingALabelSelector) {
  api_.Upsert(kPods, MakePod("a", "ns1", {{"app", "vllm"}}, "10.0.0.1", true));
  api_.Upsert(kPods, MakePod("b", "ns1", {{"app", "other"}}, "10.0.0.2", true));
  api_.Upsert(kPods, MakePod("c", "ns2", {{"app", "vllm"}}, "10.0.0.3", true));
  ListOptions options;
  options.label_selector = "app=vllm";
  auto list = RunOn(io_.io(), client_->List(kPods, "ns1", options));
  ASSERT_TRUE(list.ok()) << list.status();
  ASSERT_EQ(list->items.size(), 1u);
  EXPECT_EQ(ObjectName(list->items[0]), "a");
  EXPECT_EQ(list->resource_version, api_.resource_version());

  auto all = RunOn(io_.io(), client_->List(kPods, "", ListOptions{}));
  ASSERT_TRUE(all.ok());
  EXPECT_EQ(all->items.size(), 3u);
}

TEST_F(ClientTest, GetOfAMissingObjectIsNotFound) {
  auto got = RunOn(io_.io(), client_->Get(kConfigMaps, "default", "nope"));
  EXPECT_EQ(got.status().code(), absl::StatusCode::kNotFound);
  auto ns = RunOn(io_.io(), client_->Get(kNamespaces, "", "kube-system"));
  ASSERT_TRUE(ns.ok());
  EXPECT_FALSE(std::string(FindPath(*ns, "metadata.uid")->get_string()).empty());
}

TEST_F(ClientTest, CreateUpdatePatchAndDeleteAConfigMap) {
  json::object cm;
  cm["metadata"] = testing::MakeMetadata("state", "zumik");
  json::object data;
  data["cluster_id"] = "byc_1";
  cm["data"] = data;
  auto created = RunOn(io_.io(), client_->Create(kConfigMaps, "zumik", cm));
  ASSERT_TRUE(created.ok()) << created.status();
  auto again = RunOn(io_.io(), client_->Create(kConfigMaps, "zumik", cm));
  EXPECT_EQ(again.status().code(), absl::StatusCode::kAlreadyExists);

  // A stale resourceVersion is a conflict.
  json::object stale = *created;
  stale["metadata"].as_object()["resourceVersion"] = "1";
  auto conflict = RunOn(io_.io(), client_->Update(kConfigMaps, "zumik", stale));
  EXPECT_EQ(conflict.status().code(), absl::StatusCode::kAborted);

  json::value patch = json::parse(R"({"data":{"cluster_id":"byc_2","extra":"x"}})");
  auto patched = RunOn(io_.io(), client_->MergePatch(kConfigMaps, "zumik", "state", patch));
  ASSERT_TRUE(patched.ok()) << patched.status();
  EXPECT_EQ(FindPath(*patched, "data.cluster_id")->as_string(), "byc_2");
  EXPECT_EQ(FindPath(*patched, "data.extra")->as_string(), "x");

  json::object replacement = cm;
  replacement["data"].as_object()["cluster_id"] = "byc_3";
  auto applied = RunOn(io_.io(), client_->Apply(kConfigMaps, "zumik", replacement));
  ASSERT_TRUE(applied.ok()) << applied.status();
  EXPECT_EQ(api_.Find(kConfigMaps, "zumik", "state")->at("data").at("cluster_id").as_string(),
            "byc_3");

  EXPECT_TRUE(RunOn(io_.io(), client_->Delete(kConfigMaps, "zumik", "state")).ok());
  EXPECT_FALSE(api_.Find(kConfigMaps, "zumik", "state").has_value());
  const auto writes = api_.writes();
  ASSERT_GE(writes.size(), 5u);
  EXPECT_EQ(writes.front().method, "POST");
  EXPECT_EQ(writes.back().method, "DELETE");
}

TEST_F(ClientTest, WatchReplaysEventsAfterAResourceVersionThenStreamsLiveOnes) {
  api_.Upsert(kPods, MakePod("a", "ns", {}, "10.0.0.1", true));
  auto list = RunOn(io_.io(), client_->List(kPods, "ns", ListOptions{}));
  ASSERT_TRUE(list.ok());
  api_.Upsert(kPods, MakePod("b", "ns", {}, "10.0.0.2", true));  // after the list: replayed
  // Another resource's change after the list is not the pods watch's to replay.
  api_.Upsert(kConfigMaps, boost::json::object{{"metadata", testing::MakeMetadata("cfg", "ns")}});

  WatchOptions options;
  options.resource_version = list->resource_version;
  auto future = Spawn(io_.io(), CollectEvents(client_.get(), kPods, "ns", options, 3));
  ASSERT_TRUE(FakeApiServer::WaitFor([&] { return api_.open_watches() == 1; }));
  api_.Upsert(kPods, MakePod("a", "ns", {}, "10.0.0.1", false));
  api_.Remove(kPods, "ns", "b");
  auto events = future.get();
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 3u);
  EXPECT_EQ((*events)[0].type, EventType::kAdded);
  EXPECT_EQ(ObjectName((*events)[0].object), "b");
  EXPECT_EQ((*events)[1].type, EventType::kModified);
  EXPECT_EQ(ObjectName((*events)[1].object), "a");
  EXPECT_EQ((*events)[2].type, EventType::kDeleted);
  EXPECT_EQ(ObjectName((*events)[2].object), "b");
}

TEST_F(ClientTest, WatchFromAnExpiredVersionIsGone) {
  api_.Upsert(kPods, MakePod("a", "ns", {}, "10.0.0.1", true));
  const std::string old_version = api_.resource_version();
  api_.ExpireWatches();
  WatchOptions options;
  options.resource_version = old_version;
  auto events = RunOn(io_.io(), CollectEvents(client_.get(), kPods, "ns", options, 1));
  EXPECT_TRUE(IsGone(events.status())) << events.status();
}

TEST_F(ClientTest, WatchDeliversBookmarksWhenAllowed) {
  WatchOptions options;
  options.resource_version = api_.resource_version();
  auto future = Spawn(io_.io(), CollectEvents(client_.get(), kPods, "ns", options, 1));
  ASSERT_TRUE(FakeApiServer::WaitFor([&] { return api_.open_watches() == 1; }));
  api_.SendBookmarks();
  auto events = future.get();
  ASSERT_TRUE(events.ok()) << events.status();
  ASSERT_EQ(events->size(), 1u);
  EXPECT_EQ((*events)[0].type, EventType::kBookmark);
  EXPECT_EQ(ObjectResourceVersion((*events)[0].object), api_.resource_version());
}

TEST_F(ClientTest, AWrongTokenIsUnauthenticatedAndUnknownResourcesAreNotFound) {
  api_.RequireToken("right");
  Config config = api_.ClientConfig();
  config.token = Secret("wrong");
  Client wrong(io_.io().get_executor(), config);
  auto denied = RunOn(io_.io(), wrong.List(kPods, "ns", ListOptions{}));
  EXPECT_EQ(denied.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(std::string(MessageOf(denied.status())).find("wrong"), std::string::npos);

  Client right(io_.io().get_executor(), api_.ClientConfig());
  auto pools = RunOn(io_.io(), right.List(kInferencePoolsV1, "ns", ListOptions{}));
  EXPECT_EQ(pools.status().code(), absl::StatusCode::kNotFound);
  api_.AddResource(kInferencePoolsV1);
  EXPECT_TRUE(RunOn(io_.io(), right.List(kInferencePoolsV1, "ns", ListOptions{})).ok());
  EXPECT_TRUE(RunOn(io_.io(), right.GetPath("/apis/inference.networking.k8s.io/v1")).ok());
  auto version = RunOn(io_.io(), right.GetPath("/version"));
  ASSERT_TRUE(version.ok());
  EXPECT_EQ(version->at("gitVersion").as_string(), "v1.30.2");
}

TEST(KubeConfig, LoadsServerTokenAndCaFromAKubeconfig) {
  const std::string dir = std::filesystem::temp_directory_path() / "kube_client_test_cfg";
  std::filesystem::create_directories(dir);
  const std::string path = dir + "/config";
  std::ofstream(path) << "apiVersion: v1\nkind: Config\ncurrent-context: dev\n"
                         "clusters:\n- name: c1\n  cluster:\n    server: https://10.1.2.3:6443/\n"
                         "    certificate-authority-data: " +
                             Base64Encode("PEM-CA") +
                             "\n"
                             "- name: c2\n  cluster:\n    server: http://127.0.0.1:1\n"
                             "    insecure-skip-tls-verify: true\n"
                             "contexts:\n- name: dev\n  context:\n    cluster: c1\n    user: u1\n"
                             "    namespace: team\n"
                             "- name: other\n  context:\n    cluster: c2\n    user: u1\n"
                             "users:\n- name: u1\n  user:\n    token: sekret\n";
  auto config = LoadKubeconfig(path);
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://10.1.2.3:6443");
  EXPECT_EQ(config->token.Reveal(), "sekret");
  EXPECT_EQ(config->tls.ca_pem, "PEM-CA");
  EXPECT_TRUE(config->tls.verify_peer);
  EXPECT_EQ(config->default_namespace, "team");

  auto other = LoadKubeconfig(path, "other");
  ASSERT_TRUE(other.ok());
  EXPECT_FALSE(other->tls.verify_peer);
  EXPECT_EQ(LoadKubeconfig(path, "missing").status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_FALSE(LoadKubeconfig(dir + "/absent").ok());
}

TEST(KubeConfig, InClusterReadsTheServiceAccountMount) {
  const std::string dir = std::filesystem::temp_directory_path() / "kube_client_test_sa";
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/token") << "sa-token\n";
  std::ofstream(dir + "/ca.crt") << "CA";
  std::ofstream(dir + "/namespace") << "zumik-portable";
  unsetenv("KUBERNETES_SERVICE_HOST");
  EXPECT_EQ(InClusterConfig(dir).status().code(), absl::StatusCode::kFailedPrecondition);
  setenv("KUBERNETES_SERVICE_HOST", "10.96.0.1", 1);
  setenv("KUBERNETES_SERVICE_PORT", "443", 1);
  auto config = InClusterConfig(dir);
  unsetenv("KUBERNETES_SERVICE_HOST");
  unsetenv("KUBERNETES_SERVICE_PORT");
  ASSERT_TRUE(config.ok()) << config.status();
  EXPECT_EQ(config->server, "https://10.96.0.1:443");
  EXPECT_EQ(config->token.Reveal(), "sa-token");
  EXPECT_EQ(config->tls.ca_file, dir + "/ca.crt");
  EXPECT_EQ(config->default_namespace, "zumik-portable");
}

TEST(Resource, BuildsCoreGroupAndNamespacedPaths) {
  EXPECT_EQ(kPods.Path("ns", "p"), "/api/v1/namespaces/ns/pods/p");
  EXPECT_EQ(kNodes.Path("ignored"), "/api/v1/nodes");
  EXPECT_EQ(kInferencePoolsV1.Path("ns"),
            "/apis/inference.networking.k8s.io/v1/namespaces/ns/inferencepools");
  EXPECT_EQ(kDeployments.Path(""), "/apis/apps/v1/deployments");
  EXPECT_EQ(kDeployments.ApiVersion(), "apps/v1");
}

}  // namespace
}  // namespace zumik::kube
