// shim_loaded_sender: says HELLO for a job on reprod's shim socket, as a real shim would, then
// reports LOADED libraries the test names (paths a real process could not have loaded), so that
// auth_test can check, as a process of another uid, what reprod agrees to hash.
//
//   shim_loaded_sender SOCKET JOB LIBRARY...
//
// Exits 0 when the HELLO was answered with a pin (and the LOADED report sent), 3 when reprod
// refused the HELLO (its reason on stderr), 1 when reprod could not be reached.
#include <unistd.h>

#include <cstdio>
#include <cstring>
#include <optional>
#include <string>

#include "daemon/shim_socket/shim_message.h"
#include "tests/client/shim/shim_socket_client.h"

int main(int argc, char** argv) {
  if (argc < 3) {
    fprintf(stderr, "usage: shim_loaded_sender SOCKET JOB LIBRARY...\n");
    return 1;
  }
  repro::testing::ShimSocketClient client(argv[1]);
  if (!client.connected()) {
    fprintf(stderr, "cannot connect to %s\n", argv[1]);
    return 1;
  }
  repro::ShimHello hello;
  hello.job = argv[2];
  hello.claimed_pid = getpid();
  hello.nonce = static_cast<uint64_t>(getpid());
  if (!client.Send(repro::EncodeShimHello(1, hello))) return 1;
  std::optional<std::string> reply = client.Receive();
  if (!reply.has_value() || reply->size() < sizeof(repro_shim_header)) return 1;
  repro_shim_header header;
  memcpy(&header, reply->data(), sizeof(header));
  if (header.type != REPRO_SHIM_PIN) {
    fprintf(stderr, "HELLO refused\n");
    return 3;
  }
  repro::ShimLoaded loaded;
  for (int i = 3; i < argc; ++i) loaded.libraries.push_back(argv[i]);
  return client.Send(repro::EncodeShimLoaded(2, loaded)) ? 0 : 1;
}
