// ReportRing: reprod's end of one process's report ring (proto/shim/shim_ring.h): a sealed memfd
// that reprod creates, passes to the shim with the PIN answer, and reads reports from.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<ReportRing> ring, ReportRing::Create());
//   SendWithFd(socket, pin_reply, ring->fd());
//   ...
//   bool ok = ring->Drain([&](absl::string_view message) { queue(ParseShimRequest(message)); });
//   if (ok && ring->Sleep()) { /* empty: wait for the next DOORBELL */ }
//
// The process can write anything into the ring: every size and tail is checked, and messages are
// copied out before they are parsed. A ring found damaged stays damaged (Drain returns false).
//
// Not thread-safe: one reader at a time.
#ifndef REPRO_DAEMON_SHIM_SOCKET_REPORT_RING_H_
#define REPRO_DAEMON_SHIM_SOCKET_REPORT_RING_H_

#include <cstddef>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace repro {

class ReportRing {
 public:
  // A new ring, asleep (the first report rings the doorbell). The memfd's size is sealed so the
  // process cannot shrink it under reprod's mapping.
  static absl::StatusOr<std::unique_ptr<ReportRing>> Create();
  ~ReportRing();
  ReportRing(const ReportRing&) = delete;
  ReportRing& operator=(const ReportRing&) = delete;

  // The memfd to pass to the shim; -1 after CloseFd.
  int fd() const { return fd_; }
  // Closes reprod's descriptor once it was passed on (the mapping stays).
  void CloseFd();

  // Calls `each` with every message published since the last Drain, in order, and frees their
  // room. Returns how many, or -1 when the ring is damaged (the process wrote nonsense in it).
  int Drain(const std::function<void(absl::string_view message)>& each);

  // Lets the shim know reprod will look again only after a DOORBELL. False when reports were
  // published meanwhile (the ring stays awake: Drain again).
  bool Sleep();

  // How many reports the process says it has numbered so far (the ring's `made`): its count of
  // reports, for a process that ended without sending it. Any value: the process writes it.
  // nullopt when no process took the ring (its PIN answer never reached one).
  std::optional<uint64_t> Made() const;

 private:
  ReportRing(int fd, uint8_t* base) : fd_(fd), base_(base) {}

  int fd_;
  uint8_t* const base_;
  uint64_t head_ = 0;  // reprod's own count of consumed bytes; the shared copy is never trusted
  bool damaged_ = false;
};

}  // namespace repro

#endif  // REPRO_DAEMON_SHIM_SOCKET_REPORT_RING_H_
