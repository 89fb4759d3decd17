// The Kubernetes labels and annotations through which workloads talk to repro, and how to read
// them from an object (a Pod, a Job, or a Job's Pod template).
//
//   const std::string* job = Label(pod, kJobLabel);            // null when unlabelled
//   ASSIGN_OR_RETURN(std::string mode, ShimMode(pod));          // "record" unless annotated
#ifndef REPRO_DAEMON_ADMISSION_LABELS_H_
#define REPRO_DAEMON_ADMISSION_LABELS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "nlohmann/json.hpp"

namespace repro {

// On a Pod (or a Job's Pod template): the repro job the Pod belongs to.
inline constexpr char kJobLabel[] = "repro.dev/job";
// On a Pod (or a Job's Pod template): the shim's mode, "record" (default) or "enforce".
inline constexpr char kModeAnnotation[] = "repro.dev/mode";
// On a Namespace: the webhook configurations select namespaces labelled with it, "true".
inline constexpr char kEnforceNamespaceLabel[] = "repro.dev/enforce";
// Set by the Job controller on the Pods of an Indexed Job: the Pod's index, used as its rank.
inline constexpr char kCompletionIndexAnnotation[] = "batch.kubernetes.io/job-completion-index";

// metadata.labels[key] / metadata.annotations[key] of `object`; null when absent or not a string.
const std::string* Label(const nlohmann::json& object, absl::string_view key);
const std::string* Annotation(const nlohmann::json& object, absl::string_view key);

// The shim mode `object` asks for through kModeAnnotation: "record" when it has none.
// INVALID_ARGUMENT naming the annotation for any value but "record" and "enforce".
absl::StatusOr<std::string> ShimMode(const nlohmann::json& object);

}  // namespace repro

#endif  // REPRO_DAEMON_ADMISSION_LABELS_H_
