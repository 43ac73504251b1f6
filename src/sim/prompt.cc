// Chained block hashing for prompts (see prompt.h).
#include "sim/prompt.h"

#include <utility>

#include "xxhash.h"

namespace zumik::sim {

uint64_t HashBlock(uint64_t parent, std::span<const TokenId> tokens) {
  return XXH64(tokens.data(), tokens.size_bytes(), parent);
}

void ComputeBlockHashes(std::span<const TokenId> tokens, int block_size,
                        std::vector<uint64_t>* out) {
  const size_t full = tokens.size() / static_cast<size_t>(block_size);
  out->clear();
  out->reserve(full);
  uint64_t parent = kRootBlockHash;
  for (size_t k = 0; k < full; ++k) {
    parent = HashBlock(parent, tokens.subspan(k * block_size, block_size));
    out->push_back(parent);
  }
}

std::shared_ptr<const Prompt> MakePrompt(std::vector<TokenId> tokens, int block_size) {
  auto prompt = std::make_shared<Prompt>();
  prompt->tokens = std::move(tokens);
  prompt->block_size = block_size;
  ComputeBlockHashes(prompt->tokens, block_size, &prompt->block_hashes);
  return prompt;
}

std::shared_ptr<const Prompt> MakePromptFromText(std::string_view text, int block_size) {
  return MakePrompt(Tokenize(text), block_size);
}

}  // namespace zumik::sim
