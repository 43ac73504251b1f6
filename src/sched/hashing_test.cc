// Prefix block hashing: chain property, seeding by model, partial blocks, and known answers
// computed independently with the xxHash library.
#include "sched/hashing.h"

#include <gtest/gtest.h>
#include <xxhash.h>

#include <string>
#include <vector>

namespace zumik::sched {
namespace {

std::vector<uint64_t> Hash(std::string_view prompt, std::string_view model, int block = 64,
                           int max_blocks = 0, std::string_view salt = "") {
  std::vector<uint64_t> out;
  HashPromptBlocks(prompt, PrefixHashSeed(model, salt), block, max_blocks, &out);
  return out;
}

std::string Text(size_t n, char seed) {
  std::string s;
  for (size_t i = 0; i < n; ++i) s.push_back(static_cast<char>('a' + (seed + i * 7) % 26));
  return s;
}

// The reference chain, built by concatenating buffers and calling the library's XXH64.
std::vector<uint64_t> Reference(const std::string& prompt, const std::string& model_and_salt,
                                size_t block) {
  std::vector<uint64_t> out;
  uint64_t prev = XXH64(model_and_salt.data(), model_and_salt.size(), 0);
  for (size_t i = 0; i + block <= prompt.size(); i += block) {
    std::string buffer = prompt.substr(i, block);
    for (int b = 0; b < 8; ++b) buffer.push_back(static_cast<char>((prev >> (8 * b)) & 0xff));
    prev = XXH64(buffer.data(), buffer.size(), 0);
    out.push_back(prev);
  }
  return out;
}

TEST(PrefixHashing, MatchesAnIndependentXxh64Chain) {
  const std::string prompt = Text(64 * 5 + 13, 1);
  EXPECT_EQ(Hash(prompt, "llama"), Reference(prompt, "llama", 64));
  EXPECT_EQ(Hash(prompt, "llama", 64, 0, "salt"), Reference(prompt, "llamasalt", 64));
  // Every block size, whether or not a multiple of the 32-byte stripe (two code paths).
  for (int block : {1, 8, 31, 32, 33, 60, 96, 100, 128, 4096}) {
    const std::string text = Text(static_cast<size_t>(block) * 7 + 5, 2);
    EXPECT_EQ(Hash(text, "m", block), Reference(text, "m", static_cast<size_t>(block))) << block;
  }
}

TEST(PrefixHashing, KnownAnswerForOneBlock) {
  const std::string block(64, 'x');
  const uint64_t seed = XXH64("model", 5, 0);
  std::string buffer = block;
  for (int b = 0; b < 8; ++b) buffer.push_back(static_cast<char>((seed >> (8 * b)) & 0xff));
  EXPECT_EQ(PrefixHashSeed("model", ""), seed);
  EXPECT_EQ(Hash(block, "model"), std::vector<uint64_t>{XXH64(buffer.data(), 72, 0)});
}

TEST(PrefixHashing, EqualHashesMeanEqualPrefixes) {
  const std::string common = Text(size_t{64} * 3, 3);
  const std::vector<uint64_t> a = Hash(common + Text(size_t{64} * 2, 4), "m");
  const std::vector<uint64_t> b = Hash(common + Text(size_t{64} * 2, 5), "m");
  ASSERT_EQ(a.size(), 5u);
  ASSERT_EQ(b.size(), 5u);
  for (int i = 0; i < 3; ++i) EXPECT_EQ(a[i], b[i]) << i;
  for (int i = 3; i < 5; ++i) EXPECT_NE(a[i], b[i]) << i;
  // A difference in block 0 changes every later hash, even where the bytes agree.
  std::string c = common + Text(size_t{64} * 2, 4);
  c[0] = c[0] == 'z' ? 'y' : 'z';
  const std::vector<uint64_t> d = Hash(c, "m");
  for (int i = 0; i < 5; ++i) EXPECT_NE(a[i], d[i]) << i;
}

TEST(PrefixHashing, TheModelNameSeedsTheChain) {
  const std::string prompt = Text(size_t{64} * 4, 6);
  const std::vector<uint64_t> a = Hash(prompt, "model-a");
  const std::vector<uint64_t> b = Hash(prompt, "model-b");
  for (size_t i = 0; i < a.size(); ++i) EXPECT_NE(a[i], b[i]);
}

TEST(PrefixHashing, IgnoresTheTrailingPartialBlockAndShortPrompts) {
  const std::string prompt = Text(size_t{64} * 3, 7);
  const std::vector<uint64_t> full = Hash(prompt, "m");
  EXPECT_EQ(full.size(), 3u);
  EXPECT_EQ(Hash(prompt + "partial", "m"), full);
  EXPECT_TRUE(Hash(Text(63, 8), "m").empty());
  EXPECT_TRUE(Hash("", "m").empty());
}

TEST(PrefixHashing, CapsTheNumberOfBlocks) {
  const std::string prompt = Text(size_t{64} * 10, 9);
  const std::vector<uint64_t> all = Hash(prompt, "m");
  const std::vector<uint64_t> capped = Hash(prompt, "m", 64, 4);
  ASSERT_EQ(capped.size(), 4u);
  EXPECT_TRUE(std::equal(capped.begin(), capped.end(), all.begin()));
}

}  // namespace
}  // namespace zumik::sched
