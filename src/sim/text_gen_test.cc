#include "sim/text_gen.h"

#include <gtest/gtest.h>

#include <set>
#include <string>
#include <vector>

#include "core/json_string.h"
#include "core/utf8.h"
#include "sim/tokenizer.h"

namespace zumik::sim {
namespace {

TEST(TextGenerator, IsDeterministicForASeed) {
  EXPECT_EQ(TextGenerator(42).Text(200), TextGenerator(42).Text(200));
  EXPECT_NE(TextGenerator(42).Text(200), TextGenerator(43).Text(200));
}

TEST(TextGenerator, EveryTokenIsFourBytesOfValidUtf8) {
  const TextGenerator gen(7);
  for (uint64_t i = 0; i < 5000; ++i) {
    const std::string_view token = gen.Token(i);
    ASSERT_EQ(token.size(), kTokenBytes) << i;
    ASSERT_EQ(FindInvalidUtf8(token), std::nullopt) << i;
  }
  EXPECT_EQ(gen.Text(1000).size(), 1000 * kTokenBytes) << "usage token counts match the text";
}

TEST(TextGenerator, AppendingInPiecesEqualsTheWholeText) {
  const TextGenerator gen(11);
  std::string pieces;
  gen.Append(0, 3, &pieces);
  gen.Append(3, 1, &pieces);
  gen.Append(4, 96, &pieces);
  EXPECT_EQ(pieces, gen.Text(100));
  EXPECT_EQ(gen.Token(4), gen.Text(5).substr(16));
}

TEST(TextGenerator, UsesAVarietyOfPieces) {
  const TextGenerator gen(3);
  std::set<std::string_view> distinct;
  for (uint64_t i = 0; i < 2000; ++i) distinct.insert(gen.Token(i));
  EXPECT_GE(distinct.size(), 60u);
}

TEST(TextGenerator, PinsTheOutputForAGivenSeed) {
  // Changing the word list or the mixing changes every simulated output: make it deliberate.
  EXPECT_EQ(TextGenerator(42).Text(8), " way you use seeable not old own");
}

TEST(TextGenerator, TokenIdsAreTheTokenizersIdsOfTheText) {
  // What makes a multi-turn client that sends the answer back hit the answer's KV blocks.
  const TextGenerator gen(19);
  const std::vector<TokenId> ids = Tokenize(gen.Text(300));
  ASSERT_EQ(ids.size(), 300u);
  for (int i = 0; i < 300; ++i) {
    ASSERT_EQ(gen.TokenIdAt(static_cast<uint64_t>(i)), ids[static_cast<size_t>(i)]) << i;
    ASSERT_EQ(TextTokenId(19, i), ids[static_cast<size_t>(i)]) << i;
  }
}

TEST(GenerationSeed, TokenIdPromptsSeedFromTheirIds) {
  const std::vector<uint32_t> ids = {1, 2, 3};
  EXPECT_EQ(GenerationSeed(5, ids, 1), GenerationSeed(5, std::vector<uint32_t>{1, 2, 3}, 2))
      << "a client seed and equal ids repeat the output";
  EXPECT_NE(GenerationSeed(5, ids, 1), GenerationSeed(5, std::vector<uint32_t>{1, 2, 4}, 1));
  EXPECT_NE(GenerationSeed(5, ids, 1), GenerationSeed(6, ids, 1));
  EXPECT_NE(GenerationSeed(std::nullopt, ids, 1), GenerationSeed(std::nullopt, ids, 2))
      << "without a client seed, the request counter decides";
}

TEST(GenerationSeed, ClientSeedWithTheSamePromptRepeatsTheOutput) {
  EXPECT_EQ(GenerationSeed(5, "prompt", 1), GenerationSeed(5, "prompt", 2))
      << "the counter does not matter when the client gives a seed";
  EXPECT_NE(GenerationSeed(5, "prompt", 1), GenerationSeed(6, "prompt", 1));
  EXPECT_NE(GenerationSeed(5, "prompt", 1), GenerationSeed(5, "another", 1));
}

TEST(GenerationSeed, WithoutAClientSeedFollowsTheCounter) {
  EXPECT_EQ(GenerationSeed(std::nullopt, "p", 9), GenerationSeed(std::nullopt, "p", 9));
  std::set<uint64_t> seeds;
  for (uint64_t counter = 0; counter < 1000; ++counter) {
    seeds.insert(GenerationSeed(std::nullopt, "same prompt", counter));
  }
  EXPECT_EQ(seeds.size(), 1000u);
}

}  // namespace
}  // namespace zumik::sim
