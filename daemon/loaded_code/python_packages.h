// Which installed Python distribution provides a module a process imported: the top-level name
// under a site directory ("/usr/lib/python3/dist-packages" + "numpy") is mapped to the distribution
// whose *.dist-info or *.egg-info entry in that directory claims it.
//
//   PythonPackageResolver resolver(DefaultFileSystem());
//   std::optional<SiteModule> m = SiteModuleOfPackageDir("/usr/lib/python3/dist-packages/numpy");
//   ASSIGN_OR_RETURN(PythonDistribution d, resolver.Resolve(m->site, m->module));
//   // d.name == "numpy", d.version == "1.24.2",
//   // d.location == "/usr/lib/python3/dist-packages/numpy-1.24.2.egg-info"
//
// A distribution claims the top-level names listed in its top_level.txt and the first components
// of the paths in its RECORD (dist-info; e.g. "numpy.libs" for the libraries a wheel vendors);
// without either file, its own name in import form ("python-dateutil" -> "python_dateutil"), and
// such a guess yields to a listed claim of another distribution. Name and Version come from the
// headers of METADATA (dist-info), PKG-INFO (egg-info directory) or the egg-info file itself.
#ifndef REPRO_DAEMON_LOADED_CODE_PYTHON_PACKAGES_H_
#define REPRO_DAEMON_LOADED_CODE_PYTHON_PACKAGES_H_

#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "absl/container/flat_hash_map.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "daemon/os/file_system.h"

namespace repro {

// A top-level module and the site directory it lies in.
struct SiteModule {
  std::string site;    // e.g. "/usr/lib/python3/dist-packages"
  std::string module;  // e.g. "numpy", "six", "_yaml", "numpy.libs" (a directory, as named)
};

// The top-level name a site directory entry stands for: a package directory by its name
// ("numpy"), a module by the name before its first dot ("six.py", "six.cpython-311.pyc",
// "_yaml.cpython-311-x86_64-linux-gnu.so" -> "six", "six", "_yaml"). nullopt for entries that
// are no module: "*.dist-info", "*.egg-info", "*.data", "*.pth", "__pycache__", "." and "..".
std::optional<std::string> SiteEntryModule(absl::string_view entry);

// "<site>/<entry>" as a shim reports a package directory ("/x/site-packages/numpy",
// "/x/site-packages/six.py", "/x/site-packages/__pycache__/six.cpython-311.pyc") as its site and
// module; nullopt when the entry is no module.
std::optional<SiteModule> SiteModuleOfPackageDir(absl::string_view package_dir);

// The site and module of a file lying under a directory named "*-packages" (the first such
// component): "/x/dist-packages/numpy/core/_m.so" -> {"/x/dist-packages", "numpy"}; nullopt when
// the path lies under none.
std::optional<SiteModule> SiteModuleOfFile(absl::string_view path);

// The "import form" of a distribution name, used when it lists no top-level names: lower case,
// "-" and "." as "_" ("python-dateutil" -> "python_dateutil").
std::string ImportFormOf(absl::string_view distribution_name);

struct PythonDistribution {
  std::string name;      // as its metadata spells it, e.g. "PyYAML"
  std::string version;   // may be empty when the metadata has none
  std::string location;  // its *.dist-info or *.egg-info path
  FileStat metadata;     // lstat of the metadata file Name and Version were read from
};

// Maps (site, module) to distributions. Each site directory is scanned once and its map cached
// until the directory's mtime changes (installing or removing a distribution adds or removes an
// entry in it). Not thread-safe.
class PythonPackageResolver {
 public:
  // `fs` must outlive the resolver. At most `max_sites` site maps are cached (all are dropped
  // when one more is needed).
  explicit PythonPackageResolver(FileSystem* fs, size_t max_sites = 256);

  // The distribution in `site` that provides top-level `module`. NOT_FOUND when none does; the
  // file system's error when `site` cannot be resolved, stat'ed or listed. Unreadable or
  // malformed distribution entries are left out of the map (logged at debug).
  absl::StatusOr<PythonDistribution> Resolve(const std::string& site, absl::string_view module);

 private:
  struct SiteMap {
    int64_t mtime_ns = 0;
    std::vector<PythonDistribution> distributions;
    absl::flat_hash_map<std::string, size_t> by_module;  // -> index in distributions
  };

  // The map of `site` (a symlink-free path), scanned when absent or out of date. Valid until
  // the next call.
  absl::StatusOr<const SiteMap*> MapOf(const std::string& site);
  absl::StatusOr<SiteMap> Scan(const std::string& site);

  FileSystem* const fs_;
  const size_t max_sites_;
  absl::flat_hash_map<std::string, std::unique_ptr<SiteMap>> sites_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_LOADED_CODE_PYTHON_PACKAGES_H_
