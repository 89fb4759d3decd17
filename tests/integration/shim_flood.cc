// shim_flood: one uid's abuse of reprod's shim socket, for abuse_test and fair_share_bench. It
// opens CONNECTIONS connections, says HELLO for JOB on each (a fresh nonce each time, as new
// processes would), then keeps every connection that reprod kept busy with record-mode OPEN
// reports of FILE (ROUNDS_PER_SEC rounds of one report per connection; 0: as fast as it can), until
// it is killed. With MODE "enforce" it says HELLO in enforce mode and each report asks for a
// verdict (the urgent work of reprod's queues), whose answers it drops.
//
//   shim_flood SOCKET JOB CONNECTIONS FILE ROUNDS_PER_SEC [record|enforce]
//
// Prints "flooding: A of C connections kept" once the connections are made (a closed one was
// refused by reprod). Raises its RLIMIT_NOFILE to the hard limit. Exits 1 on bad arguments.
#include <poll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <unistd.h>

#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <vector>

#include "daemon/shim_socket/shim_message.h"

namespace {

int Connect(const std::string& path) {
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  path.copy(addr.sun_path, sizeof(addr.sun_path) - 1);
  if (connect(fd, reinterpret_cast<const sockaddr*>(&addr), sizeof(addr)) != 0) {
    close(fd);
    return -1;
  }
  return fd;
}

// False once reprod closed `fd` (a refused connection).
bool Alive(int fd) {
  char buffer[REPRO_SHIM_MAX_MESSAGE];
  while (recv(fd, buffer, sizeof(buffer), MSG_DONTWAIT) > 0) {  // drop replies
  }
  pollfd p{fd, POLLRDHUP, 0};
  return poll(&p, 1, 0) == 0;
}

}  // namespace

int main(int argc, char** argv) {
  const bool enforce = argc == 7 && strcmp(argv[6], "enforce") == 0;
  if (argc != 6 && !(argc == 7 && (enforce || strcmp(argv[6], "record") == 0))) {
    fprintf(stderr,
            "usage: shim_flood SOCKET JOB CONNECTIONS FILE ROUNDS_PER_SEC [record|enforce]\n");
    return 1;
  }
  const std::string socket_path = argv[1];
  const int connections = atoi(argv[3]);
  const int rounds_per_sec = atoi(argv[5]);
  rlimit limit;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
    limit.rlim_cur = limit.rlim_max;
    setrlimit(RLIMIT_NOFILE, &limit);
  }
  repro::ShimHello hello;
  hello.job = argv[2];
  hello.mode = enforce ? repro::ShimMode::kEnforce : repro::ShimMode::kRecord;
  repro::ShimOpen open;
  open.dataset = "ds";
  open.requested_path = argv[4];
  open.opened_path = argv[4];
  const std::string report = repro::EncodeShimOpen(/*request_id=*/enforce ? 2 : 0, open);

  std::vector<int> fds;
  for (int i = 0; i < connections; ++i) {
    int fd = Connect(socket_path);
    if (fd < 0) continue;
    hello.nonce = static_cast<uint64_t>(getpid()) * 100000 + i;  // a new "process" each time
    hello.claimed_pid = getpid();
    const std::string message = repro::EncodeShimHello(1, hello);
    send(fd, message.data(), message.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
    fds.push_back(fd);
  }
  usleep(200 * 1000);  // let reprod accept (or refuse) them all
  std::vector<int> kept;
  for (int fd : fds) {
    if (Alive(fd)) {
      kept.push_back(fd);
    } else {
      close(fd);
    }
  }
  printf("flooding: %zu of %d connections kept\n", kept.size(), connections);
  fflush(stdout);
  const useconds_t pause = rounds_per_sec > 0 ? 1000000 / rounds_per_sec : 0;
  for (;;) {
    for (int fd : kept) {
      send(fd, report.data(), report.size(), MSG_DONTWAIT | MSG_NOSIGNAL);
      Alive(fd);
    }
    if (pause > 0) usleep(pause);
  }
}
