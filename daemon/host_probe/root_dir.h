// RootDir: the host probe's seam to the machine. Every file the probe reads (/proc, /sys, /etc)
// is read below a root directory: "/" in reprod, a fixture tree in tests.
//
//   RootDir root("/");
//   std::optional<std::string> cpuinfo = root.Read("/proc/cpuinfo");
//   std::string model = LineValue(*cpuinfo, "model name", ':');  // "Intel(R) Xeon(R) ..."
#ifndef REPRO_DAEMON_HOST_PROBE_ROOT_DIR_H_
#define REPRO_DAEMON_HOST_PROBE_ROOT_DIR_H_

#include <cstddef>
#include <optional>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"

namespace repro {

// Thread-safe (holds nothing but the root's name).
class RootDir {
 public:
  // Files larger than this are cut (procfs reports size 0, so they are read to their end).
  static constexpr size_t kMaxFileBytes = 4 << 20;

  // `root` is a directory; "" means "/".
  explicit RootDir(std::string root);

  // True for "/": facts of the running system (uname, sysconf) may fill gaps the files leave.
  bool live() const { return root_ == "/"; }
  const std::string& root() const { return root_; }

  // `path` ("/proc/cpuinfo") below the root.
  std::string Resolve(absl::string_view path) const;

  // The contents of `path` below the root (symlinks followed, at most kMaxFileBytes), or nullopt
  // when it cannot be read.
  std::optional<std::string> Read(absl::string_view path) const;

  // The entry names of directory `path` below the root except "." and "..", sorted; empty when
  // it cannot be listed.
  std::vector<std::string> List(absl::string_view path) const;

 private:
  std::string root_;
};

// The value of the first line of `text` of the form `key` SEP value (spaces and tabs around key
// and value ignored): LineValue("model name\t: Xeon\n", "model name", ':') is "Xeon". "" when no
// line has that key.
std::string LineValue(absl::string_view text, absl::string_view key, char separator);

}  // namespace repro

#endif  // REPRO_DAEMON_HOST_PROBE_ROOT_DIR_H_
