// Fleet: routing callback, scrape staleness, determinism, heterogeneous replicas, closed loop.
#include "sim/fleet.h"

#include <map>

#include "core/rng.h"
#include "gtest/gtest.h"
#include "sim/engine_test_util.h"

namespace zumik::sim {
namespace {

using testing::Concat;
using testing::Tokens;

Profile Llama() { return *LoadProfile("h100-llama-3.1-8b"); }

FleetRequest Request(RequestId id, Time arrival, std::shared_ptr<const Prompt> prompt,
                     int max_tokens, int64_t tag = 0) {
  FleetRequest r;
  r.id = id;
  r.arrival = arrival;
  r.prompt = std::move(prompt);
  r.max_tokens = max_tokens;
  r.ignore_eos = true;
  r.tag = tag;
  return r;
}

Time Ms(int64_t ms) { return std::chrono::milliseconds(ms); }

TEST(Fleet, HonoursTheRoutingCallback) {
  Fleet fleet({Llama(), Llama(), Llama()});
  fleet.set_router([](const FleetRequest& r, std::span<const ReplicaView> replicas, Time) {
    EXPECT_EQ(replicas.size(), 3u);
    return static_cast<int>(r.tag);
  });
  auto prompt = MakePrompt(Tokens(100, 1));
  for (int i = 0; i < 9; ++i) fleet.Submit(Request(i, Ms(int64_t{10} * i), prompt, 5, (i * 2) % 3));
  fleet.Run();
  ASSERT_EQ(fleet.records().size(), 9u);
  for (const RequestRecord& r : fleet.records()) {
    EXPECT_EQ(r.replica, r.tag);
    EXPECT_FALSE(r.rejected);
    EXPECT_EQ(r.output_tokens, 5);
  }
  for (const ReplicaStats& s : fleet.Stats()) EXPECT_EQ(s.routed, 3);
}

TEST(Fleet, ReportsEachFirstTokenAtItsStepEndBeforeCompletion) {
  Fleet fleet({Llama(), Llama()});
  std::map<RequestId, Time> first;
  fleet.set_on_first_token([&](const FirstTokenEvent& e, int replica, Time at) {
    EXPECT_EQ(replica, static_cast<int>(e.id % 2));
    EXPECT_EQ(at, fleet.now());
    EXPECT_FALSE(first.contains(e.id));
    first[e.id] = at;
  });
  fleet.set_on_complete([&](const RequestRecord& r, Fleet&) {
    ASSERT_TRUE(first.contains(r.id));
    EXPECT_EQ(first[r.id], r.first_token);
  });
  auto prompt = MakePrompt(Tokens(500, 2));
  for (int i = 0; i < 4; ++i) fleet.Submit(Request(i, Ms(int64_t{5} * i), prompt, 8));
  fleet.Run();
  EXPECT_EQ(first.size(), 4u);
  EXPECT_EQ(fleet.records().size(), 4u);
}

TEST(Fleet, RouterSeesViewsOnlyAsOfTheLastScrape) {
  FleetOptions options;
  options.scrape_interval = std::chrono::seconds(1);
  Fleet fleet({Llama(), Llama()}, options);
  std::map<RequestId, ReplicaView> seen;
  fleet.set_router([&](const FleetRequest& r, std::span<const ReplicaView> replicas, Time) {
    seen[r.id] = replicas[0];
    return 0;
  });
  auto prompt = MakePrompt(Tokens(1000, 1));
  fleet.Submit(Request(1, Ms(500), prompt, 400));  // runs from 0.51 s for ~3 s
  fleet.Submit(Request(2, Ms(900), MakePrompt(Tokens(1000, 50000)), 400));
  fleet.Submit(Request(3, Ms(1200), MakePrompt(Tokens(1000, 90000)), 400));
  fleet.Run();
  // Request 2 arrives while request 1 runs, but the last scrape (t=0) showed an idle replica.
  EXPECT_EQ(seen[2].scraped_at, Time{0});
  EXPECT_EQ(seen[2].num_running, 0);
  // Request 3 arrives after the scrape at t=1 s, which saw both running.
  EXPECT_EQ(seen[3].scraped_at, Ms(1000));
  EXPECT_EQ(seen[3].num_running, 2);
  EXPECT_GT(seen[3].kv_usage, 0);
  EXPECT_EQ(seen[3].prefix_cache_queries, 2000);
}

TEST(Fleet, ZeroScrapeIntervalGivesFreshViews) {
  FleetOptions options;
  options.scrape_interval = Duration{0};
  Fleet fleet({Llama()}, options);
  std::map<RequestId, ReplicaView> seen;
  fleet.set_router([&](const FleetRequest& r, std::span<const ReplicaView> replicas, Time now) {
    EXPECT_EQ(replicas[0].scraped_at, now);
    seen[r.id] = replicas[0];
    return 0;
  });
  fleet.Submit(Request(1, Ms(0), MakePrompt(Tokens(1000, 1)), 400));
  fleet.Submit(Request(2, Ms(300), MakePrompt(Tokens(1000, 50000)), 10));
  fleet.Run();
  EXPECT_EQ(seen[2].num_running, 1);
}

std::vector<RequestRecord> RunWorkload(uint64_t seed) {
  Fleet fleet({Llama(), *LoadProfile("h100x2-qwen3-32b-tp2"), Llama()});
  Rng rng(seed);
  std::vector<std::shared_ptr<const Prompt>> prompts;
  prompts.reserve(12);
  const auto system = Tokens(2000, 7);
  for (int i = 0; i < 12; ++i) {
    prompts.push_back(MakePrompt(Concat(system, Tokens(300, 100000 + i * 1000))));
  }
  fleet.set_router([&rng](const FleetRequest&, std::span<const ReplicaView> replicas, Time) {
    return static_cast<int>(rng.UniformInt(0, static_cast<int64_t>(replicas.size()) - 1));
  });
  double t = 0;
  for (RequestId id = 0; id < 200; ++id) {
    t += rng.Exponential(0.05);
    FleetRequest r = Request(id, FromSeconds(t), prompts[id % prompts.size()], 50);
    r.ignore_eos = false;
    r.max_tokens = 300;
    r.seed = id % 5;
    fleet.Submit(std::move(r));
  }
  fleet.Run();
  return fleet.TakeRecords();
}

void ExpectSameRecords(const std::vector<RequestRecord>& a, const std::vector<RequestRecord>& b) {
  ASSERT_EQ(a.size(), b.size());
  for (size_t i = 0; i < a.size(); ++i) {
    EXPECT_EQ(a[i].id, b[i].id);
    EXPECT_EQ(a[i].replica, b[i].replica);
    EXPECT_EQ(a[i].finish_reason, b[i].finish_reason);
    EXPECT_EQ(a[i].arrival, b[i].arrival);
    EXPECT_EQ(a[i].first_token, b[i].first_token);
    EXPECT_EQ(a[i].finished, b[i].finished);
    EXPECT_EQ(a[i].prompt_tokens, b[i].prompt_tokens);
    EXPECT_EQ(a[i].cached_tokens, b[i].cached_tokens);
    EXPECT_EQ(a[i].output_tokens, b[i].output_tokens);
    EXPECT_EQ(a[i].preemptions, b[i].preemptions);
    EXPECT_EQ(a[i].itl_s, b[i].itl_s);
  }
}

TEST(Fleet, SameSeedAndInputsGiveIdenticalRecords) {
  const auto first = RunWorkload(3);
  const auto second = RunWorkload(3);
  ASSERT_EQ(first.size(), 200u);
  ExpectSameRecords(first, second);
  const auto other = RunWorkload(4);
  bool differs = false;
  for (size_t i = 0; i < other.size() && !differs; ++i) {
    differs = other[i].replica != first[i].replica || other[i].finished != first[i].finished;
  }
  EXPECT_TRUE(differs);
  // Every replica served something, prefixes were reused, and stops were natural or capped.
  std::map<int, int> per_replica;
  int64_t cached = 0;
  for (const RequestRecord& r : first) {
    ++per_replica[r.replica];
    cached += r.cached_tokens;
    EXPECT_TRUE(r.finish_reason == FinishReason::kStop || r.output_tokens == 300);
  }
  EXPECT_EQ(per_replica.size(), 3u);
  EXPECT_GT(cached, 0);
}

TEST(Fleet, HeterogeneousReplicasFollowTheirOwnProfiles) {
  Fleet fleet({Llama(), *LoadProfile("h100x2-qwen3-32b-tp2")});
  fleet.set_router([](const FleetRequest& r, std::span<const ReplicaView> replicas, Time) {
    EXPECT_EQ(replicas[1].profile, "h100x2-qwen3-32b-tp2");
    return static_cast<int>(r.id);
  });
  fleet.Submit(Request(0, Ms(0), MakePrompt(Tokens(8192, 1)), 2));
  fleet.Submit(Request(1, Ms(0), MakePrompt(Tokens(8192, 1)), 2));
  fleet.Run();
  std::map<RequestId, double> ttft;
  for (const RequestRecord& r : fleet.records()) ttft[r.id] = ToSeconds(r.ttft());
  EXPECT_NEAR(ttft[0], 0.235, 0.01);  // 8B: 225 ms step + 10 ms API
  EXPECT_NEAR(ttft[1], 0.509, 0.01);  // 32B TP2: 499 ms step + 10 ms API
}

TEST(Fleet, ClosedLoopClientsSubmitOnCompletion) {
  Fleet fleet({Llama(), Llama()});
  auto prompt = MakePrompt(Tokens(500, 1));
  int in_flight = 0;
  int max_in_flight = 0;
  RequestId next_id = 0;
  const int total = 40;
  auto submit = [&](Fleet& f) {
    ++in_flight;
    max_in_flight = std::max(max_in_flight, in_flight);
    f.Submit(Request(next_id, f.now(), prompt, 20));
    ++next_id;
  };
  fleet.set_on_complete([&](const RequestRecord&, Fleet& f) {
    --in_flight;
    if (next_id < total) submit(f);
  });
  for (int i = 0; i < 4; ++i) submit(fleet);  // concurrency 4
  fleet.Run();
  EXPECT_EQ(fleet.records().size(), static_cast<size_t>(total));
  EXPECT_EQ(max_in_flight, 4);
  EXPECT_EQ(in_flight, 0);
}

TEST(Fleet, RejectsBadRoutesAndRequestsAReplicaRefuses) {
  Fleet fleet({Llama()});
  fleet.set_router(
      [](const FleetRequest& r, std::span<const ReplicaView>, Time) { return r.id == 0 ? 5 : 0; });
  int completions = 0;
  fleet.set_on_complete([&](const RequestRecord&, Fleet&) { ++completions; });
  fleet.Submit(Request(0, Ms(0), MakePrompt(Tokens(10, 1)), 2));
  fleet.Submit(Request(1, Ms(0), MakePrompt(Tokens(131072, 1)), 2));  // over max_model_len
  fleet.Submit(Request(2, Ms(0), MakePrompt(Tokens(10, 1)), 2));
  fleet.Run();
  ASSERT_EQ(fleet.records().size(), 3u);
  EXPECT_EQ(completions, 3);
  int rejected = 0;
  for (const RequestRecord& r : fleet.records()) rejected += r.rejected;
  EXPECT_EQ(rejected, 2);
}

TEST(Fleet, AbortCompletesAHeldRequestAndFreesItsBlocks) {
  Fleet fleet({Llama()});
  std::vector<FinishReason> reasons;
  fleet.set_on_complete(
      [&](const RequestRecord& r, Fleet&) { reasons.push_back(r.finish_reason); });
  fleet.Submit(Request(7, Ms(0), MakePrompt(Tokens(1000, 1)), 1000));
  fleet.Run(Ms(200));
  EXPECT_GT(fleet.engine(0).kv().pool().num_used_blocks(), 0);
  EXPECT_TRUE(fleet.Abort(7));
  EXPECT_FALSE(fleet.Abort(7));
  fleet.Run();
  ASSERT_EQ(reasons.size(), 1u);
  EXPECT_EQ(reasons[0], FinishReason::kAbort);
  EXPECT_EQ(fleet.records()[0].finished, Ms(200));
  EXPECT_GT(fleet.records()[0].output_tokens, 0);
  EXPECT_EQ(fleet.engine(0).kv().pool().num_used_blocks(), 0);
}

TEST(Fleet, RunStopsAtTheGivenTime) {
  Fleet fleet({Llama()});
  fleet.Submit(Request(0, Ms(0), MakePrompt(Tokens(100, 1)), 1000));
  fleet.Run(Ms(100));
  EXPECT_EQ(fleet.now(), Ms(100));
  EXPECT_TRUE(fleet.records().empty());
  EXPECT_FALSE(fleet.Idle());
  fleet.Run();
  EXPECT_EQ(fleet.records().size(), 1u);
  EXPECT_GT(fleet.num_steps(), 999);
}

}  // namespace
}  // namespace zumik::sim
