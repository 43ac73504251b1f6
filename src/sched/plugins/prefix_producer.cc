// approx-prefix-cache-producer (see prefix_producer.h).
#include "sched/plugins/prefix_producer.h"

#include <algorithm>
#include <cstdint>

#include "core/status.h"
#include "sched/hashing.h"

namespace zumik::sched {

absl::StatusOr<bool> PrefixProducerOptions::Read(PluginParams& params) {
  bool any = false;
  for (std::string_view key :
       {"autoTune", "hashBlockSize", "blockSize", "blockSizeTokens", "maxPrefixBlocksToMatch",
        "maxPrefixTokensToMatch", "lruCapacityPerServer", "maxIndexEntries", "indexResponses"}) {
    any = any || params.Has(key);
  }
  RETURN_IF_ERROR(params.Read("autoTune", &auto_tune));
  // Bytes: GIE v1.0 hashBlockSize, v1.1–1.3 blockSize. Tokens: v1.4+/RTR blockSizeTokens.
  for (std::string_view key : {"hashBlockSize", "blockSize"}) {
    if (params.Has(key)) {
      RETURN_IF_ERROR(params.ReadAtLeast(key, &block_bytes, 1));
    } else {
      params.Ignore(key);
    }
  }
  if (params.Has("blockSizeTokens")) {
    int tokens = 16;
    RETURN_IF_ERROR(params.ReadAtLeast("blockSizeTokens", &tokens, 1));
    if (tokens > (1 << 20)) return params.Error("blockSizeTokens", "is implausibly large");
    block_bytes = tokens * static_cast<int>(kBytesPerToken);
  } else {
    params.Ignore("blockSizeTokens");
  }
  if (params.Has("maxPrefixBlocksToMatch")) {
    RETURN_IF_ERROR(params.ReadAtLeast("maxPrefixBlocksToMatch", &max_prefix_blocks, 0));
    // An explicit block cap wins unless a token cap is also given (RTR precedence).
    if (!params.Has("maxPrefixTokensToMatch")) max_prefix_tokens = 0;
  } else {
    params.Ignore("maxPrefixBlocksToMatch");
  }
  RETURN_IF_ERROR(params.ReadAtLeast("maxPrefixTokensToMatch", &max_prefix_tokens, 0));
  RETURN_IF_ERROR(params.ReadAtLeast("lruCapacityPerServer", &lru_capacity_per_server, 1));
  RETURN_IF_ERROR(params.ReadAtLeast("maxIndexEntries", &max_index_entries, 1));
  RETURN_IF_ERROR(params.Read("indexResponses", &index_responses));
  return any;
}

ApproxPrefixCacheProducer::ApproxPrefixCacheProducer(std::string name,
                                                     const PrefixProducerOptions& options)
    : Plugin(std::string(kType), std::move(name)),
      options_(options),
      index_(options.max_index_entries, options.lru_capacity_per_server),
      block_bytes_(options.block_bytes) {}

absl::StatusOr<std::unique_ptr<Plugin>> ApproxPrefixCacheProducer::Create(const std::string& name,
                                                                          PluginParams& params) {
  PrefixProducerOptions options;
  RETURN_IF_ERROR(options.Read(params).status());
  return std::make_unique<ApproxPrefixCacheProducer>(name, options);
}

int ApproxPrefixCacheProducer::max_blocks() const {
  if (options_.max_prefix_tokens > 0) {
    const int64_t blocks = options_.max_prefix_tokens * kBytesPerToken / block_bytes_;
    return static_cast<int>(std::clamp<int64_t>(blocks, 1, INT32_MAX));
  }
  return static_cast<int>(std::min<int64_t>(options_.max_prefix_blocks, INT32_MAX));
}

void ApproxPrefixCacheProducer::Hash(InferenceRequest& request) const {
  const int max = max_blocks();
  if (request.hashes.block_bytes == block_bytes_ && request.hashes.max_blocks == max) return;
  HashPromptBlocks(request.prompt, PrefixHashSeed(request.TargetModel(), request.cache_salt),
                   block_bytes_, max, &request.hashes.blocks);
  request.hashes.block_bytes = block_bytes_;
  request.hashes.max_blocks = max;
}

void ApproxPrefixCacheProducer::Prepare(InferenceRequest& request,
                                        std::span<const Endpoint> endpoints, CycleState& cycle) {
  if (options_.auto_tune) {
    for (const Endpoint& e : endpoints) {
      if (e.metrics.valid && e.metrics.block_size > 0) {
        const int64_t bytes = e.metrics.block_size * kBytesPerToken;
        if (bytes != block_bytes_ && bytes <= (1 << 22)) {
          // Hashes recorded with another block size can never match again.
          index_.Clear();
          block_bytes_ = static_cast<int>(bytes);
        }
        break;
      }
    }
  }
  Hash(request);
  cycle.prefix_matched = true;
  cycle.total_blocks = static_cast<int32_t>(request.hashes.blocks.size());
  cycle.block_tokens = static_cast<int32_t>(std::max<int64_t>(1, block_bytes_ / kBytesPerToken));
}

void ApproxPrefixCacheProducer::Match(const CycleState& cycle, std::span<Candidate> candidates) {
  ids_.clear();
  for (const Candidate& c : candidates) ids_.push_back(c.id());
  blocks_.resize(candidates.size());
  index_.LongestPrefixes(ids_, cycle.request->hashes.blocks, blocks_);
  for (size_t i = 0; i < candidates.size(); ++i) {
    Candidate& c = candidates[i];
    c.prefix_blocks = blocks_[i];
    c.uncached_tokens = cycle.UncachedTokens(c.prefix_blocks);
  }
}

int64_t ApproxPrefixCacheProducer::CapacityFor(const Endpoint& endpoint) const {
  const EndpointMetrics& m = endpoint.metrics;
  if (options_.auto_tune && m.valid && m.num_gpu_blocks > 0 && m.block_size > 0) {
    // num_gpu_blocks × tokens per vLLM block, in index blocks.
    return std::max<int64_t>(1, m.num_gpu_blocks * m.block_size * kBytesPerToken / block_bytes_);
  }
  return options_.lru_capacity_per_server;
}

void ApproxPrefixCacheProducer::PreRequest(const CycleState& cycle, const Candidate& primary,
                                           Headers& /*headers*/) {
  hit_blocks_ += primary.prefix_blocks;
  looked_up_blocks_ += cycle.total_blocks;
  index_.SetCapacity(primary.id(), CapacityFor(*primary.endpoint));
  index_.Record(primary.id(), cycle.request->hashes.blocks);
}

void ApproxPrefixCacheProducer::RecordServed(const Endpoint& endpoint,
                                             std::span<const uint64_t> prompt_blocks) {
  index_.SetCapacity(endpoint.id, CapacityFor(endpoint));
  index_.Record(endpoint.id, prompt_blocks);
}

void ApproxPrefixCacheProducer::RecordResponse(EndpointId endpoint,
                                               std::span<const uint64_t> prompt_blocks,
                                               std::string_view tail, uint64_t seed,
                                               std::string_view response) {
  const int max = max_blocks();
  const size_t room =
      max > 0 ? static_cast<size_t>(max) - std::min(prompt_blocks.size(), static_cast<size_t>(max))
              : SIZE_MAX;
  if (room == 0 || response.empty()) return;
  // The chain goes on from the prompt's last full block (or the seed) over the prompt's partial
  // last block followed by the response, exactly as hashing the next prompt would cut it.
  joined_.assign(tail);
  joined_.append(response);
  const uint64_t parent = prompt_blocks.empty() ? seed : prompt_blocks.back();
  HashPromptBlocks(joined_, parent, block_bytes_, room == SIZE_MAX ? 0 : static_cast<int>(room),
                   &more_);
  if (more_.empty()) return;
  chain_.assign(prompt_blocks.begin(), prompt_blocks.end());
  chain_.insert(chain_.end(), more_.begin(), more_.end());
  // The whole chain, so the prompt's blocks stay at least as recent as the response's
  // (the index's prefix closure).
  index_.Record(endpoint, chain_);
}

}  // namespace zumik::sched
