// Paged KV block pool with prefix caching (see block_pool.h).
#include "sim/block_pool.h"

#include <cassert>

namespace zumik::sim {

BlockPool::BlockPool(int num_blocks, int block_size)
    : num_blocks_(num_blocks), block_size_(block_size), blocks_(num_blocks) {
  size_t buckets = 1;
  while (buckets < 2 * static_cast<size_t>(num_blocks)) buckets *= 2;
  buckets_.assign(buckets, kNoBlock);
  bucket_mask_ = buckets - 1;
  for (BlockId id = 0; id < num_blocks; ++id) PushBack(id);
}

double BlockPool::Usage() const {
  return num_blocks_ == 0 ? 0.0 : static_cast<double>(num_used_blocks()) / num_blocks_;
}

void BlockPool::Unlink(BlockId id) {
  Block& b = blocks_[id];
  (b.prev != kNoBlock ? blocks_[b.prev].next : head_) = b.next;
  (b.next != kNoBlock ? blocks_[b.next].prev : tail_) = b.prev;
  b.prev = b.next = kNoBlock;
  --num_free_;
}

void BlockPool::PushBack(BlockId id) {
  Block& b = blocks_[id];
  b.prev = tail_;
  b.next = kNoBlock;
  (tail_ != kNoBlock ? blocks_[tail_].next : head_) = id;
  tail_ = id;
  ++num_free_;
}

void BlockPool::Touch(BlockId id) {
  Block& b = blocks_[id];
  if (b.ref == 0) Unlink(id);
  ++b.ref;
}

void BlockPool::TakeHead() {
  const BlockId id = head_;
  Unlink(id);
  Block& b = blocks_[id];
  assert(b.ref == 0);
  if (b.hashed) {
    Uncache(id);
    ++num_evictions_;
    if (spill_) spill_(b.hash);
  }
  b.ref = 1;
}

BlockId BlockPool::Allocate() {
  const BlockId id = head_;
  if (id != kNoBlock) TakeHead();
  return id;
}

void BlockPool::AllocateMany(int n, std::vector<BlockId>* out) {
  assert(n <= num_free_);
  for (int i = 0; i < n; ++i) {
    out->push_back(head_);
    TakeHead();
  }
}

void BlockPool::Release(BlockId id) {
  Block& b = blocks_[id];
  assert(b.ref > 0);
  if (--b.ref == 0) PushBack(id);
}

bool BlockPool::Cache(BlockId id, uint64_t hash) {
  Block& b = blocks_[id];
  if (b.hashed) return b.hash == hash;
  if (Lookup(hash) != kNoBlock) return false;
  BlockId& head = buckets_[hash & bucket_mask_];
  b.hash = hash;
  b.hashed = true;
  b.chain = head;
  head = id;
  ++num_cached_;
  return true;
}

void BlockPool::Uncache(BlockId id) {
  Block& b = blocks_[id];
  BlockId* link = &buckets_[b.hash & bucket_mask_];
  while (*link != id) link = &blocks_[*link].chain;
  *link = b.chain;
  b.chain = kNoBlock;
  b.hashed = false;
  --num_cached_;
}

std::vector<BlockId> BlockPool::FreeQueueForTest() const {
  std::vector<BlockId> out;
  for (BlockId id = head_; id != kNoBlock; id = blocks_[id].next) out.push_back(id);
  return out;
}

}  // namespace zumik::sim
