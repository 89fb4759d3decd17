// ShimInjector: the JSON Patch that makes a Pod labelled repro.dev/job run under repro's shim —
// the change behind the webhook's /mutate.
//
//   ASSIGN_OR_RETURN(ShimInjector injector, ShimInjector::Create({.csi_driver = "shim.repro.dev"}));
//   ASSIGN_OR_RETURN(nlohmann::json patch, injector.Patch(pod));  // [] when already injected
//
// What a Pod gets (names are fixed so that a second look recognises them):
// - volume `repro-shim`, an inline ephemeral CSI volume of reprod's node plugin (daemon/csi/),
//   read-only: reprod publishes into it the shim library and a shim socket of this Pod's own,
//   whose every connection speaks for the Pod's namespace. No hostPath, no init container, no
//   privilege: the injected Pod meets the Pod Security `restricted` level when its own spec does;
// - in every container: that volume mounted read-only at /opt/repro (a container already
//   mounting something there keeps its own), and the environment
//     LD_PRELOAD=/opt/repro/libreproshim.so, in front of the container's own LD_PRELOAD (a
//       valueFrom one is renamed REPRO_USER_LD_PRELOAD and referenced as $(REPRO_USER_LD_PRELOAD));
//     REPRO_JOB=<the repro.dev/job label>, REPRO_SHIM_SOCKET=/opt/repro/shim.sock,
//     REPRO_MODE=<the repro.dev/mode annotation, default record>,
//     REPRO_PINNED=<the job's pinned version directories, "" when it has none> (the shim's
//       knowledge of the pin while reprod is unreachable; common/pinned_env.h)
//       (replacing values that differ);
//     REPRO_RANK from the batch.kubernetes.io/job-completion-index annotation (Indexed Jobs),
//       unless the container sets REPRO_RANK or RANK itself.
// - a hostPath volume that reaches a pinned dataset root through an alias (ROOT/latest[/sub],
//   any name under the root that is neither the pinned version nor another registered one) is
//   pointed at the pinned version (ROOT/v1[/sub]) instead, the view `reproctl run --isolate`
//   gives; a container mounting it whole at the alias path also gets it, read-only, at the pinned
//   path, where the shim sends reads through the alias. A hostPath of the root itself or of
//   another version is left alone (the webhook cannot list the node's directories, and the shim
//   rules on other versions).
// Everything else in the Pod is left as it is: patches only add, or replace the values above.
// The patch of an injected Pod is empty, so the webhook is idempotent and safe to reinvoke.
#ifndef REPRO_DAEMON_ADMISSION_SHIM_INJECTOR_H_
#define REPRO_DAEMON_ADMISSION_SHIM_INJECTOR_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "nlohmann/json.hpp"
#include "repro/v1/journal.pb.h"

namespace repro {

struct ShimInjectorOptions {
  // The CSI driver that publishes the shim volume (reprod's --csi_driver_name on the nodes).
  std::string csi_driver = "shim.repro.dev";
};

// What the injector knows of a Pod's job.
struct PinnedData {
  v1::Pin pin;                              // empty when the job is not pinned
  std::vector<v1::VersionInfo> registered;  // registered versions of the pinned datasets
};

// Immutable after Create(); thread-safe.
class ShimInjector {
 public:
  static constexpr char kShimVolume[] = "repro-shim";
  // Where containers find the volume: the library and the Pod's socket (PodVolumes' names).
  static constexpr char kShimDir[] = "/opt/repro";
  static constexpr char kLibraryInPod[] = "/opt/repro/libreproshim.so";
  static constexpr char kSocketInPod[] = "/opt/repro/shim.sock";
  static constexpr char kUserPreloadVariable[] = "REPRO_USER_LD_PRELOAD";

  // INVALID_ARGUMENT when the driver name is not a DNS name (as CSIDriver objects are named).
  static absl::StatusOr<ShimInjector> Create(ShimInjectorOptions options);

  // The RFC 6902 patch (an array) that injects the shim into `pod`, a core/v1 Pod labelled
  // repro.dev/job whose job's pin and versions are `pinned`. INVALID_ARGUMENT when the Pod is
  // unlabelled, its repro.dev/mode annotation is neither record nor enforce, or its spec is not
  // shaped like a Pod's.
  absl::StatusOr<nlohmann::json> Patch(const nlohmann::json& pod, const PinnedData& pinned) const;

  const ShimInjectorOptions& options() const { return options_; }

 private:
  explicit ShimInjector(ShimInjectorOptions options) : options_(std::move(options)) {}

  // Adds to `patch` the env changes of the container at `path` ("/spec/containers/0").
  absl::Status PatchEnv(const nlohmann::json& container, const std::string& path,
                        const std::string& job, const std::string& mode,
                        const std::string& pinned_env, bool indexed, nlohmann::json* patch) const;

  ShimInjectorOptions options_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_ADMISSION_SHIM_INJECTOR_H_
