// The cache behind a run's ideal prefix hit rate: every block the fleet ever computed, held in one
// cache as if a perfect router could reach all of it — unbounded ("perfect routing, infinite
// KV"), or bounded by the fleet's total KV blocks with LRU eviction as vLLM evicts freed blocks
// ("perfect routing, the fleet's KV"). The bounded one is the reference for workloads whose
// working set does not fit the fleet; it ignores the blocks running requests pin, so it is
// still optimistic.
#pragma once

#include <cstdint>
#include <span>
#include <vector>

#include "absl/container/flat_hash_map.h"

namespace zumik::bench {

class IdealCache {
 public:
  // capacity_blocks <= 0: unbounded.
  explicit IdealCache(int64_t capacity_blocks = 0);

  // How many leading blocks of `hashes` are cached; those become the most recently used.
  int64_t Match(std::span<const uint64_t> hashes);
  // Caches `hashes` as one chain: block 0 ends most recent and the chain's tail is evicted
  // first (vLLM frees a request's blocks tail first), evicting the least recent blocks over
  // capacity.
  void Insert(std::span<const uint64_t> hashes);

  int64_t size() const { return static_cast<int64_t>(index_.size()); }
  int64_t capacity() const { return capacity_; }

 private:
  static constexpr uint32_t kNil = UINT32_MAX;
  struct Node {
    uint64_t hash;
    uint32_t prev;  // towards the most recent
    uint32_t next;  // towards the least recent
  };
  void Unlink(uint32_t n);
  void PushFront(uint32_t n);
  void Touch(uint32_t n);

  int64_t capacity_;
  absl::flat_hash_map<uint64_t, uint32_t> index_;
  std::vector<Node> nodes_;
  std::vector<uint32_t> free_;
  uint32_t head_ = kNil;  // most recent
  uint32_t tail_ = kNil;  // least recent
};

}  // namespace zumik::bench
