#include "daemon/csi/pod_volumes.h"

#include <fcntl.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <utility>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "common/posix_error.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "nlohmann/json.hpp"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

namespace fs = std::filesystem;

constexpr char kStateFile[] = "volumes.json";

// RFC 1123 label (namespaces): lowercase alphanumerics and '-', starting and ending with an
// alphanumeric, at most 63 characters. With `dots`, a DNS subdomain (Pod and service account
// names): labels joined by '.', at most 253.
bool IsDnsName(absl::string_view s, bool dots) {
  if (s.empty() || s.size() > (dots ? 253u : 63u)) return false;
  for (char c : s) {
    if (!absl::ascii_islower(c) && !absl::ascii_isdigit(c) && c != '-' && !(dots && c == '.')) {
      return false;
    }
  }
  return absl::ascii_isalnum(s.front()) && absl::ascii_isalnum(s.back());
}

bool IsPodUid(absl::string_view s) {
  if (s.empty() || s.size() > 64) return false;
  for (char c : s) {
    if (!absl::ascii_isalnum(c) && c != '-') return false;
  }
  return true;
}

absl::StatusOr<std::string> Required(const std::map<std::string, std::string>& context,
                                     const char* key) {
  auto it = context.find(key);
  if (it == context.end() || it->second.empty()) {
    return absl::InvalidArgumentError(
        absl::StrCat("volume_context has no ", key,
                     ": the CSIDriver object must set podInfoOnMount: true"));
  }
  return it->second;
}

absl::Status Malformed(const char* key, const std::string& value) {
  return absl::InvalidArgumentError(absl::StrCat("volume_context ", key, " \"", value,
                                                 "\" is malformed"));
}

// Whether `path` lies strictly below `dir` (both absolute and normalized).
bool IsBelow(const std::string& path, const std::string& dir) {
  std::string prefix = dir;
  if (!absl::EndsWith(prefix, "/")) prefix += '/';
  return absl::StartsWith(path, prefix) && path.size() > prefix.size();
}

// Copies `from` to `to` unless `to` exists: through a temporary file and rename, so a library
// that running processes have mapped is never written over.
absl::Status InstallLibrary(const std::string& from, const std::string& to) {
  if (from.empty() || access(to.c_str(), F_OK) == 0) return absl::OkStatus();
  const std::string tmp = to + ".tmp";
  std::error_code error;
  fs::copy_file(from, tmp, fs::copy_options::overwrite_existing, error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot copy the shim library ", from, ": ", error.message()));
  }
  chmod(tmp.c_str(), 0644);
  if (rename(tmp.c_str(), to.c_str()) != 0) return PosixError(errno, "rename " + tmp);
  return absl::OkStatus();
}

// Bind-mounts `source` at `target` read-only, without setuid programs or devices.
absl::Status BindReadOnly(const std::string& source, const std::string& target) {
  if (mount(source.c_str(), target.c_str(), nullptr, MS_BIND, nullptr) != 0) {
    return PosixError(errno, absl::StrCat("bind mount ", source, " at ", target));
  }
  if (mount(nullptr, target.c_str(), nullptr,
            MS_BIND | MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, nullptr) != 0) {
    absl::Status error = PosixError(errno, absl::StrCat("remount ", target, " read-only"));
    umount2(target.c_str(), MNT_DETACH);
    return error;
  }
  return absl::OkStatus();
}

nlohmann::json ToJson(const PodVolume& v) {
  return {{"volume_id", v.volume_id},         {"target_path", v.target_path},
          {"namespace", v.pod.ns},            {"pod_name", v.pod.name},
          {"pod_uid", v.pod.uid},             {"service_account", v.pod.service_account}};
}

PodVolume FromJson(const nlohmann::json& j) {
  PodVolume v;
  v.volume_id = j.value("volume_id", "");
  v.target_path = j.value("target_path", "");
  v.pod.ns = j.value("namespace", "");
  v.pod.name = j.value("pod_name", "");
  v.pod.uid = j.value("pod_uid", "");
  v.pod.service_account = j.value("service_account", "");
  return v;
}

}  // namespace

absl::StatusOr<PodInfo> PodInfoFromVolumeContext(
    const std::map<std::string, std::string>& context) {
  auto ephemeral = context.find(kEphemeralKey);
  if (ephemeral == context.end() || ephemeral->second != "true") {
    return absl::InvalidArgumentError(absl::StrCat(
        "only inline ephemeral volumes are served (volume_context ", kEphemeralKey,
        " must be \"true\"): the shim volume belongs to one Pod"));
  }
  PodInfo pod;
  ASSIGN_OR_RETURN(pod.ns, Required(context, kPodNamespaceKey));
  ASSIGN_OR_RETURN(pod.name, Required(context, kPodNameKey));
  ASSIGN_OR_RETURN(pod.uid, Required(context, kPodUidKey));
  if (!IsDnsName(pod.ns, /*dots=*/false)) return Malformed(kPodNamespaceKey, pod.ns);
  if (!IsDnsName(pod.name, /*dots=*/true)) return Malformed(kPodNameKey, pod.name);
  if (!IsPodUid(pod.uid)) return Malformed(kPodUidKey, pod.uid);
  if (auto sa = context.find(kServiceAccountKey); sa != context.end() && !sa->second.empty()) {
    if (!IsDnsName(sa->second, /*dots=*/true)) return Malformed(kServiceAccountKey, sa->second);
    pod.service_account = sa->second;
  }
  return pod;
}

PodVolumes::PodVolumes(PodVolumesOptions options, ShimServer* shim)
    : options_(std::move(options)), shim_(shim) {}

std::string PodVolumes::PodDir(const std::string& volume_id) const {
  return absl::StrCat(options_.state_dir, "/pods/", HexDigest(Sha256Of(volume_id)).substr(0, 16));
}

absl::Status PodVolumes::CheckTarget(const std::string& target_path) const {
  const fs::path target(target_path);
  if (!target.is_absolute() || target.lexically_normal().string() != target_path ||
      !IsBelow(target_path, options_.kubelet_dir)) {
    return absl::InvalidArgumentError(absl::StrCat("target_path \"", target_path,
                                                   "\" is not a normalized absolute path below ",
                                                   options_.kubelet_dir));
  }
  std::error_code error;
  const fs::path kubelet = fs::canonical(options_.kubelet_dir, error);
  const fs::path resolved = fs::weakly_canonical(target, error);
  if (error || !IsBelow(resolved.string(), kubelet.string())) {
    return absl::InvalidArgumentError(absl::StrCat("target_path \"", target_path,
                                                   "\" leads out of ", options_.kubelet_dir));
  }
  return absl::OkStatus();
}

absl::Status PodVolumes::Serve(const PodVolume& volume) {
  const std::string dir = PodDir(volume.volume_id);
  std::error_code error;
  fs::create_directories(dir, error);
  if (error) {
    return absl::FailedPreconditionError(absl::StrCat("cannot make ", dir, ": ", error.message()));
  }
  chmod(dir.c_str(), 0755);
  RETURN_IF_ERROR(InstallLibrary(options_.shim_library, absl::StrCat(dir, "/", kLibraryName)));
  absl::Status served =
      shim_->AddListener(absl::StrCat(dir, "/", kSocketName), volume.pod.identity());
  return absl::IsAlreadyExists(served) ? absl::OkStatus() : served;
}

void PodVolumes::StopServing(const std::string& volume_id) {
  const std::string dir = PodDir(volume_id);
  shim_->RemoveListener(absl::StrCat(dir, "/", kSocketName));
  std::error_code ignored;
  fs::remove_all(dir, ignored);
}

absl::Status PodVolumes::Save() {
  nlohmann::json state = nlohmann::json::array();
  for (const auto& [id, volume] : volumes_) state.push_back(ToJson(volume));
  const std::string path = absl::StrCat(options_.state_dir, "/", kStateFile);
  const std::string tmp = path + ".tmp";
  const std::string bytes = state.dump(1);
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) return PosixError(errno, "open " + tmp);
  bool written = write(fd, bytes.data(), bytes.size()) == static_cast<ssize_t>(bytes.size()) &&
                 fsync(fd) == 0;
  int saved_errno = errno;
  close(fd);
  if (!written) return PosixError(saved_errno, "write " + tmp);
  if (rename(tmp.c_str(), path.c_str()) != 0) return PosixError(errno, "rename " + tmp);
  return absl::OkStatus();
}

absl::Status PodVolumes::Restore() {
  absl::MutexLock lock(&mu_);
  std::error_code error;
  fs::create_directories(options_.state_dir, error);
  if (error) {
    return absl::FailedPreconditionError(
        absl::StrCat("cannot make ", options_.state_dir, ": ", error.message()));
  }
  std::ifstream in(absl::StrCat(options_.state_dir, "/", kStateFile));
  if (!in) return absl::OkStatus();  // nothing published yet
  std::stringstream text;
  text << in.rdbuf();
  nlohmann::json state = nlohmann::json::parse(text.str(), nullptr, /*allow_exceptions=*/false);
  if (!state.is_array()) {
    return absl::DataLossError(absl::StrCat(options_.state_dir, "/", kStateFile,
                                            " is not a JSON array; move it away to start"));
  }
  for (const nlohmann::json& j : state) {
    if (!j.is_object()) continue;
    PodVolume volume = FromJson(j);
    absl::Status served = volume.volume_id.empty()
                              ? absl::InvalidArgumentError("no volume_id")
                              : Serve(volume);
    if (!served.ok()) {
      spdlog::warn("CSI: not serving the shim socket of volume {} (Pod {}/{}) again: {}",
                   volume.volume_id, volume.pod.ns, volume.pod.name, served.ToString());
      continue;
    }
    volumes_[volume.volume_id] = std::move(volume);
  }
  spdlog::info("CSI: serving the shim sockets of {} published Pod volumes", volumes_.size());
  return Save();
}

absl::Status PodVolumes::Publish(const PodVolume& volume) {
  if (volume.volume_id.empty()) return absl::InvalidArgumentError("volume_id is empty");
  RETURN_IF_ERROR(CheckTarget(volume.target_path));
  absl::MutexLock lock(&mu_);
  if (auto it = volumes_.find(volume.volume_id); it != volumes_.end()) {
    if (it->second.target_path == volume.target_path) return absl::OkStatus();
    return absl::AlreadyExistsError(absl::StrCat("volume ", volume.volume_id,
                                                 " is already published at ",
                                                 it->second.target_path));
  }
  RETURN_IF_ERROR(Serve(volume));
  std::error_code error;
  fs::create_directories(volume.target_path, error);
  absl::Status mounted =
      error ? absl::FailedPreconditionError(absl::StrCat("cannot make ", volume.target_path, ": ",
                                                         error.message()))
            : BindReadOnly(PodDir(volume.volume_id), volume.target_path);
  if (!mounted.ok()) {
    StopServing(volume.volume_id);
    return mounted;
  }
  volumes_[volume.volume_id] = volume;
  if (absl::Status saved = Save(); !saved.ok()) {
    umount2(volume.target_path.c_str(), MNT_DETACH);
    volumes_.erase(volume.volume_id);
    StopServing(volume.volume_id);
    return saved;
  }
  spdlog::info("CSI: published the shim volume of Pod {}/{} (uid {}, service account {}) at {}",
               volume.pod.ns, volume.pod.name, volume.pod.uid, volume.pod.service_account,
               volume.target_path);
  return absl::OkStatus();
}

absl::Status PodVolumes::Unpublish(const std::string& volume_id, const std::string& target_path) {
  if (volume_id.empty()) return absl::InvalidArgumentError("volume_id is empty");
  RETURN_IF_ERROR(CheckTarget(target_path));
  absl::MutexLock lock(&mu_);
  if (umount2(target_path.c_str(), 0) != 0 && errno == EBUSY) {
    umount2(target_path.c_str(), MNT_DETACH);
  }
  if (rmdir(target_path.c_str()) != 0 && errno != ENOENT) {
    return PosixError(errno, absl::StrCat("rmdir ", target_path));
  }
  auto it = volumes_.find(volume_id);
  if (it == volumes_.end()) return absl::OkStatus();
  StopServing(volume_id);
  spdlog::info("CSI: unpublished the shim volume of Pod {}/{}", it->second.pod.ns,
               it->second.pod.name);
  volumes_.erase(it);
  return Save();
}

}  // namespace repro
