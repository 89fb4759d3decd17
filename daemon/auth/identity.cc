#include "daemon/auth/identity.h"

#include <pwd.h>
#include <unistd.h>

#include <algorithm>

#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace repro {
namespace {

std::string UserName(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  char buffer[1024];
  if (getpwuid_r(uid, &pw, buffer, sizeof(buffer), &found) != 0 || found == nullptr) return "";
  return found->pw_name;
}

}  // namespace

Identity Identity::Unix(uid_t uid, gid_t gid, std::vector<gid_t> groups) {
  Identity id;
  id.kind = Kind::kUnix;
  id.uid = uid;
  id.gid = gid;
  id.groups = std::move(groups);
  return id;
}

Identity Identity::Certificate(std::string name) {
  Identity id;
  id.kind = Kind::kCertificate;
  id.name = std::move(name);
  return id;
}

Identity Identity::Namespace(std::string ns, std::string service_account) {
  Identity id;
  id.kind = Kind::kNamespace;
  id.name = std::move(ns);
  id.service_account = std::move(service_account);
  return id;
}

std::string Identity::Owner() const {
  switch (kind) {
    case Kind::kUnix:
      return absl::StrCat("uid:", uid);
    case Kind::kCertificate:
      return absl::StrCat("cert:", name);
    case Kind::kNamespace:
      return absl::StrCat("k8s:", name);
    case Kind::kNone:
      break;
  }
  return "";
}

std::string Identity::Describe() const {
  switch (kind) {
    case Kind::kUnix: {
      std::string user = UserName(uid);
      return user.empty() ? absl::StrCat("uid ", uid) : absl::StrCat("uid ", uid, " (", user, ")");
    }
    case Kind::kCertificate:
      return absl::StrCat("certificate \"", name, "\"");
    case Kind::kNamespace:
      return service_account.empty()
                 ? absl::StrCat("namespace ", name)
                 : absl::StrCat("namespace ", name, " (service account ", service_account, ")");
    case Kind::kNone:
      break;
  }
  return "an unauthenticated caller";
}

bool Identity::InGroup(gid_t group) const {
  if (kind != Kind::kUnix) return false;
  return gid == group || std::find(groups.begin(), groups.end(), group) != groups.end();
}

absl::Status ValidateOwner(absl::string_view owner) {
  absl::string_view rest = owner;
  uint32_t uid = 0;
  if (absl::ConsumePrefix(&rest, "uid:")) {
    if (absl::SimpleAtoi(rest, &uid)) return absl::OkStatus();
  } else if (absl::ConsumePrefix(&rest, "cert:") || absl::ConsumePrefix(&rest, "k8s:")) {
    if (!rest.empty()) return absl::OkStatus();
  }
  return absl::InvalidArgumentError(
      absl::StrCat("owner \"", owner, "\" is not uid:NUMBER, cert:IDENTITY or k8s:NAMESPACE"));
}

}  // namespace repro
