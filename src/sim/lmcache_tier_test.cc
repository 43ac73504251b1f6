// LmcacheTier: bounded LRU storage of spilled blocks, chunk-aligned hits.
#include "sim/lmcache_tier.h"

#include "gtest/gtest.h"

namespace zumik::sim {
namespace {

TEST(LmcacheTier, EvictsLeastRecentlyUsedBlockWhenFull) {
  LmcacheTier tier(/*capacity_tokens=*/32, /*block_size=*/16, /*chunk_size=*/256);
  tier.Store(1);
  tier.Store(2);
  EXPECT_TRUE(tier.Touch(1));  // 1 is now more recent than 2
  tier.Store(3);
  EXPECT_TRUE(tier.Contains(1));
  EXPECT_FALSE(tier.Contains(2));
  EXPECT_TRUE(tier.Contains(3));
  EXPECT_EQ(tier.size_tokens(), 32);
  EXPECT_EQ(tier.stored_tokens(), 48);
  EXPECT_FALSE(tier.Touch(2));
}

TEST(LmcacheTier, HitsAreWholeChunks) {
  LmcacheTier tier(1000, 16, 256);
  EXPECT_EQ(tier.RoundDownToChunk(255), 0);
  EXPECT_EQ(tier.RoundDownToChunk(256), 256);
  EXPECT_EQ(tier.RoundDownToChunk(700), 512);
}

TEST(LmcacheTier, ZeroCapacityStoresNothing) {
  LmcacheTier tier(0, 16, 256);
  tier.Store(1);
  EXPECT_FALSE(tier.Contains(1));
  EXPECT_EQ(tier.stored_tokens(), 0);
}

}  // namespace
}  // namespace zumik::sim
