// approx-prefix-cache-producer: hashes the request's prompt (once), looks up how many leading
// blocks each candidate holds in the approximate prefix index, and records the request's blocks
// for the chosen endpoint after the pick (with indexResponses, also prompt + response blocks
// when the response ends and the transport reports its text). Consumed by prefix-cache-scorer,
// prefix-cache-affinity-filter, no-hit-lru-scorer, token-load-scorer and predicted-ttft-scorer
// through Candidate::prefix_blocks / uncached_tokens. One per Scheduler: declared explicitly,
// or created implicitly (from prefix-cache-scorer's GIE v1 parameters when it has any).
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string>
#include <string_view>
#include <vector>

#include "absl/status/statusor.h"
#include "sched/params.h"
#include "sched/plugin.h"
#include "sched/prefix_index.h"

namespace zumik::sched {

struct PrefixProducerOptions {
  bool auto_tune = true;  // block bytes = 4 × vllm block_size; capacity = num_gpu_blocks
  int block_bytes = 64;   // when not auto-tuned or the block size is unknown
  // Cap on hashed blocks: RTR's maxPrefixTokensToMatch (131072 tokens: covers 128k-token
  // prompts) when > 0, else maxPrefixBlocksToMatch (0 = unlimited). GIE v1 used 256 blocks.
  int64_t max_prefix_tokens = 131072;
  int64_t max_prefix_blocks = 0;
  int64_t lru_capacity_per_server = PrefixIndex::kDefaultCapacityPerEndpoint;
  int64_t max_index_entries = PrefixIndex::kDefaultMaxEntries;
  // Ours: at a successful completion whose transport reports the response text, also record
  // the blocks of prompt + response for the endpoint that served it, as the engine's prefix
  // cache holds the decoded tokens too (llm-d's precise prefix cache learns them from KV
  // events). A conversation's next turn then matches its whole history there, not just the
  // previous prompt. Off by default (GIE records prompts only).
  bool index_responses = false;

  // Reads the index parameters (GIE v1: hashBlockSize, blockSize; v1.4/RTR: blockSizeTokens,
  // maxPrefixTokensToMatch; both: maxPrefixBlocksToMatch, lruCapacityPerServer, autoTune; ours:
  // maxIndexEntries, indexResponses). Returns whether any was present.
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
  void Prepare(InferenceRequest& request, std::span<const Endpoint> endpoints, CycleState& cycle);
  // Hashes the request with the current settings (no snapshot needed).
  void Hash(InferenceRequest& request) const;
  // Sets prefix_blocks and uncached_tokens of each candidate.
  void Match(const CycleState& cycle, std::span<Candidate> candidates);

  void PreRequest(const CycleState& cycle, const Candidate& primary, Headers& headers) override;
  // indexResponses: records prompt + response for `endpoint`. `prompt_blocks` are the prompt's
  // hashes as recorded at the pick and `tail` its bytes after the last full block; both must
  // have been made with the current block size and cap (the Scheduler checks). Blocks past the
  // cap are not hashed; a prompt that already reached the cap adds nothing.
  void RecordResponse(EndpointId endpoint, std::span<const uint64_t> prompt_blocks,
                      std::string_view tail, uint64_t seed, std::string_view response);
  // The proxy sent the request to `endpoint` instead of the primary it was recorded for at
  // the pick: that endpoint's engine caches the prompt, so its blocks are recorded there too.
  void RecordServed(const Endpoint& endpoint, std::span<const uint64_t> prompt_blocks);
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
  std::vector<uint64_t> chain_;  // scratch: prompt + response hashes
  std::vector<uint64_t> more_;   // scratch: response hashes
  std::string joined_;           // scratch: tail + response
};

}  // namespace zumik::sched
