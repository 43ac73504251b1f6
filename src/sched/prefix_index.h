// The approximate prefix index: which endpoint was recently sent which prompt blocks. It is the
// router's guess of each endpoint's prefix cache (GIE "approximate prefix cache"), updated at
// pick time for the chosen endpoint (and, with the producer's indexResponses, with the response
// text at completion), never from the model server's cache events.
//
// Layout: one LRU hash set per endpoint. The LRU list is an array of 20-byte nodes
// {hash, prev, next, stamp} with 32-bit links that never move (grown by an eighth at a time,
// never past the capacity); a table of 64-byte buckets, each one cache line of up to 5
// {hash, node} entries, finds them. An entry lives in its home bucket or, when that is full, in
// the next one with room (linear probing by bucket, with per-bucket overflow counts telling a
// search when to stop); a probe compares all 5 ways without branching, and a deletion frees its
// way without moving anything. The load stays between 1/3 and 1/2 (growth by half; a full set
// sits at 2/5). An entry costs ≤ 22.5 + 64 / (5/3) ≈ 61 bytes, ~52 at capacity; probes read
// only buckets, and an insert that evicts reuses the evicted node, still in cache, so churn
// costs two bucket lines per block (the new block's and the victim's) and few mispredicted
// branches.
//
// LRU slack: re-touching a long shared prefix on every request is most of the cost of a pick
// (each block is a cache miss). When the deepest block of an n-block request already cached on
// the endpoint was placed fewer than W = lru_slack × (capacity − n) placements ago (by stamp),
// the request's new blocks are linked in right behind it and the prefix is left in place.
// Order along every chain is kept, so the prefix-closure below still holds exactly. A prefix
// reused every I placements is refreshed at least every W + I, so with lru_slack ≤ 1/3
// (2W + n ≤ capacity) it survives exactly when strict LRU would keep it; lru_slack = 0 is
// strict LRU.
//
// Lookup exploits the chain: Record touches a request's blocks deepest first, so within any
// chain a shallower block is never less recent than a deeper one, and LRU eviction always
// removes the deepest blocks first. Presence along a chain is therefore prefix-closed, and the
// longest cached prefix on an endpoint is found by an 8-ary search: O(log blocks) probes per
// endpoint in 3 rounds for 512 blocks (each round's probes overlap their cache misses),
// independent of how many endpoints share a prefix. Across endpoints (LongestPrefixes), one
// endpoint's answer is first tried on all the others (two probes each), since endpoints holding
// part of a prompt mostly hold the same part: ~2 probes per endpoint instead of ~21.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <vector>

#include "sched/endpoint.h"

namespace zumik::sched {

class LruHashSet;

class PrefixIndex {
 public:
  // GIE's lruCapacityPerServer default (Llama-3-8B on an H100: ~500k tokens / 16).
  static constexpr int64_t kDefaultCapacityPerEndpoint = 31250;
  // Global bound on entries (≈ 256 MB at the worst-case 61 B per entry), shared equally by
  // the endpoints present in the index.
  static constexpr int64_t kDefaultMaxEntries = int64_t{1} << 22;
  static constexpr double kDefaultLruSlack = 1.0 / 3;

  explicit PrefixIndex(int64_t max_entries = kDefaultMaxEntries,
                       int64_t default_capacity = kDefaultCapacityPerEndpoint,
                       double lru_slack = kDefaultLruSlack);
  ~PrefixIndex();
  PrefixIndex(const PrefixIndex&) = delete;
  PrefixIndex& operator=(const PrefixIndex&) = delete;

  // Per-endpoint LRU capacity in entries (e.g. its num_gpu_blocks). Shrinking evicts now.
  void SetCapacity(EndpointId endpoint, int64_t capacity);
  // Records that `endpoint` now holds the blocks (block 0 becomes the most recent).
  void Record(EndpointId endpoint, std::span<const uint64_t> hashes);
  // Number of leading blocks of `hashes` cached on `endpoint`.
  int32_t LongestPrefix(EndpointId endpoint, std::span<const uint64_t> hashes) const;
  // The same for many endpoints at once (out[i] for endpoints[i]): the searches run in
  // lockstep with each round's probes prefetched, so their cache misses overlap.
  void LongestPrefixes(std::span<const EndpointId> endpoints, std::span<const uint64_t> hashes,
                       std::span<int32_t> out) const;
  bool Contains(EndpointId endpoint, uint64_t hash) const;
  // Forgets an endpoint (a vanished pod).
  void RemoveEndpoint(EndpointId endpoint);
  void Clear();

  int64_t size() const { return size_; }
  int64_t EntriesOf(EndpointId endpoint) const;
  // Capacity in force for the endpoint: its own, bounded by its share of the global cap.
  int64_t CapacityOf(EndpointId endpoint) const;
  int64_t max_entries() const { return max_entries_; }
  // Bytes held by the index's tables (what the per-entry bound is measured on).
  int64_t MemoryBytes() const;
  // The endpoint's entries, most recently used first (tests, debugging).
  std::vector<uint64_t> LruOrder(EndpointId endpoint) const;

 private:
  LruHashSet* Find(EndpointId endpoint) const;
  LruHashSet& GetOrCreate(EndpointId endpoint);
  int64_t Share() const;
  void Rebalance();

  int64_t max_entries_;
  int64_t default_capacity_;
  double lru_slack_;
  std::vector<std::unique_ptr<LruHashSet>> tables_;  // indexed by EndpointId
  int64_t num_tables_ = 0;
  int64_t size_ = 0;
};

}  // namespace zumik::sched
