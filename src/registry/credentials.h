// Credentials: org API keys ("zk_live_" + 192 random bits, hex) and per-cluster tokens
// ("zkc_" + 256 random bits). Only their SHA-256 is stored; API keys also keep a short public
// lookup prefix so a key can be found without scanning, and revoked by that prefix.
#pragma once

#include <string>
#include <string_view>

#include "core/secret.h"

namespace zumik::registry {

inline constexpr std::string_view kApiKeyPrefix = "zk_live_";
inline constexpr std::string_view kClusterTokenPrefix = "zkc_";
// The public part of an API key: "zk_live_" and its first 8 hex digits.
inline constexpr size_t kApiKeyLookupLength = 16;

struct NewApiKey {
  Secret key;
  std::string lookup_prefix;
  std::string sha256_hex;
};

// Hex of `bytes` cryptographically random bytes (OpenSSL RAND_bytes; aborts if it fails, since
// continuing with weak randomness would be worse).
std::string RandomHex(size_t bytes);

NewApiKey GenerateApiKey();
// "zkc_" + 64 hex digits.
Secret GenerateClusterToken();
// "byc_" + 20 hex digits.
std::string GenerateClusterId();

std::string Sha256Hex(std::string_view data);
// Equal-length inputs are compared without data-dependent timing.
bool ConstantTimeEquals(std::string_view a, std::string_view b);

// The lookup prefix of a well-formed API key, or "" when `key` is not one.
std::string ApiKeyLookupPrefix(std::string_view key);

// The credential in an "Authorization: Bearer <credential>" header, or "" when absent/malformed.
std::string_view BearerCredential(std::string_view authorization);

// The API key in an Authorization header for the web page: "Bearer <key>", or HTTP Basic with
// the key as the password and any username (what a browser's sign-in dialog sends), or as the
// username with an empty password (`curl -u KEY:`). "" when absent or malformed.
std::string ApiKeyFromAuthorization(std::string_view authorization);

}  // namespace zumik::registry
