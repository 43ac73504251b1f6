// TLS settings for the HTTP client (https:// URLs): which CAs to trust, an optional client
// certificate, and building the OpenSSL context from them.
#pragma once

#include <boost/asio/ssl/context.hpp>
#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "core/secret.h"

namespace zumik::http {

struct TlsOptions {
  // Verify the server's certificate chain and that it names the host. Turning this off is
  // for tests and explicit operator opt-in only.
  bool verify_peer = true;
  // Trusted CAs: the system store unless ca_file or ca_pem is given (e.g. the in-cluster
  // Kubernetes CA).
  std::string ca_file;
  std::string ca_pem;
  // Optional client certificate (mutual TLS), as files or PEM text.
  std::string client_cert_file;
  std::string client_key_file;
  std::string client_cert_pem;
  Secret client_key_pem;
};

// A TLS 1.2+ client context. kInvalidArgument naming the file or field that failed.
absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> MakeClientTlsContext(
    const TlsOptions& options);

// The most specific description of the last TLS failure on this thread (OpenSSL's error
// queue), cleared afterwards; empty when there is none.
std::string TakeOpenSslError();

}  // namespace zumik::http
