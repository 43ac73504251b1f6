// A tokenized prompt with its chained block hashes (vLLM V1 prefix caching): block k's hash is
// xxHash64 of its token ids seeded with block k-1's hash, so equal hashes mean equal prefixes.
// Prompts are immutable and shared: a benchmark that cycles 750 prompts hashes each once.
#pragma once

#include <cstdint>
#include <memory>
#include <span>
#include <string_view>
#include <vector>

#include "sim/tokenizer.h"

namespace zumik::sim {

// The parent hash of a sequence's first block (vLLM's NONE_HASH, fixed here for determinism).
inline constexpr uint64_t kRootBlockHash = 0x5a756d696b53696dULL;  // "ZumikSim"

// Hash of one full block given its parent's hash.
uint64_t HashBlock(uint64_t parent, std::span<const TokenId> tokens);

// Replaces *out with the chained hashes of the full blocks of `tokens` (a partial tail block
// has none).
void ComputeBlockHashes(std::span<const TokenId> tokens, int block_size,
                        std::vector<uint64_t>* out);

struct Prompt {
  std::vector<TokenId> tokens;
  int block_size = 0;
  std::vector<uint64_t> block_hashes;  // one per full block, for `block_size`

  int size() const { return static_cast<int>(tokens.size()); }
};

// Hashes for `block_size`; an engine with another block size rehashes for itself.
std::shared_ptr<const Prompt> MakePrompt(std::vector<TokenId> tokens, int block_size = 16);
std::shared_ptr<const Prompt> MakePromptFromText(std::string_view text, int block_size = 16);

}  // namespace zumik::sim
