// The subject files of an in-toto statement, from the globs a user names on the command line
// (`reproctl export --subject 'ckpt/*.pt'`), hashed here with SHA-256.
//
//   ASSIGN_OR_RETURN(std::vector<SubjectFile> files, ExpandSubjects({"ckpt/*.pt"}));
#ifndef REPRO_CLIENT_CLI_SUBJECTS_H_
#define REPRO_CLIENT_CLI_SUBJECTS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"

namespace repro::cli {

struct SubjectFile {
  std::string name;    // the path as the glob matched it
  std::string path;    // absolute, symlinks resolved
  std::string sha256;  // 32 raw bytes
};

// Every regular file each glob (glob(3) syntax) matches, once each, in glob order.
// INVALID_ARGUMENT when a glob matches no regular file; the file's error (NOT_FOUND,
// PERMISSION_DENIED, ...) when one cannot be read.
absl::StatusOr<std::vector<SubjectFile>> ExpandSubjects(const std::vector<std::string>& globs);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_SUBJECTS_H_
