// Prefix block hashing (see hashing.h).
//
// Speed: a 128k-token prompt is 8192 chained XXH64 calls on 72 bytes. Only the last 8 input
// bytes of each call (the previous hash) depend on the chain, so for block sizes that are a
// multiple of XXH64's 32-byte stripe the hash is split: the stripe accumulation, merge and
// length step of a block (independent of the chain, throughput-bound) runs while the chained
// 8-byte tail and avalanche of the previous block (latency-bound) wait, so the two overlap.
// The result is bit-for-bit XXH64 (the tests compare with the library); other block sizes call
// the library directly.
#include "sched/hashing.h"

#include <algorithm>
#include <array>
#include <bit>
#include <cstring>

#define XXH_STATIC_LINKING_ONLY  // XXH64_state_t on the stack
#include <xxhash.h>

namespace zumik::sched {
namespace {

constexpr uint64_t kP1 = 0x9E3779B185EBCA87ULL;
constexpr uint64_t kP2 = 0xC2B2AE3D27D4EB4FULL;
constexpr uint64_t kP3 = 0x165667B19E3779F9ULL;
constexpr uint64_t kP4 = 0x85EBCA77C2B2AE63ULL;

inline uint64_t Read64(const char* p) {
  uint64_t v;
  std::memcpy(&v, p, sizeof(v));
  if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap64(v);
  return v;
}

inline uint64_t Round(uint64_t acc, uint64_t input) {
  acc += input * kP2;
  acc = std::rotl(acc, 31);
  return acc * kP1;
}

inline uint64_t MergeRound(uint64_t acc, uint64_t value) {
  acc ^= Round(0, value);
  return acc * kP1 + kP4;
}

// XXH64 (seed 0) of `block` (a multiple of 32 bytes) followed by 8 more bytes, up to the point
// where those 8 bytes enter.
inline uint64_t StripePart(const char* block, size_t len) {
  uint64_t v1 = kP1 + kP2, v2 = kP2, v3 = 0, v4 = uint64_t{0} - kP1;
  for (const char* p = block; p < block + len; p += 32) {
    v1 = Round(v1, Read64(p));
    v2 = Round(v2, Read64(p + 8));
    v3 = Round(v3, Read64(p + 16));
    v4 = Round(v4, Read64(p + 24));
  }
  uint64_t h = std::rotl(v1, 1) + std::rotl(v2, 7) + std::rotl(v3, 12) + std::rotl(v4, 18);
  h = MergeRound(h, v1);
  h = MergeRound(h, v2);
  h = MergeRound(h, v3);
  h = MergeRound(h, v4);
  return h + len + 8;
}

// The rest of XXH64: one 8-byte lane (the previous hash, little-endian) and the avalanche.
inline uint64_t ChainPart(uint64_t h, uint64_t prev) {
  h ^= Round(0, prev);
  h = std::rotl(h, 27) * kP1 + kP4;
  h ^= h >> 33;
  h *= kP2;
  h ^= h >> 29;
  h *= kP3;
  h ^= h >> 32;
  return h;
}

void PutLe64(unsigned char* out, uint64_t v) {
  for (int i = 0; i < 8; ++i) out[i] = static_cast<unsigned char>(v >> (8 * i));
}

}  // namespace

uint64_t PrefixHashSeed(std::string_view target_model, std::string_view cache_salt) {
  XXH64_state_t state;
  XXH64_reset(&state, 0);
  XXH64_update(&state, target_model.data(), target_model.size());
  XXH64_update(&state, cache_salt.data(), cache_salt.size());
  return XXH64_digest(&state);
}

void HashPromptBlocks(std::string_view prompt, uint64_t seed, int block_bytes, int max_blocks,
                      std::vector<uint64_t>* out) {
  out->clear();
  if (block_bytes <= 0) return;
  const size_t len = static_cast<size_t>(block_bytes);
  size_t n = prompt.size() / len;
  if (max_blocks > 0) n = std::min(n, static_cast<size_t>(max_blocks));
  out->resize(n);
  uint64_t* hashes = out->data();
  const char* p = prompt.data();
  if (len % 32 == 0) {
    // Software-pipelined: the stripes of block i + 1 are computed while block i's chain step
    // waits on the previous hash, so the multiplier port stays busy instead of two passes
    // (throughput-bound, then latency-bound) running back to back.
    if (n == 0) return;
    uint64_t prev = seed;
    uint64_t next = StripePart(p, len);
    for (size_t i = 0; i + 1 < n; ++i) {
      const uint64_t current = next;
      next = StripePart(p + (i + 1) * len, len);
      prev = hashes[i] = ChainPart(current, prev);
    }
    hashes[n - 1] = ChainPart(next, prev);
    return;
  }
  XXH64_state_t state;
  unsigned char le[8];
  uint64_t prev = seed;
  for (size_t i = 0; i < n; ++i, p += len) {
    XXH64_reset(&state, 0);
    XXH64_update(&state, p, len);
    PutLe64(le, prev);
    XXH64_update(&state, le, sizeof(le));
    prev = hashes[i] = XXH64_digest(&state);
  }
}

}  // namespace zumik::sched
