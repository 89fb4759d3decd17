// Maps an errno value to the most specific canonical absl::Status code.
#ifndef REPRO_COMMON_POSIX_ERROR_H_
#define REPRO_COMMON_POSIX_ERROR_H_

#include "absl/status/status.h"
#include "absl/strings/string_view.h"

namespace repro {

// Returns "<context>: <strerror(err)>" with a code chosen from `err` (ENOENT -> NOT_FOUND,
// EACCES -> PERMISSION_DENIED, ENOSPC -> RESOURCE_EXHAUSTED, ...).
absl::Status PosixError(int err, absl::string_view context);

}  // namespace repro

#endif  // REPRO_COMMON_POSIX_ERROR_H_
