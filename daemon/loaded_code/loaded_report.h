// LoadedReport: what a process says it runs with (the shim's LOADED message, parsed by
// daemon/shim_socket/shim_message.h), as the describers in this folder take it.
//
//   LoadedReport report{.libraries = {"/usr/lib/x86_64-linux-gnu/libz.so.1"}, .libc_version =
//   "2.36"}; LoadedEntries built = builder.Build(source, report);
#ifndef REPRO_DAEMON_LOADED_CODE_LOADED_REPORT_H_
#define REPRO_DAEMON_LOADED_CODE_LOADED_REPORT_H_

#include <string>
#include <vector>

namespace repro {

// Paths are absolute, as the process named them; entries may repeat those of earlier reports.
struct LoadedReport {
  std::vector<std::string> libraries;     // shared objects, as the dynamic loader names them
  std::string libc_version;               // e.g. "2.36"; may be empty
  std::vector<std::string> package_dirs;  // "<site dir>/<top-level name>" of Python packages
};

}  // namespace repro

#endif  // REPRO_DAEMON_LOADED_CODE_LOADED_REPORT_H_
