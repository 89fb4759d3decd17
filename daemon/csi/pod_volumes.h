// PodVolumes: the shim volumes of the Pods on this node — what NodePublishVolume and
// NodeUnpublishVolume of reprod's CSI node plugin (csi_service.h) do, without gRPC.
//
//   PodVolumes volumes({.state_dir = "/var/lib/reprod/csi", .kubelet_dir = "/var/lib/kubelet",
//                       .shim_library = "/usr/lib/repro/libreproshim.so"}, shim_server);
//   RETURN_IF_ERROR(volumes.Restore());  // at start: serve the sockets of Pods still running
//   RETURN_IF_ERROR(volumes.Publish({.volume_id = id, .target_path = target, .pod = pod}));
//   RETURN_IF_ERROR(volumes.Unpublish(id, target));
//
// Publishing a Pod's volume makes a directory of its own under state_dir/pods/ holding a copy of
// the shim library and a shim socket that reprod serves with the Pod's identity
// (Identity::Namespace: every HELLO on it speaks for k8s:<namespace>, whatever uid the process
// runs as), and bind-mounts that directory read-only (nosuid, nodev) at the target path kubelet
// chose. The identity comes from kubelet (podInfoOnMount), never from the Pod itself, so a Pod
// cannot claim another namespace. What is published is kept in state_dir/volumes.json (written
// atomically), so a restarted reprod serves every published Pod's socket again in the same
// directory, which the bind mount shows to the Pod.
//
// Thread-safe.
#ifndef REPRO_DAEMON_CSI_POD_VOLUMES_H_
#define REPRO_DAEMON_CSI_POD_VOLUMES_H_

#include <map>
#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/synchronization/mutex.h"
#include "daemon/auth/identity.h"
#include "daemon/shim_socket/shim_server.h"

namespace repro {

// The Pod a volume is published for, as kubelet tells it (volume_context with podInfoOnMount).
struct PodInfo {
  std::string ns;
  std::string name;
  std::string uid;
  std::string service_account;  // may be empty

  Identity identity() const { return Identity::Namespace(ns, service_account); }
};

// The volume_context keys kubelet sets with podInfoOnMount.
inline constexpr char kPodNamespaceKey[] = "csi.storage.k8s.io/pod.namespace";
inline constexpr char kPodNameKey[] = "csi.storage.k8s.io/pod.name";
inline constexpr char kPodUidKey[] = "csi.storage.k8s.io/pod.uid";
inline constexpr char kServiceAccountKey[] = "csi.storage.k8s.io/serviceAccount.name";
inline constexpr char kEphemeralKey[] = "csi.storage.k8s.io/ephemeral";

// The Pod described by a volume_context. INVALID_ARGUMENT naming the key when the namespace, name
// or uid is missing or malformed (a namespace is an RFC 1123 label), or when the volume is not
// ephemeral (inline in the Pod: only then does it belong to one Pod).
absl::StatusOr<PodInfo> PodInfoFromVolumeContext(const std::map<std::string, std::string>& context);

struct PodVolumesOptions {
  std::string state_dir;     // per-Pod directories and volumes.json; created when missing
  std::string kubelet_dir = "/var/lib/kubelet";  // target paths must lie below it
  std::string shim_library;  // copied into every Pod's directory
};

struct PodVolume {
  std::string volume_id;
  std::string target_path;
  PodInfo pod;
};

class PodVolumes {
 public:
  // `shim` is not owned and must outlive this object.
  PodVolumes(PodVolumesOptions options, ShimServer* shim);

  // Serves the socket of every volume in state_dir/volumes.json again (after a restart). A volume
  // that cannot be served is logged and dropped from the state; the others are served.
  absl::Status Restore();

  // Publishes `volume`. Idempotent for the same volume and target. INVALID_ARGUMENT for an empty
  // volume id or a target path that is not absolute, not normalized, or not below kubelet_dir
  // (also after resolving symbolic links); ALREADY_EXISTS when the volume is published at another
  // target; errors of mkdir, copy, listen and mount otherwise (nothing is left behind).
  absl::Status Publish(const PodVolume& volume);

  // Unmounts the volume from `target_path`, removes that directory, closes the Pod's socket and
  // removes its directory. OK when it is not published (already unpublished).
  absl::Status Unpublish(const std::string& volume_id, const std::string& target_path);

  // The socket a Pod's processes reach at <target>/shim.sock, in the Pod's directory.
  static constexpr char kSocketName[] = "shim.sock";
  static constexpr char kLibraryName[] = "libreproshim.so";

 private:
  // The directory made for `volume_id`: state_dir/pods/<16 hex digits of its SHA-256> (short,
  // so that the socket path fits in sockaddr_un).
  std::string PodDir(const std::string& volume_id) const;
  absl::Status CheckTarget(const std::string& target_path) const;
  // Makes the Pod's directory with the library in it and serves its socket.
  absl::Status Serve(const PodVolume& volume) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  void StopServing(const std::string& volume_id) ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);
  absl::Status Save() ABSL_EXCLUSIVE_LOCKS_REQUIRED(mu_);

  const PodVolumesOptions options_;
  ShimServer* const shim_;
  absl::Mutex mu_;
  std::map<std::string, PodVolume> volumes_ ABSL_GUARDED_BY(mu_);  // by volume id
};

}  // namespace repro

#endif  // REPRO_DAEMON_CSI_POD_VOLUMES_H_
