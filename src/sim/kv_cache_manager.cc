// KV cache manager: prefix lookup, slot allocation, block registration (see kv_cache_manager.h).
#include "sim/kv_cache_manager.h"

#include <algorithm>
#include <cassert>

namespace zumik::sim {

KvCacheManager::KvCacheManager(int num_blocks, int block_size, int64_t tier_capacity_tokens,
                               int tier_chunk_size)
    : block_size_(block_size), pool_(num_blocks, block_size), scratch_(block_size) {
  hit_blocks_.reserve(1024);
  if (tier_capacity_tokens > 0) {
    tier_ = std::make_unique<LmcacheTier>(tier_capacity_tokens, block_size, tier_chunk_size);
    pool_.set_spill([tier = tier_.get()](uint64_t hash) { tier->Store(hash); });
  }
}

void KvCacheManager::EnsureHashes(Sequence& seq, int num_blocks) {
  while (seq.num_hashed() < num_blocks) {
    const int k = seq.num_hashed();
    const uint64_t parent = k == 0 ? kRootBlockHash : seq.block_hash(k - 1);
    const int start = k * block_size_;
    for (int i = 0; i < block_size_; ++i) scratch_[i] = seq.token(start + i);
    seq.output_hashes.push_back(HashBlock(parent, scratch_));
  }
}

PrefixHit KvCacheManager::FindCachedPrefix(Sequence& seq) {
  assert(seq.blocks.empty());
  hit_blocks_.clear();
  const int max_blocks = (seq.num_tokens() - 1) / block_size_;
  EnsureHashes(seq, max_blocks);
  // Keep the still-valid part of the previous lookup, then extend it through the cache map.
  int k = 0;
  const int known = std::min(static_cast<int>(seq.last_hit.size()), max_blocks);
  while (k < known && pool_.Holds(seq.last_hit[k], seq.block_hash(k))) {
    hit_blocks_.push_back(seq.last_hit[k]);
    ++k;
  }
  for (; k < max_blocks; ++k) {
    const BlockId block = pool_.Lookup(seq.block_hash(k));
    if (block == kNoBlock) break;
    hit_blocks_.push_back(block);
  }
  seq.last_hit.assign(hit_blocks_.begin(), hit_blocks_.end());
  PrefixHit hit;
  hit.local_tokens = k * block_size_;
  if (tier_ != nullptr && k < max_blocks) {
    int end = k;
    while (end < max_blocks && tier_->Touch(seq.block_hash(end))) ++end;
    const int end_tokens = tier_->RoundDownToChunk(end * block_size_);
    hit.external_tokens = std::max(0, end_tokens - hit.local_tokens);
  }
  return hit;
}

bool KvCacheManager::Allocate(Sequence& seq, int num_new_tokens, const PrefixHit* hit) {
  if (hit == nullptr) {
    // Fast path, most decode steps: the last block has room and fills no new block.
    const int need_tokens = seq.num_computed + num_new_tokens;
    if (need_tokens <= static_cast<int>(seq.blocks.size()) * block_size_ &&
        std::min(need_tokens, seq.num_tokens()) / block_size_ <= seq.num_cached_blocks) {
      return true;
    }
  }
  const int hit_blocks = hit != nullptr ? hit->local_tokens / block_size_ : 0;
  assert(hit == nullptr ||
         (seq.blocks.empty() && hit_blocks <= static_cast<int>(hit_blocks_.size())));
  const int computed = seq.num_computed + (hit != nullptr ? hit->total() : 0);
  const int need_tokens = computed + num_new_tokens;
  const int need_blocks = (need_tokens + block_size_ - 1) / block_size_;
  const int have_blocks = static_cast<int>(seq.blocks.size()) + hit_blocks;
  const int fresh = std::max(0, need_blocks - have_blocks);
  // Hit blocks nobody references sit in the free queue: taking them costs free blocks too.
  int free_hits = 0;
  for (int i = 0; i < hit_blocks; ++i) free_hits += pool_.ref_count(hit_blocks_[i]) == 0;
  if (fresh + free_hits > pool_.num_free_blocks()) return false;

  for (int i = 0; i < hit_blocks; ++i) {
    pool_.Touch(hit_blocks_[i]);
    seq.blocks.push_back(hit_blocks_[i]);
  }
  if (hit != nullptr) {
    seq.num_cached_blocks = hit_blocks;
    seq.last_hit.clear();
  }
  pool_.AllocateMany(fresh, &seq.blocks);

  // As vLLM, blocks are registered as soon as the step that fills them is scheduled.
  const int full = std::min(need_tokens, seq.num_tokens()) / block_size_;
  EnsureHashes(seq, full);
  for (int k = seq.num_cached_blocks; k < full; ++k) pool_.Cache(seq.blocks[k], seq.block_hash(k));
  seq.num_cached_blocks = std::max(seq.num_cached_blocks, full);
  return true;
}

void KvCacheManager::Free(Sequence& seq, bool will_retry) {
  if (will_retry) {
    seq.last_hit.assign(seq.blocks.begin(), seq.blocks.begin() + seq.num_cached_blocks);
  }
  for (auto it = seq.blocks.rbegin(); it != seq.blocks.rend(); ++it) pool_.Release(*it);
  seq.blocks.clear();
  seq.num_cached_blocks = 0;
}

}  // namespace zumik::sim
