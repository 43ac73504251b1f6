// One endpoint's LRU set of block hashes (see lru_hash_set.h and prefix_index.h).
#include "sched/lru_hash_set.h"

#include <algorithm>
#include <array>
#include <cassert>

namespace zumik::sched {
namespace {
constexpr uint32_t kInitialBuckets = 16;
}  // namespace

LruHashSet::LruHashSet(int64_t capacity, double slack, int64_t* total)
    : capacity_(capacity), effective_(capacity), slack_(slack), total_(total) {
  AllocateBuckets(kInitialBuckets);
}

int64_t LruHashSet::MemoryBytes() const {
  return static_cast<int64_t>(buckets_count_) * static_cast<int64_t>(sizeof(Bucket)) +
         static_cast<int64_t>(nodes_.capacity() * sizeof(Node));
}

void LruHashSet::SetCapacity(int64_t capacity, int64_t share) {
  capacity_ = std::max<int64_t>(0, capacity);
  effective_ = std::min(capacity_, share);
  while (size_ > effective_) EvictTail();
}

void LruHashSet::Record(std::span<const uint64_t> hashes) {
  const int64_t n = std::min<int64_t>(static_cast<int64_t>(hashes.size()), effective_);
  if (n <= 0) return;
  if (slack_ > 0 && RecordBehindRecentPrefix(hashes.first(static_cast<size_t>(n)))) return;
  // Strict path: touch deepest first, so block 0 ends up the most recent. Two-stage
  // prefetch: a block's slot 16 ahead, then (once that slot is in cache) its node 8 ahead.
  constexpr int64_t kSlotAhead = 16;
  constexpr int64_t kNodeAhead = 8;
  for (int64_t i = n - 1; i >= 0; --i) {
    if (i >= kSlotAhead) Prefetch(hashes[static_cast<size_t>(i - kSlotAhead)]);
    if (i >= kNodeAhead) PrefetchNode(hashes[static_cast<size_t>(i - kNodeAhead)]);
    Touch(hashes[static_cast<size_t>(i)]);
  }
}

int32_t LruHashSet::LongestPrefix(std::span<const uint64_t> hashes) const {
  const int32_t n = static_cast<int32_t>(hashes.size());
  if (size_ == 0 || n == 0) return 0;
  Prefetch(hashes[static_cast<size_t>(n - 1)]);
  if (!Contains(hashes[0])) return 0;
  if (Contains(hashes[static_cast<size_t>(n - 1)])) return n;
  return SearchBetween(hashes, 0, n - 1);
}

int32_t LruHashSet::SearchBetween(std::span<const uint64_t> hashes, int32_t lo, int32_t hi) const {
  // An 8-ary search: each round's probes are prefetched together, so a round costs about one
  // cache miss and a 512-block prompt takes 3 rounds instead of 9.
  std::array<int32_t, kSearchWays - 1> probes;
  while (hi - lo > 1) {
    const int count = SearchProbes(lo, hi, probes);
    for (int j = 0; j < count; ++j) Prefetch(hashes[static_cast<size_t>(probes[j])]);
    NarrowSearch(hashes, probes, count, lo, hi);
  }
  return hi;
}

// The node of `hash` if its home bucket holds it (the common case at our load factor).
void LruHashSet::PrefetchNode(uint64_t hash) const {
  const Bucket& b = buckets_[Home(hash)];
  const uint32_t m = Matches(b, hash);
  if (m != 0) __builtin_prefetch(&nodes_[b.node[__builtin_ctz(m)]]);
}

void LruHashSet::Touch(uint64_t hash) {
  const uint32_t found = Find(hash);
  if (found != kNil) {
    const uint32_t node = NodeAt(found);
    if (node != head_) {
      Unlink(node);
      PushFront(node);
    }
    return;
  }
  if (effective_ <= 0) return;
  while (size_ >= effective_) EvictTail();
  if (NeedsGrowth()) GrowBuckets();
  const uint32_t node = NewNode(hash);
  InsertSlot(hash, node);
  PushFront(node);
  ++size_;
  ++*total_;
}

std::vector<uint64_t> LruHashSet::LruOrder() const {
  std::vector<uint64_t> out;
  for (uint32_t n = head_; n != kNil; n = nodes_[n].next) out.push_back(nodes_[n].hash());
  return out;
}

void LruHashSet::AllocateBuckets(uint32_t n) {
  buckets_ = std::make_unique<Bucket[]>(n);
  buckets_count_ = n;
}

uint32_t LruHashSet::NewNode(uint64_t hash) {
  uint32_t n;
  if (free_ != kNil) {
    n = free_;
    free_ = nodes_[n].next;
  } else {
    // Grow by an eighth (not double), and never past the capacity (there are never more nodes
    // than entries): the node array is much of the memory per entry.
    if (nodes_.size() == nodes_.capacity()) {
      const size_t grown = std::max<size_t>(64, nodes_.capacity() + nodes_.capacity() / 8);
      nodes_.reserve(std::min(grown, static_cast<size_t>(effective_)));
    }
    n = static_cast<uint32_t>(nodes_.size());
    nodes_.emplace_back();
  }
  nodes_[n].hash_lo = static_cast<uint32_t>(hash);
  nodes_[n].hash_hi = static_cast<uint32_t>(hash >> 32);
  return n;
}

// The slack path (see the header). False when it does not apply.
bool LruHashSet::RecordBehindRecentPrefix(std::span<const uint64_t> hashes) {
  const int32_t n = static_cast<int32_t>(hashes.size());
  const int32_t k = LongestPrefix(hashes);
  if (k == 0) return false;
  uint32_t pos = NodeAt(Find(hashes[static_cast<size_t>(k - 1)]));
  const double window = slack_ * static_cast<double>(effective_ - n);
  if (!(static_cast<double>(clock_ - nodes_[pos].stamp) < window)) return false;
  constexpr int32_t kAhead = 8;
  for (int32_t i = k; i < std::min(n, k + kAhead); ++i) Prefetch(hashes[static_cast<size_t>(i)]);
  for (int32_t i = k; i < n; ++i) {
    if (i + kAhead < n) Prefetch(hashes[static_cast<size_t>(i) + kAhead]);
    const uint64_t hash = hashes[static_cast<size_t>(i)];
    if (Find(hash) != kNil) return false;  // not a fresh tail (a collision): be strict
    while (size_ >= effective_) {
      if (tail_ == pos) return false;  // about to evict our anchor: be strict
      EvictTail();
    }
    if (NeedsGrowth()) GrowBuckets();
    const uint32_t node = NewNode(hash);
    InsertSlot(hash, node);
    LinkAfter(pos, node);
    ++size_;
    ++*total_;
    pos = node;
  }
  return true;
}

// Links `n` right behind `pos`, sharing its stamp; the clock still counts the placement, so
// "recent" means few placements since.
void LruHashSet::LinkAfter(uint32_t pos, uint32_t n) {
  ++clock_;
  Node& node = nodes_[n];
  node.stamp = nodes_[pos].stamp;
  node.prev = pos;
  node.next = nodes_[pos].next;
  if (node.next != kNil) {
    nodes_[node.next].prev = n;
  } else {
    tail_ = n;
  }
  nodes_[pos].next = n;
}

// Into the first bucket from home with a free way (the load bound guarantees one), counting
// the entry in the overflow of every full bucket passed over.
void LruHashSet::InsertSlot(uint64_t hash, uint32_t node) {
  uint32_t i = Home(hash);
  while (buckets_[i].used == kAllWays) {
    if (buckets_[i].overflow != kOverflowSaturated) ++buckets_[i].overflow;
    i = Next(i);
  }
  Bucket& b = buckets_[i];
  const int way = __builtin_ctz(~static_cast<uint32_t>(b.used));
  b.hash[way] = hash;
  b.node[way] = node;
  b.used = static_cast<uint8_t>(b.used | (1u << way));
}

void LruHashSet::PushFront(uint32_t n) {
  nodes_[n].stamp = ++clock_;
  nodes_[n].prev = kNil;
  nodes_[n].next = head_;
  if (head_ != kNil) nodes_[head_].prev = n;
  head_ = n;
  if (tail_ == kNil) tail_ = n;
}

void LruHashSet::Unlink(uint32_t n) {
  const Node& node = nodes_[n];
  if (node.prev != kNil) {
    nodes_[node.prev].next = node.next;
  } else {
    head_ = node.next;
  }
  if (node.next != kNil) {
    nodes_[node.next].prev = node.prev;
  } else {
    tail_ = node.prev;
  }
}

void LruHashSet::EvictTail() {
  assert(tail_ != kNil);
  const uint32_t victim = tail_;
  const uint64_t hash = nodes_[victim].hash();
  Unlink(victim);
  // Pipeline the chase: prefetch the bucket of the victim kVictimAhead evictions ahead. A
  // cursor kept that far from the tail moves one hop per eviction (the tail's predecessors are
  // usually nodes allocated together, so the walk stays in cache); it is only a hint, and is
  // re-walked from the tail when an eviction reaches it or it drifted off the list.
  constexpr int kVictimAhead = 8;
  if (lookahead_ == victim || lookahead_ == kNil || lookahead_ >= nodes_.size()) {
    lookahead_ = tail_;
    for (int hop = 1; hop < kVictimAhead && lookahead_ != kNil; ++hop) {
      lookahead_ = nodes_[lookahead_].prev;
    }
  }
  if (lookahead_ != kNil) {
    lookahead_ = nodes_[lookahead_].prev;
    if (lookahead_ != kNil) Prefetch(nodes_[lookahead_].hash());
  }
  EraseSlot(Find(hash));
  nodes_[victim].next = free_;
  free_ = victim;
  --size_;
  --*total_;
}

// Frees the way; an entry that lived past its home bucket is uncounted from the overflow of
// the buckets its search passes.
void LruHashSet::EraseSlot(uint32_t pos) {
  assert(pos != kNil);
  const uint32_t at = pos >> 3;
  Bucket& b = buckets_[at];
  for (uint32_t i = Home(b.hash[pos & 7]); i != at; i = Next(i)) {
    if (buckets_[i].overflow != kOverflowSaturated) --buckets_[i].overflow;
  }
  b.used = static_cast<uint8_t>(b.used & ~(1u << (pos & 7)));
}

void LruHashSet::GrowBuckets() {
  std::unique_ptr<Bucket[]> old = std::move(buckets_);
  const uint32_t old_size = buckets_count_;
  // By half, but no further than a load of 2/5 when full (what a full set is sized for).
  const int64_t needed = (size_ + 1) * 2 / kWays + 1;
  const int64_t grown = std::min<int64_t>(old_size + old_size / 2, effective_ / 2);
  AllocateBuckets(static_cast<uint32_t>(std::max(needed, grown)));
  for (uint32_t k = 0; k < old_size; ++k) {
    for (uint32_t used = old[k].used; used != 0; used &= used - 1) {
      const int way = __builtin_ctz(used);
      InsertSlot(old[k].hash[way], old[k].node[way]);
    }
  }
}

}  // namespace zumik::sched
