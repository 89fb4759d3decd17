// PinRegistry: pins jobs to data versions and a seed, answers Admit, and journals each pin.
//
//   PinRegistry pins(pin_store, &journal, DefaultFileSystem(), DefaultClock(), "node-a");
//   ASSIGN_OR_RETURN(v1::PinResponse r, pins.Pin(request));
//   ASSIGN_OR_RETURN(v1::AdmitResponse a, pins.Admit("job-7"));
#ifndef REPRO_DAEMON_REGISTRY_PIN_REGISTRY_H_
#define REPRO_DAEMON_REGISTRY_PIN_REGISTRY_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/os/clock.h"
#include "daemon/os/file_system.h"
#include "daemon/pin_store/pin_store.h"
#include "daemon/store/journal.h"
#include "repro/v1/repro.pb.h"

namespace repro {

// Thread-safe. Does not own its collaborators; they must outlive it.
class PinRegistry {
 public:
  // `host`, when not null, is this node's HostFacts (daemon/host_probe), journaled with each pin
  // (see JournalPin); it must outlive the registry.
  PinRegistry(PinStore* store, Journal* journal, FileSystem* fs, Clock* clock, std::string node,
              const v1::HostFacts* host = nullptr);

  // Pins request.job, or confirms an identical existing pin (created=false). A request without a
  // seed matches an existing pin with the same versions whatever its seed. Errors:
  // INVALID_ARGUMENT (bad names, no versions, a dataset twice, like_job mixed with versions),
  // NOT_FOUND (unknown version or like_job), FAILED_PRECONDITION (the job is pinned
  // differently; the message names the existing pin), UNAVAILABLE (pin store unreachable).
  // A new pin records `owner` (see v1::Pin.owner); whether the caller may pin an existing job
  // is the Authorizer's decision, not this registry's.
  absl::StatusOr<v1::PinResponse> Pin(const v1::PinRequest& request, absl::string_view owner = "");

  // NOT_FOUND when the job has no pin.
  absl::StatusOr<v1::Pin> Get(absl::string_view job);
  absl::StatusOr<std::vector<v1::Pin>> List();

  // Admitted only when the job has a pin whose versions are all still registered with the pinned
  // digests and whose directories still exist. A refusal (including an unreachable pin store)
  // is a response with a reason, not an error; errors are for invalid job ids.
  absl::StatusOr<v1::AdmitResponse> Admit(absl::string_view job);

  // Journals `pin`, its versions and this node's host facts on this node, once per job
  // (idempotent: once keys "pin", "version/DATASET@VERSION", "host"). Called by Pin and by every
  // part that starts serving a job on this node.
  absl::Status JournalPin(const v1::Pin& pin);

 private:
  // The pin a request asks for (versions resolved, seed chosen), before it is stored.
  absl::StatusOr<v1::Pin> BuildPin(const v1::PinRequest& request, absl::string_view owner);
  absl::StatusOr<v1::PinnedVersion> Resolve(absl::string_view dataset, absl::string_view version);
  // Why `job`'s pin cannot run now, or "" when it can.
  std::string RefusalReason(const v1::Pin& pin);

  PinStore* const store_;
  Journal* const journal_;
  FileSystem* const fs_;
  Clock* const clock_;
  const std::string node_;
  const v1::HostFacts* const host_;
};

// "user_ctr@v1 (3f2a9c...), clicks@v7 (...) seed 42" — for messages.
std::string DescribePin(const v1::Pin& pin);

}  // namespace repro

#endif  // REPRO_DAEMON_REGISTRY_PIN_REGISTRY_H_
