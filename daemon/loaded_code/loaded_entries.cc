#include "daemon/loaded_code/loaded_entries.h"

#include <sys/stat.h>

#include <utility>

#include "absl/container/btree_set.h"
#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "common/names.h"
#include "common/paths.h"
#include "common/sha256.h"
#include "daemon/hashing/file_hasher.h"
#include "daemon/store/journal_text.h"
#include "daemon/loaded_code/shared_library.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

constexpr absl::string_view kLibcSoname = "libc.so.6";

}  // namespace

std::string LibraryVersion(absl::string_view soname, absl::string_view real_path,
                           absl::string_view libc_version) {
  if (soname == kLibcSoname && !libc_version.empty()) return std::string(libc_version);
  std::string version = VersionFromFileName(Basename(real_path));
  return version.empty() ? VersionFromFileName(soname) : version;
}

bool ProcessMayRead(uid_t uid, gid_t gid, const FileStat& stat) {
  if (uid == 0) return true;
  if (stat.uid == uid) return (stat.mode & S_IRUSR) != 0;
  if (stat.gid == gid) return (stat.mode & S_IRGRP) != 0;
  return (stat.mode & S_IROTH) != 0;
}

LoadedEntryBuilder::LoadedEntryBuilder(FileSystem* fs, HashCache* hash_cache, Authorizer* auth,
                                       uint64_t max_hash_bytes)
    : fs_(fs),
      auth_(auth != nullptr ? auth : &own_auth_),
      hasher_(fs, hash_cache),
      max_hash_bytes_(max_hash_bytes),
      packages_(fs) {}

LoadedEntries LoadedEntryBuilder::Build(const LoadedSource& source, const LoadedReport& loaded) {
  LoadedEntries out;
  absl::flat_hash_set<std::string> once_keys;  // entries already built from this report
  auto add = [&](std::optional<JournalItem> item, size_t* skipped) {
    if (!item.has_value()) {
      ++*skipped;
    } else if (once_keys.insert(item->once_key).second) {
      out.items.push_back(*std::move(item));
    }
  };
  // (site, module) pairs, each resolved once.
  absl::btree_set<std::pair<std::string, std::string>> modules;
  absl::flat_hash_set<absl::string_view> libraries;
  for (const std::string& path : loaded.libraries) {
    if (!libraries.insert(path).second) continue;
    add(LibraryItem(source, path, loaded.libc_version), &out.skipped_libraries);
    if (std::optional<SiteModule> m = SiteModuleOfFile(path)) modules.emplace(m->site, m->module);
  }
  for (const std::string& dir : loaded.package_dirs) {
    if (std::optional<SiteModule> m = SiteModuleOfPackageDir(dir)) {
      modules.emplace(m->site, m->module);
    } else {
      spdlog::debug("loaded: pid {} reported {}, which names no Python module", source.pid, dir);
      ++out.skipped_packages;
    }
  }
  for (const auto& [site, module] : modules) {
    add(PackageItem(source, {site, module}), &out.skipped_packages);
  }
  return out;
}

std::optional<JournalItem> LoadedEntryBuilder::LibraryItem(const LoadedSource& source,
                                                           const std::string& path,
                                                           absl::string_view libc_version) {
  auto skip = [&](const absl::Status& why) -> std::optional<JournalItem> {
    spdlog::debug("loaded: not describing library {} of pid {}: {}", path, source.pid,
                  why.ToString());
    return std::nullopt;
  };
  absl::StatusOr<std::string> real = fs_->RealPath(path);
  if (!real.ok()) return skip(real.status());
  if (!auth_->MayHash("ShimLoaded", source.identity(), *real)) {
    return skip(absl::PermissionDeniedError("the process may not read it"));
  }
  // INVALID_ARGUMENT: not a regular file; RESOURCE_EXHAUSTED: larger than max_hash_bytes_
  absl::StatusOr<HashedFile> hashed = hasher_.Hash(*real, {.max_bytes = max_hash_bytes_});
  if (!hashed.ok()) return skip(hashed.status());
  absl::StatusOr<std::string> soname = ReadElfSoname(fs_, *real);
  if (!soname.ok()) {
    spdlog::debug("loaded: no soname for {}: {}", *real, soname.status().ToString());
  }
  // Without a DT_SONAME (Python extension modules, plain objects), the name the loader used.
  std::string name = soname.ok() && !soname->empty() ? *soname : std::string(Basename(path));

  JournalItem item;
  v1::LibrariesLoaded* loaded = item.entry.mutable_libraries();
  loaded->set_pid(source.pid);
  loaded->set_rank(source.rank);
  v1::Library* library = loaded->add_libraries();
  library->set_path(JournalText(*real));
  library->set_soname(JournalText(name));
  library->set_version(LibraryVersion(name, *real, libc_version));
  library->set_sha256(hashed->sha256);
  item.once_key = absl::StrCat("lib/", library->path(), "/", HexDigest(hashed->sha256));
  return item;
}

std::optional<JournalItem> LoadedEntryBuilder::PackageItem(const LoadedSource& source,
                                                           const SiteModule& module) {
  absl::StatusOr<PythonDistribution> distribution = packages_.Resolve(module.site, module.module);
  if (distribution.ok() && !ProcessMayRead(source.uid, source.gid, distribution->metadata)) {
    distribution = absl::PermissionDeniedError(
        absl::StrCat("the process may not read the metadata in ", distribution->location));
  }
  if (!distribution.ok()) {
    spdlog::debug("loaded: module {} in {} of pid {} maps to no distribution: {}", module.module,
                  module.site, source.pid, distribution.status().ToString());
    return std::nullopt;
  }
  JournalItem item;
  v1::PythonPackages* packages = item.entry.mutable_python_packages();
  packages->set_pid(source.pid);
  packages->set_rank(source.rank);
  v1::PythonPackage* package = packages->add_packages();
  package->set_name(JournalText(distribution->name));
  package->set_version(JournalText(distribution->version));
  package->set_location(JournalText(distribution->location));
  item.once_key =
      absl::StrCat("pkg/", NormalizePackageName(package->name()), "/", package->version());
  return item;
}

}  // namespace repro
