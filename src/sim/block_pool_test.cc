// BlockPool: ref counting, the prefix-cache map and LRU eviction from the free queue.
#include "sim/block_pool.h"

#include <vector>

#include "gtest/gtest.h"

namespace zumik::sim {
namespace {

TEST(BlockPool, UsageCountsBlocksNotFree) {
  BlockPool pool(4, 16);
  EXPECT_EQ(pool.num_free_blocks(), 4);
  EXPECT_DOUBLE_EQ(pool.Usage(), 0.0);
  const BlockId a = pool.Allocate();
  EXPECT_EQ(a, 0);  // the free queue starts in block order
  EXPECT_DOUBLE_EQ(pool.Usage(), 0.25);
  pool.Release(a);
  EXPECT_DOUBLE_EQ(pool.Usage(), 0.0);
}

TEST(BlockPool, SharedBlockIsStoredOnceAndFreedByItsLastReference) {
  BlockPool pool(4, 16);
  const BlockId a = pool.Allocate();
  ASSERT_TRUE(pool.Cache(a, 42));
  pool.Touch(pool.Lookup(42));  // a second request hits it
  EXPECT_EQ(pool.ref_count(a), 2);
  EXPECT_EQ(pool.num_used_blocks(), 1);
  pool.Release(a);
  EXPECT_EQ(pool.num_used_blocks(), 1);
  pool.Release(a);
  EXPECT_EQ(pool.num_used_blocks(), 0);
}

TEST(BlockPool, FreedBlockKeepsItsHashAndCanBeTakenBack) {
  BlockPool pool(2, 16);
  const BlockId a = pool.Allocate();
  pool.Cache(a, 7);
  pool.Release(a);
  EXPECT_EQ(pool.Lookup(7), a);
  EXPECT_EQ(pool.num_free_blocks(), 2);
  pool.Touch(a);  // a prefix hit takes it out of the free queue
  EXPECT_EQ(pool.num_free_blocks(), 1);
  EXPECT_EQ(pool.FreeQueueForTest(), std::vector<BlockId>{1});
}

TEST(BlockPool, EvictsLeastRecentlyFreedBlockFirst) {
  BlockPool pool(3, 16);
  std::vector<uint64_t> spilled;
  pool.set_spill([&](uint64_t h) { spilled.push_back(h); });
  const BlockId a = pool.Allocate();
  const BlockId b = pool.Allocate();
  const BlockId c = pool.Allocate();
  pool.Cache(a, 100);
  pool.Cache(b, 200);
  pool.Cache(c, 300);
  pool.Release(b);
  pool.Release(c);
  pool.Release(a);
  EXPECT_EQ(pool.FreeQueueForTest(), (std::vector<BlockId>{b, c, a}));

  EXPECT_EQ(pool.Allocate(), b);  // least recently freed goes first, and its hash with it
  EXPECT_EQ(pool.Lookup(200), kNoBlock);
  EXPECT_EQ(pool.Lookup(300), c);
  EXPECT_EQ(pool.Allocate(), c);
  EXPECT_EQ(spilled, (std::vector<uint64_t>{200, 300}));
  EXPECT_EQ(pool.num_evictions(), 2);
  EXPECT_EQ(pool.Allocate(), a);
  EXPECT_EQ(pool.Allocate(), kNoBlock);
}

TEST(BlockPool, SecondBlockWithTheSameHashStaysAnonymous) {
  BlockPool pool(2, 16);
  const BlockId a = pool.Allocate();
  const BlockId b = pool.Allocate();
  EXPECT_TRUE(pool.Cache(a, 5));
  EXPECT_FALSE(pool.Cache(b, 5));
  EXPECT_FALSE(pool.has_hash(b));
  EXPECT_EQ(pool.Lookup(5), a);
}

}  // namespace
}  // namespace zumik::sim
