// Fuzzes reprod's side of the shim socket (daemon/shim_socket): the input is parsed as one
// datagram a shim sent (ParseShimRequest), and, as the image of a report ring the process wrote
// (ReportRing::Drain over a real memfd ring: the first 8 bytes are the tail, the rest the data
// area), every record is copied out and parsed the same way.
// Invariants: a request that is accepted encodes back (EncodeShimHello/Open/Loaded) into a
// datagram that parses to the same request; a ring that drains leaves nothing unread and every
// record it hands out is at most REPRO_SHIM_MAX_MESSAGE bytes.
#include <sys/types.h>
#include <unistd.h>

#include <algorithm>
#include <cstring>
#include <memory>
#include <string>

#include "daemon/shim_socket/report_ring.h"
#include "daemon/shim_socket/shim_message.h"
#include "proto/shim/shim_ring.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

using repro::fuzz::FuzzCheck;

bool SameRequest(const repro::ShimRequest& a, const repro::ShimRequest& b) {
  if (a.type != b.type || a.request_id != b.request_id) return false;
  const repro::ShimHello &h = a.hello, &g = b.hello;
  const repro::ShimOpen &o = a.open, &p = b.open;
  switch (a.type) {
    case REPRO_SHIM_HELLO:
      return h.job == g.job && h.rank == g.rank && h.claimed_pid == g.claimed_pid &&
             h.parent_pid == g.parent_pid && h.nonce == g.nonce && h.mode == g.mode &&
             h.exe == g.exe && h.argv == g.argv && h.launcher == g.launcher;
    case REPRO_SHIM_OPEN:
      return o.dataset == p.dataset && o.flags == p.flags &&
             o.requested_path == p.requested_path && o.opened_path == p.opened_path &&
             o.has_stat == p.has_stat && o.device == p.device && o.inode == p.inode &&
             o.size == p.size && o.mtime_ns == p.mtime_ns && o.ctime_ns == p.ctime_ns &&
             o.view_use == p.view_use;
    case REPRO_SHIM_LOADED:
      return a.loaded.libraries == b.loaded.libraries &&
             a.loaded.libc_version == b.loaded.libc_version &&
             a.loaded.package_dirs == b.loaded.package_dirs;
    default:
      return true;  // DOORBELL: no fields
  }
}

std::string Encode(const repro::ShimRequest& request) {
  switch (request.type) {
    case REPRO_SHIM_HELLO: return repro::EncodeShimHello(request.request_id, request.hello);
    case REPRO_SHIM_OPEN: return repro::EncodeShimOpen(request.request_id, request.open);
    case REPRO_SHIM_LOADED: return repro::EncodeShimLoaded(request.request_id, request.loaded);
    default: return {};
  }
}

void ParseDatagram(absl::string_view datagram) {
  repro::ParsedShimRequest parsed = repro::ParseShimRequest(datagram);
  FuzzCheck(parsed.reject != repro::ShimReject::kNone || parsed.detail.empty(),
            "an accepted datagram carries a rejection detail");
  if (parsed.reject != repro::ShimReject::kNone) {
    FuzzCheck(!repro::ShimRejectName(parsed.reject).empty(), "a rejection without a name");
    return;
  }
  const std::string again = Encode(parsed.request);
  if (again.empty()) {
    FuzzCheck(parsed.request.type == REPRO_SHIM_DOORBELL, "an accepted request does not encode");
    return;
  }
  repro::ParsedShimRequest reparsed = repro::ParseShimRequest(again);
  FuzzCheck(reparsed.reject == repro::ShimReject::kNone, "a re-encoded request is rejected");
  FuzzCheck(SameRequest(parsed.request, reparsed.request), "a request does not round-trip");
}

// Writes `image` into a fresh ring (first 8 bytes: the tail; the rest: the data area) and drains
// it as reprod does.
void DrainRing(absl::string_view image) {
  absl::StatusOr<std::unique_ptr<repro::ReportRing>> ring = repro::ReportRing::Create();
  FuzzCheck(ring.ok(), "cannot create a report ring");
  const int fd = (*ring)->fd();
  uint64_t tail = 0;
  std::memcpy(&tail, image.data(), std::min<size_t>(image.size(), sizeof(tail)));
  FuzzCheck(pwrite(fd, &tail, sizeof(tail), 0) == sizeof(tail), "pwrite of the ring's tail");
  if (image.size() > sizeof(tail)) {
    const size_t n = std::min<size_t>(image.size() - sizeof(tail), REPRO_SHIM_RING_CAPACITY);
    FuzzCheck(pwrite(fd, image.data() + sizeof(tail), n, REPRO_SHIM_RING_DATA_OFFSET) ==
                  static_cast<ssize_t>(n),
              "pwrite of the ring's data");
  }
  const int drained = (*ring)->Drain([](absl::string_view message) {
    FuzzCheck(message.size() <= REPRO_SHIM_MAX_MESSAGE, "a ring record above the message limit");
    ParseDatagram(message);
  });
  FuzzCheck(drained >= -1, "Drain returned a negative count");
  if (drained < 0) {
    FuzzCheck((*ring)->Drain([](absl::string_view) {}) == -1, "a damaged ring drained again");
    return;
  }
  uint64_t head = 0;
  FuzzCheck(pread(fd, &head, sizeof(head), 64) == sizeof(head), "pread of the ring's head");
  FuzzCheck(head == tail, "a drained ring's head is not its tail");
  FuzzCheck((*ring)->Sleep(), "a drained ring with nothing new does not go to sleep");
}

}  // namespace

REPRO_FUZZ_TARGET(shim_datagram) {
  absl::string_view input(reinterpret_cast<const char*>(data), size);
  ParseDatagram(input);
  DrainRing(input);
  return 0;
}
