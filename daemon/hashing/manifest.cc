#include "daemon/hashing/manifest.h"

#include <endian.h>

#include <algorithm>
#include <cstdint>
#include <string>

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/sha256.h"

namespace repro {
namespace {

// Appends be64(v) to `out`.
void AppendBe64(uint64_t v, std::string* out) {
  const uint64_t be = htobe64(v);
  out->append(reinterpret_cast<const char*>(&be), sizeof(be));
}

// The path quoted and escaped for an error message (paths may hold any byte but NUL and '/').
std::string Quoted(absl::string_view path) {
  return absl::StrCat("\"", absl::CHexEscape(path), "\"");
}

bool PathLess(const v1::FileEntry* a, const v1::FileEntry* b) {
  // std::string comparison is char_traits<char>::compare, i.e. memcmp: bytewise and unsigned.
  return a->path() < b->path();
}

}  // namespace

void SortManifest(v1::Manifest* manifest) {
  auto* files = manifest->mutable_files();
  std::sort(files->pointer_begin(), files->pointer_end(), PathLess);
}

absl::Status ValidateManifestPath(absl::string_view path) {
  if (path.empty()) return absl::InvalidArgumentError("manifest has a file with an empty path");
  if (path.find('\0') != absl::string_view::npos) {
    return absl::InvalidArgumentError(
        absl::StrCat("manifest path ", Quoted(path), " contains a NUL byte"));
  }
  if (path.front() == '/') {
    return absl::InvalidArgumentError(absl::StrCat("manifest path ", Quoted(path),
                                                   " is absolute; paths are relative to the "
                                                   "version directory"));
  }
  for (absl::string_view part : absl::StrSplit(path, '/')) {
    if (part.empty() || part == "." || part == "..") {
      return absl::InvalidArgumentError(
          absl::StrCat("manifest path ", Quoted(path), " has an empty, \".\" or \"..\" component"));
    }
  }
  return absl::OkStatus();
}

absl::Status ValidateManifest(const v1::Manifest& manifest) {
  const std::string* previous = nullptr;
  for (const v1::FileEntry& file : manifest.files()) {
    if (absl::Status s = ValidateManifestPath(file.path()); !s.ok()) return s;
    if (previous != nullptr && !(*previous < file.path())) {
      if (*previous == file.path()) {
        return absl::InvalidArgumentError(
            absl::StrCat("manifest lists ", Quoted(file.path()), " more than once"));
      }
      return absl::InvalidArgumentError(absl::StrCat("manifest is not sorted: ", Quoted(*previous),
                                                     " comes before ", Quoted(file.path())));
    }
    if (file.sha256().size() != kSha256Size) {
      return absl::DataLossError(absl::StrCat("manifest entry ", Quoted(file.path()), " has a ",
                                              file.sha256().size(), "-byte SHA-256; expected ",
                                              kSha256Size));
    }
    previous = &file.path();
  }
  return absl::OkStatus();
}

std::string ManifestDigest(const v1::Manifest& manifest) {
  Sha256 hasher;
  hasher.Update(kManifestDigestDomain);
  std::string record;  // one file's encoding, reused: the manifest is streamed, never built whole
  for (const v1::FileEntry& file : manifest.files()) {
    record.clear();
    AppendBe64(file.path().size(), &record);
    record += file.path();
    AppendBe64(file.size(), &record);
    const size_t sha_at = record.size();
    record.append(file.sha256(), 0, kSha256Size);
    record.resize(sha_at + kSha256Size, '\0');  // a valid sha256 is exactly this long already
    hasher.Update(record);
  }
  return hasher.Finish();
}

const v1::FileEntry* FindFile(const v1::Manifest& manifest, absl::string_view path) {
  const auto& files = manifest.files();
  auto it =
      std::lower_bound(files.begin(), files.end(), path,
                       [](const v1::FileEntry& e, absl::string_view p) { return e.path() < p; });
  if (it == files.end() || it->path() != path) return nullptr;
  return &*it;
}

}  // namespace repro
