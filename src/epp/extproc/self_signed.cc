// Self-signed certificate generation with OpenSSL 3; see self_signed.h.
#include "epp/extproc/self_signed.h"

#include <openssl/bio.h>
#include <openssl/evp.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509.h>
#include <openssl/x509v3.h>

#include <memory>

#include "core/status.h"

namespace zumik::epp::extproc {
namespace {

struct PkeyFree {
  void operator()(EVP_PKEY* p) const { EVP_PKEY_free(p); }
};
struct X509Free {
  void operator()(X509* p) const { X509_free(p); }
};
struct BioFree {
  void operator()(BIO* p) const { BIO_free(p); }
};
struct ExtFree {
  void operator()(X509_EXTENSION* p) const { X509_EXTENSION_free(p); }
};

absl::Status OpenSslError(std::string_view what) {
  return Errorf(absl::StatusCode::kInternal, "self-signed certificate: {} failed", what);
}

absl::StatusOr<std::string> BioToString(BIO* bio) {
  char* data = nullptr;
  long n = BIO_get_mem_data(bio, &data);
  if (n <= 0 || data == nullptr) return OpenSslError("PEM encoding");
  return std::string(data, static_cast<size_t>(n));
}

}  // namespace

absl::StatusOr<PemKeyPair> GenerateSelfSignedCertificate(const std::string& common_name, int days) {
  std::unique_ptr<EVP_PKEY, PkeyFree> key(EVP_EC_gen("P-256"));
  if (key == nullptr) return OpenSslError("key generation");
  std::unique_ptr<X509, X509Free> cert(X509_new());
  if (cert == nullptr) return OpenSslError("X509_new");
  X509_set_version(cert.get(), 2);
  unsigned char serial[16];
  if (RAND_bytes(serial, sizeof(serial)) != 1) return OpenSslError("serial");
  serial[0] &= 0x7f;  // positive
  BIGNUM* bn = BN_bin2bn(serial, sizeof(serial), nullptr);
  if (bn == nullptr) return OpenSslError("serial");
  ASN1_INTEGER* asn1_serial = BN_to_ASN1_INTEGER(bn, X509_get_serialNumber(cert.get()));
  BN_free(bn);
  if (asn1_serial == nullptr) return OpenSslError("serial");
  X509_gmtime_adj(X509_getm_notBefore(cert.get()), -60);
  X509_gmtime_adj(X509_getm_notAfter(cert.get()), static_cast<long>(days) * 24 * 3600);
  if (X509_set_pubkey(cert.get(), key.get()) != 1) return OpenSslError("set public key");
  X509_NAME* name = X509_get_subject_name(cert.get());
  X509_NAME_add_entry_by_txt(name, "O", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>("zumik"), -1, -1, 0);
  X509_NAME_add_entry_by_txt(name, "CN", MBSTRING_ASC,
                             reinterpret_cast<const unsigned char*>(common_name.c_str()), -1, -1,
                             0);
  X509_set_issuer_name(cert.get(), name);
  X509V3_CTX ctx;
  X509V3_set_ctx_nodb(&ctx);
  X509V3_set_ctx(&ctx, cert.get(), cert.get(), nullptr, nullptr, 0);
  std::string san = "DNS:localhost,IP:127.0.0.1,DNS:" + common_name;
  std::unique_ptr<X509_EXTENSION, ExtFree> ext(
      X509V3_EXT_conf_nid(nullptr, &ctx, NID_subject_alt_name, san.c_str()));
  if (ext == nullptr || X509_add_ext(cert.get(), ext.get(), -1) != 1) {
    return OpenSslError("subjectAltName");
  }
  if (X509_sign(cert.get(), key.get(), EVP_sha256()) == 0) return OpenSslError("signing");

  std::unique_ptr<BIO, BioFree> cert_bio(BIO_new(BIO_s_mem()));
  std::unique_ptr<BIO, BioFree> key_bio(BIO_new(BIO_s_mem()));
  if (cert_bio == nullptr || key_bio == nullptr) return OpenSslError("BIO_new");
  if (PEM_write_bio_X509(cert_bio.get(), cert.get()) != 1) return OpenSslError("PEM cert");
  if (PEM_write_bio_PrivateKey(key_bio.get(), key.get(), nullptr, nullptr, 0, nullptr, nullptr) !=
      1) {
    return OpenSslError("PEM key");
  }
  PemKeyPair pair;
  ASSIGN_OR_RETURN(pair.certificate_pem, BioToString(cert_bio.get()));
  ASSIGN_OR_RETURN(pair.private_key_pem, BioToString(key_bio.get()));
  return pair;
}

}  // namespace zumik::epp::extproc
