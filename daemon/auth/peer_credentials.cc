#include "daemon/auth/peer_credentials.h"

#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstdio>
#include <cstring>
#include <fstream>

#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_format.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/posix_error.h"

namespace repro {
namespace {

constexpr int kMaxGroups = 256;

// The address of a /proc/net/tcp{,6} line's local_address column for `ip` and `port`, in the
// kernel's notation: the address as 32-bit words printed in host byte order, then the port.
std::string KernelSocketAddress(const in6_addr* v6, const in_addr* v4, uint16_t port) {
  std::string out;
  if (v4 != nullptr) {
    out = absl::StrFormat("%08X", v4->s_addr);
  } else {
    const uint32_t* words = reinterpret_cast<const uint32_t*>(v6->s6_addr);
    for (int i = 0; i < 4; ++i) absl::StrAppendFormat(&out, "%08X", words[i]);
  }
  absl::StrAppendFormat(&out, ":%04X", port);
  return out;
}

// Splits "ipv4:1.2.3.4:5" / "ipv6:[::1]:5" into host and port.
bool SplitPeer(absl::string_view peer, std::string* family, std::string* host, uint16_t* port) {
  size_t colon = peer.find(':');
  if (colon == absl::string_view::npos) return false;
  *family = std::string(peer.substr(0, colon));
  absl::string_view rest = peer.substr(colon + 1);
  size_t last = rest.rfind(':');
  if (last == absl::string_view::npos) return false;
  absl::string_view h = rest.substr(0, last);
  h = absl::StripPrefix(absl::StripSuffix(h, "]"), "[");
  *host = std::string(h);
  uint32_t p = 0;
  if (!absl::SimpleAtoi(rest.substr(last + 1), &p) || p > 65535) return false;
  *port = static_cast<uint16_t>(p);
  return true;
}

}  // namespace

std::vector<gid_t> GroupsOfUser(uid_t uid, gid_t gid) {
  passwd pw{};
  passwd* found = nullptr;
  char buffer[1024];
  if (getpwuid_r(uid, &pw, buffer, sizeof(buffer), &found) != 0 || found == nullptr) return {};
  std::vector<gid_t> groups(kMaxGroups);
  int n = kMaxGroups;
  if (getgrouplist(found->pw_name, gid, groups.data(), &n) < 0) return {};
  groups.resize(n);
  return groups;
}

absl::StatusOr<Identity> UnixPeerIdentity(int fd, pid_t* pid) {
  ucred cred{};
  socklen_t len = sizeof(cred);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &len) != 0) {
    return PosixError(errno, "SO_PEERCRED");
  }
  std::vector<gid_t> groups(kMaxGroups);
  socklen_t groups_len = groups.size() * sizeof(gid_t);
  if (getsockopt(fd, SOL_SOCKET, SO_PEERGROUPS, groups.data(), &groups_len) == 0) {
    groups.resize(groups_len / sizeof(gid_t));
  } else {
    groups.clear();  // more groups than we ask for: judge by the primary group alone
  }
  if (pid != nullptr) *pid = cred.pid;
  return Identity::Unix(cred.uid, cred.gid, std::move(groups));
}

absl::StatusOr<Identity> LoopbackTcpPeerIdentity(absl::string_view peer) {
  std::string family, host;
  uint16_t port = 0;
  if (!SplitPeer(peer, &family, &host, &port)) {
    return absl::InvalidArgumentError(absl::StrCat("cannot parse peer address ", peer));
  }
  // (socket table, address as that table writes it) to look for.
  std::vector<std::pair<std::string, std::string>> candidates;
  in_addr v4{};
  in6_addr v6{};
  if (family == "ipv4" && inet_pton(AF_INET, host.c_str(), &v4) == 1) {
    candidates.emplace_back("/proc/net/tcp", KernelSocketAddress(nullptr, &v4, port));
    // A client that connected with an IPv6 socket to 127.0.0.1 holds ::ffff:127.x.x.x.
    in6_addr mapped{};
    mapped.s6_addr[10] = mapped.s6_addr[11] = 0xff;
    memcpy(&mapped.s6_addr[12], &v4, 4);
    candidates.emplace_back("/proc/net/tcp6", KernelSocketAddress(&mapped, nullptr, port));
  } else if (family == "ipv6" && inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    candidates.emplace_back("/proc/net/tcp6", KernelSocketAddress(&v6, nullptr, port));
  } else {
    return absl::InvalidArgumentError(absl::StrCat("cannot parse peer address ", peer));
  }
  for (const auto& [table, wanted] : candidates) {
    std::ifstream in(table);
    std::string line;
    std::getline(in, line);  // header
    while (std::getline(in, line)) {
      // sl local_address rem_address st tx:rx tr:when retrnsmt uid timeout inode
      std::vector<absl::string_view> cols = absl::StrSplit(line, ' ', absl::SkipEmpty());
      if (cols.size() < 8 || cols[1] != wanted || cols[3] != "01") continue;  // 01: ESTABLISHED
      uint32_t uid = 0;
      if (!absl::SimpleAtoi(cols[7], &uid)) continue;
      passwd pw{};
      passwd* found = nullptr;
      char buffer[1024];
      gid_t gid = static_cast<gid_t>(-1);
      if (getpwuid_r(uid, &pw, buffer, sizeof(buffer), &found) == 0 && found != nullptr) {
        gid = found->pw_gid;
      }
      return Identity::Unix(uid, gid, GroupsOfUser(uid, gid));
    }
  }
  return absl::NotFoundError(absl::StrCat("no local socket is connected from ", peer));
}

bool IsLoopbackAddress(absl::string_view address) {
  address = absl::StripPrefix(address, "ipv4:");
  address = absl::StripPrefix(address, "ipv6:");
  return absl::StartsWith(address, "127.") || absl::StartsWith(address, "[::1]:") ||
         absl::StartsWith(address, "localhost:") || absl::StartsWith(address, "[::ffff:127.");
}

}  // namespace repro
