// The Store contract, as a value-parameterised GoogleTest suite that every backend runs:
// the SQLite unit test instantiates it on temp files, tests/registry on a PostgreSQL server.
#pragma once

#include <gmock/gmock.h>
#include <gtest/gtest.h>

#include <functional>
#include <memory>
#include <string>

#include "registry/store.h"

namespace zumik::registry::testing {

struct StoreBackend {
  std::string name;
  // A URL of a new, empty database for one test.
  std::function<std::string()> fresh_url;
};

inline std::string PrintBackend(const ::testing::TestParamInfo<StoreBackend>& info) {
  return info.param.name;
}

class StoreContract : public ::testing::TestWithParam<StoreBackend> {
 protected:
  void SetUp() override {
    url_ = GetParam().fresh_url();
    auto store = OpenStore(url_);
    ASSERT_TRUE(store.ok()) << store.status();
    store_ = *std::move(store);
  }

  static ClusterRecord Cluster(std::string id, std::string org, std::string name,
                               std::string fingerprint) {
    ClusterRecord record;
    record.id = std::move(id);
    record.org = std::move(org);
    record.name = std::move(name);
    record.profile = Profile::kByocEpp;
    record.stack = Stack{"epp", "vllm", "kserve", "aibrix", "lmcache"};
    record.fingerprint = std::move(fingerprint);
    record.kubernetes_version = "v1.30.2";
    record.chart_version = "0.3.0";
    record.token_sha256 = "aa";
    record.registered_unix = 1700000000.5;
    return record;
  }

  std::string url_;
  std::unique_ptr<Store> store_;
};

TEST_P(StoreContract, MigratesToTheLatestSchemaOnceAndReopensWithoutChange) {
  auto version = store_->SchemaVersion();
  ASSERT_TRUE(version.ok()) << version.status();
  EXPECT_EQ(*version, 1);
  ASSERT_TRUE(store_->UpsertCluster(Cluster("byc_01", "acme", "east", "uid-1")).ok());
  store_.reset();
  auto reopened = OpenStore(url_);
  ASSERT_TRUE(reopened.ok()) << reopened.status();
  EXPECT_EQ(*(*reopened)->SchemaVersion(), 1);
  auto clusters = (*reopened)->LoadClusters();
  ASSERT_TRUE(clusters.ok());
  ASSERT_EQ(clusters->size(), 1u);
  EXPECT_EQ((*clusters)[0].name, "east");
}

TEST_P(StoreContract, FindsApiKeysByLookupPrefixAndRevokesOnlyWithinTheOrg) {
  ApiKeyRecord key{"zk_live_0123abcd", "acme", "hash-1", 1700000000, std::nullopt};
  ASSERT_TRUE(store_->InsertApiKey(key).ok());
  ASSERT_TRUE(store_->InsertApiKey({"zk_live_ffff0000", "other", "hash-2", 1700000001, {}}).ok());
  auto found = store_->FindApiKeys("zk_live_0123abcd");
  ASSERT_TRUE(found.ok());
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].org, "acme");
  EXPECT_EQ((*found)[0].sha256_hex, "hash-1");
  EXPECT_FALSE((*found)[0].revoked_unix.has_value());

  EXPECT_EQ(store_->RevokeApiKey("other", "zk_live_0123abcd", 1).code(),
            absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->RevokeApiKey("acme", "zk_live_0123abcd", 1700000100).ok());
  EXPECT_EQ(store_->RevokeApiKey("acme", "zk_live_0123abcd", 1).code(),
            absl::StatusCode::kNotFound);
  found = store_->FindApiKeys("zk_live_0123abcd");
  ASSERT_TRUE(found.ok());
  ASSERT_TRUE((*found)[0].revoked_unix.has_value());
  EXPECT_DOUBLE_EQ(*(*found)[0].revoked_unix, 1700000100);
  auto listed = store_->ListApiKeys("acme");
  ASSERT_TRUE(listed.ok());
  EXPECT_EQ(listed->size(), 1u);
}

TEST_P(StoreContract, UpsertIsIdempotentOnOrgAndFingerprint) {
  auto first = store_->UpsertCluster(Cluster("byc_01", "acme", "east", "uid-1"));
  ASSERT_TRUE(first.ok()) << first.status();
  EXPECT_TRUE(first->created);
  ClusterRecord again = Cluster("byc_02", "acme", "east-renamed", "uid-1");
  again.token_sha256 = "bb";
  auto second = store_->UpsertCluster(again);
  ASSERT_TRUE(second.ok()) << second.status();
  EXPECT_FALSE(second->created);
  EXPECT_EQ(second->record.id, "byc_01");
  EXPECT_EQ(second->record.name, "east-renamed");
  EXPECT_EQ(second->record.token_sha256, "bb");
  EXPECT_DOUBLE_EQ(second->record.registered_unix, 1700000000.5);
}

TEST_P(StoreContract, RejectsANameHeldByAnotherFingerprintButNotInAnotherOrg) {
  ASSERT_TRUE(store_->UpsertCluster(Cluster("byc_01", "acme", "east", "uid-1")).ok());
  auto taken = store_->UpsertCluster(Cluster("byc_02", "acme", "east", "uid-2"));
  EXPECT_EQ(taken.status().code(), absl::StatusCode::kAlreadyExists);
  EXPECT_THAT(std::string(taken.status().message()), ::testing::HasSubstr("east"));
  auto other_org = store_->UpsertCluster(Cluster("byc_03", "globex", "east", "uid-1"));
  ASSERT_TRUE(other_org.ok()) << other_org.status();
  EXPECT_TRUE(other_org->created);
}

TEST_P(StoreContract, GetAndDeleteAreScopedToTheOrg) {
  ASSERT_TRUE(store_->UpsertCluster(Cluster("byc_01", "acme", "east", "uid-1")).ok());
  auto mine = store_->GetCluster("acme", "byc_01");
  ASSERT_TRUE(mine.ok());
  ASSERT_TRUE(mine->has_value());
  EXPECT_EQ((*mine)->stack.kv_layer, "lmcache");
  auto theirs = store_->GetCluster("globex", "byc_01");
  ASSERT_TRUE(theirs.ok());
  EXPECT_FALSE(theirs->has_value());
  EXPECT_EQ(store_->DeleteCluster("globex", "byc_01").code(), absl::StatusCode::kNotFound);
  ASSERT_TRUE(store_->DeleteCluster("acme", "byc_01").ok());
  EXPECT_EQ(store_->DeleteCluster("acme", "byc_01").code(), absl::StatusCode::kNotFound);
}

TEST_P(StoreContract, WritesHeartbeatBatchesAndSkipsDeletedClusters) {
  ASSERT_TRUE(store_->UpsertCluster(Cluster("byc_01", "acme", "east", "uid-1")).ok());
  ASSERT_TRUE(store_->UpsertCluster(Cluster("byc_02", "acme", "west", "uid-2")).ok());
  StatusSnapshot status;
  status.gpus = {{"NVIDIA-H100-80GB-HBM3", 8}};
  status.nodes = 2;
  status.routes = {{"/v1/completions", "epp"}};
  std::vector<HeartbeatWrite> writes = {{"byc_01", 1700000010.25, StatusToJson(status)},
                                        {"byc_02", 1700000011.0, std::nullopt},
                                        {"byc_gone", 1700000012.0, std::nullopt}};
  ASSERT_TRUE(store_->WriteHeartbeats(writes).ok());
  auto clusters = store_->LoadClusters();
  ASSERT_TRUE(clusters.ok());
  ASSERT_EQ(clusters->size(), 2u);
  const ClusterRecord& east = (*clusters)[0];
  EXPECT_EQ(east.name, "east");
  ASSERT_TRUE(east.last_heartbeat_unix.has_value());
  EXPECT_NEAR(*east.last_heartbeat_unix, 1700000010.25, 1e-3);
  ASSERT_TRUE(east.status.has_value());
  EXPECT_EQ(*east.status, status);
  const ClusterRecord& west = (*clusters)[1];
  EXPECT_NEAR(west.last_heartbeat_unix.value_or(0), 1700000011.0, 1e-3);
  EXPECT_FALSE(west.status.has_value());
}

TEST_P(StoreContract, StoresHostileTextVerbatimBecauseEveryValueIsBound) {
  const std::string hostile = "x'); DROP TABLE clusters; --";
  ApiKeyRecord key{"zk_live_" + std::string("'\"?$1"), hostile, "h", 1, std::nullopt};
  ASSERT_TRUE(store_->InsertApiKey(key).ok());
  auto found = store_->FindApiKeys(key.lookup_prefix);
  ASSERT_TRUE(found.ok()) << found.status();
  ASSERT_EQ(found->size(), 1u);
  EXPECT_EQ((*found)[0].org, hostile);
  ASSERT_TRUE(store_->UpsertCluster(Cluster("byc_01", hostile, "east", "uid-1")).ok());
  auto clusters = store_->LoadClusters();
  ASSERT_TRUE(clusters.ok());
  ASSERT_EQ(clusters->size(), 1u);
  EXPECT_EQ((*clusters)[0].org, hostile);
}

}  // namespace zumik::registry::testing
