// etcd credentials: TLS to the members (--etcd_tls_ca, --etcd_tls_cert, --etcd_tls_key) and etcd
// user authentication (--etcd_user, --etcd_password_file). etcd's Auth.Authenticate trades the
// user's password for a token that every later call carries as the "token" metadata; the token
// expires (--auth-token-ttl, 5 minutes idle by default), and then etcd answers "etcdserver: invalid
// auth token": the token is dropped and the next call authenticates again.
//
//   EtcdSecurity security{.tls_ca = "ca.crt", .user = "reprod", .password_file = "/run/secret"};
//   ASSIGN_OR_RETURN(std::shared_ptr<EtcdTokenSource> tokens, EtcdTokenSource::Create(security));
//   ASSIGN_OR_RETURN(std::shared_ptr<grpc::ChannelCredentials> creds,
//                    EtcdChannelCredentials(security, tokens, "10.0.0.1:2379"));
//
// A password travels only over TLS: a user without --etcd_tls_ca is INVALID_ARGUMENT (gRPC also
// never sends call credentials over a plaintext channel).
#ifndef REPRO_DAEMON_ETCD_ETCD_CREDENTIALS_H_
#define REPRO_DAEMON_ETCD_ETCD_CREDENTIALS_H_

#include <memory>
#include <string>

#include <grpcpp/grpcpp.h>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace repro {

struct EtcdSecurity {
  std::string tls_ca;    // PEM CA of the members' certificates; empty: plaintext
  std::string tls_cert;  // PEM client certificate and key (etcd --client-cert-auth); optional
  std::string tls_key;
  std::string user;           // etcd user; empty: no authentication
  std::string password_file;  // its password (first line)

  bool tls() const { return !tls_ca.empty(); }
};

// The tokens of one etcd user, one per member (a member's token is valid on that member only
// with simple tokens). Thread-safe.
class EtcdTokenSource {
 public:
  // INVALID_ARGUMENT for an unreadable password file or a user without TLS.
  static absl::StatusOr<std::shared_ptr<EtcdTokenSource>> Create(const EtcdSecurity& security);

  // The cached token for the member at `address`, else a new one from Auth.Authenticate.
  // UNAUTHENTICATED for a wrong user or password; UNAVAILABLE when the member cannot be reached.
  absl::StatusOr<std::string> Token(const std::string& address);
  // Drops the cached tokens (etcd refused one: it expired).
  void Forget();

 private:
  EtcdTokenSource(EtcdSecurity security, std::string password,
                  std::shared_ptr<grpc::ChannelCredentials> tls)
      : security_(std::move(security)), password_(std::move(password)), tls_(std::move(tls)) {}

  const EtcdSecurity security_;
  const std::string password_;
  const std::shared_ptr<grpc::ChannelCredentials> tls_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::string> tokens_ ABSL_GUARDED_BY(mu_);
};

// The credentials of a channel to the member at `address`: insecure, TLS, or TLS with the token
// of `tokens` (may be null: no authentication) as "token" metadata on every call and stream.
// INVALID_ARGUMENT for unreadable files.
absl::StatusOr<std::shared_ptr<grpc::ChannelCredentials>> EtcdChannelCredentials(
    const EtcdSecurity& security, std::shared_ptr<EtcdTokenSource> tokens,
    const std::string& address);

// True when etcd refused a call's token (it expired, or the user's password changed).
bool IsEtcdTokenRefused(const grpc::Status& status);

}  // namespace repro

#endif  // REPRO_DAEMON_ETCD_ETCD_CREDENTIALS_H_
