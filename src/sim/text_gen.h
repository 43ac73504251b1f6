// The simulator's stand-in for sampling: deterministic English-like output text where every
// token is one word piece of exactly kTokenBytes bytes, so the engine's ~4-bytes-per-token
// accounting and the text a client receives always agree.
#pragma once

#include <cstddef>
#include <cstdint>
#include <optional>
#include <span>
#include <string>
#include <string_view>

namespace zumik::sim {

inline constexpr size_t kTokenBytes = 4;

class TextGenerator {
 public:
  explicit TextGenerator(uint64_t seed) : seed_(seed) {}

  // Output token `index` (0-based): a piece of exactly kTokenBytes bytes of valid UTF-8
  // (it may contain quotes, backslashes, tabs, newlines or non-ASCII, as real output does).
  std::string_view Token(uint64_t index) const;
  // The simulator tokenizer's id of Token(index): a piece is exactly one token, so the text
  // a client receives tokenizes back to these ids.
  uint32_t TokenIdAt(uint64_t index) const;
  // Appends tokens [begin, begin + count).
  void Append(uint64_t begin, uint64_t count, std::string* out) const;
  // Tokens [0, count).
  std::string Text(uint64_t count) const;

  uint64_t seed() const { return seed_; }

 private:
  uint64_t seed_;
};

// The seed of one request's output. A client seed gives the same text for the same prompt
// (as vLLM does with a seed); without one, the text derives from `request_counter`, a number
// the caller draws per request (so outputs differ across requests but tests can pin them).
// TextGenerator(seed).TokenIdAt(index): the engine's output token ids for the text the server
// sends (RequestSpec::output_token).
uint32_t TextTokenId(uint64_t seed, int index);

uint64_t GenerationSeed(std::optional<int64_t> request_seed, std::string_view prompt,
                        uint64_t request_counter);
// The same for a token-id prompt (/v1/completions with `prompt: [ids]`): the ids stand for the
// text, hashed as their little-endian 32-bit images, so a seeded request over the same ids gives
// the same text.
uint64_t GenerationSeed(std::optional<int64_t> request_seed, std::span<const uint32_t> prompt,
                        uint64_t request_counter);

}  // namespace zumik::sim
