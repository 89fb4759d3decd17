// Authorizer: the one place that decides who may do what in reprod. The gRPC service asks it for
// every call and the shim socket for every HELLO and LOADED report; both hand it the caller's
// Identity as their socket proved it (daemon/auth/identity.h).
//
//   Authorizer auth({.admin_group = 27, .metrics = &metrics});
//   RETURN_IF_ERROR(auth.CheckJobWrite("Record", caller, pin));
//
// The model (README "Who may do what"):
//   - admin: uid 0, a member of --admin_group, or a certificate in --admin_identities. May do
//     everything.
//   - auditor: a member of --auditor_group or a certificate in --auditor_identities. May read
//     every job's journal (Replay, VerifyJournal, and so journal, verify, diff, export).
//   - owner of a job: the identity that pinned it (v1::Pin.owner). May pin it again (a no-op),
//     record facts into it, start shimmed processes for it (HELLO), and read its journal.
//   - everyone who reaches the API socket: may pin a new job (becoming its owner), read pins,
//     versions and node info (what data a job uses is not a secret on a shared node; the journal
//     with argv, file paths and custom facts is), and ask Admit.
//   - registering a version: admin, or a caller who can read every file of the tree itself
//     (daemon/auth/file_access.h). No caller is told the hash of a file they could not read.
// Everyone on the node may NOT read every journal: argv and custom facts can hold secrets.
//
// Each denial is PERMISSION_DENIED with a reason and is counted in
// repro_denied_total{rpc, reason}. Thread-safe.
#ifndef REPRO_DAEMON_AUTH_AUTHORIZER_H_
#define REPRO_DAEMON_AUTH_AUTHORIZER_H_

#include <sys/types.h>

#include <optional>
#include <string>

#include "absl/container/flat_hash_set.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/auth/identity.h"
#include "daemon/metrics/metrics.h"

namespace repro {

struct AuthorizerOptions {
  std::optional<gid_t> admin_group;
  std::optional<gid_t> auditor_group;
  absl::flat_hash_set<std::string> admin_identities;    // certificate identities
  absl::flat_hash_set<std::string> auditor_identities;
  Metrics* metrics = nullptr;  // may be null: denials are not exported
};

enum class Role { kUser, kAuditor, kAdmin };

class Authorizer {
 public:
  explicit Authorizer(AuthorizerOptions options);

  Role RoleOf(const Identity& who) const;

  // Pin of an already pinned job, Record, shim HELLO: the owner of the job (`owner`, the pin's
  // owner string) or an admin. `action` names the RPC or message for the reason and the metric.
  absl::Status CheckJobWrite(absl::string_view action, const Identity& who,
                             absl::string_view job, absl::string_view owner);
  // Replay, VerifyJournal: the owner, an auditor or an admin. `owner` is "" for a job unknown
  // here or pinned before owners were recorded: auditors and admins only.
  absl::Status CheckJobRead(absl::string_view action, const Identity& who, absl::string_view job,
                            absl::string_view owner);
  // Anything that needs an identity at all (Pin of a new job).
  absl::Status CheckAuthenticated(absl::string_view action, const Identity& who);
  // What admins only may do (pin on behalf of another owner).
  absl::Status CheckAdmin(absl::string_view action, const Identity& who);
  // RegisterVersion of the tree at `path`: an admin, or `who` can read all of it.
  absl::Status CheckRegister(absl::string_view action, const Identity& who,
                             const std::string& path);
  // Whether reprod may hash `path` on behalf of `who` (executables at HELLO, LOADED libraries):
  // only when `who` could read it. Refusals are counted as denials of `action`.
  bool MayHash(absl::string_view action, const Identity& who, const std::string& path);

 private:
  // Counts the denial and builds its status.
  absl::Status Deny(absl::string_view action, absl::string_view reason, std::string message);

  const AuthorizerOptions options_;
  Metrics own_metrics_;  // used when options_.metrics is null
  Metrics* const metrics_;
};

// Resolves a Unix group name (or a number) for --admin_group / --auditor_group; "" gives nullopt.
// INVALID_ARGUMENT naming `flag` for an unknown group.
absl::StatusOr<std::optional<gid_t>> ParseGroupFlag(absl::string_view flag,
                                                    const std::string& value);

// The certificate identities of --admin_identities / --auditor_identities: a comma-separated
// list, or "@FILE" for a file with one identity per line ('#' starts a comment).
// INVALID_ARGUMENT naming `flag` for an unreadable file.
absl::StatusOr<absl::flat_hash_set<std::string>> ParseIdentitiesFlag(absl::string_view flag,
                                                                     const std::string& value);

}  // namespace repro

#endif  // REPRO_DAEMON_AUTH_AUTHORIZER_H_
