#include "daemon/loaded_code/python_packages.h"

#include <algorithm>
#include <utility>

#include "absl/container/btree_set.h"
#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"
#include "common/paths.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

// Bytes read of each file, whatever its size: metadata headers come first, and a RECORD this
// large is past any real distribution's.
constexpr size_t kMaxMetadataBytes = 64 * 1024;
constexpr size_t kMaxTopLevelBytes = 64 * 1024;
constexpr size_t kMaxRecordBytes = 16 * 1024 * 1024;

// Up to `max_bytes` from the start of the regular file at `path`.
absl::StatusOr<std::string> ReadHead(FileSystem* fs, const std::string& path, size_t max_bytes) {
  ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> file, fs->OpenForRead(path));
  std::string out(max_bytes, '\0');
  size_t done = 0;
  while (done < max_bytes) {
    ASSIGN_OR_RETURN(size_t got, file->Read(out.data() + done, max_bytes - done));
    if (got == 0) break;
    done += got;
  }
  out.resize(done);
  return out;
}

// Where a distribution entry of a site directory keeps what describes it.
struct InfoPaths {
  std::string location;   // the *.dist-info / *.egg-info entry
  std::string metadata;   // METADATA, PKG-INFO, or the egg-info file itself
  std::string top_level;  // top_level.txt; "" for an egg-info file
  std::string record;     // RECORD of a dist-info; "" for egg-info
};

std::optional<InfoPaths> InfoPathsOf(const std::string& site, const DirEntry& entry) {
  std::string location = absl::StrCat(site, "/", entry.name);
  if (absl::EndsWith(entry.name, ".dist-info") && entry.type == FileType::kDirectory) {
    return InfoPaths{location, location + "/METADATA", location + "/top_level.txt",
                     location + "/RECORD"};
  }
  if (absl::EndsWith(entry.name, ".egg-info") && entry.type == FileType::kDirectory) {
    return InfoPaths{location, location + "/PKG-INFO", location + "/top_level.txt", ""};
  }
  if (absl::EndsWith(entry.name, ".egg-info") && entry.type == FileType::kRegular) {
    return InfoPaths{location, location, "", ""};
  }
  return std::nullopt;
}

// Name and Version from the header block of core metadata (RFC 822 style, ends at a blank line).
void ParseMetadataHeaders(absl::string_view text, PythonDistribution* out) {
  bool has_name = false;
  bool has_version = false;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    absl::ConsumeSuffix(&line, "\r");
    if (line.empty()) break;
    size_t colon = line.find(':');
    if (colon == absl::string_view::npos) continue;
    absl::string_view key = line.substr(0, colon);
    std::string value(absl::StripAsciiWhitespace(line.substr(colon + 1)));
    if (!has_name && absl::EqualsIgnoreCase(key, "Name")) {
      out->name = std::move(value);
      has_name = true;
    } else if (!has_version && absl::EqualsIgnoreCase(key, "Version")) {
      out->version = std::move(value);
      has_version = true;
    }
  }
}

absl::StatusOr<PythonDistribution> ReadDistribution(FileSystem* fs, const InfoPaths& info) {
  PythonDistribution d;
  d.location = info.location;
  ASSIGN_OR_RETURN(d.metadata, fs->Stat(info.metadata));
  if (d.metadata.type != FileType::kRegular) {
    return absl::InvalidArgumentError(absl::StrCat(info.metadata, " is not a regular file"));
  }
  ASSIGN_OR_RETURN(std::string text, ReadHead(fs, info.metadata, kMaxMetadataBytes));
  ParseMetadataHeaders(text, &d);
  if (d.name.empty())
    return absl::InvalidArgumentError(absl::StrCat(info.metadata, " has no Name"));
  return d;
}

// The first field of a RECORD line (CSV: a path with a comma in it is quoted, '""' is '"').
std::string FirstCsvField(absl::string_view line) {
  if (line.empty() || line[0] != '"') return std::string(line.substr(0, line.find(',')));
  std::string out;
  for (size_t i = 1; i < line.size(); ++i) {
    if (line[i] == '"') {
      if (i + 1 >= line.size() || line[i + 1] != '"') break;
      ++i;
    }
    out.push_back(line[i]);
  }
  return out;
}

// The top-level names a distribution claims explicitly: the lines of its top_level.txt and the
// first components of its RECORD paths. Sets *has_list when either file could be read (an empty
// list then means the distribution provides no module).
absl::btree_set<std::string> ExplicitClaims(FileSystem* fs, const InfoPaths& info, bool* has_list) {
  absl::btree_set<std::string> names;
  *has_list = false;
  auto add = [&](absl::string_view path) {
    absl::string_view first = path.substr(0, path.find('/'));
    if (std::optional<std::string> module = SiteEntryModule(first)) names.insert(*module);
  };
  if (!info.top_level.empty()) {
    absl::StatusOr<std::string> text = ReadHead(fs, info.top_level, kMaxTopLevelBytes);
    if (text.ok()) {
      *has_list = true;
      for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipWhitespace())) {
        add(absl::StripAsciiWhitespace(line));
      }
    }
  }
  if (!info.record.empty()) {
    absl::StatusOr<std::string> text = ReadHead(fs, info.record, kMaxRecordBytes);
    if (text.ok()) {
      *has_list = true;
      for (absl::string_view line : absl::StrSplit(*text, '\n', absl::SkipWhitespace())) {
        absl::ConsumeSuffix(&line, "\r");
        add(FirstCsvField(line));
      }
    }
  }
  return names;
}

// The site and module of `rest` ("numpy/core/x.so", "six.py", "__pycache__/six.cpython-311.pyc")
// below `site`.
std::optional<SiteModule> ModuleBelow(absl::string_view site, absl::string_view rest) {
  absl::string_view top = rest.substr(0, rest.find('/'));
  if (top == "__pycache__" && top.size() < rest.size()) {
    absl::string_view file = rest.substr(top.size() + 1);
    if (file.find('/') == absl::string_view::npos && absl::EndsWith(file, ".pyc")) top = file;
  }
  std::optional<std::string> module = SiteEntryModule(top);
  if (!module.has_value() || site.empty()) return std::nullopt;
  return SiteModule{std::string(site), *std::move(module)};
}

}  // namespace

std::optional<std::string> SiteEntryModule(absl::string_view entry) {
  if (entry.empty() || entry == "." || entry == ".." || entry == "__pycache__") return std::nullopt;
  for (absl::string_view suffix : {".dist-info", ".egg-info", ".data", ".pth", ".egg-link"}) {
    if (absl::EndsWith(entry, suffix)) return std::nullopt;
  }
  for (absl::string_view suffix : {".py", ".pyc", ".so"}) {
    if (absl::EndsWith(entry, suffix)) {
      absl::string_view module = entry.substr(0, entry.find('.'));
      if (module.empty()) return std::nullopt;
      return std::string(module);
    }
  }
  return std::string(entry);
}

std::optional<SiteModule> SiteModuleOfPackageDir(absl::string_view package_dir) {
  absl::string_view site = Dirname(package_dir);
  if (Basename(site) == "__pycache__") site = Dirname(site);
  if (site.empty() || site.size() >= package_dir.size()) return std::nullopt;
  return ModuleBelow(site, package_dir.substr(site.size() == 1 ? 1 : site.size() + 1));
}

std::optional<SiteModule> SiteModuleOfFile(absl::string_view path) {
  for (size_t start = 0;;) {
    size_t slash = path.find('/', start);
    if (slash == absl::string_view::npos) return std::nullopt;
    if (slash > start && absl::EndsWith(path.substr(start, slash - start), "-packages")) {
      return ModuleBelow(path.substr(0, slash), path.substr(slash + 1));
    }
    start = slash + 1;
  }
}

std::string ImportFormOf(absl::string_view distribution_name) {
  std::string out = absl::AsciiStrToLower(distribution_name);
  std::replace(out.begin(), out.end(), '-', '_');
  std::replace(out.begin(), out.end(), '.', '_');
  return out;
}

PythonPackageResolver::PythonPackageResolver(FileSystem* fs, size_t max_sites)
    : fs_(fs), max_sites_(max_sites) {}

absl::StatusOr<PythonDistribution> PythonPackageResolver::Resolve(const std::string& site,
                                                                  absl::string_view module) {
  ASSIGN_OR_RETURN(std::string real, fs_->RealPath(site));
  ASSIGN_OR_RETURN(const SiteMap* map, MapOf(real));
  auto it = map->by_module.find(module);
  if (it == map->by_module.end()) {
    return absl::NotFoundError(absl::StrCat("no distribution in ", real, " provides ", module));
  }
  return map->distributions[it->second];
}

absl::StatusOr<const PythonPackageResolver::SiteMap*> PythonPackageResolver::MapOf(
    const std::string& site) {
  ASSIGN_OR_RETURN(FileStat stat, fs_->Stat(site));
  if (stat.type != FileType::kDirectory) {
    return absl::InvalidArgumentError(absl::StrCat(site, " is not a directory"));
  }
  auto it = sites_.find(site);
  if (it != sites_.end() && it->second->mtime_ns == stat.mtime_ns) return it->second.get();
  ASSIGN_OR_RETURN(SiteMap map, Scan(site));
  map.mtime_ns = stat.mtime_ns;
  if (it == sites_.end() && sites_.size() >= max_sites_) sites_.clear();
  std::unique_ptr<SiteMap>& slot = sites_[site];
  slot = std::make_unique<SiteMap>(std::move(map));
  return slot.get();
}

absl::StatusOr<PythonPackageResolver::SiteMap> PythonPackageResolver::Scan(
    const std::string& site) {
  ASSIGN_OR_RETURN(std::vector<DirEntry> entries, fs_->ListDirectory(site));
  // Sorted, so that when two distributions claim one name the same one wins every time.
  std::sort(entries.begin(), entries.end(),
            [](const DirEntry& a, const DirEntry& b) { return a.name < b.name; });
  SiteMap map;
  std::vector<bool> listed;  // per distribution: its claims come from top_level.txt or RECORD
  for (const DirEntry& entry : entries) {
    std::optional<InfoPaths> info = InfoPathsOf(site, entry);
    if (!info.has_value()) continue;
    absl::StatusOr<PythonDistribution> distribution = ReadDistribution(fs_, *info);
    if (!distribution.ok()) {
      spdlog::debug("python packages: skipping {}: {}", info->location,
                    distribution.status().ToString());
      continue;
    }
    bool has_list = false;
    absl::btree_set<std::string> claims = ExplicitClaims(fs_, *info, &has_list);
    if (!has_list) claims.insert(ImportFormOf(distribution->name));
    const size_t index = map.distributions.size();
    map.distributions.push_back(*std::move(distribution));
    listed.push_back(has_list);
    // A listed claim takes a name from a distribution that only guessed it from its own name.
    for (const std::string& module : claims) {
      auto [it, inserted] = map.by_module.emplace(module, index);
      if (!inserted && has_list && !listed[it->second]) it->second = index;
    }
  }
  return map;
}

}  // namespace repro
