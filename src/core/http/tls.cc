// Client TLS contexts on OpenSSL through asio::ssl.
#include "core/http/tls.h"

#include <openssl/err.h>
#include <openssl/ssl.h>

#include "core/status.h"

namespace zumik::http {

std::string TakeOpenSslError() {
  std::string message;
  while (const unsigned long code = ERR_get_error()) {
    char buffer[256];
    ERR_error_string_n(code, buffer, sizeof(buffer));
    if (!message.empty()) message += "; ";
    message += buffer;
  }
  return message;
}

absl::StatusOr<std::shared_ptr<boost::asio::ssl::context>> MakeClientTlsContext(
    const TlsOptions& options) {
  namespace ssl = boost::asio::ssl;
  auto context = std::make_shared<ssl::context>(ssl::context::tls_client);
  boost::system::error_code ec;
  auto fail = [&](std::string_view what) {
    std::string detail = TakeOpenSslError();
    if (detail.empty()) detail = ec.message();
    return Errorf(absl::StatusCode::kInvalidArgument, "TLS setup: {}: {}", what, detail);
  };
  SSL_CTX_set_min_proto_version(context->native_handle(), TLS1_2_VERSION);
  context->set_options(ssl::context::default_workarounds | ssl::context::no_compression, ec);
  if (ec) return fail("options");
  if (options.verify_peer) {
    context->set_verify_mode(ssl::verify_peer, ec);
    if (ec) return fail("verify mode");
    if (options.ca_file.empty() && options.ca_pem.empty()) {
      context->set_default_verify_paths(ec);
      if (ec) return fail("system CA store");
    }
    if (!options.ca_file.empty()) {
      context->load_verify_file(options.ca_file, ec);
      if (ec) return fail(fmt::format("CA file '{}'", options.ca_file));
    }
    if (!options.ca_pem.empty()) {
      context->add_certificate_authority(boost::asio::buffer(options.ca_pem), ec);
      if (ec) return fail("ca_pem");
    }
  } else {
    context->set_verify_mode(ssl::verify_none, ec);
    if (ec) return fail("verify mode");
  }
  if (!options.client_cert_file.empty()) {
    context->use_certificate_chain_file(options.client_cert_file, ec);
    if (ec) return fail(fmt::format("client certificate file '{}'", options.client_cert_file));
  }
  if (!options.client_cert_pem.empty()) {
    context->use_certificate_chain(boost::asio::buffer(options.client_cert_pem), ec);
    if (ec) return fail("client_cert_pem");
  }
  if (!options.client_key_file.empty()) {
    context->use_private_key_file(options.client_key_file, ssl::context::pem, ec);
    if (ec) return fail(fmt::format("client key file '{}'", options.client_key_file));
  }
  if (!options.client_key_pem.empty()) {
    context->use_private_key(boost::asio::buffer(options.client_key_pem.Reveal()),
                             ssl::context::pem, ec);
    if (ec) return fail("client_key_pem");
  }
  return context;
}

}  // namespace zumik::http
