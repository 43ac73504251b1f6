// The client over https:// against a TLS server made in the test, with certificates
// generated at test time: trust via a given CA, verification failures, client certificates.
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include <boost/asio/as_tuple.hpp>
#include <boost/asio/co_spawn.hpp>
#include <boost/asio/detached.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/ssl.hpp>
#include <boost/asio/use_awaitable.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http.hpp>
#include <chrono>
#include <memory>
#include <optional>
#include <string>

#include "core/http/client.h"
#include "core/http/test_util.h"
#include "core/status.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace zumik::http {
namespace {

namespace asio = boost::asio;
namespace ssl = boost::asio::ssl;
namespace bhttp = boost::beast::http;
using ::testing::HasSubstr;
using namespace std::chrono_literals;
constexpr auto kTuple = asio::as_tuple(asio::use_awaitable);

struct CertAndKey {
  std::string cert_pem;
  std::string key_pem;
};

std::string BioToString(BIO* bio) {
  char* data = nullptr;
  const long size = BIO_get_mem_data(bio, &data);
  std::string text(data, static_cast<size_t>(size));
  BIO_free(bio);
  return text;
}

// A self-signed P-256 certificate valid for `subject_alt_names` ("IP:127.0.0.1,DNS:x").
CertAndKey MakeSelfSigned(const std::string& subject_alt_names) {
  EVP_PKEY* key = EVP_EC_gen("P-256");
  X509* cert = X509_new();
  X509_set_version(cert, 2);
  ASN1_INTEGER_set(X509_get_serialNumber(cert), 1);
  X509_gmtime_adj(X509_getm_notBefore(cert), -3600);
  X509_gmtime_adj(X509_getm_notAfter(cert), long{24} * 3600);
  X509_set_pubkey(cert, key);
  X509_NAME* name = X509_get_subject_name(cert);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("zumik-test"), -1, -1, 0);
  X509_set_issuer_name(cert, name);
  X509V3_CTX context;
  X509V3_set_ctx_nodb(&context);
  X509V3_set_ctx(&context, cert, cert, nullptr, nullptr, 0);
  for (const auto& [nid, value] :
       {std::pair<int, std::string>{NID_subject_alt_name, subject_alt_names},
        {NID_basic_constraints, "critical,CA:TRUE"}}) {
    X509_EXTENSION* extension = X509V3_EXT_conf_nid(nullptr, &context, nid, value.c_str());
    X509_add_ext(cert, extension, -1);
    X509_EXTENSION_free(extension);
  }
  X509_sign(cert, key, EVP_sha256());
  BIO* cert_bio = BIO_new(BIO_s_mem());
  PEM_write_bio_X509(cert_bio, cert);
  BIO* key_bio = BIO_new(BIO_s_mem());
  PEM_write_bio_PrivateKey(key_bio, key, nullptr, nullptr, 0, nullptr, nullptr);
  X509_free(cert);
  EVP_PKEY_free(key);
  return {BioToString(cert_bio), BioToString(key_bio)};
}

// Answers every request with "tls:<target>", keeping connections alive.
class TlsServer {
 public:
  TlsServer(asio::io_context& io, const CertAndKey& identity,
            std::optional<std::string> client_ca_pem = std::nullopt)
      : context_(ssl::context::tls_server),
        acceptor_(io, {asio::ip::make_address("127.0.0.1"), 0}) {
    context_.use_certificate_chain(asio::buffer(identity.cert_pem));
    context_.use_private_key(asio::buffer(identity.key_pem), ssl::context::pem);
    if (client_ca_pem) {
      context_.set_verify_mode(ssl::verify_peer | ssl::verify_fail_if_no_peer_cert);
      context_.add_certificate_authority(asio::buffer(*client_ca_pem));
    }
    asio::co_spawn(acceptor_.get_executor(), Accept(), asio::detached);
  }

  uint16_t port() const { return acceptor_.local_endpoint().port(); }
  int connections() const { return connections_; }

 private:
  asio::awaitable<void> Accept() {
    while (true) {
      auto [ec, socket] = co_await acceptor_.async_accept(kTuple);
      if (ec) co_return;
      ++connections_;
      asio::co_spawn(acceptor_.get_executor(), Serve(std::move(socket)), asio::detached);
    }
  }

  asio::awaitable<void> Serve(asio::ip::tcp::socket socket) {
    ssl::stream<asio::ip::tcp::socket> stream(std::move(socket), context_);
    auto [handshake_ec] = co_await stream.async_handshake(ssl::stream_base::server, kTuple);
    if (handshake_ec) co_return;
    boost::beast::flat_buffer buffer;
    while (true) {
      bhttp::request<bhttp::string_body> request;
      auto [read_ec, read_n] = co_await bhttp::async_read(stream, buffer, request, kTuple);
      if (read_ec) co_return;
      bhttp::response<bhttp::string_body> response(bhttp::status::ok, 11);
      response.body() = "tls:" + std::string(request.target());
      response.keep_alive(request.keep_alive());
      response.prepare_payload();
      auto [write_ec, write_n] = co_await bhttp::async_write(stream, response, kTuple);
      if (write_ec) co_return;
    }
  }

  ssl::context context_;
  asio::ip::tcp::acceptor acceptor_;
  std::atomic<int> connections_{0};
};

class TlsTest : public ::testing::Test {
 protected:
  // The server's coroutines hold it: stop the threads before it is destroyed.
  void TearDown() override { io_.Join(); }

  TlsServer& StartServer(const CertAndKey& identity,
                         std::optional<std::string> client_ca_pem = std::nullopt) {
    server_ = std::make_unique<TlsServer>(io_.io(), identity, std::move(client_ca_pem));
    return *server_;
  }

  absl::StatusOr<ClientResponse> Fetch(Client& client, const std::string& url) {
    return testing::RunOn(io_.io(), client.Fetch(ClientRequest::Get(url).WithTimeout(10s)));
  }

  testing::IoThreads io_;
  CertAndKey server_identity_ = MakeSelfSigned("IP:127.0.0.1,DNS:localhost");
  std::unique_ptr<TlsServer> server_;
};

TEST_F(TlsTest, FetchesOverHttpsWhenTrustingTheServerCertificate) {
  TlsServer& server = StartServer(server_identity_);
  ClientOptions options;
  options.tls.ca_pem = server_identity_.cert_pem;
  Client client(io_.io().get_executor(), options);
  for (const std::string host : {"127.0.0.1", "127.0.0.1", "localhost"}) {
    absl::StatusOr<ClientResponse> response =
        Fetch(client, fmt::format("https://{}:{}/models", host, server.port()));
    ASSERT_TRUE(response.ok()) << response.status();
    EXPECT_EQ(response->body, "tls:/models");
  }
  // The second request reused the first's connection; "localhost" is another pool key.
  EXPECT_EQ(client.stats().connections_reused, 1u);
  EXPECT_EQ(server.connections(), 2);
}

TEST_F(TlsTest, RejectsACertificateTheSystemStoreDoesNotTrust) {
  TlsServer& server = StartServer(server_identity_);
  Client client(io_.io().get_executor());
  absl::StatusOr<ClientResponse> response =
      Fetch(client, fmt::format("https://127.0.0.1:{}/", server.port()));
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(MessageOf(response.status())),
              HasSubstr(fmt::format("TLS handshake with 127.0.0.1:{} failed: certificate "
                                    "verification failed",
                                    server.port())));
}

TEST_F(TlsTest, RejectsACertificateForAnotherHost) {
  const CertAndKey other = MakeSelfSigned("DNS:other.example");
  TlsServer& server = StartServer(other);
  ClientOptions options;
  options.tls.ca_pem = other.cert_pem;
  Client client(io_.io().get_executor(), options);
  absl::StatusOr<ClientResponse> response =
      Fetch(client, fmt::format("https://127.0.0.1:{}/", server.port()));
  EXPECT_EQ(response.status().code(), absl::StatusCode::kUnavailable);
  EXPECT_THAT(std::string(MessageOf(response.status())), HasSubstr("mismatch"));
}

TEST_F(TlsTest, SkipsVerificationOnlyWhenAskedTo) {
  TlsServer& server = StartServer(server_identity_);
  ClientOptions options;
  options.tls.verify_peer = false;
  Client client(io_.io().get_executor(), options);
  absl::StatusOr<ClientResponse> response =
      Fetch(client, fmt::format("https://127.0.0.1:{}/insecure", server.port()));
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "tls:/insecure");
}

TEST_F(TlsTest, PresentsAClientCertificateWhenTheServerRequiresOne) {
  const CertAndKey client_identity = MakeSelfSigned("DNS:client.example");
  TlsServer& server = StartServer(server_identity_, client_identity.cert_pem);
  const std::string url = fmt::format("https://127.0.0.1:{}/mtls", server.port());

  ClientOptions options;
  options.tls.ca_pem = server_identity_.cert_pem;
  Client anonymous(io_.io().get_executor(), options);
  EXPECT_EQ(Fetch(anonymous, url).status().code(), absl::StatusCode::kUnavailable);

  options.tls.client_cert_pem = client_identity.cert_pem;
  options.tls.client_key_pem = Secret(client_identity.key_pem);
  Client authenticated(io_.io().get_executor(), options);
  absl::StatusOr<ClientResponse> response = Fetch(authenticated, url);
  ASSERT_TRUE(response.ok()) << response.status();
  EXPECT_EQ(response->body, "tls:/mtls");
}

TEST_F(TlsTest, UnusableTlsOptionsFailHttpsRequestsWithTheReason) {
  ClientOptions options;
  options.tls.ca_file = "/nonexistent/ca.pem";
  Client client(io_.io().get_executor(), options);
  EXPECT_EQ(client.tls_status().code(), absl::StatusCode::kInvalidArgument);
  EXPECT_THAT(std::string(MessageOf(client.tls_status())), HasSubstr("/nonexistent/ca.pem"));
  TlsServer& server = StartServer(server_identity_);
  absl::StatusOr<ClientResponse> response =
      Fetch(client, fmt::format("https://127.0.0.1:{}/", server.port()));
  EXPECT_EQ(response.status().code(), absl::StatusCode::kInvalidArgument);
}

}  // namespace
}  // namespace zumik::http
