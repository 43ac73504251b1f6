// Pick sequences pinned: a fixed pseudo-random workload (shared prefixes above and below the
// affinity threshold, unique tails, a churning prefix index, completions out of order) replayed
// through the built-in policies must give exactly the recorded picks. Optimisations of the pick
// path (hashing, index lookups and updates, scorer loops) must not move any decision; a digest
// change here means one did. A deliberate change of a built-in policy (builtin_policies.cc) or of
// a plugin's scoring moves its digest too: re-record it in the same change, saying why.
#include <gtest/gtest.h>

#include <cstdint>
#include <string>
#include <vector>

#include "core/rng.h"
#include "sched/prefix_index.h"
#include "sched/scheduler.h"

namespace zumik::sched {
namespace {

std::vector<Endpoint> Fleet(size_t n, Rng& rng) {
  std::vector<Endpoint> eps(n);
  for (size_t i = 0; i < n; ++i) {
    Endpoint& e = eps[i];
    e.id = static_cast<EndpointId>(i);
    e.address = "10.1.0." + std::to_string(i) + ":8000";
    e.name = "default/pod-" + std::to_string(i);
    e.metrics.valid = true;
    e.metrics.block_size = 16;
    e.metrics.num_gpu_blocks = 200 + 50 * static_cast<int64_t>(i % 4);  // a churning index
    e.metrics.waiting_requests = rng.UniformInt(0, 3);
    e.metrics.running_requests = rng.UniformInt(5, 30);
    e.metrics.kv_cache_usage = rng.Uniform(0.1, 0.9);
  }
  return eps;
}

std::string Text(Rng& rng, size_t bytes) {
  std::string s(bytes, ' ');
  for (char& c : s) c = static_cast<char>('a' + rng.UniformInt(0, 25));
  return s;
}

// FNV-1a over the pick sequence: primary, fallbacks, matched blocks.
struct Digest {
  uint64_t value = 1469598103934665603ULL;
  void Add(uint64_t v) {
    for (int i = 0; i < 8; ++i) {
      value ^= (v >> (8 * i)) & 0xff;
      value *= 1099511628211ULL;
    }
  }
};

uint64_t Replay(const std::string& policy, size_t picks) {
  Rng rng(2024);
  Rng workload(77);
  auto scheduler = Scheduler::FromPolicy(policy, rng);
  EXPECT_TRUE(scheduler.ok()) << scheduler.status();
  if (!scheduler.ok()) return 0;
  std::vector<Endpoint> fleet = Fleet(12, workload);
  std::vector<std::string> groups;
  groups.reserve(10);
  for (int g = 0; g < 10; ++g) {
    groups.push_back(Text(workload, static_cast<size_t>(workload.UniformInt(64, 8192))));
  }
  struct Pending {
    PickHandle handle;
    Time done;
  };
  std::vector<Pending> pending;
  Digest digest;
  Time now{0};
  for (size_t i = 0; i < picks; ++i) {
    now += std::chrono::microseconds(workload.UniformInt(100, 5000));
    // Finish requests whose time has come (not in pick order).
    for (size_t k = 0; k < pending.size();) {
      if (pending[k].done <= now) {
        (*scheduler)->OnFirstToken(pending[k].handle, pending[k].done);
        (*scheduler)->OnComplete(pending[k].handle, now);
        pending[k] = pending.back();
        pending.pop_back();
      } else {
        ++k;
      }
    }
    if (i % 97 == 0) {
      Endpoint& e = fleet[static_cast<size_t>(workload.UniformInt(0, 11))];
      e.metrics.waiting_requests = workload.UniformInt(0, 6);
      e.metrics.kv_cache_usage = workload.Uniform(0.0, 1.0);
    }
    const std::string& group = groups[static_cast<size_t>(workload.UniformInt(0, 9))];
    const size_t shared =
        static_cast<size_t>(static_cast<double>(group.size()) * workload.Uniform(0.3, 1.0));
    const std::string prompt =
        group.substr(0, shared) + Text(workload, static_cast<size_t>(workload.UniformInt(0, 2048)));
    InferenceRequest request;
    request.model = "m";
    request.prompt = prompt;
    auto pick = (*scheduler)->Pick(request, fleet, now);
    if (!pick.ok()) {
      digest.Add(0xdead);
      continue;
    }
    for (EndpointId id : pick->targets) digest.Add(id);
    digest.Add(static_cast<uint64_t>(pick->prefix_blocks));
    pending.push_back({pick->handle, now + std::chrono::milliseconds(workload.UniformInt(1, 400))});
  }
  const SchedulerStats stats = (*scheduler)->Stats();
  // The workload exercises what it is meant to: cache hits and a full (evicting) index.
  EXPECT_GT(stats.prefix_hit_blocks, stats.prefix_looked_up_blocks / 10) << policy;
  EXPECT_GT(stats.prefix_index_entries, 6 * 200) << policy;
  digest.Add(static_cast<uint64_t>(stats.prefix_index_entries));
  return digest.value;
}

TEST(Replay, BuiltinPoliciesPickExactlyAsRecorded) {
  // Re-recorded when zumik-default gained utilization-detector (queue 1, KV 0.97) ahead of the
  // affinity filter and indexResponses (fifth tuning round; this replay reports no response
  // text, so only the filter moves picks: its endpoints queue 0-3 requests).
  EXPECT_EQ(Replay("zumik-default", 3000), 11468533617320855267u);
  EXPECT_EQ(Replay("gie-default", 3000), 10405187368274490064u);
  EXPECT_EQ(Replay("llm-d-default", 3000), 8449994241867618253u);
}

// The lockstep multi-endpoint search answers exactly what each endpoint's own search answers.
TEST(Replay, LongestPrefixesAgreesWithLongestPrefixOnEveryEndpoint) {
  PrefixIndex index(1 << 20, 300);
  Rng rng(11);
  std::vector<std::vector<uint64_t>> chains;
  for (int c = 0; c < 6; ++c) {
    std::vector<uint64_t> chain(static_cast<size_t>(rng.UniformInt(1, 400)));
    for (uint64_t& h : chain) h = rng.Next();
    chains.push_back(chain);
  }
  std::vector<EndpointId> ids;
  for (EndpointId e = 0; e < 40; ++e) ids.push_back(e);
  std::vector<int32_t> out(ids.size());
  for (int round = 0; round < 400; ++round) {
    const auto& chain = chains[static_cast<size_t>(rng.UniformInt(0, 5))];
    const size_t len = static_cast<size_t>(rng.UniformInt(1, static_cast<int64_t>(chain.size())));
    std::span<const uint64_t> query(chain.data(), len);
    index.Record(static_cast<EndpointId>(rng.UniformInt(0, 39)), query);
    const auto& probe = chains[static_cast<size_t>(rng.UniformInt(0, 5))];
    index.LongestPrefixes(ids, probe, out);
    for (size_t k = 0; k < ids.size(); ++k) {
      ASSERT_EQ(out[k], index.LongestPrefix(ids[k], probe)) << "endpoint " << k;
    }
  }
}

}  // namespace
}  // namespace zumik::sched
