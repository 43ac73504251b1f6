// API keys and cluster tokens: format, entropy, hashing, lookup prefix, header parsing.
#include "registry/credentials.h"

#include <gtest/gtest.h>

#include <set>

#include "core/base64.h"

namespace zumik::registry {
namespace {

TEST(GenerateApiKey, HasTheLivePrefixAtLeast128RandomBitsAndAMatchingHash) {
  NewApiKey key = GenerateApiKey();
  const std::string& text = key.key.Reveal();
  ASSERT_TRUE(text.starts_with("zk_live_"));
  // Hex digits after the prefix: 4 bits each.
  EXPECT_GE((text.size() - kApiKeyPrefix.size()) * 4, 128u);
  EXPECT_EQ(key.lookup_prefix, text.substr(0, kApiKeyLookupLength));
  EXPECT_EQ(key.sha256_hex, Sha256Hex(text));
  EXPECT_EQ(key.sha256_hex.size(), 64u);
  EXPECT_EQ(ApiKeyLookupPrefix(text), key.lookup_prefix);
}

TEST(GenerateApiKey, NeverRepeats) {
  std::set<std::string> seen;
  for (int i = 0; i < 1000; ++i) EXPECT_TRUE(seen.insert(GenerateApiKey().key.Reveal()).second);
}

TEST(Secret, FormatsAsStarsSoAKeyCannotReachALog) {
  NewApiKey key = GenerateApiKey();
  EXPECT_EQ(fmt::format("{}", key.key), "***");
}

TEST(ClusterCredentials, HaveTheirPrefixes) {
  EXPECT_TRUE(GenerateClusterToken().Reveal().starts_with("zkc_"));
  EXPECT_EQ(GenerateClusterToken().Reveal().size(), 4u + 64u);
  const std::string id = GenerateClusterId();
  EXPECT_TRUE(id.starts_with("byc_"));
  EXPECT_NE(id, GenerateClusterId());
}

TEST(Sha256Hex, MatchesTheKnownVector) {
  EXPECT_EQ(Sha256Hex("abc"), "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
}

TEST(ConstantTimeEquals, ComparesContentAndLength) {
  EXPECT_TRUE(ConstantTimeEquals("abcd", "abcd"));
  EXPECT_FALSE(ConstantTimeEquals("abcd", "abce"));
  EXPECT_FALSE(ConstantTimeEquals("abcd", "abc"));
}

TEST(ApiKeyLookupPrefix, IsEmptyForAnythingThatIsNotAnApiKey) {
  EXPECT_EQ(ApiKeyLookupPrefix("zkc_0123456789abcdef"), "");
  EXPECT_EQ(ApiKeyLookupPrefix("zk_live_12"), "");
  EXPECT_EQ(ApiKeyLookupPrefix(""), "");
}

TEST(BearerCredential, ExtractsTheCredentialCaseInsensitively) {
  EXPECT_EQ(BearerCredential("Bearer zk_live_abc"), "zk_live_abc");
  EXPECT_EQ(BearerCredential("bearer  tok "), "tok");
  EXPECT_EQ(BearerCredential("Basic dXNlcg=="), "");
  EXPECT_EQ(BearerCredential("Bearer "), "");
  EXPECT_EQ(BearerCredential(""), "");
}

TEST(ApiKeyFromAuthorization, AcceptsBearerAndBasicWithTheKeyAsPasswordOrUser) {
  EXPECT_EQ(ApiKeyFromAuthorization("Bearer zk_live_abc"), "zk_live_abc");
  // Basic base64("anyone:zk_live_abc"): a browser's sign-in dialog.
  EXPECT_EQ(ApiKeyFromAuthorization("Basic " + Base64Encode("anyone:zk_live_abc")), "zk_live_abc");
  EXPECT_EQ(ApiKeyFromAuthorization("basic " + Base64Encode(":zk_live_a:b")), "zk_live_a:b");
  // `curl -u KEY:` puts the key in the username.
  EXPECT_EQ(ApiKeyFromAuthorization("Basic " + Base64Encode("zk_live_abc:")), "zk_live_abc");
}

TEST(ApiKeyFromAuthorization, IsEmptyForMalformedHeaders) {
  EXPECT_EQ(ApiKeyFromAuthorization(""), "");
  EXPECT_EQ(ApiKeyFromAuthorization("Basic"), "");
  EXPECT_EQ(ApiKeyFromAuthorization("Basic !!!not-base64"), "");
  EXPECT_EQ(ApiKeyFromAuthorization("Basic " + Base64Encode("no-colon")), "");
  EXPECT_EQ(ApiKeyFromAuthorization("Basic " + std::string(2000, 'A')), "");
  EXPECT_EQ(ApiKeyFromAuthorization("Digest username=\"x\""), "");
  EXPECT_EQ(ApiKeyFromAuthorization("BasicXdXNlcjpwYXNz"), "");
}

}  // namespace
}  // namespace zumik::registry
