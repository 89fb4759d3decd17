#include "daemon/http/socket_stream.h"

#include <poll.h>
#include <sys/socket.h>

#include <algorithm>
#include <cerrno>
#include <climits>
#include <cstring>

#include "absl/strings/str_cat.h"
#include "common/posix_error.h"
#include "common/status_macros.h"
#include "daemon/http/tls_context.h"
#include "openssl/err.h"

namespace repro {
namespace {

// Waits until `fd` is ready for `events` (POLLIN or POLLOUT), or has an error or hang-up that the
// next IO call will report. Watches `stop_fd` too unless it is -1.
absl::Status WaitFor(int fd, short events, absl::Time deadline, int stop_fd) {
  while (true) {
    absl::Duration left = deadline - absl::Now();
    if (left <= absl::ZeroDuration()) return absl::DeadlineExceededError("timed out");
    int timeout_ms = static_cast<int>(std::min<int64_t>(
        absl::ToInt64Milliseconds(absl::Ceil(left, absl::Milliseconds(1))), INT_MAX));
    pollfd fds[2] = {{fd, events, 0}, {stop_fd, POLLIN, 0}};
    int n = poll(fds, stop_fd >= 0 ? 2 : 1, timeout_ms);
    if (n < 0) {
      if (errno == EINTR) continue;
      return PosixError(errno, "poll");
    }
    if (stop_fd >= 0 && (fds[1].revents & POLLIN)) {
      return absl::CancelledError("server is stopping");
    }
    if (fds[0].revents != 0) return absl::OkStatus();
  }
}

absl::Status SocketError(int err, absl::string_view what) {
  return absl::UnavailableError(absl::StrCat(what, ": ", strerror(err)));
}

// Half-closes `fd` and reads and drops what the peer still sends (see SocketStream::Finish).
void HalfCloseAndDrain(int fd, int stop_fd, absl::Time deadline) {
  shutdown(fd, SHUT_WR);
  char scratch[16 << 10];
  while (true) {
    ssize_t n = recv(fd, scratch, sizeof(scratch), 0);
    if (n > 0) continue;
    if (n == 0) return;
    if (errno == EINTR) continue;
    if (errno != EAGAIN && errno != EWOULDBLOCK) return;
    if (!WaitFor(fd, POLLIN, deadline, stop_fd).ok()) return;
  }
}

class PlainStream final : public SocketStream {
 public:
  PlainStream(int fd, int stop_fd) : fd_(fd), stop_fd_(stop_fd) {}

  absl::Status Handshake(absl::Time) override { return absl::OkStatus(); }

  absl::StatusOr<size_t> Read(char* data, size_t size, absl::Time deadline) override {
    while (true) {
      ssize_t n = recv(fd_, data, size, 0);
      if (n >= 0) return static_cast<size_t>(n);
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return SocketError(errno, "recv");
      RETURN_IF_ERROR(WaitFor(fd_, POLLIN, deadline, stop_fd_));
    }
  }

  absl::Status Write(absl::string_view data, absl::Time deadline) override {
    while (!data.empty()) {
      ssize_t n = send(fd_, data.data(), data.size(), MSG_NOSIGNAL);
      if (n >= 0) {
        data.remove_prefix(n);
        continue;
      }
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return SocketError(errno, "send");
      RETURN_IF_ERROR(WaitFor(fd_, POLLOUT, deadline, /*stop_fd=*/-1));
    }
    return absl::OkStatus();
  }

  void Finish(absl::Time deadline) override { HalfCloseAndDrain(fd_, stop_fd_, deadline); }

 private:
  const int fd_;
  const int stop_fd_;
};

class TlsStream final : public SocketStream {
 public:
  TlsStream(int fd, int stop_fd, SSL* ssl) : fd_(fd), stop_fd_(stop_fd), ssl_(ssl) {}
  ~TlsStream() override { SSL_free(ssl_); }

  absl::Status Handshake(absl::Time deadline) override {
    bool eof = false;
    RETURN_IF_ERROR(Drive(
        "TLS handshake", deadline, stop_fd_, [&] { return SSL_accept(ssl_); }, &eof));
    if (eof) return absl::UnavailableError("TLS handshake: peer closed the connection");
    return absl::OkStatus();
  }

  absl::StatusOr<size_t> Read(char* data, size_t size, absl::Time deadline) override {
    size_t n = 0;
    bool eof = false;
    RETURN_IF_ERROR(Drive(
        "TLS read", deadline, stop_fd_, [&] { return SSL_read_ex(ssl_, data, size, &n); }, &eof));
    return eof ? 0 : n;
  }

  absl::Status Write(absl::string_view data, absl::Time deadline) override {
    while (!data.empty()) {
      size_t n = 0;
      bool eof = false;
      RETURN_IF_ERROR(Drive(
          "TLS write", deadline, /*stop_fd=*/-1,
          [&] { return SSL_write_ex(ssl_, data.data(), data.size(), &n); }, &eof));
      if (eof) return absl::UnavailableError("TLS write: peer closed the connection");
      data.remove_prefix(n);
    }
    return absl::OkStatus();
  }

  void Finish(absl::Time deadline) override {
    if (!broken_) {
      ERR_clear_error();
      SSL_shutdown(ssl_);  // queues close_notify; we do not wait for the peer's
      ERR_clear_error();
    }
    HalfCloseAndDrain(fd_, stop_fd_, deadline);
  }

 private:
  // Runs the OpenSSL call `op` until it succeeds, waiting on the socket whenever OpenSSL asks to.
  // Sets *eof when the peer ended the TLS session (close_notify or, with
  // SSL_OP_IGNORE_UNEXPECTED_EOF, a plain TCP close).
  template <typename Op>
  absl::Status Drive(absl::string_view what, absl::Time deadline, int stop_fd, Op op, bool* eof) {
    while (true) {
      ERR_clear_error();
      errno = 0;
      int ret = op();
      if (ret > 0) return absl::OkStatus();
      int err = SSL_get_error(ssl_, ret);
      int saved_errno = errno;
      switch (err) {
        case SSL_ERROR_WANT_READ:
          RETURN_IF_ERROR(WaitFor(fd_, POLLIN, deadline, stop_fd));
          break;
        case SSL_ERROR_WANT_WRITE:
          RETURN_IF_ERROR(WaitFor(fd_, POLLOUT, deadline, stop_fd));
          break;
        case SSL_ERROR_ZERO_RETURN:
          *eof = true;
          return absl::OkStatus();
        case SSL_ERROR_SYSCALL:
          broken_ = true;
          return saved_errno != 0 ? SocketError(saved_errno, what)
                                  : absl::UnavailableError(absl::StrCat(what, ": connection lost"));
        default:
          broken_ = true;
          return absl::UnavailableError(absl::StrCat(what, ": ", OpenSslErrors()));
      }
    }
  }

  const int fd_;
  const int stop_fd_;
  SSL* const ssl_;
  // After SSL_ERROR_SYSCALL or SSL_ERROR_SSL no further TLS call may be made (not even shutdown).
  bool broken_ = false;
};

}  // namespace

std::unique_ptr<SocketStream> NewPlainStream(int fd, int stop_fd) {
  return std::make_unique<PlainStream>(fd, stop_fd);
}

absl::StatusOr<std::unique_ptr<SocketStream>> NewTlsStream(int fd, int stop_fd, SSL_CTX* ctx) {
  ERR_clear_error();
  SSL* ssl = SSL_new(ctx);
  if (ssl == nullptr) return absl::InternalError(absl::StrCat("SSL_new: ", OpenSslErrors()));
  if (SSL_set_fd(ssl, fd) != 1) {  // the socket BIO does not close fd
    SSL_free(ssl);
    return absl::InternalError(absl::StrCat("SSL_set_fd: ", OpenSslErrors()));
  }
  SSL_set_accept_state(ssl);
  return std::make_unique<TlsStream>(fd, stop_fd, ssl);
}

}  // namespace repro
