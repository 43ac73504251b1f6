// Output token ids and natural stop lengths (see sequence.h).
#include "sim/sequence.h"

#include <algorithm>
#include <cmath>

#include "core/rng.h"

namespace zumik::sim {
namespace {
inline uint64_t Mix64(uint64_t x) {  // splitmix64's finaliser
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}
}  // namespace

TokenId OutputTokenId(uint64_t stream, int index) {
  return static_cast<TokenId>(Mix64(stream + 0x9e3779b97f4a7c15ULL * (index + 1)) >> 32);
}

uint64_t OutputStream(const RequestSpec& spec) {
  uint64_t content = kRootBlockHash;
  if (spec.prompt) {
    const Prompt& p = *spec.prompt;
    // The last full block's hash covers the whole prefix; the tail and length cover the rest.
    if (!p.block_hashes.empty()) content = p.block_hashes.back();
    content = Mix64(content ^ static_cast<uint64_t>(p.tokens.size()));
    if (!p.tokens.empty()) content = Mix64(content ^ p.tokens.back());
  }
  return Mix64(content ^ Mix64(spec.seed + 0x632be59bd9b4e019ULL));
}

int NaturalStopLength(uint64_t stream, uint64_t engine_seed, int min_tokens, double mean) {
  Rng rng(Mix64(stream ^ Mix64(engine_seed)));
  // Geometric on {1, 2, ...} with mean `mean`: success probability p = 1/mean.
  const double p = 1.0 / std::max(1.0, mean);
  int draw = 1;
  if (p < 1.0) {
    const double u = 1.0 - rng.Uniform();  // (0, 1]
    const double extra = std::floor(std::log(u) / std::log1p(-p));
    draw = 1 + static_cast<int>(std::min(extra, 1e9));
  }
  return std::max(min_tokens, 0) + draw;
}

}  // namespace zumik::sim
