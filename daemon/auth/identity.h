// Identity: who is calling reprod, as the socket the call came through proves it. Unix sockets
// (and plain TCP on loopback) give a uid, gid and groups from the kernel; TCP with mTLS gives the
// verified client certificate's identity; the Kubernetes webhook gives a Pod's namespace.
//
//   Identity caller = Identity::Unix(1000, 1000, {1000, 27});
//   std::string owner = caller.Owner();  // "uid:1000", stored with the pins it makes
#ifndef REPRO_DAEMON_AUTH_IDENTITY_H_
#define REPRO_DAEMON_AUTH_IDENTITY_H_

#include <sys/types.h>

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace repro {

struct Identity {
  enum class Kind {
    kNone,         // nothing proven: may read public metadata only
    kUnix,         // uid, gid, groups
    kCertificate,  // name: the client certificate's first SAN, else its CN
    kNamespace,    // name: a Kubernetes namespace; service_account when known
  };

  static Identity Unix(uid_t uid, gid_t gid, std::vector<gid_t> groups);
  static Identity Certificate(std::string name);
  static Identity Namespace(std::string ns, std::string service_account = "");

  // The owner string a pin made by this identity stores (v1::Pin.owner): "uid:<uid>",
  // "cert:<name>" or "k8s:<namespace>"; "" for kNone.
  std::string Owner() const;
  // For log lines and denial messages: "uid 1000 (alice)", "certificate \"ci\"", ...
  std::string Describe() const;
  // kUnix: whether `group` is the primary group or one of the supplementary groups.
  bool InGroup(gid_t group) const;

  Kind kind = Kind::kNone;
  uid_t uid = static_cast<uid_t>(-1);
  gid_t gid = static_cast<gid_t>(-1);
  std::vector<gid_t> groups;  // supplementary groups (SO_PEERGROUPS, or the group database)
  std::string name;
  std::string service_account;
};

// OK for an owner string as Identity::Owner() makes them; INVALID_ARGUMENT otherwise.
absl::Status ValidateOwner(absl::string_view owner);

}  // namespace repro

#endif  // REPRO_DAEMON_AUTH_IDENTITY_H_
