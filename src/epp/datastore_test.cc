// Datastore: endpoint sets, stable ids, immutable snapshots, endpoint list parsing.
#include "epp/datastore.h"

#include <gtest/gtest.h>

namespace zumik::epp {
namespace {

std::vector<EndpointSpec> Specs(std::initializer_list<const char*> addresses) {
  std::vector<EndpointSpec> out;
  for (const char* a : addresses) {
    EndpointSpec s;
    s.address = a;
    out.push_back(s);
  }
  return out;
}

TEST(Datastore, KeepsIdsAndMetricsOfEndpointsThatStay) {
  Datastore ds;
  ds.SetEndpoints(Specs({"10.0.0.2:8000", "10.0.0.1:8000"}));
  auto first = ds.Current();
  ASSERT_EQ(first->endpoints.size(), 2u);
  EXPECT_EQ(first->endpoints[0].address, "10.0.0.1:8000");  // sorted
  sched::EndpointMetrics m;
  m.valid = true;
  m.waiting_requests = 4;
  ds.UpdateMetrics("10.0.0.2:8000", m);
  sched::EndpointId id2 = first->endpoints[1].id;

  ds.SetEndpoints(Specs({"10.0.0.2:8000", "10.0.0.3:8000"}));
  auto second = ds.Current();
  int i2 = second->Find("10.0.0.2:8000");
  ASSERT_GE(i2, 0);
  EXPECT_EQ(second->endpoints[i2].id, id2);
  EXPECT_EQ(second->endpoints[i2].metrics.waiting_requests, 4);
  // The new endpoint reuses the id freed by the one that left, and has no metrics yet.
  int i3 = second->Find("10.0.0.3:8000");
  ASSERT_GE(i3, 0);
  EXPECT_EQ(second->endpoints[i3].id, first->endpoints[0].id);
  EXPECT_FALSE(second->endpoints[i3].metrics.valid);
  EXPECT_EQ(second->Find("10.0.0.1:8000"), -1);
}

TEST(Datastore, SnapshotsAreImmutable) {
  Datastore ds;
  ds.SetEndpoints(Specs({"a:1"}));
  auto before = ds.Current();
  sched::EndpointMetrics m;
  m.valid = true;
  m.kv_cache_usage = 0.5;
  ds.UpdateMetrics("a:1", m);
  EXPECT_FALSE(before->endpoints[0].metrics.valid);
  EXPECT_TRUE(ds.Current()->endpoints[0].metrics.valid);
  EXPECT_GT(ds.Current()->version, before->version);
  ds.UpdateMetrics("gone:1", m);  // an endpoint that left: ignored
  EXPECT_EQ(ds.Current()->endpoints.size(), 1u);
}

TEST(Datastore, EngineComesFromPodLabel) {
  Datastore ds;
  auto specs = Specs({"a:1", "b:1"});
  specs[1].labels.emplace_back("llm-d.ai/engine-type", "sglang");
  ds.SetEndpoints(specs);
  auto snap = ds.Current();
  EXPECT_EQ(snap->engines[0], Engine::kVllm);
  EXPECT_EQ(snap->engines[1], Engine::kSglang);
}

TEST(ParseEndpointList, AcceptsCommasNewlinesCommentsAndIpv6) {
  auto specs = ParseEndpointList("127.0.0.1:8000, 127.0.0.1:8001\n# comment line\n[::1]:9000\n");
  ASSERT_TRUE(specs.ok()) << specs.status();
  ASSERT_EQ(specs->size(), 3u);
  EXPECT_EQ((*specs)[2].address, "[::1]:9000");
}

TEST(ParseEndpointList, RejectsBadEntries) {
  EXPECT_FALSE(ParseEndpointList("127.0.0.1").ok());
  EXPECT_FALSE(ParseEndpointList("127.0.0.1:0").ok());
  EXPECT_FALSE(ParseEndpointList("127.0.0.1:99999").ok());
  EXPECT_FALSE(ParseEndpointList("::1:8000").ok());
  EXPECT_FALSE(ParseEndpointList("host:80x").ok());
}

}  // namespace
}  // namespace zumik::epp
