// Tokenizer stand-in (see tokenizer.h for the contract).
#include "sim/tokenizer.h"

#include <bit>
#include <cstring>

namespace zumik::sim {
namespace {

// MurmurHash3's fmix32: a bijection on uint32, so distinct 4-byte groups never collide.
inline uint32_t Mix32(uint32_t h) {
  h ^= h >> 16;
  h *= 0x85ebca6bU;
  h ^= h >> 13;
  h *= 0xc2b2ae35U;
  h ^= h >> 16;
  return h;
}

inline uint32_t LoadLittleEndian(const char* p, size_t n) {
  uint32_t v = 0;
  for (size_t i = 0; i < n; ++i) v |= static_cast<uint32_t>(static_cast<uint8_t>(p[i])) << (8 * i);
  return v;
}

}  // namespace

int TokenCount(std::string_view text) {
  return static_cast<int>((text.size() + kBytesPerToken - 1) / kBytesPerToken);
}

void TokenizeInto(std::string_view text, std::vector<TokenId>* out) {
  const size_t full = text.size() / kBytesPerToken;
  const size_t rest = text.size() % kBytesPerToken;
  out->resize(full + (rest ? 1 : 0));
  TokenId* dst = out->data();
  const char* src = text.data();
  for (size_t i = 0; i < full; ++i) {
    uint32_t v;
    std::memcpy(&v, src + i * kBytesPerToken, sizeof(v));
    if constexpr (std::endian::native == std::endian::big) v = __builtin_bswap32(v);
    dst[i] = Mix32(v);
  }
  if (rest) {
    // The length goes in the (otherwise zero) top byte so "ab" and "ab\0" differ.
    const uint32_t v =
        LoadLittleEndian(src + full * kBytesPerToken, rest) | (static_cast<uint32_t>(rest) << 24);
    dst[full] = Mix32(v) ^ 0x9e3779b9U;
  }
}

std::vector<TokenId> Tokenize(std::string_view text) {
  std::vector<TokenId> out;
  TokenizeInto(text, &out);
  return out;
}

}  // namespace zumik::sim
