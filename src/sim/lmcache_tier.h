// The optional LMCache CPU tier: KV blocks evicted from the GPU pool are stored here (LRU,
// bounded in tokens), and a request's prefix can continue matching here after its GPU hits.
// Hits are whole LMCache chunks (256 tokens by default, aligned at absolute positions).
//
// Simplifications (documented for readers of benchmark results): the tier is keyed by the
// same chained block hashes as the GPU cache and evicts LRU by block (blocks of a chunk are
// spilled together in practice, since the GPU frees a request's blocks together); it stores
// on GPU eviction rather than LMCache's store-after-prefill, which gives the same hits while
// the tier has room.
#pragma once

#include <cstdint>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace zumik::sim {

class LmcacheTier {
 public:
  LmcacheTier(int64_t capacity_tokens, int block_size, int chunk_size);

  // Stores a block as the most recently used, evicting the least recently used when full.
  void Store(uint64_t hash);
  // Whether the block is present; a present block becomes the most recently used.
  bool Touch(uint64_t hash);
  bool Contains(uint64_t hash) const { return index_.contains(hash); }

  // `tokens` rounded down to a chunk boundary.
  int RoundDownToChunk(int tokens) const { return tokens / chunk_size_ * chunk_size_; }

  int chunk_size() const { return chunk_size_; }
  int64_t capacity_tokens() const { return static_cast<int64_t>(capacity_) * block_size_; }
  int64_t size_tokens() const { return static_cast<int64_t>(index_.size()) * block_size_; }
  int64_t stored_tokens() const { return stored_tokens_; }  // cumulative

 private:
  struct Node {
    uint64_t hash = 0;
    int32_t prev = -1;  // towards the least recently used
    int32_t next = -1;
  };
  void Unlink(int32_t n);
  void PushFront(int32_t n);

  int32_t capacity_;  // in blocks
  int block_size_;
  int chunk_size_;
  int64_t stored_tokens_ = 0;
  std::vector<Node> nodes_;
  int32_t mru_ = -1;
  int32_t lru_ = -1;
  absl::flat_hash_map<uint64_t, int32_t> index_;
};

}  // namespace zumik::sim
