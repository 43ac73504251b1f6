// The approximate prefix index: per-endpoint LruHashSets under a global entry bound (see
// prefix_index.h).
#include "sched/prefix_index.h"

#include <algorithm>
#include <array>

#include "sched/lru_hash_set.h"

namespace zumik::sched {
namespace {

// The probes testing whether `guess` is the first absent block (block guess − 1 cached, block
// guess not), limited to those strictly between lo and hi; increasing.
int GuessProbes(int32_t lo, int32_t hi, int32_t guess,
                std::array<int32_t, LruHashSet::kSearchWays - 1>& probes) {
  int count = 0;
  for (int32_t p : {guess - 1, guess}) {
    if (p > lo && p < hi) probes[static_cast<size_t>(count++)] = p;
  }
  return count;
}

}  // namespace

PrefixIndex::PrefixIndex(int64_t max_entries, int64_t default_capacity, double lru_slack)
    : max_entries_(std::max<int64_t>(0, max_entries)),
      default_capacity_(std::max<int64_t>(0, default_capacity)),
      lru_slack_(std::clamp(lru_slack, 0.0, 1.0)) {}

PrefixIndex::~PrefixIndex() = default;

LruHashSet* PrefixIndex::Find(EndpointId endpoint) const {
  return endpoint < tables_.size() ? tables_[endpoint].get() : nullptr;
}

int64_t PrefixIndex::Share() const { return max_entries_ / std::max<int64_t>(1, num_tables_); }

void PrefixIndex::Rebalance() {
  const int64_t share = Share();
  for (auto& table : tables_) {
    if (table) table->SetCapacity(table->capacity(), share);
  }
}

LruHashSet& PrefixIndex::GetOrCreate(EndpointId endpoint) {
  if (endpoint >= tables_.size()) tables_.resize(static_cast<size_t>(endpoint) + 1);
  if (!tables_[endpoint]) {
    tables_[endpoint] = std::make_unique<LruHashSet>(default_capacity_, lru_slack_, &size_);
    ++num_tables_;
    Rebalance();
  }
  return *tables_[endpoint];
}

void PrefixIndex::SetCapacity(EndpointId endpoint, int64_t capacity) {
  LruHashSet& table = GetOrCreate(endpoint);
  if (table.capacity() != capacity) table.SetCapacity(capacity, Share());
}

void PrefixIndex::Record(EndpointId endpoint, std::span<const uint64_t> hashes) {
  GetOrCreate(endpoint).Record(hashes);
}

int32_t PrefixIndex::LongestPrefix(EndpointId endpoint, std::span<const uint64_t> hashes) const {
  const LruHashSet* table = Find(endpoint);
  return table == nullptr ? 0 : table->LongestPrefix(hashes);
}

void PrefixIndex::LongestPrefixes(std::span<const EndpointId> endpoints,
                                  std::span<const uint64_t> hashes, std::span<int32_t> out) const {
  const int32_t n = static_cast<int32_t>(hashes.size());
  struct Search {
    const LruHashSet* table;
    int32_t lo;  // cached
    int32_t hi;  // not cached
    uint32_t out;
    int count = 0;  // probes this round
  };
  constexpr size_t kBatch = 64;
  std::array<Search, kBatch> active;
  for (size_t begin = 0; begin < endpoints.size(); begin += kBatch) {
    const size_t end = std::min(endpoints.size(), begin + kBatch);
    size_t live = 0;
    for (size_t k = begin; k < end; ++k) {
      out[k] = 0;
      const LruHashSet* table = Find(endpoints[k]);
      if (table == nullptr || table->size() == 0 || n == 0) continue;
      table->Prefetch(hashes[0]);
      active[live++] = Search{table, 0, n - 1, static_cast<uint32_t>(k), 0};
    }
    // Round 1: block 0 (absent: nothing cached). Round 2: the last block (present: all cached).
    size_t kept = 0;
    for (size_t a = 0; a < live; ++a) {
      if (!active[a].table->Contains(hashes[0])) continue;
      active[a].table->Prefetch(hashes[static_cast<size_t>(n - 1)]);
      active[kept++] = active[a];
    }
    live = kept;
    kept = 0;
    for (size_t a = 0; a < live; ++a) {
      if (active[a].table->Contains(hashes[static_cast<size_t>(n - 1)])) {
        out[active[a].out] = n;
      } else {
        out[active[a].out] = 1;  // at least block 0; refined below
        active[kept++] = active[a];
      }
    }
    live = kept;
    std::array<int32_t, LruHashSet::kSearchWays - 1> probes;
    // Endpoints holding part of a prompt mostly hold the same part (a system prompt or a
    // conversation recorded whole), so one endpoint's answer is a good guess for the rest:
    // search it alone (a few rounds of one probe batch each), then test the guess on all the
    // others in one round of two probes each. That settles most of them; the k-ary rounds
    // below finish the rest from the narrowed bounds. Any guess gives the same answers.
    if (live > 1) {
      const Search& first = active[0];
      const int32_t guess = first.table->SearchBetween(hashes, first.lo, first.hi);
      out[first.out] = guess;
      for (size_t a = 1; a < live; ++a) {
        Search& s = active[a];
        s.count = GuessProbes(s.lo, s.hi, guess, probes);
        for (int j = 0; j < s.count; ++j) {
          s.table->Prefetch(hashes[static_cast<size_t>(probes[static_cast<size_t>(j)])]);
        }
      }
      for (size_t a = 1; a < live; ++a) {
        Search& s = active[a];
        GuessProbes(s.lo, s.hi, guess, probes);
        s.table->NarrowSearch(hashes, probes, s.count, s.lo, s.hi);
        active[a - 1] = s;
      }
      --live;
    }
    // k-ary rounds: every probe of a round, over all endpoints, is prefetched before any is
    // read, so a round costs about one cache miss.
    while (live > 0) {
      kept = 0;
      for (size_t a = 0; a < live; ++a) {
        Search& s = active[a];
        if (s.hi - s.lo <= 1) {
          out[s.out] = s.lo + 1;
          continue;
        }
        s.count = LruHashSet::SearchProbes(s.lo, s.hi, probes);
        for (int j = 0; j < s.count; ++j) {
          s.table->Prefetch(hashes[static_cast<size_t>(probes[static_cast<size_t>(j)])]);
        }
        active[kept++] = s;
      }
      live = kept;
      for (size_t a = 0; a < live; ++a) {
        Search& s = active[a];
        LruHashSet::SearchProbes(s.lo, s.hi, probes);
        s.table->NarrowSearch(hashes, probes, s.count, s.lo, s.hi);
      }
    }
  }
}

bool PrefixIndex::Contains(EndpointId endpoint, uint64_t hash) const {
  const LruHashSet* table = Find(endpoint);
  return table != nullptr && table->Contains(hash);
}

void PrefixIndex::RemoveEndpoint(EndpointId endpoint) {
  LruHashSet* table = Find(endpoint);
  if (table == nullptr) return;
  size_ -= table->size();
  tables_[endpoint].reset();
  --num_tables_;
  Rebalance();
}

void PrefixIndex::Clear() {
  tables_.clear();
  num_tables_ = 0;
  size_ = 0;
}

int64_t PrefixIndex::EntriesOf(EndpointId endpoint) const {
  const LruHashSet* table = Find(endpoint);
  return table ? table->size() : 0;
}

int64_t PrefixIndex::CapacityOf(EndpointId endpoint) const {
  const LruHashSet* table = Find(endpoint);
  return table ? table->effective() : std::min(default_capacity_, max_entries_);
}

int64_t PrefixIndex::MemoryBytes() const {
  int64_t bytes = static_cast<int64_t>(tables_.capacity() * sizeof(tables_[0]));
  for (const auto& table : tables_) {
    if (table) bytes += table->MemoryBytes() + static_cast<int64_t>(sizeof(LruHashSet));
  }
  return bytes;
}

std::vector<uint64_t> PrefixIndex::LruOrder(EndpointId endpoint) const {
  const LruHashSet* table = Find(endpoint);
  return table ? table->LruOrder() : std::vector<uint64_t>{};
}

}  // namespace zumik::sched
