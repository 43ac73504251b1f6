// The approximate prefix index: longest match, LRU order and eviction, capacities, the global
// bound, purging an endpoint, and the memory per entry.
#include "sched/prefix_index.h"

#include <gtest/gtest.h>

#include <algorithm>
#include <list>
#include <vector>

#include "core/rng.h"

namespace zumik::sched {
namespace {

// A chain of distinct hashes: chain c, blocks 0..n-1 (values only need to be distinct).
std::vector<uint64_t> Chain(uint64_t c, int n) {
  std::vector<uint64_t> out;
  out.reserve(static_cast<size_t>(std::max(n, 0)));
  for (int i = 0; i < n; ++i) out.push_back(c * 1000003 + static_cast<uint64_t>(i) * 7919 + 1);
  return out;
}

TEST(PrefixIndex, FindsTheLongestCachedPrefixPerEndpoint) {
  PrefixIndex index;
  const std::vector<uint64_t> a = Chain(1, 10);
  index.Record(0, a);
  EXPECT_EQ(index.LongestPrefix(0, a), 10);
  EXPECT_EQ(index.LongestPrefix(1, a), 0);
  // A request sharing the first 4 blocks, then diverging.
  std::vector<uint64_t> b(a.begin(), a.begin() + 4);
  for (uint64_t h : Chain(2, 6)) b.push_back(h);
  EXPECT_EQ(index.LongestPrefix(0, b), 4);
  // A longer request than what was recorded.
  std::vector<uint64_t> longer = a;
  for (uint64_t h : Chain(3, 5)) longer.push_back(h);
  EXPECT_EQ(index.LongestPrefix(0, longer), 10);
  EXPECT_EQ(index.LongestPrefix(0, {}), 0);
  EXPECT_EQ(index.LongestPrefix(0, Chain(4, 3)), 0);
}

PrefixIndex StrictLru(int64_t capacity = PrefixIndex::kDefaultCapacityPerEndpoint) {
  return PrefixIndex(PrefixIndex::kDefaultMaxEntries, capacity, /*lru_slack=*/0);
}

TEST(PrefixIndex, KeepsBlockZeroMostRecentSoPrefixesShrinkFromTheEnd) {
  PrefixIndex index = StrictLru();
  const std::vector<uint64_t> a = Chain(1, 3);
  index.Record(0, a);
  EXPECT_EQ(index.LruOrder(0), (std::vector<uint64_t>{a[0], a[1], a[2]}));
  const std::vector<uint64_t> x = Chain(2, 1);
  index.Record(0, x);
  EXPECT_EQ(index.LruOrder(0), (std::vector<uint64_t>{x[0], a[0], a[1], a[2]}));
  // Re-recording a's first block moves it to the front.
  index.Record(0, std::vector<uint64_t>{a[0]});
  EXPECT_EQ(index.LruOrder(0), (std::vector<uint64_t>{a[0], x[0], a[1], a[2]}));
}

TEST(PrefixIndex, EvictsLeastRecentlyUsedBlocksFirst) {
  PrefixIndex index;
  index.SetCapacity(0, 6);
  const std::vector<uint64_t> a = Chain(1, 4);
  const std::vector<uint64_t> b = Chain(2, 4);
  index.Record(0, a);
  index.Record(0, b);
  EXPECT_EQ(index.EntriesOf(0), 6);
  EXPECT_EQ(index.LongestPrefix(0, b), 4);
  EXPECT_EQ(index.LongestPrefix(0, a), 2);  // a's two deepest blocks went first
  // Using a again makes b the older one.
  index.Record(0, a);
  EXPECT_EQ(index.LongestPrefix(0, a), 4);
  EXPECT_EQ(index.LongestPrefix(0, b), 2);
}

TEST(PrefixIndex, KeepsOnlyTheFirstBlocksOfARequestLongerThanTheCapacity) {
  PrefixIndex index;
  index.SetCapacity(0, 5);
  const std::vector<uint64_t> a = Chain(1, 12);
  index.Record(0, a);
  EXPECT_EQ(index.EntriesOf(0), 5);
  EXPECT_EQ(index.LongestPrefix(0, a), 5);
}

TEST(PrefixIndex, CapacityIsPerEndpointAndShrinkingEvictsNow) {
  PrefixIndex index;
  index.SetCapacity(0, 3);
  index.SetCapacity(1, 10);
  index.Record(0, Chain(1, 8));
  index.Record(1, Chain(1, 8));
  EXPECT_EQ(index.EntriesOf(0), 3);
  EXPECT_EQ(index.EntriesOf(1), 8);
  index.SetCapacity(1, 2);
  EXPECT_EQ(index.EntriesOf(1), 2);
  EXPECT_EQ(index.LongestPrefix(1, Chain(1, 8)), 2);
  EXPECT_EQ(index.size(), 5);
}

TEST(PrefixIndex, TheGlobalBoundIsSharedByTheEndpoints) {
  PrefixIndex index(/*max_entries=*/100, /*default_capacity=*/1000);
  for (EndpointId e = 0; e < 4; ++e) index.Record(e, Chain(e, 50));
  EXPECT_LE(index.size(), 100);
  for (EndpointId e = 0; e < 4; ++e) {
    EXPECT_EQ(index.CapacityOf(e), 25);
    EXPECT_EQ(index.EntriesOf(e), 25);
  }
  // When an endpoint leaves, the others may grow into its share.
  index.RemoveEndpoint(3);
  EXPECT_EQ(index.CapacityOf(0), 33);
}

TEST(PrefixIndex, RemovingAnEndpointPurgesItsEntries) {
  PrefixIndex index;
  index.Record(0, Chain(1, 10));
  index.Record(1, Chain(1, 10));
  EXPECT_EQ(index.size(), 20);
  index.RemoveEndpoint(0);
  EXPECT_EQ(index.size(), 10);
  EXPECT_EQ(index.LongestPrefix(0, Chain(1, 10)), 0);
  EXPECT_EQ(index.LongestPrefix(1, Chain(1, 10)), 10);
  index.Clear();
  EXPECT_EQ(index.size(), 0);
  EXPECT_EQ(index.LongestPrefix(1, Chain(1, 10)), 0);
}

TEST(PrefixIndex, MatchesASimpleLruModelUnderRandomUse) {
  // The table moves slots on deletion and growth; the LRU list must survive all of it.
  constexpr int64_t kCapacity = 300;
  PrefixIndex index = StrictLru();
  index.SetCapacity(0, kCapacity);
  std::list<uint64_t> model;  // most recent first
  Rng rng(42);
  for (int op = 0; op < 3000; ++op) {
    const uint64_t chain = static_cast<uint64_t>(rng.UniformInt(0, 40));
    const std::vector<uint64_t> hashes = Chain(chain, static_cast<int>(rng.UniformInt(1, 30)));
    index.Record(0, hashes);
    const int64_t n = std::min<int64_t>(static_cast<int64_t>(hashes.size()), kCapacity);
    for (int64_t i = n - 1; i >= 0; --i) {
      model.remove(hashes[static_cast<size_t>(i)]);
      if (static_cast<int64_t>(model.size()) >= kCapacity) model.pop_back();
      model.push_front(hashes[static_cast<size_t>(i)]);
    }
    ASSERT_EQ(index.LruOrder(0), std::vector<uint64_t>(model.begin(), model.end())) << op;
  }
  // And lookups agree with the model's contents.
  for (uint64_t chain = 0; chain <= 40; ++chain) {
    const std::vector<uint64_t> hashes = Chain(chain, 30);
    int expected = 0;
    while (expected < 30 && std::find(model.begin(), model.end(),
                                      hashes[static_cast<size_t>(expected)]) != model.end()) {
      ++expected;
    }
    EXPECT_EQ(index.LongestPrefix(0, hashes), expected) << chain;
  }
}

TEST(PrefixIndex, KeepsLruOrderWhenManyBlocksShareAHomeBucket) {
  // Hashes with the same low 32 bits share a home bucket (5 entries), so most of them live in
  // the buckets after it: insertion, lookup and eviction all cross overflowing buckets, and
  // the hashes with other low bits are placed among them.
  constexpr int64_t kCapacity = 40;
  PrefixIndex index = StrictLru();
  index.SetCapacity(0, kCapacity);
  std::vector<uint64_t> pool;
  for (uint64_t i = 1; i <= 90; ++i) pool.push_back((i << 32) | 0x5eed);
  for (uint64_t i = 1; i <= 30; ++i) pool.push_back(i * 0x9E3779B97F4A7C15ull);
  std::list<uint64_t> model;  // most recent first
  Rng rng(11);
  for (int op = 0; op < 3000; ++op) {
    std::vector<uint64_t> hashes;
    const int n = static_cast<int>(rng.UniformInt(1, 12));
    for (int i = 0; i < n; ++i) {
      const uint64_t h = pool[static_cast<size_t>(rng.UniformInt(0, 119))];
      if (std::find(hashes.begin(), hashes.end(), h) == hashes.end()) hashes.push_back(h);
    }
    index.Record(0, hashes);
    for (auto it = hashes.rbegin(); it != hashes.rend(); ++it) {
      model.remove(*it);
      if (static_cast<int64_t>(model.size()) >= kCapacity) model.pop_back();
      model.push_front(*it);
    }
    ASSERT_EQ(index.LruOrder(0), std::vector<uint64_t>(model.begin(), model.end())) << op;
    for (uint64_t h : pool) {
      ASSERT_EQ(index.Contains(0, h), std::find(model.begin(), model.end(), h) != model.end())
          << "op " << op << " hash " << h;
    }
  }
}

TEST(PrefixIndex, LinksNewBlocksBehindARecentlyUsedPrefixInsteadOfRetouchingIt) {
  // Default slack 1/3: a 6-block request's prefix is recent within (1000 − 6) / 3 = 331
  // placements.
  PrefixIndex index(PrefixIndex::kDefaultMaxEntries, 1000);
  const std::vector<uint64_t> a = Chain(1, 4);
  const std::vector<uint64_t> x = Chain(2, 2);
  index.Record(0, a);
  index.Record(0, x);
  EXPECT_EQ(index.LruOrder(0), (std::vector<uint64_t>{x[0], x[1], a[0], a[1], a[2], a[3]}));
  // a again with two new blocks: a was placed recently, so only the new blocks move in,
  // right behind a's deepest block.
  std::vector<uint64_t> ab = a;
  for (uint64_t h : Chain(3, 2)) ab.push_back(h);
  index.Record(0, ab);
  EXPECT_EQ(index.LruOrder(0),
            (std::vector<uint64_t>{x[0], x[1], a[0], a[1], a[2], a[3], ab[4], ab[5]}));
  EXPECT_EQ(index.LongestPrefix(0, ab), 6);
  // Once a has aged past the slack, using it moves it to the front again.
  for (uint64_t c = 10; c < 400; ++c) index.Record(0, Chain(c, 1));
  index.Record(0, a);
  const std::vector<uint64_t> order = index.LruOrder(0);
  EXPECT_EQ(std::vector<uint64_t>(order.begin(), order.begin() + 4), a);
}

TEST(PrefixIndex, KeepsPrefixesClosedUnderRandomUseWithSlack) {
  // Whatever the slack does, along every chain a cached block's predecessors are cached, so
  // binary search and a linear walk agree.
  PrefixIndex index(PrefixIndex::kDefaultMaxEntries, 300, /*lru_slack=*/0.5);
  Rng rng(77);
  for (int op = 0; op < 3000; ++op) {
    index.Record(0, Chain(static_cast<uint64_t>(rng.UniformInt(0, 40)),
                          static_cast<int>(rng.UniformInt(1, 30))));
    ASSERT_LE(index.EntriesOf(0), 300);
    if (op % 50 != 0) continue;
    for (uint64_t chain = 0; chain <= 40; ++chain) {
      const std::vector<uint64_t> hashes = Chain(chain, 30);
      int walk = 0;
      while (walk < 30 && index.Contains(0, hashes[static_cast<size_t>(walk)])) ++walk;
      int present = 0;
      for (uint64_t h : hashes) present += index.Contains(0, h) ? 1 : 0;
      ASSERT_EQ(present, walk) << "chain " << chain << " has a gap after op " << op;
      ASSERT_EQ(index.LongestPrefix(0, hashes), walk);
    }
  }
}

TEST(PrefixIndex, BatchedLookupsAgreeWithSingleOnes) {
  PrefixIndex index;
  Rng rng(9);
  const std::vector<uint64_t> query = Chain(1, 40);
  std::vector<EndpointId> endpoints;
  for (EndpointId e = 0; e < 150; ++e) {  // more than one batch of 64
    endpoints.push_back(e);
    const int recorded = static_cast<int>(rng.UniformInt(0, 45));
    if (recorded > 0) {
      std::vector<uint64_t> hashes(query.begin(), query.begin() + std::min(recorded, 40));
      if (recorded > 40) hashes = Chain(2, recorded);  // a different chain
      index.Record(e, hashes);
    }
  }
  endpoints.push_back(9999);  // never seen
  std::vector<int32_t> out(endpoints.size(), -1);
  index.LongestPrefixes(endpoints, query, out);
  for (size_t i = 0; i < endpoints.size(); ++i) {
    EXPECT_EQ(out[i], index.LongestPrefix(endpoints[i], query)) << endpoints[i];
  }
  std::vector<int32_t> none(endpoints.size(), -1);
  index.LongestPrefixes(endpoints, {}, none);
  EXPECT_TRUE(std::all_of(none.begin(), none.end(), [](int32_t v) { return v == 0; }));
}

TEST(PrefixIndex, UsesAtMost64BytesPerCachedBlockEntry) {
  PrefixIndex index(PrefixIndex::kDefaultMaxEntries, PrefixIndex::kDefaultCapacityPerEndpoint);
  Rng rng(1);
  std::vector<uint64_t> hashes(256);
  int64_t checked = 0;
  while (index.EntriesOf(0) < PrefixIndex::kDefaultCapacityPerEndpoint) {
    for (uint64_t& h : hashes) h = rng.Next();
    index.Record(0, hashes);
    if (index.size() >= 1000) {
      ++checked;
      ASSERT_LE(static_cast<double>(index.MemoryBytes()) / static_cast<double>(index.size()), 64.0)
          << index.size() << " entries";
    }
  }
  EXPECT_GT(checked, 100);
  // Steady state: full and churning.
  for (int i = 0; i < 200; ++i) {
    for (uint64_t& h : hashes) h = rng.Next();
    index.Record(0, hashes);
  }
  EXPECT_EQ(index.size(), PrefixIndex::kDefaultCapacityPerEndpoint);
  EXPECT_LE(static_cast<double>(index.MemoryBytes()) / static_cast<double>(index.size()), 64.0);
}

}  // namespace
}  // namespace zumik::sched
