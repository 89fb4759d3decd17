#include "daemon/shim_socket/report_ring.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <unistd.h>

#include <cerrno>
#include <string>

#include "common/posix_error.h"
#include "proto/shim/shim_ring.h"

namespace repro {

absl::StatusOr<std::unique_ptr<ReportRing>> ReportRing::Create() {
  int fd = memfd_create("repro-report-ring", MFD_CLOEXEC | MFD_ALLOW_SEALING);
  if (fd < 0) return PosixError(errno, "memfd_create for a report ring");
  if (ftruncate(fd, REPRO_SHIM_RING_SIZE) != 0 ||
      fcntl(fd, F_ADD_SEALS, F_SEAL_SHRINK | F_SEAL_GROW | F_SEAL_SEAL) != 0) {
    int err = errno;
    close(fd);
    return PosixError(err, "sizing a report ring");
  }
  void* base = mmap(nullptr, REPRO_SHIM_RING_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  if (base == MAP_FAILED) {
    int err = errno;
    close(fd);
    return PosixError(err, "mapping a report ring");
  }
  auto* bytes = static_cast<uint8_t*>(base);
  __atomic_store_n(repro_shim_ring_asleep(bytes), 1u, __ATOMIC_SEQ_CST);
  __atomic_store_n(repro_shim_ring_made(bytes), REPRO_SHIM_RING_UNTAKEN, __ATOMIC_SEQ_CST);
  return std::unique_ptr<ReportRing>(new ReportRing(fd, bytes));
}

ReportRing::~ReportRing() {
  CloseFd();
  munmap(base_, REPRO_SHIM_RING_SIZE);
}

void ReportRing::CloseFd() {
  if (fd_ >= 0) close(fd_);
  fd_ = -1;
}

int ReportRing::Drain(const std::function<void(absl::string_view message)>& each) {
  if (damaged_) return -1;
  const uint64_t cap = REPRO_SHIM_RING_CAPACITY;
  const uint64_t tail = __atomic_load_n(repro_shim_ring_tail(base_), __ATOMIC_ACQUIRE);
  if (tail < head_ || tail - head_ > cap) {
    damaged_ = true;
    return -1;
  }
  std::string message;
  int count = 0;
  const uint8_t* bytes;
  uint32_t size;
  int found;
  while ((found = repro_shim_ring_next(base_, &head_, tail, &bytes, &size)) == 1) {
    message.assign(reinterpret_cast<const char*>(bytes), size);  // the process may rewrite it
    each(message);
    ++count;
  }
  if (found < 0) {
    damaged_ = true;
    return -1;
  }
  __atomic_store_n(repro_shim_ring_head(base_), head_, __ATOMIC_RELEASE);
  return count;
}

std::optional<uint64_t> ReportRing::Made() const {
  const uint64_t made = __atomic_load_n(repro_shim_ring_made(base_), __ATOMIC_ACQUIRE);
  if (made == REPRO_SHIM_RING_UNTAKEN) return std::nullopt;
  return made;
}

bool ReportRing::Sleep() {
  __atomic_store_n(repro_shim_ring_asleep(base_), 1u, __ATOMIC_SEQ_CST);
  if (__atomic_load_n(repro_shim_ring_tail(base_), __ATOMIC_SEQ_CST) == head_) return true;
  // Published meanwhile: stay awake. If the shim already took the flag, its DOORBELL is on its
  // way and finds an empty ring, which is harmless.
  __atomic_store_n(repro_shim_ring_asleep(base_), 0u, __ATOMIC_SEQ_CST);
  return false;
}

}  // namespace repro
