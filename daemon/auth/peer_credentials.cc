#include "daemon/auth/peer_credentials.h"

#include <arpa/inet.h>
#include <grp.h>
#include <pwd.h>
#include <sys/socket.h>

#include <cerrno>
#include <cstring>
#include <optional>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/posix_error.h"
#include "daemon/auth/tcp_socket_owner.h"

namespace repro {
namespace {

constexpr int kMaxGroups = 256;

// An IPv4 or IPv6 socket address; a v4-mapped IPv6 address is kept as IPv4, as the kernel looks
// such a connection up.
union SocketAddress {
  sockaddr any;
  sockaddr_in v4;
  sockaddr_in6 v6;
};

// `uri` with its %XX escapes decoded: gRPC writes an IPv6 peer as "ipv6:%5B::1%5D:5".
std::string UnescapeUri(absl::string_view uri) {
  std::string out;
  out.reserve(uri.size());
  for (size_t i = 0; i < uri.size(); ++i) {
    if (uri[i] == '%' && i + 2 < uri.size() && absl::ascii_isxdigit(uri[i + 1]) &&
        absl::ascii_isxdigit(uri[i + 2])) {
      int value = 0;
      absl::SimpleHexAtoi(uri.substr(i + 1, 2), &value);
      out.push_back(static_cast<char>(value));
      i += 2;
    } else {
      out.push_back(uri[i]);
    }
  }
  return out;
}

// Splits "1.2.3.4:5" / "[::1]:5" / "localhost:5" into host (brackets removed) and port.
bool SplitHostPort(absl::string_view address, std::string* host, uint16_t* port) {
  size_t last = address.rfind(':');
  if (last == absl::string_view::npos) return false;
  absl::string_view h = address.substr(0, last);
  h = absl::StripPrefix(absl::StripSuffix(h, "]"), "[");
  *host = std::string(h);
  uint32_t p = 0;
  if (!absl::SimpleAtoi(address.substr(last + 1), &p) || p > 65535) return false;
  *port = static_cast<uint16_t>(p);
  return true;
}

// The address `host` (a numeric IP) and `port`; nullopt when `host` is not numeric.
std::optional<SocketAddress> ParseIp(const std::string& host, uint16_t port) {
  SocketAddress out{};
  in6_addr v6{};
  if (inet_pton(AF_INET, host.c_str(), &out.v4.sin_addr) == 1) {
    out.v4.sin_family = AF_INET;
    out.v4.sin_port = htons(port);
  } else if (inet_pton(AF_INET6, host.c_str(), &v6) == 1) {
    if (IN6_IS_ADDR_V4MAPPED(&v6)) {
      out.v4.sin_family = AF_INET;
      memcpy(&out.v4.sin_addr, &v6.s6_addr[12], 4);
      out.v4.sin_port = htons(port);
    } else {
      out.v6.sin6_family = AF_INET6;
      out.v6.sin6_addr = v6;
      out.v6.sin6_port = htons(port);
    }
  } else {
    return std::nullopt;
  }
  return out;
}

bool IsWildcard(const SocketAddress& a) {
  return a.any.sa_family == AF_INET ? a.v4.sin_addr.s_addr == htonl(INADDR_ANY)
                                     : IN6_IS_ADDR_UNSPECIFIED(&a.v6.sin6_addr);
}

bool SameAddress(const SocketAddress& a, const SocketAddress& b) {
  if (a.any.sa_family != b.any.sa_family) return false;
  return a.any.sa_family == AF_INET
             ? a.v4.sin_addr.s_addr == b.v4.sin_addr.s_addr && a.v4.sin_port == b.v4.sin_port
             : memcmp(&a.v6.sin6_addr, &b.v6.sin6_addr, sizeof(in6_addr)) == 0 &&
                   a.v6.sin6_port == b.v6.sin6_port;
}

// The addresses of this server that a client at `client` may have connected to: a loopback
// listener's own address; for a listener on a name ("localhost") or a wildcard address, the
// loopback address of the client's family and the client's own address. Only addresses of the
// client's family: a connection's two ends have one.
std::vector<SocketAddress> ServerAddressesFor(const SocketAddress& client,
                                              const std::vector<std::string>& endpoints) {
  const sa_family_t family = client.any.sa_family;
  std::vector<SocketAddress> out;
  auto add = [&](const SocketAddress& address) {
    if (address.any.sa_family != family) return;
    for (const SocketAddress& known : out) {
      if (SameAddress(known, address)) return;
    }
    out.push_back(address);
  };
  for (const std::string& endpoint : endpoints) {
    std::string host;
    uint16_t port = 0;
    if (!SplitHostPort(endpoint, &host, &port)) continue;
    std::optional<SocketAddress> listener = ParseIp(host, port);
    if (listener && !IsWildcard(*listener)) {
      if (IsLoopbackAddress(endpoint)) add(*listener);
      continue;
    }
    SocketAddress loopback{}, own = client;
    if (family == AF_INET) {
      loopback.v4.sin_family = AF_INET;
      loopback.v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
      loopback.v4.sin_port = own.v4.sin_port = htons(port);
    } else {
      loopback.v6.sin6_family = AF_INET6;
      loopback.v6.sin6_addr = in6addr_loopback;
      loopback.v6.sin6_port = own.v6.sin6_port = htons(port);
    }
    add(loopback);
    add(own);
  }
  return out;
}

}  // namespace

Identity IdentityOfUser(uid_t uid) {
  passwd pw{};
  passwd* found = nullptr;
  char buffer[1024];
  if (getpwuid_r(uid, &pw, buffer, sizeof(buffer), &found) != 0 || found == nullptr) {
    return Identity::Unix(uid, static_cast<gid_t>(-1), {});
  }
  std::vector<gid_t> groups(kMaxGroups);
  int n = kMaxGroups;
  if (getgrouplist(found->pw_name, found->pw_gid, groups.data(), &n) < 0) {
    groups.clear();
  } else {
    groups.resize(n);
  }
  return Identity::Unix(uid, found->pw_gid, std::move(groups));
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

absl::StatusOr<Identity> LoopbackTcpPeerIdentity(
    absl::string_view peer, const std::vector<std::string>& server_endpoints) {
  std::string host;
  uint16_t port = 0;
  const std::string unescaped = UnescapeUri(peer);
  absl::string_view address = unescaped;
  std::optional<SocketAddress> client;
  if ((absl::ConsumePrefix(&address, "ipv4:") || absl::ConsumePrefix(&address, "ipv6:")) &&
      SplitHostPort(address, &host, &port)) {
    client = ParseIp(host, port);
  }
  if (!client) return absl::InvalidArgumentError(absl::StrCat("cannot parse peer address ", peer));
  std::optional<uid_t> owner;
  for (const SocketAddress& server : ServerAddressesFor(*client, server_endpoints)) {
    absl::StatusOr<uid_t> uid = TcpSocketOwner(&client->any, &server.any);
    if (absl::IsNotFound(uid.status())) continue;
    if (!uid.ok()) return uid.status();
    if (owner && *owner != *uid) {
      return absl::FailedPreconditionError(absl::StrCat(
          "connections of uid ", *owner, " and uid ", *uid, " share the address ", peer));
    }
    owner = *uid;
  }
  if (!owner) {
    return absl::NotFoundError(absl::StrCat("no connection to this server comes from ", peer));
  }
  return IdentityOfUser(*owner);
}

bool IsLoopbackAddress(absl::string_view uri_or_address) {
  const std::string unescaped = UnescapeUri(uri_or_address);
  absl::string_view address = unescaped;
  address = absl::StripPrefix(address, "ipv4:");
  address = absl::StripPrefix(address, "ipv6:");
  return absl::StartsWith(address, "127.") || absl::StartsWith(address, "[::1]:") ||
         absl::StartsWith(address, "localhost:") || absl::StartsWith(address, "[::ffff:127.");
}

}  // namespace repro
