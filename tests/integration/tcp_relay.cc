// tcp_relay: relays one TCP connection to TARGET from the local address FROM, for auth_test to
// make a call to reprod from a chosen address as another uid (reproctl cannot choose its source
// address). It listens on 127.0.0.1 (a free port), prints "listening on PORT", accepts one client,
// connects to TARGET from FROM (with SO_REUSEADDR, so FROM may be an address other sockets hold,
// each connected elsewhere) and copies bytes both ways until either side closes.
//
//   tcp_relay FROM_PORT TARGET_PORT      (both on 127.0.0.1)
//
// Exits 0 when the connection ends, 1 on bad arguments or a failed socket call.
#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>
#include <cstring>

namespace {

sockaddr_in Loopback(int port) {
  sockaddr_in a{};
  a.sin_family = AF_INET;
  a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  a.sin_port = htons(static_cast<uint16_t>(port));
  return a;
}

int Fail(const char* what) {
  fprintf(stderr, "tcp_relay: %s: %s\n", what, strerror(errno));
  return 1;
}

// Copies what `from` has to `to`; false when `from` closed or either failed.
bool Copy(int from, int to) {
  char buffer[16384];
  ssize_t n = read(from, buffer, sizeof(buffer));
  if (n <= 0) return false;
  for (ssize_t done = 0; done < n;) {
    ssize_t w = write(to, buffer + done, n - done);
    if (w <= 0) return false;
    done += w;
  }
  return true;
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 3) {
    fprintf(stderr, "usage: tcp_relay FROM_PORT TARGET_PORT\n");
    return 1;
  }
  const sockaddr_in from = Loopback(atoi(argv[1]));
  const sockaddr_in target = Loopback(atoi(argv[2]));

  int listener = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in any_port = Loopback(0);
  socklen_t len = sizeof(any_port);
  if (bind(listener, reinterpret_cast<const sockaddr*>(&any_port), sizeof(any_port)) != 0 ||
      listen(listener, 1) != 0 ||
      getsockname(listener, reinterpret_cast<sockaddr*>(&any_port), &len) != 0) {
    return Fail("listen");
  }
  printf("listening on %d\n", ntohs(any_port.sin_port));
  fflush(stdout);
  int client = accept4(listener, nullptr, nullptr, SOCK_CLOEXEC);
  if (client < 0) return Fail("accept");

  int upstream = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  int one = 1;
  setsockopt(upstream, SOL_SOCKET, SO_REUSEADDR, &one, sizeof(one));
  if (bind(upstream, reinterpret_cast<const sockaddr*>(&from), sizeof(from)) != 0) {
    return Fail("bind the source address");
  }
  if (connect(upstream, reinterpret_cast<const sockaddr*>(&target), sizeof(target)) != 0) {
    return Fail("connect to the target");
  }
  pollfd fds[2] = {{client, POLLIN, 0}, {upstream, POLLIN, 0}};
  while (poll(fds, 2, -1) > 0) {
    if (fds[0].revents != 0 && !Copy(client, upstream)) break;
    if (fds[1].revents != 0 && !Copy(upstream, client)) break;
  }
  return 0;
}
