// What a shared object is, as reprod journals it: its soname, read from the ELF file's dynamic
// section, and its version, read from its file name.
//
//   ASSIGN_OR_RETURN(std::string soname, ReadElfSoname(fs, "/usr/lib/libz.so.1.2.13"));
//   // soname == "libz.so.1"
//   std::string version = VersionFromFileName("libz.so.1.2.13");  // "1.2.13"
//
// The files are named by untrusted processes: every read is bounded and checked against the file's
// size, and a file that is not a well-formed ELF64 object is an error, never a crash.
#ifndef REPRO_DAEMON_LOADED_CODE_SHARED_LIBRARY_H_
#define REPRO_DAEMON_LOADED_CODE_SHARED_LIBRARY_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/os/file_system.h"

namespace repro {

// The DT_SONAME of the ELF64 shared object at `path`, read through `fs` (the file must be a
// regular file; a symlink is not followed), or "" when it has a dynamic section without one
// (e.g. a Python extension module) or none at all. INVALID_ARGUMENT when the file is not a regular
// file, not an ELF64 object in this machine's byte order, or is truncated or malformed; the file
// system's error when it cannot be opened or read.
absl::StatusOr<std::string> ReadElfSoname(FileSystem* fs, const std::string& path);

// The version a shared object's file name carries, or "" when it carries none:
// "libstdc++.so.6.0.30" -> "6.0.30", "libz.so.1.2.13" -> "1.2.13", "libfoo-1.2.so" -> "1.2",
// "libc.so.6" -> "6", "libtorch_cpu.so" -> "". A version is digits and dots, starting and ending
// with a digit.
std::string VersionFromFileName(absl::string_view file_name);

}  // namespace repro

#endif  // REPRO_DAEMON_LOADED_CODE_SHARED_LIBRARY_H_
