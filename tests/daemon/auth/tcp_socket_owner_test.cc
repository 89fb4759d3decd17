// TcpSocketOwner and LoopbackTcpPeerIdentity on real loopback connections of this process: the
// kernel names the connection's owner by its exact address pair, never a listener or a socket of
// the same local address connected elsewhere.
#include "daemon/auth/tcp_socket_owner.h"

#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <string>
#include <vector>

#include "absl/strings/str_cat.h"
#include "daemon/auth/peer_credentials.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace repro {
namespace {

union Address {
  sockaddr any;
  sockaddr_in v4;
  sockaddr_in6 v6;
  sockaddr_storage storage;
};

Address Loopback(int family, uint16_t port = 0) {
  Address a{};
  if (family == AF_INET) {
    a.v4.sin_family = AF_INET;
    a.v4.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.v4.sin_port = htons(port);
  } else {
    a.v6.sin6_family = AF_INET6;
    a.v6.sin6_addr = in6addr_loopback;
    a.v6.sin6_port = htons(port);
  }
  return a;
}

uint16_t PortOf(const Address& a) {
  return ntohs(a.any.sa_family == AF_INET ? a.v4.sin_port : a.v6.sin6_port);
}

Address LocalOf(int fd) {
  Address a{};
  socklen_t len = sizeof(a);
  EXPECT_EQ(getsockname(fd, &a.any, &len), 0);
  return a;
}

// The gRPC peer URI of an address, as a server sees a client: "ipv4:127.0.0.1:5",
// "ipv6:%5B::1%5D:5".
std::string PeerUri(const Address& a) {
  char host[INET6_ADDRSTRLEN];
  if (a.any.sa_family == AF_INET) {
    inet_ntop(AF_INET, &a.v4.sin_addr, host, sizeof(host));
    return absl::StrCat("ipv4:", host, ":", PortOf(a));
  }
  inet_ntop(AF_INET6, &a.v6.sin6_addr, host, sizeof(host));
  return absl::StrCat("ipv6:%5B", host, "%5D:", PortOf(a));
}

Address Ipv4(const char* ip, uint16_t port = 0) {
  Address a{};
  a.v4.sin_family = AF_INET;
  EXPECT_EQ(inet_pton(AF_INET, ip, &a.v4.sin_addr), 1);
  a.v4.sin_port = htons(port);
  return a;
}

// A listening socket on `at` (port 0: chosen by the kernel).
class Listener {
 public:
  explicit Listener(int family) : Listener(Loopback(family)) {}
  explicit Listener(const Address& at)
      : fd_(socket(at.any.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0)) {
    EXPECT_EQ(bind(fd_, &at.any, sizeof(at.storage)), 0);
    EXPECT_EQ(listen(fd_, 16), 0);
    address_ = LocalOf(fd_);
  }
  ~Listener() { close(fd_); }
  const Address& address() const { return address_; }
  uint16_t port() const { return PortOf(address_); }

 private:
  int fd_;
  Address address_;
};

// A socket connected to `to`, from `from` when given (with SO_REUSEADDR, so that several
// connections may share one local address, each to another peer); -1 on failure.
int Connect(const Address& to, const Address* from) {
  int fd = socket(to.any.sa_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (from != nullptr) {
    int one = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
    if (bind(fd, &from->any, sizeof(from->storage)) != 0) return close(fd), -1;
  }
  if (connect(fd, &to.any, sizeof(to.storage)) != 0) return close(fd), -1;
  return fd;
}

class Client {
 public:
  explicit Client(const Address& to, const Address* from = nullptr) : fd_(Connect(to, from)) {
    EXPECT_GE(fd_, 0) << strerror(errno);
    local_ = LocalOf(fd_);
  }
  ~Client() { close(fd_); }
  const Address& local() const { return local_; }

 private:
  int fd_;
  Address local_;
};

constexpr uid_t kNobody = 65534;

// A connection made by uid nobody in a child process, open until this object is destroyed.
class NobodysClient {
 public:
  NobodysClient(const Address& to, const Address& from) {
    int ready[2], done[2];
    EXPECT_EQ(pipe2(ready, O_CLOEXEC), 0);
    EXPECT_EQ(pipe2(done, O_CLOEXEC), 0);
    pid_ = fork();
    if (pid_ == 0) {
      close(done[1]);  // so that the parent's close ends the read below
      if (setgid(kNobody) != 0 || setuid(kNobody) != 0) _exit(2);
      if (Connect(to, &from) < 0) _exit(3);
      char c = 'k';
      if (write(ready[1], &c, 1) != 1) _exit(4);
      while (read(done[0], &c, 1) < 0 && errno == EINTR) {
      }
      _exit(0);
    }
    close(ready[1]);
    close(done[0]);
    done_ = done[1];
    char c;
    connected_ = read(ready[0], &c, 1) == 1;
    close(ready[0]);
  }
  ~NobodysClient() {
    close(done_);
    waitpid(pid_, nullptr, 0);
  }
  bool connected() const { return connected_; }

 private:
  pid_t pid_ = -1;
  int done_ = -1;
  bool connected_ = false;
};

TEST(TcpSocketOwnerTest, NamesTheOwnerOfAnEstablishedConnection) {
  for (int family : {AF_INET, AF_INET6}) {
    Listener listener(family);
    Client client(listener.address());
    absl::StatusOr<uid_t> owner = TcpSocketOwner(&client.local().any, &listener.address().any);
    ASSERT_TRUE(owner.ok()) << owner.status();
    EXPECT_EQ(*owner, geteuid());
  }
}

TEST(TcpSocketOwnerTest, AnIpv4PairFindsADualStackSocket) {
  Listener listener(AF_INET);
  Address mapped{};  // ::ffff:127.0.0.1, as gRPC's clients connect to an IPv4 address
  mapped.v6.sin6_family = AF_INET6;
  mapped.v6.sin6_port = htons(listener.port());
  ASSERT_EQ(inet_pton(AF_INET6, "::ffff:127.0.0.1", &mapped.v6.sin6_addr), 1);
  Client client(mapped);
  Address local = Loopback(AF_INET, PortOf(client.local()));
  absl::StatusOr<uid_t> owner = TcpSocketOwner(&local.any, &listener.address().any);
  ASSERT_TRUE(owner.ok()) << owner.status();
  EXPECT_EQ(*owner, geteuid());
}

TEST(TcpSocketOwnerTest, OnlyTheExactPairAnswers) {
  Listener listener(AF_INET);
  Listener elsewhere(AF_INET);
  Client client(listener.address());
  // The client's address with another peer: no such connection.
  EXPECT_TRUE(
      absl::IsNotFound(TcpSocketOwner(&client.local().any, &elsewhere.address().any).status()));
  // The listener's address with a peer it has no connection with: the kernel's lookup falls
  // back to the listener, which is not a connection.
  EXPECT_TRUE(
      absl::IsNotFound(TcpSocketOwner(&listener.address().any, &elsewhere.address().any).status()));
  // The server's end of the connection is one, of this process too.
  EXPECT_TRUE(TcpSocketOwner(&listener.address().any, &client.local().any).ok());
  Address v6 = Loopback(AF_INET6);
  EXPECT_TRUE(absl::IsInvalidArgument(TcpSocketOwner(&client.local().any, &v6.any).status()));
}

TEST(TcpSocketOwnerTest, AClosedConnectionIsNotFound) {
  Listener listener(AF_INET);
  Address local;
  {
    Client client(listener.address());
    local = client.local();
  }  // closed first by the client: its end lingers in FIN_WAIT or TIME_WAIT
  EXPECT_TRUE(absl::IsNotFound(TcpSocketOwner(&local.any, &listener.address().any).status()));
}

TEST(LoopbackTcpPeerIdentityTest, FindsTheCallerOfEachKindOfListener) {
  for (int family : {AF_INET, AF_INET6}) {
    Listener listener(family);
    Client client(listener.address());
    const std::string port = absl::StrCat(listener.port());
    const std::string own = family == AF_INET ? "127.0.0.1:" + port : "[::1]:" + port;
    const std::string wildcard = family == AF_INET ? "0.0.0.0:" + port : "[::]:" + port;
    for (const std::string& endpoint : {own, wildcard, "localhost:" + port}) {
      absl::StatusOr<Identity> caller =
          LoopbackTcpPeerIdentity(PeerUri(client.local()), {endpoint});
      ASSERT_TRUE(caller.ok()) << endpoint << ": " << caller.status();
      EXPECT_EQ(caller->kind, Identity::Kind::kUnix);
      EXPECT_EQ(caller->uid, geteuid());
    }
    // A server on another port has no such caller.
    EXPECT_TRUE(
        absl::IsNotFound(LoopbackTcpPeerIdentity(PeerUri(client.local()), {own + "1"}).status()));
  }
  EXPECT_TRUE(absl::IsInvalidArgument(LoopbackTcpPeerIdentity("unix:/x", {}).status()));
}

TEST(LoopbackTcpPeerIdentityTest, AnotherUidsSocketOfTheCallersAddressIsNotTheCaller) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make a connection of another uid";
  Listener server(AF_INET);
  Listener elsewhere(AF_INET);
  const Address any_port = Loopback(AF_INET);
  Client caller(server.address(), &any_port);
  // Nobody connects elsewhere from the caller's very address, as another uid's connection that
  // shares an ephemeral port does (or a squatter with SO_REUSEADDR).
  NobodysClient squatter(elsewhere.address(), caller.local());
  ASSERT_TRUE(squatter.connected());
  const std::string peer = PeerUri(caller.local());
  absl::StatusOr<Identity> found =
      LoopbackTcpPeerIdentity(peer, {absl::StrCat("127.0.0.1:", server.port())});
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->uid, 0u);
  // The squatter's connection is there, and is its own.
  found = LoopbackTcpPeerIdentity(peer, {absl::StrCat("127.0.0.1:", elsewhere.port())});
  ASSERT_TRUE(found.ok()) << found.status();
  EXPECT_EQ(found->uid, kNobody);
}

TEST(LoopbackTcpPeerIdentityTest, ConnectionsOfTwoUidsFromOneAddressToThisServerAreRefused) {
  if (geteuid() != 0) GTEST_SKIP() << "needs root to make a connection of another uid";
  // This server on two loopback addresses with one port; two connections from one address.
  Listener first(Ipv4("127.0.0.1"));
  Listener second(Ipv4("127.0.0.2", first.port()));
  const Address any_port = Loopback(AF_INET);
  Client caller(first.address(), &any_port);
  NobodysClient other(second.address(), caller.local());
  ASSERT_TRUE(other.connected());
  const std::string port = absl::StrCat(first.port());
  absl::StatusOr<Identity> found =
      LoopbackTcpPeerIdentity(PeerUri(caller.local()), {"127.0.0.1:" + port, "127.0.0.2:" + port});
  EXPECT_TRUE(absl::IsFailedPrecondition(found.status())) << found.status();
}

}  // namespace
}  // namespace repro
