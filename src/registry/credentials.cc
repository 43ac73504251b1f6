// API keys, cluster tokens and their hashing.
#include "registry/credentials.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <openssl/sha.h>

#include <cstdio>
#include <cstdlib>
#include <optional>
#include <vector>

#include "core/base64.h"
#include "core/hex.h"

namespace zumik::registry {

std::string RandomHex(size_t bytes) {
  std::vector<unsigned char> buffer(bytes);
  if (RAND_bytes(buffer.data(), static_cast<int>(buffer.size())) != 1) {
    std::fputs("zumik registry: RAND_bytes failed\n", stderr);
    std::abort();
  }
  return HexEncode(std::string_view(reinterpret_cast<const char*>(buffer.data()), buffer.size()));
}

NewApiKey GenerateApiKey() {
  std::string key = std::string(kApiKeyPrefix) + RandomHex(24);
  NewApiKey out;
  out.lookup_prefix = key.substr(0, kApiKeyLookupLength);
  out.sha256_hex = Sha256Hex(key);
  out.key = Secret(std::move(key));
  return out;
}

Secret GenerateClusterToken() { return Secret(std::string(kClusterTokenPrefix) + RandomHex(32)); }

std::string GenerateClusterId() { return "byc_" + RandomHex(10); }

std::string Sha256Hex(std::string_view data) {
  unsigned char digest[SHA256_DIGEST_LENGTH];
  SHA256(reinterpret_cast<const unsigned char*>(data.data()), data.size(), digest);
  return HexEncode(std::string_view(reinterpret_cast<const char*>(digest), sizeof(digest)));
}

bool ConstantTimeEquals(std::string_view a, std::string_view b) {
  if (a.size() != b.size()) return false;
  return CRYPTO_memcmp(a.data(), b.data(), a.size()) == 0;
}

std::string ApiKeyLookupPrefix(std::string_view key) {
  if (key.size() < kApiKeyLookupLength || key.size() > 128 ||
      key.substr(0, kApiKeyPrefix.size()) != kApiKeyPrefix) {
    return "";
  }
  return std::string(key.substr(0, kApiKeyLookupLength));
}

namespace {

// The text after "<scheme> " (scheme matched case-insensitively, spaces trimmed), or "".
std::string_view SchemeCredential(std::string_view authorization, std::string_view scheme) {
  if (authorization.size() <= scheme.size() + 1 || authorization[scheme.size()] != ' ') return {};
  for (size_t i = 0; i < scheme.size(); ++i) {
    const auto lower = [](char c) {
      return (c >= 'A' && c <= 'Z') ? static_cast<char>(c - 'A' + 'a') : c;
    };
    if (lower(authorization[i]) != lower(scheme[i])) return {};
  }
  std::string_view credential = authorization.substr(scheme.size() + 1);
  while (!credential.empty() && credential.front() == ' ') credential.remove_prefix(1);
  while (!credential.empty() && credential.back() == ' ') credential.remove_suffix(1);
  return credential;
}

}  // namespace

std::string_view BearerCredential(std::string_view authorization) {
  return SchemeCredential(authorization, "Bearer");
}

std::string ApiKeyFromAuthorization(std::string_view authorization) {
  if (std::string_view bearer = BearerCredential(authorization); !bearer.empty()) {
    return std::string(bearer);
  }
  const std::string_view basic = SchemeCredential(authorization, "Basic");
  // base64 of "user:" + a key of at most 128 characters fits well within this.
  if (basic.empty() || basic.size() > 1024) return "";
  std::optional<std::string> decoded = Base64Decode(basic);
  if (!decoded) return "";
  const size_t colon = decoded->find(':');
  if (colon == std::string::npos) return "";
  std::string password = decoded->substr(colon + 1);
  if (password.empty()) return decoded->substr(0, colon);  // `curl -u KEY:`
  return password;
}

}  // namespace zumik::registry
