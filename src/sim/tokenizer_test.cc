// Tokenizer stand-in and prompt hashing: counts, prefix stability, chained block hashes.
#include "sim/tokenizer.h"

#include <string>

#include "gtest/gtest.h"
#include "sim/prompt.h"

namespace zumik::sim {
namespace {

TEST(Tokenizer, CountsAboutFourBytesPerToken) {
  EXPECT_EQ(TokenCount(""), 0);
  EXPECT_EQ(TokenCount("a"), 1);
  EXPECT_EQ(TokenCount("abcd"), 1);
  EXPECT_EQ(TokenCount("abcde"), 2);
  const std::string text(size_t{400} * 1024, 'x');
  EXPECT_EQ(Tokenize(text).size(), 102400u);
  EXPECT_EQ(TokenCount(text), 102400);
}

TEST(Tokenizer, IdenticalTextPrefixesGiveIdenticalTokenPrefixes) {
  const std::string shared = "You are a helpful assistant. Answer briefly and cite sources.";
  const auto a = Tokenize(shared + " What is the capital of France?");
  const auto b = Tokenize(shared + " How tall is Mount Everest?");
  const size_t k = shared.size() / kBytesPerToken;
  ASSERT_GT(a.size(), k);
  ASSERT_GT(b.size(), k);
  for (size_t i = 0; i < k; ++i) EXPECT_EQ(a[i], b[i]) << i;
  EXPECT_NE(a[k + 1], b[k + 1]);
}

TEST(Tokenizer, DistinctGroupsAndPartialTailsGiveDistinctIds) {
  EXPECT_NE(Tokenize("abcd")[0], Tokenize("abce")[0]);
  EXPECT_NE(Tokenize("ab")[0], Tokenize(std::string("ab\0", 3))[0]);
  EXPECT_NE(Tokenize("ab")[0], Tokenize("abc")[0]);
  EXPECT_EQ(Tokenize("hello world"), Tokenize("hello world"));
}

TEST(Prompt, HashesOnlyFullBlocksWithChainedHashes) {
  std::vector<TokenId> tokens(40);
  for (int i = 0; i < 40; ++i) tokens[i] = i;
  auto p = MakePrompt(tokens, 16);
  ASSERT_EQ(p->block_hashes.size(), 2u);  // 40 tokens: two full blocks and a partial one
  EXPECT_EQ(p->block_hashes[0], HashBlock(kRootBlockHash, std::span(tokens).subspan(0, 16)));
  EXPECT_EQ(p->block_hashes[1], HashBlock(p->block_hashes[0], std::span(tokens).subspan(16, 16)));

  // Same second block after a different first block: different hash (it names the prefix).
  std::vector<TokenId> other = tokens;
  other[0] = 999;
  auto q = MakePrompt(other, 16);
  EXPECT_NE(q->block_hashes[1], p->block_hashes[1]);
}

}  // namespace
}  // namespace zumik::sim
