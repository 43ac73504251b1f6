#include "bench/ideal_cache.h"

namespace zumik::bench {

IdealCache::IdealCache(int64_t capacity_blocks) : capacity_(capacity_blocks) {}

void IdealCache::Unlink(uint32_t n) {
  Node& node = nodes_[n];
  if (node.prev != kNil) nodes_[node.prev].next = node.next;
  if (node.next != kNil) nodes_[node.next].prev = node.prev;
  if (head_ == n) head_ = node.next;
  if (tail_ == n) tail_ = node.prev;
  node.prev = node.next = kNil;
}

void IdealCache::PushFront(uint32_t n) {
  Node& node = nodes_[n];
  node.prev = kNil;
  node.next = head_;
  if (head_ != kNil) nodes_[head_].prev = n;
  head_ = n;
  if (tail_ == kNil) tail_ = n;
}

void IdealCache::Touch(uint32_t n) {
  if (head_ == n) return;
  Unlink(n);
  PushFront(n);
}

int64_t IdealCache::Match(std::span<const uint64_t> hashes) {
  size_t matched = 0;
  while (matched < hashes.size() && index_.contains(hashes[matched])) ++matched;
  // Touched tail first, so the chain keeps block 0 most recent. Unbounded, recency is unused.
  if (capacity_ > 0) {
    for (size_t i = matched; i-- > 0;) Touch(index_.at(hashes[i]));
  }
  return static_cast<int64_t>(matched);
}

void IdealCache::Insert(std::span<const uint64_t> hashes) {
  for (size_t i = hashes.size(); i-- > 0;) {
    const uint64_t hash = hashes[i];
    if (auto it = index_.find(hash); it != index_.end()) {
      if (capacity_ > 0) Touch(it->second);
      continue;
    }
    uint32_t n = kNil;
    if (capacity_ > 0 && static_cast<int64_t>(index_.size()) >= capacity_) {
      n = tail_;  // evict the least recent, reuse its node
      index_.erase(nodes_[n].hash);
      Unlink(n);
    } else if (!free_.empty()) {
      n = free_.back();
      free_.pop_back();
    } else {
      n = static_cast<uint32_t>(nodes_.size());
      nodes_.push_back({});
    }
    nodes_[n] = Node{hash, kNil, kNil};
    index_.emplace(hash, n);
    PushFront(n);
  }
}

}  // namespace zumik::bench
