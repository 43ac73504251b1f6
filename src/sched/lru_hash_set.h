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
  void Prefetch(uint64_t hash) const { __builtin_prefetch(&buckets_[Home(hash)]); }
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

  // An entry of the LRU list. Nodes never move (table entries do, when the table grows), so
  // deleting from the hash table needs no list fix-ups, and a node freed by an eviction is reused,
  // still in cache, by the insert. Stamps never increase towards the tail (a front insertion takes
  // the next clock value, a node linked behind another takes that one's), so a stamp tells how
  // recently a node was placed.
  struct Node {
    uint32_t hash_lo;
    uint32_t hash_hi;
    uint32_t prev;   // towards the most recent
    uint32_t next;   // towards the least recent; the free list when unused
    uint32_t stamp;  // clock when placed (wraps; compared by difference)
    uint64_t hash() const { return (uint64_t{hash_hi} << 32) | hash_lo; }
  };
  // The hash table: buckets of one cache line holding up to kWays entries (full hash and node;
  // probes never touch a node). An entry lives in its home bucket or, when that is full, in the
  // first bucket after it with room; every full bucket passed over counts it in `overflow`, so a
  // search stops at the first bucket with no overflow. A search compares all ways of a bucket
  // at once (no per-slot branches), and a deletion just frees its way (no shifting).
  static constexpr int kWays = 5;
  static constexpr uint32_t kAllWays = (1u << kWays) - 1;
  struct alignas(64) Bucket {
    uint64_t hash[kWays];
    uint32_t node[kWays];
    uint8_t used = 0;  // bit w: way w holds an entry
    uint8_t pad = 0;
    uint16_t overflow = 0;  // entries that live past this bucket while their search passes it
  };
  // A count that reached this stays (searches then always go on past the bucket).
  static constexpr uint16_t kOverflowSaturated = UINT16_MAX;
  // An entry's position: bucket × 8 + way.
  static uint32_t Pos(uint32_t bucket, int way) { return bucket * 8 + static_cast<uint32_t>(way); }
  // Bucket counts are not powers of two (growth is by half), so the low 32 bits of the hash,
  // mixed (a bijection, in case only their low bits vary), are scaled to the count.
  uint32_t Home(uint64_t hash) const {
    const uint32_t mixed = static_cast<uint32_t>(hash) * 0x9E3779B1u;
    return static_cast<uint32_t>((uint64_t{mixed} * buckets_count_) >> 32);
  }
  uint32_t Next(uint32_t bucket) const { return bucket + 1 == buckets_count_ ? 0 : bucket + 1; }
  uint32_t NodeAt(uint32_t pos) const { return buckets_[pos >> 3].node[pos & 7]; }
  // Ways of `b` holding `hash`, as a bit mask (compared branch-free).
  static uint32_t Matches(const Bucket& b, uint64_t hash) {
    static_assert(kWays == 5);
    const uint32_t m = static_cast<uint32_t>(b.hash[0] == hash) |
                       static_cast<uint32_t>(b.hash[1] == hash) << 1 |
                       static_cast<uint32_t>(b.hash[2] == hash) << 2 |
                       static_cast<uint32_t>(b.hash[3] == hash) << 3 |
                       static_cast<uint32_t>(b.hash[4] == hash) << 4;
    return m & b.used;
  }
  uint32_t Find(uint64_t hash) const {
    uint32_t i = Home(hash);
    for (uint32_t searched = 0; searched < buckets_count_; ++searched, i = Next(i)) {
      const Bucket& b = buckets_[i];
      const uint32_t m = Matches(b, hash);
      if (m != 0) return Pos(i, __builtin_ctz(m));
      if (b.overflow == 0) return kNil;
    }
    return kNil;
  }
  void PrefetchNode(uint64_t hash) const;
  void Touch(uint64_t hash);
  bool RecordBehindRecentPrefix(std::span<const uint64_t> hashes);
  void AllocateBuckets(uint32_t n);
  uint32_t NewNode(uint64_t hash);
  void InsertSlot(uint64_t hash, uint32_t node);
  void PushFront(uint32_t n);
  void LinkAfter(uint32_t pos, uint32_t n);
  void Unlink(uint32_t n);
  void EvictTail();
  void EraseSlot(uint32_t pos);
  void GrowBuckets();
  bool NeedsGrowth() const {
    return (size_ + 1) * 2 > static_cast<int64_t>(buckets_count_) * kWays;
  }

  static_assert(sizeof(Node) == 20 && sizeof(Bucket) == 64);
  std::unique_ptr<Bucket[]> buckets_;
  uint32_t buckets_count_ = 0;
  std::vector<Node> nodes_;
  uint32_t free_ = kNil;
  uint32_t head_ = kNil;       // most recently used
  uint32_t tail_ = kNil;       // least recently used
  uint32_t lookahead_ = kNil;  // a hint: about kVictimAhead nodes before the tail
  uint32_t clock_ = 0;         // placements so far (wraps)
  int64_t size_ = 0;
  int64_t capacity_;
  int64_t effective_;
  double slack_;
  int64_t* total_;
};

}  // namespace zumik::sched
