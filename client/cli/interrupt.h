// Ends a long gRPC call (`reproctl journal --follow`) cleanly on SIGINT or SIGTERM: while an
// InterruptGuard lives, those signals cancel the watched call instead of killing the process.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<InterruptGuard> guard, InterruptGuard::Install());
//   guard->Watch(&context);
//   ... read the stream until it ends ...
//   guard->Watch(nullptr);
//   if (guard->interrupted()) return kExitOk;
#ifndef REPRO_CLIENT_CLI_INTERRUPT_H_
#define REPRO_CLIENT_CLI_INTERRUPT_H_

#include <grpcpp/client_context.h>
#include <signal.h>

#include <memory>
#include <thread>

#include "absl/base/thread_annotations.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"

namespace repro::cli {

// Thread-safe. At most one may be installed at a time in a process; the previous signal
// dispositions come back when it is destroyed.
class InterruptGuard {
 public:
  // Installs handlers for SIGINT and SIGTERM. FAILED_PRECONDITION if another guard is installed;
  // an errno-derived status if a pipe, thread or sigaction cannot be made.
  static absl::StatusOr<std::unique_ptr<InterruptGuard>> Install();
  ~InterruptGuard();
  InterruptGuard(const InterruptGuard&) = delete;
  InterruptGuard& operator=(const InterruptGuard&) = delete;

  // Cancels `context` when a signal arrives, or at once if one already has. `context` must stay
  // alive until Watch(nullptr) or the guard's destruction.
  void Watch(grpc::ClientContext* context);

  // True once SIGINT or SIGTERM arrived.
  bool interrupted() const;

 private:
  InterruptGuard(int read_fd, int write_fd);
  void Run();  // the watcher thread

  const int read_fd_;
  const int write_fd_;
  struct sigaction old_int_ {};
  struct sigaction old_term_ {};
  std::thread thread_;
  mutable absl::Mutex mu_;
  bool interrupted_ ABSL_GUARDED_BY(mu_) = false;
  grpc::ClientContext* context_ ABSL_GUARDED_BY(mu_) = nullptr;
};

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_INTERRUPT_H_
