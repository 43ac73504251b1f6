// approx-prefix-cache-producer: hashes the request's prompt (once), looks up how many leading
// blocks each candidate holds in the approximate prefix index, and records the request's blocks
// for the chosen endpoint after the pick. Consumed by prefix-cache-scorer,
// prefix-cache-affinity-filter, no-hit-lru-scorer, token-load-scorer and predicted-ttft-scorer
// through Candidate::prefix_blocks / uncached_tokens. One per Scheduler: declared explicitly,
// or created implicitly (from prefix-cache-scorer's GIE v1 parameters when it has any).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "sched/params.h"
#include "sched/plugin.h"
#include "sched/prefix_index.h"

namespace zumik::sched {

struct PrefixProducerOptions {
  bool auto_tune = true;      // block bytes = 4 × vllm block_size; capacity = num_gpu_blocks
  int block_bytes = 64;       // when not auto-tuned or the block size is unknown
  // Cap on hashed blocks: RTR's maxPrefixTokensToMatch (131072 tokens: covers 128k-token
  // prompts) when > 0, else maxPrefixBlocksToMatch (0 = unlimited). GIE v1 used 256 blocks.
  int64_t max_prefix_tokens = 131072;
  int64_t max_prefix_blocks = 0;
  int64_t lru_capacity_per_server = PrefixIndex::kDefaultCapacityPerEndpoint;
  int64_t max_index_entries = PrefixIndex::kDefaultMaxEntries;

  // Reads the index parameters (GIE v1: hashBlockSize, blockSize; v1.4/RTR: blockSizeTokens,
  // maxPrefixTokensToMatch; both: maxPrefixBlocksToMatch, lruCapacityPerServer, autoTune; ours:
  // maxIndexEntries). Returns whether any was present.
  absl::StatusOr<bool> Read(PluginParams& params);
};

class ApproxPrefixCacheProducer final : public Plugin {
 public:
  static constexpr std::string_view kType = "approx-prefix-cache-producer";
  ApproxPrefixCacheProducer(std::string name, const PrefixProducerOptions& options);
  static absl::StatusOr<std::unique_ptr<Plugin>> Create(const std::string& name,
                                                        PluginParams& params);

  PluginKind kind() const override { return PluginKind::kProducer; }
  const PrefixProducerOptions& options() const { return options_; }

  // Settles the block size (auto-tune from the snapshot; a change clears the index), hashes the
  // request if it was not hashed with these settings, and fills cycle.total_blocks/block_tokens.
  void Prepare(InferenceRequest& request, std::span<const Endpoint> endpoints,
               CycleState& cycle);
  // Hashes the request with the current settings (no snapshot needed).
  void Hash(InferenceRequest& request) const;
  // Sets prefix_blocks and uncached_tokens of each candidate.
  void Match(const CycleState& cycle, std::span<Candidate> candidates);

  void PreRequest(const CycleState& cycle, const Candidate& primary, Headers& headers) override;
  void OnEndpointRemoved(EndpointId endpoint) override { index_.RemoveEndpoint(endpoint); }

  const PrefixIndex& index() const { return index_; }
  int block_bytes() const { return block_bytes_; }
  int max_blocks() const;
  // Lookups of the primary target: blocks matched and blocks looked up (hit ratio).
  int64_t hit_blocks() const { return hit_blocks_; }
  int64_t looked_up_blocks() const { return looked_up_blocks_; }

 private:
  int64_t CapacityFor(const Endpoint& endpoint) const;

  PrefixProducerOptions options_;
  PrefixIndex index_;
  int block_bytes_;
  int64_t hit_blocks_ = 0;
  int64_t looked_up_blocks_ = 0;
  std::vector<EndpointId> ids_;  // scratch
  std::vector<int32_t> blocks_;  // scratch
};

}  // namespace zumik::sched
