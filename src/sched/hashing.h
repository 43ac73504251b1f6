// Prefix block hashing, as the GIE approximate prefix plugin (v1.2+) does it: the prompt bytes
// are cut into fixed-size blocks (trailing partial block ignored) and chained with xxHash64,
//   seed    = XXH64(target_model ‖ cache_salt)
//   block_i = XXH64(bytes_i ‖ LE64(block_{i-1}))   (block_{-1} = seed; XXH64 seed 0)
// so equal hashes at position i imply equal prompts up to the end of block i.
#pragma once

#include <cstdint>
#include <string_view>
#include <vector>

namespace zumik::sched {

inline constexpr int kDefaultBlockBytes = 64;  // 16 tokens × 4 bytes

uint64_t PrefixHashSeed(std::string_view target_model, std::string_view cache_salt);

// Writes the chained hashes of the first min(prompt.size() / block_bytes, max_blocks) blocks
// into *out (max_blocks <= 0: no cap). block_bytes must be > 0.
void HashPromptBlocks(std::string_view prompt, uint64_t seed, int block_bytes, int max_blocks,
                      std::vector<uint64_t>* out);

}  // namespace zumik::sched
