// One endpoint's LRU set of prompt-block hashes: the unit the approximate prefix index is made
// of (see prefix_index.h for the layout, the LRU slack and why lookups are k-ary searches).
// Internal to src/sched.
#pragma once

#include <array>
#include <cstdint>
#include <memory>
#include <span>
#include <vector>

namespace zumik::sched {

class LruHashSet {
 public:
  // `total` is the index-wide entry counter this set keeps up to date.
  LruHashSet(int64_t capacity, double slack, int64_t* total);

  int64_t size() const { return size_; }
  int64_t capacity() const { return capacity_; }
  int64_t effective() const { return effective_; }
  int64_t MemoryBytes() const;

  // Capacity in entries, bounded by `share` (of the global cap). Shrinking evicts now.
  void SetCapacity(int64_t capacity, int64_t share);
  // Records a request's blocks (at most `effective` of them), block 0 most recent.
  void Record(std::span<const uint64_t> hashes);
  // Leading blocks of `hashes` present (8-ary search; valid by prefix-closure).
  int32_t LongestPrefix(std::span<const uint64_t> hashes) const;
  bool Contains(uint64_t hash) const { return Find(hash) != kNil; }
  // Starts loading the cache line where `hash` would be.
  void Prefetch(uint64_t hash) const {
    __builtin_prefetch(&slots_[static_cast<uint32_t>(hash) & mask_]);
  }
  std::vector<uint64_t> LruOrder() const;  // most recent first

  // The k-ary search over a prefix-closed chain shared with PrefixIndex::LongestPrefixes:
  // with block lo cached and block hi not (hi - lo > 1), SearchProbes writes up to
  // kSearchWays - 1 increasing positions strictly between them and returns their count;
  // NarrowSearch then moves lo to the last cached probe and hi to the first absent one.
  static constexpr int kSearchWays = 8;
  static int SearchProbes(int32_t lo, int32_t hi, std::array<int32_t, kSearchWays - 1>& probes) {
    const int32_t gap = hi - lo;
    const int count = gap - 1 < kSearchWays - 1 ? static_cast<int>(gap - 1) : kSearchWays - 1;
    for (int j = 0; j < count; ++j) {
      probes[static_cast<size_t>(j)] =
          lo + static_cast<int32_t>(int64_t{gap} * (j + 1) / (count + 1));
    }
    return count;
  }
  // Completes a search with block lo cached and block hi not: the first absent block.
  int32_t SearchBetween(std::span<const uint64_t> hashes, int32_t lo, int32_t hi) const;
  void NarrowSearch(std::span<const uint64_t> hashes,
                    const std::array<int32_t, kSearchWays - 1>& probes, int count, int32_t& lo,
                    int32_t& hi) const {
    for (int j = 0; j < count; ++j) {
      const int32_t p = probes[static_cast<size_t>(j)];
      if (!Contains(hashes[static_cast<size_t>(p)])) {
        hi = p;
        return;
      }
      lo = p;
    }
  }

 private:
  static constexpr uint32_t kNil = UINT32_MAX;

  // An entry of the LRU list. Nodes never move (slots do), so deleting from the hash table
  // needs no list fix-ups, and a node freed by an eviction is reused, still in cache, by the
  // insert. Stamps never increase towards the tail (a front insertion takes the next clock
  // value, a node linked behind another takes that one's), so a stamp tells how recently a
  // node was placed.
  struct Node {
    uint32_t hash_lo;
    uint32_t hash_hi;
    uint32_t prev;   // towards the most recent
    uint32_t next;   // towards the least recent; the free list when unused
    uint32_t stamp;  // clock when placed (wraps; compared by difference)
    uint64_t hash() const { return (uint64_t{hash_hi} << 32) | hash_lo; }
  };
  // A hash table slot: the full hash (so probes never touch a node) and its node.
  struct Slot {
    uint32_t hash_lo;
    uint32_t hash_hi;
    uint32_t node;  // kNil = empty
  };

  uint32_t Find(uint64_t hash) const {
    for (uint32_t i = static_cast<uint32_t>(hash) & mask_;; i = (i + 1) & mask_) {
      const Slot& s = slots_[i];
      if (s.node == kNil) return kNil;
      if (s.hash_lo == static_cast<uint32_t>(hash) && s.hash_hi == (hash >> 32)) return i;
    }
  }
  void PrefetchNode(uint64_t hash) const;
  void Touch(uint64_t hash);
  bool RecordBehindRecentPrefix(std::span<const uint64_t> hashes);
  void AllocateSlots(uint32_t n);
  uint32_t NewNode(uint64_t hash);
  void InsertSlot(uint64_t hash, uint32_t node);
  void PushFront(uint32_t n);
  void LinkAfter(uint32_t pos, uint32_t n);
  void Unlink(uint32_t n);
  void EvictTail();
  void EraseSlot(uint32_t i);
  void GrowSlots();

  static_assert(sizeof(Node) == 20 && sizeof(Slot) == 12);
  std::unique_ptr<Slot[]> slots_;
  uint32_t mask_ = 0;
  std::vector<Node> nodes_;
  uint32_t free_ = kNil;
  uint32_t head_ = kNil;  // most recently used
  uint32_t tail_ = kNil;  // least recently used
  uint32_t clock_ = 0;  // placements so far (wraps)
  int64_t size_ = 0;
  int64_t capacity_;
  int64_t effective_;
  double slack_;
  int64_t* total_;
};

}  // namespace zumik::sched
