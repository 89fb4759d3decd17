// ShimPins: the pins shims are answered with at HELLO, read from the pin registry once per job
// (pins are immutable), journaled on this node on first use, and turned into PIN replies.
//
//   ShimPins pins(pin_registry, version_registry);
//   ASSIGN_OR_RETURN(std::shared_ptr<const v1::Pin> pin, pins.Get("job-1"));
//   std::string reply = EncodeShimPin(request_id, pins.Reply(*pin, hello));
//
// Thread-safe.
#ifndef REPRO_DAEMON_SHIM_SOCKET_SHIM_PINS_H_
#define REPRO_DAEMON_SHIM_SOCKET_SHIM_PINS_H_

#include <memory>
#include <string>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/registry/pin_registry.h"
#include "daemon/registry/version_registry.h"
#include "daemon/shim_socket/shim_message.h"

namespace repro {

class ShimPins {
 public:
  // Neither is owned; both must outlive this object.
  ShimPins(PinRegistry* pins, VersionRegistry* versions) : pins_(pins), versions_(versions) {}

  // The pin of `job`, journaled on this node on first use. NOT_FOUND (with the command that pins
  // it) when the job has none; UNAVAILABLE when it cannot be journaled; the registry's error else.
  absl::StatusOr<std::shared_ptr<const v1::Pin>> Get(const std::string& job);

  // The PIN reply to `hello` for `pin`: seeds, mode, and per dataset its pinned directory and the
  // directories of its other registered versions.
  ShimPinReply Reply(const v1::Pin& pin, const ShimHello& hello);

 private:
  PinRegistry* const pins_;
  VersionRegistry* const versions_;
  absl::Mutex mu_;
  absl::flat_hash_map<std::string, std::shared_ptr<const v1::Pin>> cache_ ABSL_GUARDED_BY(mu_);
};

}  // namespace repro

#endif  // REPRO_DAEMON_SHIM_SOCKET_SHIM_PINS_H_
