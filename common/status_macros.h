// Early-return helpers for absl::Status / absl::StatusOr (the installed Abseil has none).
//
//   absl::StatusOr<Pin> GetPin(absl::string_view job) {
//     RETURN_IF_ERROR(ValidateJobId(job));
//     ASSIGN_OR_RETURN(std::string bytes, ReadKey(job));
//     ...
//   }
#ifndef REPRO_COMMON_STATUS_MACROS_H_
#define REPRO_COMMON_STATUS_MACROS_H_

#include <utility>

#include "absl/status/status.h"
#include "absl/status/statusor.h"

#define REPRO_STATUS_CONCAT_INNER_(a, b) a##b
#define REPRO_STATUS_CONCAT_(a, b) REPRO_STATUS_CONCAT_INNER_(a, b)

// Returns the status of `expr` from the current function when it is not OK.
#define RETURN_IF_ERROR(expr)                    \
  do {                                           \
    ::absl::Status repro_status_ = (expr);       \
    if (!repro_status_.ok()) return repro_status_; \
  } while (0)

// Evaluates `rexpr` (a StatusOr); returns its status when not OK, else moves its value into `lhs`
// (which may be a declaration).
#define ASSIGN_OR_RETURN(lhs, rexpr) \
  REPRO_ASSIGN_OR_RETURN_IMPL_(REPRO_STATUS_CONCAT_(repro_statusor_, __LINE__), lhs, rexpr)

#define REPRO_ASSIGN_OR_RETURN_IMPL_(tmp, lhs, rexpr) \
  auto tmp = (rexpr);                                 \
  if (!tmp.ok()) return std::move(tmp).status();      \
  lhs = std::move(tmp).value()

#endif  // REPRO_COMMON_STATUS_MACROS_H_
