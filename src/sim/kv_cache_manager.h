// vLLM V1's KVCacheManager for one replica: finds a sequence's cached prefix (GPU blocks, then
// the optional LMCache tier), allocates the slots a step needs, registers full blocks in the
// prefix cache, and frees a sequence's blocks. It owns the BlockPool and the tier.
#pragma once

#include <memory>
#include <vector>

#include "sim/block_pool.h"
#include "sim/lmcache_tier.h"
#include "sim/sequence.h"

namespace zumik::sim {

struct PrefixHit {
  int local_tokens = 0;     // in GPU blocks (block-aligned)
  int external_tokens = 0;  // loaded from the LMCache tier (chunk-aligned end)
  int total() const { return local_tokens + external_tokens; }
};

class KvCacheManager {
 public:
  // `tier_capacity_tokens` <= 0 disables the LMCache tier.
  KvCacheManager(int num_blocks, int block_size, int64_t tier_capacity_tokens = 0,
                 int tier_chunk_size = 256);

  // The longest cached prefix of a sequence with no blocks yet, capped at num_tokens - 1
  // (the last token is always recomputed for its logits) and rounded down to a block. The
  // hit blocks are remembered for the Allocate call that follows.
  PrefixHit FindCachedPrefix(Sequence& seq);

  // Makes room for `num_new_tokens` more tokens after seq.num_computed (plus `hit`, the result
  // of the preceding FindCachedPrefix, when the sequence is being admitted), and registers
  // every block full of known tokens in the prefix cache. Fails, changing nothing, when the
  // free blocks (evictable cached ones included) do not suffice.
  bool Allocate(Sequence& seq, int num_new_tokens, const PrefixHit* hit = nullptr);

  // Releases the sequence's blocks, last block first, so its tail is evicted before its head.
  // For a preempted sequence, `will_retry` keeps its registered blocks as the hint for its next
  // FindCachedPrefix (under KV pressure vLLM preempts and re-admits the same request often).
  void Free(Sequence& seq, bool will_retry = false);

  const BlockPool& pool() const { return pool_; }
  const LmcacheTier* tier() const { return tier_.get(); }
  int block_size() const { return block_size_; }

 private:
  // Computes the hashes of the sequence's full blocks up to `num_blocks` (output blocks).
  void EnsureHashes(Sequence& seq, int num_blocks);

  int block_size_;
  BlockPool pool_;
  std::unique_ptr<LmcacheTier> tier_;
  std::vector<BlockId> hit_blocks_;  // from the last FindCachedPrefix
  std::vector<TokenId> scratch_;     // one block of token ids
};

}  // namespace zumik::sim
