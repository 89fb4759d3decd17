#include "daemon/admission/shim_injector.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <iterator>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/pinned_env.h"
#include "common/status_macros.h"
#include "daemon/admission/json_util.h"
#include "daemon/admission/labels.h"

namespace repro {
namespace {

using nlohmann::json;

json Op(absl::string_view op, std::string path, json value) {
  return {{"op", std::string(op)}, {"path", std::move(path)}, {"value", std::move(value)}};
}

bool SameName(const json& a, const json& b) {
  const std::string* x = FindString(a, {"name"});
  const std::string* y = FindString(b, {"name"});
  return x != nullptr && y != nullptr && *x == *y;
}

// Volume mounts collide by name, and also by mount path (two mounts at one path are invalid).
bool SameNameOrMountPath(const json& a, const json& b) {
  const std::string* x = FindString(a, {"mountPath"});
  const std::string* y = FindString(b, {"mountPath"});
  return SameName(a, b) || (x != nullptr && y != nullptr && *x == *y);
}

// Appends to `patch` the operations that add each of `items` missing from the list
// parent[key] (at parent_path + "/" + key), where `same` says whether an element is the item:
// one "add" of the whole list when there is none. INVALID_ARGUMENT when it is not a list.
absl::Status AddMissing(const json& parent, absl::string_view parent_path, absl::string_view key,
                        const std::vector<json>& items,
                        const std::function<bool(const json&, const json&)>& same, json* patch) {
  const std::string path = absl::StrCat(parent_path, "/", key);
  const json* list = Find(parent, {key});
  if (list == nullptr || list->is_null()) {
    patch->push_back(Op("add", path, items));
    return absl::OkStatus();
  }
  if (!list->is_array()) return absl::InvalidArgumentError(absl::StrCat(path, " is not a list"));
  for (const json& item : items) {
    if (std::none_of(list->begin(), list->end(), [&](const json& e) { return same(e, item); })) {
      patch->push_back(Op("add", absl::StrCat(path, "/-"), item));
    }
  }
  return absl::OkStatus();
}

// Whether the LD_PRELOAD value `list` (entries separated by ':' or ' ', as ld.so reads it)
// already names `library`.
bool Preloads(absl::string_view list, absl::string_view library) {
  for (absl::string_view entry : absl::StrSplit(list, absl::ByAnyChar(": "), absl::SkipEmpty())) {
    if (entry == library) return true;
  }
  return false;
}

json EnvVar(absl::string_view name, absl::string_view value) {
  return {{"name", std::string(name)}, {"value", std::string(value)}};
}

// `path` lexically normal, without a trailing slash.
std::string NormalPath(const std::string& path) {
  std::string out = std::filesystem::path(path).lexically_normal().string();
  if (out.size() > 1 && out.back() == '/') out.pop_back();
  return out;
}

// `host_path` with the alias it goes through replaced by the pinned version of the root it is
// under, or "" when it goes through no alias (see the header).
std::string PinnedHostPath(const std::string& host_path, const PinnedData& pinned) {
  const std::filesystem::path path(NormalPath(host_path));
  if (!path.is_absolute()) return "";
  for (const v1::PinnedVersion& v : pinned.pin.versions()) {
    const std::filesystem::path below = path.lexically_relative(v.root());
    if (below.empty() || *below.begin() == "." || *below.begin() == "..") continue;
    const std::string name = below.begin()->string();
    bool registered = name == std::filesystem::path(v.path()).filename().string();
    for (const v1::VersionInfo& other : pinned.registered) {
      registered |= other.root() == v.root() &&
                    std::filesystem::path(other.path()).filename().string() == name;
    }
    if (registered) return "";
    std::filesystem::path out(v.path());
    for (auto it = std::next(below.begin()); it != below.end(); ++it) out /= *it;
    return out.string();
  }
  return "";
}

// A hostPath volume that PatchVolumes points at the pinned version.
struct MovedVolume {
  std::string name;
  std::string alias_path;   // its hostPath before, normal
  std::string pinned_path;  // after
};

// Appends to `patch` the replacement of each hostPath volume that goes through an alias, and
// returns those volumes.
std::vector<MovedVolume> PatchVolumes(const json& spec, const PinnedData& pinned, json* patch) {
  std::vector<MovedVolume> moved;
  const json* volumes = Find(spec, {"volumes"});
  if (volumes == nullptr || !volumes->is_array()) return moved;
  for (size_t i = 0; i < volumes->size(); ++i) {
    const std::string* name = FindString((*volumes)[i], {"name"});
    const std::string* host_path = FindString((*volumes)[i], {"hostPath", "path"});
    if (name == nullptr || host_path == nullptr) continue;
    if (std::string to = PinnedHostPath(*host_path, pinned); !to.empty()) {
      patch->push_back(Op("replace", absl::StrCat("/spec/volumes/", i, "/hostPath/path"), to));
      moved.push_back({*name, NormalPath(*host_path), to});
    }
  }
  return moved;
}

// Appends to `patch` a read-only mount at the pinned path of each moved volume that the container
// at `path` mounts whole at its alias path (the host's path, as the shim expects roots to be):
// the shim sends reads through the alias there.
void AddPinnedMounts(const json& container, const std::string& path,
                     const std::vector<MovedVolume>& moved, json* patch) {
  const json* mounts = Find(container, {"volumeMounts"});
  if (mounts == nullptr || !mounts->is_array()) return;
  for (const MovedVolume& volume : moved) {
    bool at_alias = false;
    bool at_pinned = false;
    for (const json& mount : *mounts) {
      const std::string* name = FindString(mount, {"name"});
      const std::string* mount_path = FindString(mount, {"mountPath"});
      if (mount_path == nullptr) continue;
      const std::string at = NormalPath(*mount_path);
      at_alias |= name != nullptr && *name == volume.name && at == volume.alias_path &&
                  Find(mount, {"subPath"}) == nullptr;
      at_pinned |= at == volume.pinned_path;
    }
    if (at_alias && !at_pinned) {
      patch->push_back(
          Op("add", absl::StrCat(path, "/volumeMounts/-"),
             {{"name", volume.name}, {"mountPath", volume.pinned_path}, {"readOnly", true}}));
    }
  }
}

// A variable the kubelet fills from the Pod's own metadata (downward API), e.g. "metadata.uid".
json FieldRefVar(absl::string_view name, absl::string_view field_path) {
  return {{"name", std::string(name)},
          {"valueFrom", {{"fieldRef", {{"fieldPath", std::string(field_path)}}}}}};
}

}  // namespace

absl::StatusOr<ShimInjector> ShimInjector::Create(ShimInjectorOptions options) {
  const std::string& name = options.csi_driver;
  const bool dns_name =
      !name.empty() && name.size() <= 63 && absl::ascii_isalnum(name.front()) &&
      absl::ascii_isalnum(name.back()) && std::all_of(name.begin(), name.end(), [](char c) {
        return absl::ascii_isalnum(c) || c == '-' || c == '.';
      });
  if (!dns_name) {
    return absl::InvalidArgumentError(
        absl::StrCat("the CSI driver name \"", name, "\" is not a DNS name of 63 characters"));
  }
  return ShimInjector(std::move(options));
}

absl::StatusOr<json> ShimInjector::Patch(const json& pod, const PinnedData& pinned) const {
  const std::string* job = Label(pod, kJobLabel);
  if (job == nullptr) {
    return absl::InvalidArgumentError(absl::StrCat("the Pod has no ", kJobLabel, " label"));
  }
  ASSIGN_OR_RETURN(const std::string mode, ShimMode(pod));
  const json* spec = Find(pod, {"spec"});
  if (spec == nullptr || !spec->is_object()) {
    return absl::InvalidArgumentError("the Pod has no spec");
  }
  const json* containers = Find(*spec, {"containers"});
  if (containers == nullptr || !containers->is_array()) {
    return absl::InvalidArgumentError("/spec/containers is not a list");
  }

  // The node plugin learns the Pod's namespace from kubelet (podInfoOnMount), not from here.
  const std::vector<json> volumes = {
      {{"name", kShimVolume}, {"csi", {{"driver", options_.csi_driver}, {"readOnly", true}}}}};
  const std::vector<json> mounts = {
      {{"name", kShimVolume}, {"mountPath", kShimDir}, {"readOnly", true}}};

  json patch = json::array();
  const std::vector<MovedVolume> moved = PatchVolumes(*spec, pinned, &patch);
  RETURN_IF_ERROR(AddMissing(*spec, "/spec", "volumes", volumes, SameName, &patch));
  const bool indexed = Annotation(pod, kCompletionIndexAnnotation) != nullptr;
  const std::string pinned_env = PinnedEnvValue(pinned.pin);
  for (size_t i = 0; i < containers->size(); ++i) {
    const json& container = (*containers)[i];
    const std::string path = absl::StrCat("/spec/containers/", i);
    if (!container.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(path, " is not an object"));
    }
    RETURN_IF_ERROR(
        AddMissing(container, path, "volumeMounts", mounts, SameNameOrMountPath, &patch));
    AddPinnedMounts(container, path, moved, &patch);
    RETURN_IF_ERROR(PatchEnv(container, path, *job, mode, pinned_env, indexed, &patch));
  }
  return patch;
}

absl::Status ShimInjector::PatchEnv(const json& container, const std::string& path,
                                    const std::string& job, const std::string& mode,
                                    const std::string& pinned_env, bool indexed,
                                    json* patch) const {
  const std::string env_path = absl::StrCat(path, "/env");
  const json* env = Find(container, {"env"});
  if (env != nullptr && env->is_null()) env = nullptr;
  if (env != nullptr && !env->is_array()) {
    return absl::InvalidArgumentError(absl::StrCat(env_path, " is not a list"));
  }
  // The entry that counts for each name: the last (Kubernetes lets a later entry win).
  std::map<std::string, size_t> last;
  for (size_t i = 0; env != nullptr && i < env->size(); ++i) {
    if (const std::string* name = FindString((*env)[i], {"name"})) last[*name] = i;
  }
  auto entry = [&](const std::string& name) -> std::pair<const json*, std::string> {
    auto it = last.find(name);
    if (it == last.end()) return {nullptr, ""};
    return {&(*env)[it->second], absl::StrCat(env_path, "/", it->second)};
  };
  std::vector<json> appended;

  // LD_PRELOAD: ours first, theirs kept.
  if (auto [theirs, at] = entry("LD_PRELOAD"); theirs == nullptr) {
    appended.push_back(EnvVar("LD_PRELOAD", kLibraryInPod));
  } else if (const json* from = Find(*theirs, {"valueFrom"}); from != nullptr && !from->is_null()) {
    // Its value is only known in the kubelet: keep it under another name and reference it.
    patch->push_back(Op("replace", absl::StrCat(at, "/name"), kUserPreloadVariable));
    appended.push_back(
        EnvVar("LD_PRELOAD", absl::StrCat(kLibraryInPod, ":$(", kUserPreloadVariable, ")")));
  } else {
    const std::string* value = FindString(*theirs, {"value"});
    const std::string list = value != nullptr ? *value : "";
    if (!Preloads(list, kLibraryInPod)) {
      patch->push_back(Op("add", absl::StrCat(at, "/value"),
                          list.empty() ? kLibraryInPod : absl::StrCat(kLibraryInPod, ":", list)));
    }
  }

  // The variables the webhook owns: set, or replaced when they say something else. The Pod's
  // name, namespace and uid (downward API) identify the launcher in each process start.
  for (json want : {EnvVar("REPRO_JOB", job), EnvVar("REPRO_SHIM_SOCKET", kSocketInPod),
                    EnvVar("REPRO_MODE", mode), EnvVar(kPinnedEnvVariable, pinned_env),
                    FieldRefVar("REPRO_POD_NAME", "metadata.name"),
                    FieldRefVar("REPRO_POD_NAMESPACE", "metadata.namespace"),
                    FieldRefVar("REPRO_POD_UID", "metadata.uid")}) {
    const std::string name = want["name"];
    if (auto [theirs, at] = entry(name); theirs == nullptr) {
      appended.push_back(std::move(want));
    } else if (*theirs != want) {
      patch->push_back(Op("replace", at, std::move(want)));
    }
  }

  if (indexed && entry("REPRO_RANK").first == nullptr && entry("RANK").first == nullptr) {
    appended.push_back({{"name", "REPRO_RANK"},
                        {"valueFrom",
                         {{"fieldRef",
                           {{"fieldPath", absl::StrCat("metadata.annotations['",
                                                       kCompletionIndexAnnotation, "']")}}}}}});
  }

  if (appended.empty()) return absl::OkStatus();
  if (env == nullptr) {
    patch->push_back(Op("add", env_path, std::move(appended)));
    return absl::OkStatus();
  }
  for (json& var : appended) {
    patch->push_back(Op("add", absl::StrCat(env_path, "/-"), std::move(var)));
  }
  return absl::OkStatus();
}

}  // namespace repro
