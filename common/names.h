// Validation of the names users choose: job ids, dataset and version names, fact keys; and the
// canonical form of Python distribution names, by which reprod and reproctl compare packages.
//
// A name is 1..128 characters of [A-Za-z0-9._-] starting with a letter or digit, so it is safe in
// RocksDB and etcd keys (we use '/' as the separator), in file names, and in Kubernetes labels
// (which allow at most 63 of these characters).
#ifndef REPRO_COMMON_NAMES_H_
#define REPRO_COMMON_NAMES_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace repro {

inline constexpr size_t kMaxNameLength = 128;
inline constexpr size_t kMaxFactKeyLength = 256;
inline constexpr size_t kMaxFactValueLength = 64 * 1024;

// INVALID_ARGUMENT naming `what` ("job id", "dataset name", ...) when `name` is not valid.
absl::Status ValidateName(absl::string_view what, absl::string_view name);
inline absl::Status ValidateJobId(absl::string_view job) { return ValidateName("job id", job); }
inline absl::Status ValidateDatasetName(absl::string_view d) { return ValidateName("dataset name", d); }
inline absl::Status ValidateVersionName(absl::string_view v) { return ValidateName("version name", v); }

// Fact keys may also contain '/' and ':' (e.g. "git/commit", "hp:lr"); values are any UTF-8 up to
// kMaxFactValueLength bytes.
absl::Status ValidateFact(absl::string_view key, absl::string_view value);

struct DatasetVersion {
  std::string dataset;
  std::string version;
};

// Parses and validates "dataset@version".
absl::StatusOr<DatasetVersion> ParseDatasetVersion(absl::string_view ref);

// The PEP 503 form of a Python distribution name: lower case, runs of "-", "_", "." as one "-"
// ("PyYAML" -> "pyyaml", "zope.interface" -> "zope-interface").
std::string NormalizePackageName(absl::string_view name);

}  // namespace repro

#endif  // REPRO_COMMON_NAMES_H_
