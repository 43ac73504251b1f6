// The paged KV block pool with vLLM V1's prefix cache (vllm/v1/core/block_pool.py):
// - blocks are ref-counted, so a block shared by running requests is stored once;
// - a full block may carry a hash (its prefix); the cache map finds a block by hash;
// - a block whose ref count drops to 0 joins the TAIL of the free queue and keeps its hash,
//   so a later prefix hit can take it back (removing it from the queue);
// - a new block comes from the HEAD of the free queue (least recently freed): if it still
//   carries a hash, that hash is evicted from the cache (and reported to the spill hook).
// Every operation is O(1). The free queue is an intrusive doubly-linked list over block
// indices, and the cache map an intrusive chained hash table (bucket heads plus a link in each
// block): each operation touches one bucket and the block itself, which matters because the
// fleet allocates, evicts and registers millions of blocks per benchmark.
#pragma once

#include <cstdint>
#include <functional>
#include <vector>

namespace zumik::sim {

using BlockId = int32_t;
inline constexpr BlockId kNoBlock = -1;

class BlockPool {
 public:
  BlockPool(int num_blocks, int block_size);

  int num_blocks() const { return num_blocks_; }
  int block_size() const { return block_size_; }
  int num_free_blocks() const { return num_free_; }
  int num_used_blocks() const { return num_blocks_ - num_free_; }
  // vLLM's kv_cache_usage_perc: blocks not free / all blocks, in [0, 1].
  double Usage() const;
  int num_cached_blocks() const { return num_cached_; }
  int64_t num_evictions() const { return num_evictions_; }

  // The block holding `hash`, or kNoBlock.
  BlockId Lookup(uint64_t hash) const {
    BlockId id = buckets_[hash & bucket_mask_];
    while (id != kNoBlock && blocks_[id].hash != hash) id = blocks_[id].chain;
    return id;
  }
  // Takes one more reference on `id` (a prefix hit); a free block leaves the free queue.
  void Touch(BlockId id);
  // A fresh block with one reference, from the head of the free queue; kNoBlock when none.
  BlockId Allocate();
  // Appends `n` fresh blocks (n <= num_free_blocks()) to *out, as n calls of Allocate().
  void AllocateMany(int n, std::vector<BlockId>* out);
  // Drops one reference; at zero the block joins the free queue's tail, keeping its hash.
  void Release(BlockId id);
  // Registers a full block's hash. Returns false (the block stays anonymous) when another
  // block already holds that hash: two requests computed the same block concurrently.
  bool Cache(BlockId id, uint64_t hash);

  // Whether `id` still holds `hash` (it was not evicted and reused since it was found).
  bool Holds(BlockId id, uint64_t hash) const {
    return blocks_[id].hashed && blocks_[id].hash == hash;
  }
  int ref_count(BlockId id) const { return blocks_[id].ref; }
  bool has_hash(BlockId id) const { return blocks_[id].hashed; }
  // Called with each hash evicted from the GPU cache (the LMCache tier stores it).
  void set_spill(std::function<void(uint64_t)> spill) { spill_ = std::move(spill); }

  // The free queue from head (next to evict) to tail, for tests.
  std::vector<BlockId> FreeQueueForTest() const;

 private:
  struct Block {
    uint64_t hash = 0;
    int32_t ref = 0;
    int32_t prev = kNoBlock;  // free-queue links
    int32_t next = kNoBlock;
    int32_t chain = kNoBlock;  // next block in the same hash bucket
    bool hashed = false;
  };
  void Unlink(BlockId id);
  void PushBack(BlockId id);
  void Uncache(BlockId id);
  void TakeHead();  // allocates the head of the free queue, which must exist

  int num_blocks_;
  int block_size_;
  int num_free_ = 0;
  BlockId head_ = kNoBlock;
  BlockId tail_ = kNoBlock;
  int num_cached_ = 0;
  int64_t num_evictions_ = 0;
  std::vector<Block> blocks_;
  std::vector<BlockId> buckets_;  // chain heads; at least 2 buckets per block
  uint64_t bucket_mask_ = 0;
  std::function<void(uint64_t)> spill_;
};

}  // namespace zumik::sim
