// A shim's end of reprod's shim socket, driven by hand, for tests that send what a real shim
// would (or what a hostile process might).
//
//   ShimSocketClient client(socket_path);
//   client.Send(EncodeShimHello(1, hello));
//   std::optional<std::string> pin = client.Receive();
#ifndef REPRO_TESTS_CLIENT_SHIM_SHIM_SOCKET_CLIENT_H_
#define REPRO_TESTS_CLIENT_SHIM_SHIM_SOCKET_CLIENT_H_

#include <optional>
#include <string>

namespace repro::testing {

// Not thread-safe.
class ShimSocketClient {
 public:
  // Connects at once; see connected().
  explicit ShimSocketClient(const std::string& socket_path);
  ~ShimSocketClient();
  ShimSocketClient(const ShimSocketClient&) = delete;
  ShimSocketClient& operator=(const ShimSocketClient&) = delete;

  bool connected() const { return connected_; }
  // Sends one datagram; true when all of it was sent.
  bool Send(const std::string& datagram);
  // The next datagram, or nullopt after `timeout_ms` or when reprod closed the connection.
  std::optional<std::string> Receive(int timeout_ms = 10000);
  // True when a datagram from reprod waits (it is left unread) within `timeout_ms`.
  bool Pending(int timeout_ms = 10000);

 private:
  int fd_ = -1;
  bool connected_ = false;
};

}  // namespace repro::testing

#endif  // REPRO_TESTS_CLIENT_SHIM_SHIM_SOCKET_CLIENT_H_
