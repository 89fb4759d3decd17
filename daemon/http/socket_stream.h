// The byte stream under an HttpServer connection: plain TCP, or TLS over it. Every call is bounded
// by a deadline, and waiting for the peer's bytes also ends when the server's stop fd becomes
// readable, so that no connection thread can hold up shutdown.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<SocketStream> stream, NewTlsStream(fd, stop_fd, ctx));
//   RETURN_IF_ERROR(stream->Handshake(absl::Now() + absl::Seconds(10)));
//   ASSIGN_OR_RETURN(size_t n, stream->Read(buf, sizeof(buf), deadline));  // 0: peer closed
//   RETURN_IF_ERROR(stream->Write(response_bytes, deadline));
//   stream->Finish(absl::Now() + absl::Seconds(1));
#ifndef REPRO_DAEMON_HTTP_SOCKET_STREAM_H_
#define REPRO_DAEMON_HTTP_SOCKET_STREAM_H_

#include <cstddef>
#include <memory>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/time/time.h"
#include "openssl/ssl.h"

namespace repro {

// Not thread-safe: one connection thread owns a stream. The stream borrows its socket: closing
// the fd stays with the caller, after the stream is destroyed.
class SocketStream {
 public:
  virtual ~SocketStream() = default;

  // Completes the TLS handshake; nothing to do for plain TCP. Fails like Read().
  virtual absl::Status Handshake(absl::Time deadline) = 0;

  // Reads at most `size` bytes into `data` and returns how many, 0 when the peer closed its side.
  // Fails with DEADLINE_EXCEEDED at `deadline`, CANCELLED when the stop fd became readable while
  // waiting, UNAVAILABLE when the connection broke (reset, TLS error).
  virtual absl::StatusOr<size_t> Read(char* data, size_t size, absl::Time deadline) = 0;

  // Writes all of `data`. Fails with DEADLINE_EXCEEDED or UNAVAILABLE. Does not watch the stop fd:
  // a response being written when the server stops is still delivered.
  virtual absl::Status Write(absl::string_view data, absl::Time deadline) = 0;

  // Ends the conversation so that the peer reads our last response rather than a TCP reset: sends
  // TLS close_notify, half-closes, and discards what the peer still sends until it closes,
  // `deadline` passes or the server stops. The stream is unusable afterwards.
  virtual void Finish(absl::Time deadline) = 0;
};

// `fd`: a connected non-blocking socket. `stop_fd`: readable once the server stops (-1: none).
std::unique_ptr<SocketStream> NewPlainStream(int fd, int stop_fd);

// As NewPlainStream, speaking TLS as the server side with `ctx` (which must outlive the stream).
// Fails with INTERNAL when OpenSSL cannot set up the connection.
absl::StatusOr<std::unique_ptr<SocketStream>> NewTlsStream(int fd, int stop_fd, SSL_CTX* ctx);

}  // namespace repro

#endif  // REPRO_DAEMON_HTTP_SOCKET_STREAM_H_
