#include "client/cli/interrupt.h"

#include <fcntl.h>
#include <unistd.h>

#include <atomic>
#include <cerrno>

#include "common/posix_error.h"

namespace repro::cli {
namespace {

constexpr char kSignalled = 's';
constexpr char kQuit = 'q';

// The write end of the installed guard's pipe, or -1. Read by the signal handler.
std::atomic<int> g_signal_fd{-1};

extern "C" void OnSignal(int) {
  int saved_errno = errno;
  int fd = g_signal_fd.load();
  if (fd >= 0) {
    char byte = kSignalled;
    (void)!write(fd, &byte, 1);
  }
  errno = saved_errno;
}

}  // namespace

absl::StatusOr<std::unique_ptr<InterruptGuard>> InterruptGuard::Install() {
  if (g_signal_fd.load() >= 0) {
    return absl::FailedPreconditionError("an InterruptGuard is already installed");
  }
  int fds[2];
  if (pipe2(fds, O_CLOEXEC) != 0) return PosixError(errno, "pipe2");
  std::unique_ptr<InterruptGuard> guard(new InterruptGuard(fds[0], fds[1]));
  g_signal_fd.store(fds[1]);

  struct sigaction action {};
  action.sa_handler = OnSignal;
  sigemptyset(&action.sa_mask);
  action.sa_flags = SA_RESTART;
  if (sigaction(SIGINT, &action, &guard->old_int_) != 0 ||
      sigaction(SIGTERM, &action, &guard->old_term_) != 0) {
    return PosixError(errno, "sigaction");  // the destructor restores what was changed
  }
  guard->thread_ = std::thread([g = guard.get()] { g->Run(); });
  return guard;
}

InterruptGuard::InterruptGuard(int read_fd, int write_fd) : read_fd_(read_fd), write_fd_(write_fd) {
  sigaction(SIGINT, nullptr, &old_int_);
  sigaction(SIGTERM, nullptr, &old_term_);
}

InterruptGuard::~InterruptGuard() {
  sigaction(SIGINT, &old_int_, nullptr);
  sigaction(SIGTERM, &old_term_, nullptr);
  g_signal_fd.store(-1);
  if (thread_.joinable()) {
    char byte = kQuit;
    while (write(write_fd_, &byte, 1) < 0 && errno == EINTR) {
    }
    thread_.join();
  }
  close(read_fd_);
  close(write_fd_);
}

void InterruptGuard::Watch(grpc::ClientContext* context) {
  absl::MutexLock lock(&mu_);
  context_ = context;
  if (interrupted_ && context_ != nullptr) context_->TryCancel();
}

bool InterruptGuard::interrupted() const {
  absl::MutexLock lock(&mu_);
  return interrupted_;
}

void InterruptGuard::Run() {
  for (;;) {
    char byte;
    ssize_t n = read(read_fd_, &byte, 1);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0 || byte == kQuit) return;
    absl::MutexLock lock(&mu_);
    interrupted_ = true;
    if (context_ != nullptr) context_->TryCancel();
  }
}

}  // namespace repro::cli
