#include "daemon/admission/shim_injector.h"

#include <algorithm>
#include <filesystem>
#include <functional>
#include <map>
#include <utility>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
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

// A variable the kubelet fills from the Pod's own metadata (downward API), e.g. "metadata.uid".
json FieldRefVar(absl::string_view name, absl::string_view field_path) {
  return {{"name", std::string(name)},
          {"valueFrom", {{"fieldRef", {{"fieldPath", std::string(field_path)}}}}}};
}

}  // namespace

absl::StatusOr<ShimInjector> ShimInjector::Create(ShimInjectorOptions options) {
  if (options.image.empty() || std::any_of(options.image.begin(), options.image.end(), [](char c) {
        return absl::ascii_isspace(c) || absl::ascii_iscntrl(c);
      })) {
    return absl::InvalidArgumentError(
        absl::StrCat("the shim image \"", options.image, "\" is empty or has blanks"));
  }
  const std::filesystem::path socket(options.shim_socket);
  const std::string dir = socket.parent_path().string();
  if (!socket.is_absolute() || socket.lexically_normal() != socket || dir.empty() || dir == "/" ||
      !socket.has_filename()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the shim socket \"", options.shim_socket,
                     "\" must be a normal absolute path in a directory other than /"));
  }
  return ShimInjector(std::move(options), dir);
}

absl::StatusOr<json> ShimInjector::Patch(const json& pod) const {
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

  const json shim_mount = {{"name", kShimVolume}, {"mountPath", kShimDir}};
  const json init_container = {{"name", kInitContainer},
                               {"image", options_.image},
                               {"imagePullPolicy", "IfNotPresent"},
                               {"command", json::array({"cp", kLibraryInImage, kLibraryInPod})},
                               {"volumeMounts", json::array({shim_mount})},
                               {"resources",
                                {{"requests", {{"cpu", "10m"}, {"memory", "16Mi"}}},
                                 {"limits", {{"cpu", "100m"}, {"memory", "64Mi"}}}}},
                               {"securityContext",
                                {{"allowPrivilegeEscalation", false},
                                 {"readOnlyRootFilesystem", true},
                                 {"capabilities", {{"drop", json::array({"ALL"})}}}}}};
  const std::vector<json> volumes = {
      {{"name", kShimVolume}, {"emptyDir", {{"sizeLimit", "16Mi"}}}},
      {{"name", kSocketVolume},
       {"hostPath", {{"path", socket_dir_}, {"type", "DirectoryOrCreate"}}}}};
  json shim_mount_read_only = shim_mount;
  shim_mount_read_only["readOnly"] = true;
  const std::vector<json> mounts = {
      shim_mount_read_only,
      {{"name", kSocketVolume}, {"mountPath", socket_dir_}, {"readOnly", true}}};

  json patch = json::array();
  RETURN_IF_ERROR(AddMissing(*spec, "/spec", "volumes", volumes, SameName, &patch));
  RETURN_IF_ERROR(AddMissing(*spec, "/spec", "initContainers", {init_container}, SameName, &patch));
  const bool indexed = Annotation(pod, kCompletionIndexAnnotation) != nullptr;
  for (size_t i = 0; i < containers->size(); ++i) {
    const json& container = (*containers)[i];
    const std::string path = absl::StrCat("/spec/containers/", i);
    if (!container.is_object()) {
      return absl::InvalidArgumentError(absl::StrCat(path, " is not an object"));
    }
    RETURN_IF_ERROR(
        AddMissing(container, path, "volumeMounts", mounts, SameNameOrMountPath, &patch));
    RETURN_IF_ERROR(PatchEnv(container, path, *job, mode, indexed, &patch));
  }
  return patch;
}

absl::Status ShimInjector::PatchEnv(const json& container, const std::string& path,
                                    const std::string& job, const std::string& mode, bool indexed,
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
  for (json want : {EnvVar("REPRO_JOB", job), EnvVar("REPRO_SHIM_SOCKET", options_.shim_socket),
                    EnvVar("REPRO_MODE", mode), FieldRefVar("REPRO_POD_NAME", "metadata.name"),
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
