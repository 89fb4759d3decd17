#include "daemon/http/tls_context.h"

#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "openssl/err.h"
#include "openssl/pem.h"
#include "openssl/x509.h"

namespace repro {
namespace {

struct BioDeleter {
  void operator()(BIO* bio) const { BIO_free(bio); }
};
struct PkeyDeleter {
  void operator()(EVP_PKEY* key) const { EVP_PKEY_free(key); }
};

// A plain error about `what` (tls_cert_file / tls_key_file) at `path`.
absl::Status FileError(absl::string_view what, const std::string& path, absl::string_view problem) {
  return absl::InvalidArgumentError(absl::StrCat(what, " ", path, ": ", problem));
}

// Opens and closes `path` so that a missing or unreadable file is reported with errno's words
// rather than OpenSSL's.
absl::Status CheckReadableFile(absl::string_view what, const std::string& path) {
  if (path.empty()) return absl::InvalidArgumentError(absl::StrCat(what, " is empty"));
  int fd = open(path.c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return FileError(what, path, strerror(errno));
  struct stat st;
  bool regular = fstat(fd, &st) == 0 && S_ISREG(st.st_mode);
  close(fd);
  if (!regular) return FileError(what, path, "not a regular file");
  return absl::OkStatus();
}

// Refuses to prompt for the passphrase of an encrypted key.
int NoPassphrase(char*, int, int, void*) { return 0; }

// Picks "http/1.1" when the client offers it; otherwise no ALPN (the client falls back to 1.1).
int SelectHttp11(SSL*, const unsigned char** out, unsigned char* out_len, const unsigned char* in,
                 unsigned int in_len, void*) {
  static constexpr unsigned char kHttp11[] = {'h', 't', 't', 'p', '/', '1', '.', '1'};
  for (unsigned int i = 0; i < in_len; i += 1 + in[i]) {
    if (in[i] == sizeof(kHttp11) && i + 1 + in[i] <= in_len &&
        memcmp(in + i + 1, kHttp11, sizeof(kHttp11)) == 0) {
      *out = in + i + 1;
      *out_len = in[i];
      return SSL_TLSEXT_ERR_OK;
    }
  }
  return SSL_TLSEXT_ERR_NOACK;
}

}  // namespace

std::string OpenSslErrors() {
  std::string out;
  while (unsigned long err = ERR_get_error()) {
    char buf[256];
    ERR_error_string_n(err, buf, sizeof(buf));
    absl::StrAppend(&out, out.empty() ? "" : "; ", buf);
  }
  return out.empty() ? "no OpenSSL error" : out;
}

absl::StatusOr<SslCtxPtr> NewTlsServerContext(const std::string& cert_file,
                                              const std::string& key_file) {
  constexpr absl::string_view kCert = "tls_cert_file";
  constexpr absl::string_view kKey = "tls_key_file";
  if (absl::Status s = CheckReadableFile(kCert, cert_file); !s.ok()) return s;
  if (absl::Status s = CheckReadableFile(kKey, key_file); !s.ok()) return s;

  ERR_clear_error();
  SslCtxPtr ctx(SSL_CTX_new(TLS_server_method()));
  if (ctx == nullptr) return absl::InternalError(absl::StrCat("SSL_CTX_new: ", OpenSslErrors()));
  SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION);
  // Peers that drop the TCP connection without close_notify read as EOF: our requests are framed
  // by Content-Length, so a truncation cannot go unnoticed.
  SSL_CTX_set_options(ctx.get(), SSL_OP_NO_RENEGOTIATION | SSL_OP_NO_COMPRESSION |
                                     SSL_OP_IGNORE_UNEXPECTED_EOF |
                                     SSL_OP_CIPHER_SERVER_PREFERENCE);
  SSL_CTX_set_default_passwd_cb(ctx.get(), NoPassphrase);
  SSL_CTX_set_alpn_select_cb(ctx.get(), SelectHttp11, nullptr);

  if (SSL_CTX_use_certificate_chain_file(ctx.get(), cert_file.c_str()) != 1) {
    return FileError(kCert, cert_file,
                     absl::StrCat("no usable PEM certificate chain: ", OpenSslErrors()));
  }
  std::unique_ptr<BIO, BioDeleter> bio(BIO_new_file(key_file.c_str(), "r"));
  std::unique_ptr<EVP_PKEY, PkeyDeleter> key(
      bio == nullptr ? nullptr
                     : PEM_read_bio_PrivateKey(bio.get(), nullptr, NoPassphrase, nullptr));
  if (key == nullptr) {
    return FileError(kKey, key_file,
                     absl::StrCat("no usable (unencrypted) PEM private key: ", OpenSslErrors()));
  }
  X509* leaf = SSL_CTX_get0_certificate(ctx.get());
  if (leaf == nullptr || X509_check_private_key(leaf, key.get()) != 1) {
    ERR_clear_error();
    return absl::InvalidArgumentError(absl::StrCat(
        kKey, " ", key_file, " does not match the certificate in ", kCert, " ", cert_file));
  }
  if (SSL_CTX_use_PrivateKey(ctx.get(), key.get()) != 1) {
    return FileError(kKey, key_file, absl::StrCat("cannot use key: ", OpenSslErrors()));
  }
  return ctx;
}

}  // namespace repro
