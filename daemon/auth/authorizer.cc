#include "daemon/auth/authorizer.h"

#include <grp.h>

#include <fstream>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "daemon/auth/file_access.h"

namespace repro {

Authorizer::Authorizer(AuthorizerOptions options)
    : options_(std::move(options)),
      metrics_(options_.metrics != nullptr ? options_.metrics : &own_metrics_) {}

Role Authorizer::RoleOf(const Identity& who) const {
  switch (who.kind) {
    case Identity::Kind::kUnix:
      if (who.uid == 0) return Role::kAdmin;
      if (options_.admin_group && who.InGroup(*options_.admin_group)) return Role::kAdmin;
      if (options_.auditor_group && who.InGroup(*options_.auditor_group)) return Role::kAuditor;
      return Role::kUser;
    case Identity::Kind::kCertificate:
      if (options_.admin_identities.contains(who.name)) return Role::kAdmin;
      if (options_.auditor_identities.contains(who.name)) return Role::kAuditor;
      return Role::kUser;
    case Identity::Kind::kNamespace:
    case Identity::Kind::kNone:
      break;
  }
  return Role::kUser;
}

absl::Status Authorizer::Deny(absl::string_view action, absl::string_view reason,
                              std::string message) {
  metrics_
      ->GetCounter("repro_denied_total", "Calls and shim messages refused by authorization.",
                   {{"rpc", std::string(action)}, {"reason", std::string(reason)}})
      ->Increment();
  return absl::PermissionDeniedError(std::move(message));
}

absl::Status Authorizer::CheckAuthenticated(absl::string_view action, const Identity& who) {
  if (who.kind != Identity::Kind::kNone) return absl::OkStatus();
  return Deny(action, "unauthenticated",
              absl::StrCat(action,
                           " needs an identity: connect over the Unix socket or with a "
                           "client certificate"));
}

absl::Status Authorizer::CheckAdmin(absl::string_view action, const Identity& who) {
  if (RoleOf(who) == Role::kAdmin) return absl::OkStatus();
  return Deny(action, "not_admin",
              absl::StrCat(action, " refused: ", who.Describe(), " has not the admin role"));
}

absl::Status Authorizer::CheckJobWrite(absl::string_view action, const Identity& who,
                                       absl::string_view job, absl::string_view owner) {
  if (absl::Status s = CheckAuthenticated(action, who); !s.ok()) return s;
  if (!owner.empty() && who.Owner() == owner) return absl::OkStatus();
  if (RoleOf(who) == Role::kAdmin) return absl::OkStatus();
  return Deny(action, "not_owner",
              absl::StrCat(action, " of job ", job, " refused: it belongs to ",
                           owner.empty() ? "nobody recorded (admins only)" : owner, ", not to ",
                           who.Describe(), " (", who.Owner(), ")"));
}

absl::Status Authorizer::CheckJobRead(absl::string_view action, const Identity& who,
                                      absl::string_view job, absl::string_view owner) {
  if (absl::Status s = CheckAuthenticated(action, who); !s.ok()) return s;
  if (!owner.empty() && who.Owner() == owner) return absl::OkStatus();
  if (RoleOf(who) != Role::kUser) return absl::OkStatus();
  return Deny(action, "not_owner_or_auditor",
              absl::StrCat(action, " of job ", job,
                           " refused: its journal may be read by its "
                           "owner (",
                           owner.empty() ? "none recorded" : owner, "), auditors and admins; ",
                           who.Describe(), " is none of them"));
}

absl::Status Authorizer::CheckRegister(absl::string_view action, const Identity& who,
                                       const std::string& path) {
  if (absl::Status s = CheckAuthenticated(action, who); !s.ok()) return s;
  if (RoleOf(who) == Role::kAdmin) return absl::OkStatus();
  if (who.kind != Identity::Kind::kUnix) {
    return Deny(action, "not_admin",
                absl::StrCat(action, " refused: ", who.Describe(),
                             " has not the admin role, and only local users can register trees "
                             "they can read themselves"));
  }
  absl::Status readable = CheckTreeReadable(who, path);
  if (absl::IsPermissionDenied(readable)) {
    return Deny(action, "unreadable", absl::StrCat(action, " refused: ", readable.message()));
  }
  return readable;
}

bool Authorizer::MayHash(absl::string_view action, const Identity& who, const std::string& path) {
  if (MayRead(who, path)) return true;
  Deny(action, "unreadable", "").IgnoreError();
  return false;
}

absl::StatusOr<std::optional<gid_t>> ParseGroupFlag(absl::string_view flag,
                                                    const std::string& value) {
  if (value.empty()) return std::nullopt;
  gid_t number = 0;
  if (absl::SimpleAtoi(value, &number)) return number;
  group gr{};
  group* found = nullptr;
  char buffer[4096];
  if (getgrnam_r(value.c_str(), &gr, buffer, sizeof(buffer), &found) != 0 || found == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("--", flag, ": no group named \"", value, "\""));
  }
  return found->gr_gid;
}

absl::StatusOr<absl::flat_hash_set<std::string>> ParseIdentitiesFlag(absl::string_view flag,
                                                                     const std::string& value) {
  absl::flat_hash_set<std::string> out;
  std::vector<std::string> items;
  if (absl::StartsWith(value, "@")) {
    std::ifstream in(value.substr(1));
    if (!in) {
      return absl::InvalidArgumentError(
          absl::StrCat("--", flag, ": cannot read ", value.substr(1)));
    }
    std::string line;
    while (std::getline(in, line)) items.push_back(line.substr(0, line.find('#')));
  } else {
    items = absl::StrSplit(value, ',');
  }
  for (std::string& item : items) {
    absl::StripAsciiWhitespace(&item);
    if (!item.empty()) out.insert(std::move(item));
  }
  return out;
}

}  // namespace repro
