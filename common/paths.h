// Path text without touching the file system: the last component of a path.
//
//   Basename("/usr/lib/libz.so.1") == "libz.so.1";  Basename("libz.so.1") == "libz.so.1"
#ifndef REPRO_COMMON_PATHS_H_
#define REPRO_COMMON_PATHS_H_

#include "absl/strings/string_view.h"

namespace repro {

// What follows the last '/' of `path` (all of it when there is none; "" when it ends in '/').
// The result points into `path`.
inline absl::string_view Basename(absl::string_view path) {
  size_t slash = path.rfind('/');
  return slash == absl::string_view::npos ? path : path.substr(slash + 1);
}

// What precedes the last '/' of `path`: "/a/b" -> "/a", "/a" -> "/", "a" -> "". Points into `path`.
inline absl::string_view Dirname(absl::string_view path) {
  size_t slash = path.rfind('/');
  if (slash == absl::string_view::npos) return absl::string_view();
  return slash == 0 ? path.substr(0, 1) : path.substr(0, slash);
}

}  // namespace repro

#endif  // REPRO_COMMON_PATHS_H_
