#include "sim/text_gen.h"

#include <xxhash.h>

#include <array>
#include <bit>
#include <vector>

#include "sim/tokenizer.h"

namespace zumik::sim {
namespace {

// 64 pieces of exactly kTokenBytes bytes: mostly short words, a few suffixes and punctuation,
// and some that need JSON escaping or are multi-byte UTF-8, to keep clients honest.
constexpr std::array<std::string_view, 64> kPieces = {
    " the", " and", " for",  " you",  " are", " was", " not", " but",   " all",  " can",
    " one", " has", " had",  " new",  " our", " out", " day", " get",   " use",  " how",
    " see", " way", " may",  " now",  " two", " its", " who", " did",   " man",  " old",
    " big", " end", " set",  " run",  " say", " ask", " own", " far",   " few",  " key",
    " sun", " sea", " air",  " map",  " box", " top", " low", "tion",   "ment",  "ness",
    "able", "ing,", "ed. ",  "ly, ",  "ers ", " The", " New", "s.\n\n", " \"So", " \xE2\x80\x94",
    " (a)", " 42%", " C:\\", "\tok.",
};

constexpr bool AllPiecesHaveTokenBytes() {
  for (std::string_view piece : kPieces) {
    if (piece.size() != kTokenBytes) return false;
  }
  return true;
}
static_assert(AllPiecesHaveTokenBytes());

uint64_t Mix(uint64_t x) {
  x ^= x >> 30;
  x *= 0xbf58476d1ce4e5b9ULL;
  x ^= x >> 27;
  x *= 0x94d049bb133111ebULL;
  x ^= x >> 31;
  return x;
}

size_t PieceIndex(uint64_t seed, uint64_t index) {
  return Mix(seed + (index + 1) * 0x9e3779b97f4a7c15ULL) % kPieces.size();
}

}  // namespace

std::string_view TextGenerator::Token(uint64_t index) const {
  return kPieces[PieceIndex(seed_, index)];
}

uint32_t TextGenerator::TokenIdAt(uint64_t index) const {
  static const std::array<uint32_t, kPieces.size()> kIds = [] {
    std::array<uint32_t, kPieces.size()> ids{};
    std::vector<sim::TokenId> one;
    for (size_t i = 0; i < kPieces.size(); ++i) {
      TokenizeInto(kPieces[i], &one);
      ids[i] = one.at(0);
    }
    return ids;
  }();
  return kIds[PieceIndex(seed_, index)];
}

uint32_t TextTokenId(uint64_t seed, int index) {
  return TextGenerator(seed).TokenIdAt(static_cast<uint64_t>(index));
}

void TextGenerator::Append(uint64_t begin, uint64_t count, std::string* out) const {
  out->reserve(out->size() + count * kTokenBytes);
  for (uint64_t i = begin; i < begin + count; ++i) out->append(Token(i));
}

std::string TextGenerator::Text(uint64_t count) const {
  std::string text;
  Append(0, count, &text);
  return text;
}

uint64_t GenerationSeed(std::optional<int64_t> request_seed, std::string_view prompt,
                        uint64_t request_counter) {
  if (request_seed) {
    return Mix(static_cast<uint64_t>(*request_seed) ^ XXH3_64bits(prompt.data(), prompt.size()));
  }
  // Distinct from every client-seeded stream in practice, and stable for a given counter.
  return Mix(request_counter ^ 0x5851f42d4c957f2dULL);
}

uint64_t GenerationSeed(std::optional<int64_t> request_seed, std::span<const uint32_t> prompt,
                        uint64_t request_counter) {
  static_assert(std::endian::native == std::endian::little);
  return GenerationSeed(
      request_seed,
      std::string_view(reinterpret_cast<const char*>(prompt.data()), prompt.size_bytes()),
      request_counter);
}

}  // namespace zumik::sim
