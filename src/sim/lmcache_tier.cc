// LMCache CPU tier (see lmcache_tier.h).
#include "sim/lmcache_tier.h"

#include <algorithm>

namespace zumik::sim {

LmcacheTier::LmcacheTier(int64_t capacity_tokens, int block_size, int chunk_size)
    : capacity_(
          static_cast<int32_t>(std::clamp<int64_t>(capacity_tokens / block_size, 0, INT32_MAX))),
      block_size_(block_size),
      chunk_size_(chunk_size) {}

void LmcacheTier::Unlink(int32_t n) {
  Node& node = nodes_[n];
  (node.prev != -1 ? nodes_[node.prev].next : lru_) = node.next;
  (node.next != -1 ? nodes_[node.next].prev : mru_) = node.prev;
  node.prev = node.next = -1;
}

void LmcacheTier::PushFront(int32_t n) {
  Node& node = nodes_[n];
  node.prev = mru_;
  node.next = -1;
  (mru_ != -1 ? nodes_[mru_].next : lru_) = n;
  mru_ = n;
}

void LmcacheTier::Store(uint64_t hash) {
  if (capacity_ == 0) return;
  stored_tokens_ += block_size_;
  if (auto it = index_.find(hash); it != index_.end()) {
    Unlink(it->second);
    PushFront(it->second);
    return;
  }
  int32_t n;
  if (static_cast<int32_t>(index_.size()) >= capacity_) {
    n = lru_;
    Unlink(n);
    index_.erase(nodes_[n].hash);
  } else {
    n = static_cast<int32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  nodes_[n].hash = hash;
  PushFront(n);
  index_.emplace(hash, n);
}

bool LmcacheTier::Touch(uint64_t hash) {
  auto it = index_.find(hash);
  if (it == index_.end()) return false;
  Unlink(it->second);
  PushFront(it->second);
  return true;
}

}  // namespace zumik::sim
