// A self-signed TLS certificate generated in memory at start (ECDSA P-256, SAN localhost and
// 127.0.0.1), for the ext_proc port when no certificate is mounted — as the upstream EPP does
// with --secure-serving and no cert path. Gateways connect to it with verification skipped.
#pragma once

#include <string>

#include "absl/status/statusor.h"

namespace zumik::epp::extproc {

struct PemKeyPair {
  std::string certificate_pem;
  std::string private_key_pem;
};

// `common_name` goes into subject and issuer; valid from now for `days`.
absl::StatusOr<PemKeyPair> GenerateSelfSignedCertificate(const std::string& common_name,
                                                         int days = 365);

}  // namespace zumik::epp::extproc
