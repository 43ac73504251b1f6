// The registry service on a SQLite store: registration, tokens, tenant isolation, liveness
// under a virtual clock, route conflicts, write-behind heartbeats, the page per org; then the
// HTTP API and the signed-in page of a running RegistryServer (429, 413, 400, 401).
#include "registry/service.h"

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <atomic>
#include <boost/json/parse.hpp>

#include "core/base64.h"
#include "core/http/client.h"
#include "core/testing/temp_dir.h"
#include "registry/credentials.h"
#include "registry/registry_server.h"

namespace zumik::registry {
namespace {

using ::testing::HasSubstr;

std::string TempDb() {
  static std::atomic<int> counter{0};
  static const std::string dir = ::zumik::testing::MakeTempDir("zumik-registry-service");
  return "sqlite:" + dir + "/r-" + std::to_string(counter++) + ".db";
}

// Creates an org key directly in the store, as `zumik registry keys create` does.
std::string CreateKey(Store& store, const std::string& org) {
  NewApiKey key = GenerateApiKey();
  EXPECT_TRUE(store.InsertApiKey({key.lookup_prefix, org, key.sha256_hex, 1, std::nullopt}).ok());
  return key.key.Reveal();
}

RegisterRequest Request(std::string name, std::string fingerprint,
                        Profile profile = Profile::kByocEpp) {
  RegisterRequest request;
  request.name = std::move(name);
  request.profile = profile;
  request.stack = profile == Profile::kByocEpp
                      ? Stack{"epp", "vllm", "kserve", "aibrix", "lmcache"}
                      : Stack{"dynamo-router", "vllm", "dynamo", "", "nixl"};
  request.fingerprint = std::move(fingerprint);
  request.kubernetes_version = "v1.30.2";
  request.chart_version = "0.3.0";
  return request;
}

HeartbeatRequest WithRoutes(std::vector<RouteClaim> routes) {
  HeartbeatRequest request;
  request.status = StatusSnapshot{};
  request.status->gpus = {{"NVIDIA-H100-80GB-HBM3", 8}};
  request.status->routes = std::move(routes);
  return request;
}

class RegistryServiceTest : public ::testing::Test {
 protected:
  void SetUp() override {
    url_ = TempDb();
    store_ = *OpenStore(url_);
    Restart();
    acme_ = *service_->AuthenticateApiKey(CreateKey(*store_, "acme"));
    globex_ = *service_->AuthenticateApiKey(CreateKey(*store_, "globex"));
  }

  // A new service on the same store, as after a registry restart.
  void Restart() {
    service_.reset();
    service_ = std::make_unique<RegistryService>(*store_, clock_, options_, &metrics_);
    ASSERT_TRUE(service_->Load().ok());
  }

  std::string url_;
  VirtualClock clock_{Time{0}, 1'700'000'000};
  ServiceOptions options_;
  metrics::Registry metrics_;
  std::unique_ptr<Store> store_;
  std::unique_ptr<RegistryService> service_;
  Caller acme_;
  Caller globex_;
};

TEST_F(RegistryServiceTest, RejectsUnknownAndRevokedKeys) {
  EXPECT_EQ(service_->AuthenticateApiKey("zk_live_0000000000000000").status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(service_->AuthenticateApiKey("").status().code(), absl::StatusCode::kUnauthenticated);
  const std::string key = CreateKey(*store_, "initech");
  ASSERT_TRUE(service_->AuthenticateApiKey(key).ok());
  ASSERT_TRUE(store_->RevokeApiKey("initech", ApiKeyLookupPrefix(key), 2).ok());
  auto revoked = service_->AuthenticateApiKey(key);
  EXPECT_EQ(revoked.status().code(), absl::StatusCode::kUnauthenticated);
  EXPECT_THAT(std::string(revoked.status().message()), ::testing::Not(HasSubstr(key)));
}

TEST_F(RegistryServiceTest, ReRegistrationReturnsTheSameIdAndRotatesTheToken) {
  auto first = service_->RegisterCluster(acme_, Request("east", "uid-1"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->created);
  EXPECT_TRUE(first->id.starts_with("byc_"));
  auto again = service_->RegisterCluster(acme_, Request("east", "uid-1"));
  ASSERT_TRUE(again.ok());
  EXPECT_FALSE(again->created);
  EXPECT_EQ(again->id, first->id);
  EXPECT_NE(again->cluster_token.Reveal(), first->cluster_token.Reveal());
  EXPECT_EQ(service_->Heartbeat(first->id, first->cluster_token.Reveal(), {}).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_TRUE(service_->Heartbeat(first->id, again->cluster_token.Reveal(), {}).ok());
}

TEST_F(RegistryServiceTest, ANameHeldByAnotherFingerprintIsAConflict) {
  ASSERT_TRUE(service_->RegisterCluster(acme_, Request("east", "uid-1")).ok());
  auto clash = service_->RegisterCluster(acme_, Request("east", "uid-2"));
  EXPECT_EQ(clash.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(clash.status().message()), HasSubstr("'east'"));
}

TEST_F(RegistryServiceTest, AClusterTokenCanOnlyHeartbeatItsOwnCluster) {
  auto east = *service_->RegisterCluster(acme_, Request("east", "uid-1"));
  auto west = *service_->RegisterCluster(acme_, Request("west", "uid-2"));
  EXPECT_EQ(service_->Heartbeat(west.id, east.cluster_token.Reveal(), {}).status().code(),
            absl::StatusCode::kUnauthenticated);
  EXPECT_EQ(service_->Heartbeat("byc_ffff", east.cluster_token.Reveal(), {}).status().code(),
            absl::StatusCode::kUnauthenticated);
  auto interval = service_->Heartbeat(east.id, east.cluster_token.Reveal(), {});
  ASSERT_TRUE(interval.ok());
  EXPECT_EQ(*interval, std::chrono::seconds(15));
}

TEST_F(RegistryServiceTest, AnotherOrgCannotListReadOrDeleteTheClusters) {
  auto east = *service_->RegisterCluster(acme_, Request("east", "uid-1"));
  EXPECT_EQ(service_->ListClusters("acme", {}).size(), 1u);
  EXPECT_TRUE(service_->ListClusters("globex", {}).empty());
  EXPECT_EQ(service_->GetCluster("globex", east.id).status().code(), absl::StatusCode::kNotFound);
  EXPECT_EQ(service_->DeleteCluster("globex", east.id).code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(service_->GetCluster("acme", east.id).ok());
  // The same fingerprint in another org is another cluster.
  auto theirs = *service_->RegisterCluster(globex_, Request("east", "uid-1"));
  EXPECT_NE(theirs.id, east.id);
}

TEST_F(RegistryServiceTest, LivenessMovesWithTheVirtualClock) {
  auto east = *service_->RegisterCluster(acme_, Request("east", "uid-1"));
  clock_.Advance(std::chrono::hours(1));  // past the start-up grace
  ASSERT_TRUE(service_->Heartbeat(east.id, east.cluster_token.Reveal(), {}).ok());
  EXPECT_EQ(service_->GetCluster("acme", east.id)->liveness, Liveness::kHealthy);
  clock_.Advance(std::chrono::seconds(61));
  EXPECT_EQ(service_->GetCluster("acme", east.id)->liveness, Liveness::kUnknown);
  clock_.Advance(std::chrono::minutes(15));
  EXPECT_EQ(service_->GetCluster("acme", east.id)->liveness, Liveness::kOffline);
  ListFilter offline;
  offline.status = Liveness::kOffline;
  EXPECT_EQ(service_->ListClusters("acme", offline).size(), 1u);
  ASSERT_TRUE(service_->Heartbeat(east.id, east.cluster_token.Reveal(), {}).ok());
  EXPECT_EQ(service_->GetCluster("acme", east.id)->liveness, Liveness::kHealthy);
}

TEST_F(RegistryServiceTest, FlushedHeartbeatsAndSnapshotsSurviveARestartWithStartUpGrace) {
  auto east = *service_->RegisterCluster(acme_, Request("east", "uid-1"));
  clock_.Advance(std::chrono::hours(1));
  ASSERT_TRUE(service_
                  ->Heartbeat(east.id, east.cluster_token.Reveal(),
                              WithRoutes({{"/v1/completions", "epp"}}))
                  .ok());
  EXPECT_EQ(service_->PendingHeartbeats(), 1u);
  ASSERT_TRUE(service_->Flush().ok());
  EXPECT_EQ(service_->PendingHeartbeats(), 0u);
  clock_.Advance(std::chrono::minutes(10));  // registry down for 10 minutes
  Restart();
  auto view = service_->GetCluster("acme", east.id);
  ASSERT_TRUE(view.ok());
  EXPECT_EQ(view->liveness, Liveness::kHealthy);  // grace, not "unknown"
  ASSERT_TRUE(view->record.status.has_value());
  EXPECT_EQ(view->record.status->gpus[0].count, 8);
  clock_.Advance(std::chrono::seconds(121));
  EXPECT_EQ(service_->GetCluster("acme", east.id)->liveness, Liveness::kUnknown);
  // The old token still works after the restart.
  EXPECT_TRUE(service_->Heartbeat(east.id, east.cluster_token.Reveal(), {}).ok());
}

TEST_F(RegistryServiceTest, FlagsItselfRatherThanTheClustersWhenMostGoStaleAtOnce) {
  std::vector<RegisterResult> clusters;
  clusters.reserve(5);
  for (int i = 0; i < 5; ++i) {
    clusters.push_back(*service_->RegisterCluster(
        acme_, Request("c" + std::to_string(i), "uid-" + std::to_string(i))));
  }
  clock_.Advance(std::chrono::hours(1));
  for (const auto& c : clusters) {
    ASSERT_TRUE(service_->Heartbeat(c.id, c.cluster_token.Reveal(), {}).ok());
  }
  clock_.Advance(std::chrono::seconds(50));
  ASSERT_TRUE(service_->Heartbeat(clusters[0].id, clusters[0].cluster_token.Reveal(), {}).ok());
  clock_.Advance(std::chrono::seconds(20));
  EXPECT_TRUE(service_->Health().suspect);
  for (const ClusterView& view : service_->ListClusters("acme", {})) {
    EXPECT_EQ(view.liveness, Liveness::kHealthy) << view.record.name;
  }
  const std::string page = service_->RenderPage("acme");
  EXPECT_THAT(page, HasSubstr("Registry suspect"));
  // The banner gives no fleet-wide counts: they would tell one org about the others.
  EXPECT_THAT(page, ::testing::Not(HasSubstr("4 of 5")));
  EXPECT_THAT(metrics_.Expose(), HasSubstr("zumik_registry_suspect 1"));
}

TEST_F(RegistryServiceTest, ShowsARouteClaimedByAnEppAndADynamoClusterAsAConflictOnBoth) {
  auto epp = *service_->RegisterCluster(acme_, Request("epp-east", "uid-1"));
  auto dynamo =
      *service_->RegisterCluster(acme_, Request("dyn-east", "uid-2", Profile::kByocDynamo));
  auto other = *service_->RegisterCluster(acme_, Request("epp-west", "uid-3"));
  ASSERT_TRUE(
      service_
          ->Heartbeat(epp.id, epp.cluster_token.Reveal(), WithRoutes({{"/v1/completions", "epp"}}))
          .ok());
  ASSERT_TRUE(service_
                  ->Heartbeat(dynamo.id, dynamo.cluster_token.Reveal(),
                              WithRoutes({{"/v1/completions", "dynamo-router"}}))
                  .ok());
  ASSERT_TRUE(service_
                  ->Heartbeat(other.id, other.cluster_token.Reveal(),
                              WithRoutes({{"/v1/chat/completions", "epp"}}))
                  .ok());
  auto epp_view = *service_->GetCluster("acme", epp.id);
  ASSERT_EQ(epp_view.conflicts.size(), 1u);
  EXPECT_EQ(epp_view.conflicts[0].path, "/v1/completions");
  EXPECT_EQ(epp_view.conflicts[0].other_id, dynamo.id);
  EXPECT_EQ(epp_view.conflicts[0].other_owner, "dynamo-router");
  auto dynamo_view = *service_->GetCluster("acme", dynamo.id);
  ASSERT_EQ(dynamo_view.conflicts.size(), 1u);
  EXPECT_EQ(dynamo_view.conflicts[0].other_id, epp.id);
  EXPECT_TRUE(service_->GetCluster("acme", other.id)->conflicts.empty());
  EXPECT_THAT(service_->ClusterJson(epp_view), HasSubstr("\"route_conflicts\":[{\"path\""));
}

TEST_F(RegistryServiceTest, WritesClusterJsonThatParsesBackToTheRecord) {
  auto epp = *service_->RegisterCluster(acme_, Request("epp-east", "uid-1"));
  auto dynamo =
      *service_->RegisterCluster(acme_, Request("dyn-east", "uid-2", Profile::kByocDynamo));
  HeartbeatRequest beat = WithRoutes({{"/v1/completions", "epp"}});
  beat.status->model = "org/model-7b";
  beat.status->replicas_ready = 2;
  ASSERT_TRUE(service_->Heartbeat(epp.id, epp.cluster_token.Reveal(), beat).ok());
  ASSERT_TRUE(service_
                  ->Heartbeat(dynamo.id, dynamo.cluster_token.Reveal(),
                              WithRoutes({{"/v1/completions", "dynamo-router"}}))
                  .ok());
  boost::system::error_code ec;
  auto value = boost::json::parse(service_->ListJson("acme", {}), ec);
  ASSERT_FALSE(ec) << service_->ListJson("acme", {});
  auto& list = value.as_object();
  EXPECT_EQ(list["count"].as_int64(), 2);
  EXPECT_EQ(list["registry"].as_object()["suspect"].as_bool(), false);
  auto& clusters = list["clusters"].as_array();
  auto& east = clusters[1].as_object();  // sorted by name: dyn-east, epp-east
  EXPECT_EQ(east["id"].as_string(), epp.id);
  EXPECT_EQ(east["profile"].as_string(), "byoc_epp");
  EXPECT_EQ(east["stack"].as_object()["kv_layer"].as_string(), "lmcache");
  EXPECT_EQ(east["status"].as_string(), "healthy");
  EXPECT_TRUE(east["last_heartbeat_at"].is_string());
  auto& snapshot = east["snapshot"].as_object();
  EXPECT_EQ(snapshot["model"].as_string(), "org/model-7b");
  EXPECT_EQ(snapshot["replicas"].as_object()["ready"].as_int64(), 2);
  EXPECT_EQ(snapshot["gpus"].as_array()[0].as_object()["count"].as_int64(), 8);
  auto& conflict = east["route_conflicts"].as_array()[0].as_object();
  EXPECT_EQ(conflict["other_cluster_id"].as_string(), dynamo.id);
  EXPECT_EQ(conflict["other_owner"].as_string(), "dynamo-router");
}

TEST_F(RegistryServiceTest, FiltersByProfileStackAndStatus) {
  ASSERT_TRUE(service_->RegisterCluster(acme_, Request("a", "uid-1")).ok());
  ASSERT_TRUE(service_->RegisterCluster(acme_, Request("b", "uid-2", Profile::kByocDynamo)).ok());
  ListFilter dynamo;
  dynamo.profile = Profile::kByocDynamo;
  ASSERT_EQ(service_->ListClusters("acme", dynamo).size(), 1u);
  EXPECT_EQ(service_->ListClusters("acme", dynamo)[0].record.name, "b");
  ListFilter lmcache;
  lmcache.stack = "lmcache";
  EXPECT_EQ(service_->ListClusters("acme", lmcache).size(), 1u);
  ListFilter runtime;
  runtime.stack = "runtime:vllm";
  EXPECT_EQ(service_->ListClusters("acme", runtime).size(), 2u);
  runtime.stack = "router:vllm";
  EXPECT_TRUE(service_->ListClusters("acme", runtime).empty());
  ListFilter pending;
  pending.status = Liveness::kPending;
  EXPECT_EQ(service_->ListClusters("acme", pending).size(), 2u);
}

TEST_F(RegistryServiceTest, DeletingAClusterKillsItsTokenAndForgetsIt) {
  auto east = *service_->RegisterCluster(acme_, Request("east", "uid-1"));
  ASSERT_TRUE(service_->Heartbeat(east.id, east.cluster_token.Reveal(), {}).ok());
  ASSERT_TRUE(service_->DeleteCluster("acme", east.id).ok());
  EXPECT_EQ(service_->PendingHeartbeats(), 0u);
  EXPECT_EQ(service_->Heartbeat(east.id, east.cluster_token.Reveal(), {}).status().code(),
            absl::StatusCode::kUnauthenticated);
  Restart();
  EXPECT_TRUE(service_->ListClusters("acme", {}).empty());
}

TEST_F(RegistryServiceTest, RateLimitsEachApiKey) {
  options_.api_rate_per_s = 1;
  options_.api_burst = 3;
  Restart();
  for (int i = 0; i < 3; ++i) EXPECT_TRUE(service_->ChargeApiKey(acme_).ok());
  EXPECT_EQ(service_->ChargeApiKey(acme_).code(), absl::StatusCode::kResourceExhausted);
  EXPECT_TRUE(service_->ChargeApiKey(globex_).ok());  // per key
  clock_.Advance(std::chrono::seconds(1));
  EXPECT_TRUE(service_->ChargeApiKey(acme_).ok());
}

TEST_F(RegistryServiceTest, RateLimitsHeartbeatsPerCluster) {
  options_.heartbeat_rate_per_s = 1;
  options_.heartbeat_burst = 2;
  Restart();
  auto east = *service_->RegisterCluster(acme_, Request("east", "uid-1"));
  EXPECT_TRUE(service_->Heartbeat(east.id, east.cluster_token.Reveal(), {}).ok());
  EXPECT_TRUE(service_->Heartbeat(east.id, east.cluster_token.Reveal(), {}).ok());
  EXPECT_EQ(service_->Heartbeat(east.id, east.cluster_token.Reveal(), {}).status().code(),
            absl::StatusCode::kResourceExhausted);
}

TEST_F(RegistryServiceTest, RendersThePageWithEveryColumnEscaped) {
  auto east = *service_->RegisterCluster(acme_, Request("east", "uid-1"));
  ASSERT_TRUE(
      service_
          ->Heartbeat(east.id, east.cluster_token.Reveal(), WithRoutes({{"/v1/<script>", "epp"}}))
          .ok());
  const std::string page = service_->RenderPage("acme");
  EXPECT_THAT(page, HasSubstr("<meta http-equiv=\"refresh\""));
  EXPECT_THAT(page, HasSubstr("<b id=\"org\">acme</b>: 1 cluster(s)"));
  EXPECT_THAT(page, HasSubstr(east.id));
  EXPECT_THAT(page, HasSubstr("byoc_epp"));
  EXPECT_THAT(page, HasSubstr("8\u00d7 NVIDIA-H100-80GB-HBM3"));
  EXPECT_THAT(page, HasSubstr("class=\"healthy\""));
  EXPECT_THAT(page, HasSubstr("epp \u00b7 vllm \u00b7 kserve"));
  EXPECT_THAT(page, HasSubstr("/v1/&lt;script&gt; (epp)"));
  EXPECT_THAT(page, ::testing::Not(HasSubstr("<script>")));
}

TEST_F(RegistryServiceTest, ThePageShowsOnlyTheCallersOrg) {
  auto east = *service_->RegisterCluster(acme_, Request("east", "uid-1"));
  auto theirs = *service_->RegisterCluster(globex_, Request("globex-only", "uid-9"));
  const std::string acme_page = service_->RenderPage("acme");
  EXPECT_THAT(acme_page, HasSubstr(east.id));
  EXPECT_THAT(acme_page, ::testing::Not(HasSubstr(theirs.id)));
  EXPECT_THAT(acme_page, ::testing::Not(HasSubstr("globex")));
  const std::string globex_page = service_->RenderPage("globex");
  EXPECT_THAT(globex_page, HasSubstr(theirs.id));
  EXPECT_THAT(globex_page, ::testing::Not(HasSubstr(east.id)));
  EXPECT_THAT(globex_page, ::testing::Not(HasSubstr("acme")));
  // No org, no clusters (never "every org").
  const std::string nobody = service_->RenderPage("");
  EXPECT_THAT(nobody, ::testing::Not(HasSubstr(east.id)));
  EXPECT_THAT(nobody, ::testing::Not(HasSubstr(theirs.id)));
}

// ---------------------------------------------------------------------------------------------
// HTTP

class RegistryHttpTest : public ::testing::Test {
 protected:
  void SetUp() override {
    RegistryServerOptions options;
    options.db = TempDb();
    options.max_body_bytes = 4096;
    server_ = std::make_unique<RegistryServer>(options);
    ASSERT_TRUE(server_->Start().ok());
    key_ = CreateKey(server_->store(), "acme");
    other_key_ = CreateKey(server_->store(), "globex");
  }

  http::ClientResponse Call(http::Method method, const std::string& path, const std::string& body,
                            const std::string& credential) {
    http::Headers headers;
    if (!credential.empty()) headers.emplace_back("Authorization", "Bearer " + credential);
    headers.emplace_back("Content-Type", "application/json");
    auto response = http::FetchBlocking(
        method, fmt::format("http://127.0.0.1:{}{}", server_->port(), path), body, headers);
    EXPECT_TRUE(response.ok()) << response.status();
    return response.ok() ? *response : http::ClientResponse{};
  }

  std::unique_ptr<RegistryServer> server_;
  std::string key_;
  std::string other_key_;
};

constexpr std::string_view kRegisterBody =
    R"({"name":"east","profile":"byoc_epp","stack":{"router":"epp","runtime":"vllm"},)"
    R"("fingerprint":"uid-1","kubernetes_version":"v1.30.2","chart_version":"0.3.0"})";

TEST_F(RegistryHttpTest, RegistersHeartbeatsListsAndDeletesOverHttp) {
  auto created = Call(http::Method::post, "/v1/clusters", std::string(kRegisterBody), key_);
  ASSERT_EQ(created.status, 201) << created.body;
  auto object = boost::json::parse(created.body).as_object();
  const std::string id(object["id"].as_string());
  const std::string token(object["cluster_token"].as_string());
  EXPECT_EQ(object["heartbeat_interval_s"].to_number<double>(), 15);
  EXPECT_THAT(created.body, HasSubstr("\"heartbeat_interval_s\":15,"));  // as the heartbeat says
  auto again = Call(http::Method::post, "/v1/clusters", std::string(kRegisterBody), key_);
  EXPECT_EQ(again.status, 200);
  const std::string new_token(
      boost::json::parse(again.body).as_object()["cluster_token"].as_string());

  auto beat = Call(http::Method::post, "/v1/clusters/" + id + "/heartbeat",
                   R"({"status":{"gpus":[{"product":"NVIDIA-L4","count":2}]}})", new_token);
  EXPECT_EQ(beat.status, 200) << beat.body;
  EXPECT_THAT(beat.body, HasSubstr("\"heartbeat_interval_s\":15"));
  EXPECT_EQ(Call(http::Method::post, "/v1/clusters/" + id + "/heartbeat", "{}", token).status, 401);

  auto listed = Call(http::Method::get, "/v1/clusters?profile=byoc_epp&status=healthy", "", key_);
  ASSERT_EQ(listed.status, 200);
  EXPECT_THAT(listed.body, HasSubstr(id));
  EXPECT_THAT(listed.body, HasSubstr("NVIDIA-L4"));
  EXPECT_THAT(Call(http::Method::get, "/v1/clusters?profile=byoc_dynamo", "", key_).body,
              ::testing::Not(HasSubstr(id)));
  EXPECT_EQ(Call(http::Method::get, "/v1/clusters/" + id, "", key_).status, 200);
  EXPECT_EQ(Call(http::Method::get, "/v1/clusters/" + id, "", other_key_).status, 404);
  EXPECT_EQ(Call(http::Method::delete_, "/v1/clusters/" + id, "", other_key_).status, 404);
  EXPECT_EQ(Call(http::Method::delete_, "/v1/clusters/" + id, "", key_).status, 204);
  EXPECT_EQ(Call(http::Method::get, "/v1/clusters/" + id, "", key_).status, 404);
}

TEST_F(RegistryHttpTest, AnswersErrorsWithTheJsonErrorShape) {
  auto no_key = Call(http::Method::get, "/v1/clusters", "", "");
  EXPECT_EQ(no_key.status, 401);
  auto error = boost::json::parse(no_key.body).as_object()["error"].as_object();
  EXPECT_EQ(error["code"].as_string(), "unauthenticated");
  EXPECT_TRUE(error["message"].is_string());

  auto bad = Call(http::Method::post, "/v1/clusters",
                  R"({"name":"east","profile":"nope","stack":{},"fingerprint":"u"})", key_);
  EXPECT_EQ(bad.status, 400);
  EXPECT_THAT(bad.body, HasSubstr("'profile'"));
  EXPECT_THAT(bad.body, HasSubstr("invalid_argument"));

  ASSERT_EQ(Call(http::Method::post, "/v1/clusters", std::string(kRegisterBody), key_).status, 201);
  std::string clash(kRegisterBody);
  clash.replace(clash.find("uid-1"), 5, "uid-2");
  auto conflict = Call(http::Method::post, "/v1/clusters", clash, key_);
  EXPECT_EQ(conflict.status, 409);
  EXPECT_THAT(conflict.body, HasSubstr("conflict"));

  auto big = Call(http::Method::post, "/v1/clusters", std::string(8192, ' '), key_);
  EXPECT_EQ(big.status, 413);
  auto bad_query = Call(http::Method::get, "/v1/clusters?status=sleepy", "", key_);
  EXPECT_EQ(bad_query.status, 400);
  EXPECT_THAT(bad_query.body, HasSubstr("'status'"));
  auto registered =
      boost::json::parse(
          Call(http::Method::post, "/v1/clusters", std::string(kRegisterBody), key_).body)
          .as_object();
  const std::string id(registered["id"].as_string());
  const std::string token(registered["cluster_token"].as_string());
  auto bad_beat = Call(http::Method::post, "/v1/clusters/" + id + "/heartbeat",
                       R"({"status":{"gpus":[{"product":"NVIDIA-L4","count":-1}]}})", token);
  EXPECT_EQ(bad_beat.status, 400);
  EXPECT_THAT(bad_beat.body, HasSubstr("'status.gpus[0].count'"));
  EXPECT_EQ(Call(http::Method::post, "/v1/clusters/byc_00/reboot", "{}", key_).status, 404);
}

// Every error, the HTTP server's own included, has a string `code` (the OpenAPI Error schema).
TEST_F(RegistryHttpTest, ErrorsOfTheServerItselfAndOfWrongMethodsHaveCodes) {
  auto code_of = [](const http::ClientResponse& response) {
    return std::string(
        boost::json::parse(response.body).as_object()["error"].as_object()["code"].as_string());
  };
  auto put = Call(http::Method::put, "/v1/clusters", "{}", key_);  // the router's 405
  EXPECT_EQ(put.status, 405);
  EXPECT_EQ(code_of(put), "method_not_allowed");
  auto big = Call(http::Method::post, "/v1/clusters", std::string(8192, ' '), key_);
  EXPECT_EQ(code_of(big), "payload_too_large");
  auto no_route = Call(http::Method::get, "/v2/clusters", "", key_);
  EXPECT_EQ(no_route.status, 404);
  EXPECT_EQ(code_of(no_route), "not_found");

  auto registered =
      boost::json::parse(
          Call(http::Method::post, "/v1/clusters", std::string(kRegisterBody), key_).body)
          .as_object();
  const std::string id(registered["id"].as_string());
  // A heartbeat is a POST; a POST to a cluster is neither a read nor a delete.
  auto get_beat = Call(http::Method::get, "/v1/clusters/" + id + "/heartbeat", "", key_);
  EXPECT_EQ(get_beat.status, 405) << get_beat.body;
  EXPECT_EQ(get_beat.Header("Allow"), "POST");
  EXPECT_EQ(code_of(get_beat), "method_not_allowed");
  auto post_cluster = Call(http::Method::post, "/v1/clusters/" + id, "{}", key_);
  EXPECT_EQ(post_cluster.status, 405);
  EXPECT_EQ(post_cluster.Header("Allow"), "GET, DELETE");
  // No id at all is a path the API does not have, not a cluster named ''.
  auto trailing = Call(http::Method::get, "/v1/clusters/", "", key_);
  EXPECT_EQ(trailing.status, 404);
  EXPECT_THAT(trailing.body, HasSubstr("no route for GET /v1/clusters/"));
}

TEST_F(RegistryHttpTest, TheStackIsAClosedSetOfTagsWhenRegisteringAndFiltering) {
  std::string misspelt(kRegisterBody);
  misspelt.replace(misspelt.find("\"runtime\""), 9, "\"runtme\"");
  auto refused = Call(http::Method::post, "/v1/clusters", misspelt, key_);
  EXPECT_EQ(refused.status, 400);
  EXPECT_THAT(refused.body, HasSubstr("field 'stack.runtme': is not a stack tag"));
  auto filter = Call(http::Method::get, "/v1/clusters?stack=runtme:vllm", "", key_);
  EXPECT_EQ(filter.status, 400);
  EXPECT_THAT(filter.body, HasSubstr("'runtme' is not a stack tag"));
  EXPECT_EQ(Call(http::Method::get, "/v1/clusters?stack=runtime:vllm", "", key_).status, 200);
  EXPECT_EQ(Call(http::Method::get, "/v1/clusters?stack=vllm", "", key_).status, 200);
}

http::ClientResponse GetPage(int port, const std::string& authorization) {
  http::Headers headers;
  if (!authorization.empty()) headers.emplace_back("Authorization", authorization);
  auto response = http::FetchBlocking(http::Method::get, fmt::format("http://127.0.0.1:{}/", port),
                                      "", headers);
  EXPECT_TRUE(response.ok()) << response.status();
  return response.ok() ? *response : http::ClientResponse{};
}

std::string BasicAuth(const std::string& user, const std::string& password) {
  return "Basic " + Base64Encode(user + ":" + password);
}

TEST_F(RegistryHttpTest, ThePageAsksForTheApiKeyAndShowsOnlyThatOrgsClusters) {
  auto created = Call(http::Method::post, "/v1/clusters", std::string(kRegisterBody), key_);
  ASSERT_EQ(created.status, 201);
  const std::string id(boost::json::parse(created.body).as_object()["id"].as_string());

  // No credential: a browser's first request. Challenged, not counted as an auth failure.
  auto anonymous = GetPage(server_->port(), "");
  EXPECT_EQ(anonymous.status, 401);
  EXPECT_EQ(anonymous.Header("WWW-Authenticate"),
            R"(Basic realm="Zumik registry", charset="UTF-8")");
  EXPECT_THAT(std::string(anonymous.Header("Content-Type")), HasSubstr("text/html"));
  EXPECT_THAT(anonymous.body, HasSubstr("API key"));
  EXPECT_THAT(anonymous.body, ::testing::Not(HasSubstr(id)));
  EXPECT_THAT(anonymous.body, ::testing::Not(HasSubstr(">east<")));
  EXPECT_THAT(
      Call(http::Method::get, "/metrics", "", "").body,
      ::testing::Not(HasSubstr("zumik_registry_auth_failures_total{credential=\"api_key\"}")));

  // A browser's sign-in (any user, the key as password) and a Bearer header both work.
  auto basic = GetPage(server_->port(), BasicAuth("alice", key_));
  EXPECT_EQ(basic.status, 200) << basic.body;
  EXPECT_THAT(std::string(basic.Header("Content-Type")), HasSubstr("text/html"));
  EXPECT_EQ(basic.Header("Cache-Control"), "no-store");
  EXPECT_THAT(basic.body, HasSubstr(">east<"));
  EXPECT_THAT(basic.body, HasSubstr(id));
  auto bearer = GetPage(server_->port(), "Bearer " + key_);
  EXPECT_EQ(bearer.status, 200);
  EXPECT_THAT(bearer.body, HasSubstr(id));

  // Another org's key sees its own (empty) list, not acme's.
  auto other = GetPage(server_->port(), BasicAuth("bob", other_key_));
  EXPECT_EQ(other.status, 200);
  EXPECT_THAT(other.body, HasSubstr("<b id=\"org\">globex</b>: 0 cluster(s)"));
  EXPECT_THAT(other.body, ::testing::Not(HasSubstr(id)));
  EXPECT_THAT(other.body, ::testing::Not(HasSubstr(">east<")));

  // Wrong, malformed and revoked keys are challenged again and counted.
  EXPECT_EQ(GetPage(server_->port(), BasicAuth("alice", key_ + "0")).status, 401);
  EXPECT_EQ(GetPage(server_->port(), "Basic %%%").status, 401);
  ASSERT_TRUE(server_->store().RevokeApiKey("globex", ApiKeyLookupPrefix(other_key_), 2).ok());
  auto revoked = GetPage(server_->port(), BasicAuth("bob", other_key_));
  EXPECT_EQ(revoked.status, 401);
  EXPECT_FALSE(revoked.Header("WWW-Authenticate").empty());
  EXPECT_THAT(Call(http::Method::get, "/metrics", "", "").body,
              HasSubstr("zumik_registry_auth_failures_total{credential=\"api_key\"} 3"));
}

TEST_F(RegistryHttpTest, HealthAndMetricsStayOpenAndNameNoCluster) {
  auto created = Call(http::Method::post, "/v1/clusters", std::string(kRegisterBody), key_);
  ASSERT_EQ(created.status, 201);
  const std::string id(boost::json::parse(created.body).as_object()["id"].as_string());
  auto health = Call(http::Method::get, "/healthz", "", "");
  EXPECT_EQ(health.status, 200);
  EXPECT_THAT(health.body, HasSubstr("\"status\":\"ok\""));
  EXPECT_THAT(health.body, ::testing::Not(HasSubstr(id)));
  EXPECT_THAT(health.body, ::testing::Not(HasSubstr("east")));
  EXPECT_THAT(health.body, ::testing::Not(HasSubstr("acme")));
  (void)Call(http::Method::get, "/v1/clusters", "", "zk_live_0000000000000000bad");
  auto metrics = Call(http::Method::get, "/metrics", "", "");
  EXPECT_EQ(metrics.status, 200);
  EXPECT_THAT(metrics.body,
              HasSubstr("zumik_registry_clusters{profile=\"byoc_epp\",status=\"pending\"} 1"));
  EXPECT_THAT(metrics.body,
              HasSubstr("zumik_registry_auth_failures_total{credential=\"api_key\"} 1"));
  EXPECT_THAT(metrics.body, HasSubstr("zumik_registry_request_duration_seconds_bucket"));
  EXPECT_THAT(metrics.body, ::testing::Not(HasSubstr(id)));
  EXPECT_THAT(metrics.body, ::testing::Not(HasSubstr("east")));
  EXPECT_THAT(metrics.body, ::testing::Not(HasSubstr("acme")));
}

class RegistryRateLimitTest : public RegistryHttpTest {
 protected:
  void SetUp() override {
    RegistryServerOptions options;
    options.db = TempDb();
    // A bucket that does not refill within the test: exactly `burst` requests pass.
    options.service.api_rate_per_s = 0.001;
    options.service.api_burst = 3;
    server_ = std::make_unique<RegistryServer>(options);
    ASSERT_TRUE(server_->Start().ok());
    key_ = CreateKey(server_->store(), "acme");
    other_key_ = CreateKey(server_->store(), "globex");
  }
};

TEST_F(RegistryRateLimitTest, AnswersTooManyRequestsPerKeyOnTheApiAndThePage) {
  EXPECT_EQ(Call(http::Method::get, "/v1/clusters", "", key_).status, 200);
  EXPECT_EQ(GetPage(server_->port(), BasicAuth("alice", key_)).status, 200);
  EXPECT_EQ(Call(http::Method::get, "/v1/clusters", "", key_).status, 200);
  // The page and the API share the key's bucket.
  auto limited = Call(http::Method::get, "/v1/clusters", "", key_);
  EXPECT_EQ(limited.status, 429);
  EXPECT_EQ(limited.Header("Retry-After"), "1");
  EXPECT_THAT(limited.body, HasSubstr("rate_limited"));
  auto page = GetPage(server_->port(), BasicAuth("alice", key_));
  EXPECT_EQ(page.status, 429);
  EXPECT_EQ(page.Header("Retry-After"), "1");
  EXPECT_THAT(std::string(page.Header("Content-Type")), HasSubstr("text/html"));
  // Per key: another org's key is untouched.
  EXPECT_EQ(Call(http::Method::get, "/v1/clusters", "", other_key_).status, 200);
  EXPECT_EQ(GetPage(server_->port(), "Bearer " + other_key_).status, 200);
  EXPECT_THAT(Call(http::Method::get, "/metrics", "", "").body,
              HasSubstr("zumik_registry_rate_limited_total{credential=\"api_key\"} 2"));
}

}  // namespace
}  // namespace zumik::registry
