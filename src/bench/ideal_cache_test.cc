// The ideal-hit-rate cache: prefix matching, unbounded, and LRU-bounded by the fleet's KV.
#include "bench/ideal_cache.h"

#include <gtest/gtest.h>

#include <vector>

namespace zumik::bench {
namespace {

TEST(IdealCache, MatchesOnlyTheLeadingRunOfCachedBlocks) {
  IdealCache cache;
  const std::vector<uint64_t> a = {1, 2, 3, 4};
  EXPECT_EQ(cache.Match(a), 0);
  cache.Insert(a);
  EXPECT_EQ(cache.Match(a), 4);
  EXPECT_EQ(cache.Match(std::vector<uint64_t>{1, 2, 9, 4}), 2);
  EXPECT_EQ(cache.Match(std::vector<uint64_t>{9, 1, 2}), 0);
}

TEST(IdealCache, UnboundedKeepsEverything) {
  IdealCache cache(0);
  for (uint64_t i = 0; i < 10'000; ++i) cache.Insert(std::vector<uint64_t>{i * 2 + 1});
  EXPECT_EQ(cache.size(), 10'000);
  EXPECT_EQ(cache.Match(std::vector<uint64_t>{1}), 1);
}

TEST(IdealCache, BoundedEvictsTheLeastRecentlyUsedChainTailFirst) {
  IdealCache cache(4);
  cache.Insert(std::vector<uint64_t>{1, 2, 3});  // most recent first: 1 2 3
  cache.Insert(std::vector<uint64_t>{7, 8});     // 7 8 1 2, 3 evicted
  EXPECT_EQ(cache.size(), 4);
  EXPECT_EQ(cache.Match(std::vector<uint64_t>{1, 2, 3}), 2);  // the chain's tail went first
  // The match made 1 and 2 the most recent (1 2 7 8): the next insert evicts 8.
  cache.Insert(std::vector<uint64_t>{5});                  // 5 1 2 7
  EXPECT_EQ(cache.Match(std::vector<uint64_t>{7, 8}), 1);  // 7 5 1 2
  cache.Insert(std::vector<uint64_t>{6});                  // 6 7 5 1, 2 evicted
  EXPECT_EQ(cache.Match(std::vector<uint64_t>{1, 2}), 1);
  EXPECT_EQ(cache.Match(std::vector<uint64_t>{5}), 1);
  EXPECT_EQ(cache.Match(std::vector<uint64_t>{6}), 1);
  EXPECT_EQ(cache.Match(std::vector<uint64_t>{7}), 1);
  EXPECT_EQ(cache.size(), 4);
}

TEST(IdealCache, ACyclicWorkingSetLargerThanTheCacheMissesWhileASharedPrefixHits) {
  // low-cache in miniature: 6 prompts sharing block 100, each with 3 private blocks, cycled;
  // the cache holds 10 blocks, less than the 19 of the working set.
  IdealCache cache(10);
  int64_t hits = 0;
  for (int pass = 0; pass < 3; ++pass) {
    for (uint64_t p = 0; p < 6; ++p) {
      const std::vector<uint64_t> prompt = {100, 10 * p + 1, 10 * p + 2, 10 * p + 3};
      hits += cache.Match(prompt);
      cache.Insert(prompt);
    }
  }
  EXPECT_EQ(hits, 17);  // every request but the very first hits the shared block, nothing more
}

}  // namespace
}  // namespace zumik::bench
