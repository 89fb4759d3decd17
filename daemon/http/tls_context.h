// The server side of HTTPS: an OpenSSL SSL_CTX holding a certificate chain and its private key,
// TLS 1.2 or newer, HTTP/1.1 offered through ALPN.
//
//   ASSIGN_OR_RETURN(SslCtxPtr ctx, NewTlsServerContext("/etc/reprod/tls.crt",
//                                                       "/etc/reprod/tls.key"));
//   SSL* ssl = SSL_new(ctx.get());  // one per accepted connection
#ifndef REPRO_DAEMON_HTTP_TLS_CONTEXT_H_
#define REPRO_DAEMON_HTTP_TLS_CONTEXT_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "openssl/ssl.h"

namespace repro {

struct SslCtxDeleter {
  void operator()(SSL_CTX* ctx) const { SSL_CTX_free(ctx); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxDeleter>;

// Loads the PEM certificate chain (leaf first) from `cert_file` and the PEM private key from
// `key_file`. Fails with INVALID_ARGUMENT naming the file when one is missing or unreadable, holds
// no usable PEM (an encrypted key counts: there is nobody to type a passphrase), or when the key
// does not belong to the certificate. The returned context is safe to share between threads.
absl::StatusOr<SslCtxPtr> NewTlsServerContext(const std::string& cert_file,
                                              const std::string& key_file);

// Drains this thread's OpenSSL error queue into one line ("error:...; error:..."), or "no OpenSSL
// error" when it is empty.
std::string OpenSslErrors();

}  // namespace repro

#endif  // REPRO_DAEMON_HTTP_TLS_CONTEXT_H_
