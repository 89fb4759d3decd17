// The canonical form of a version's manifest and its digest.
//
// A manifest lists every regular file of a version directory: its relative path, size, mtime and
// SHA-256 (see repro.v1.Manifest). The version digest identifies the content of the tree: two
// directories with the same relative paths and the same bytes have the same digest, wherever they
// live and whatever their mtimes.
//
//   repro::v1::Manifest manifest = ...;      // e.g. from TreeHasher
//   SortManifest(&manifest);
//   RETURN_IF_ERROR(ValidateManifest(manifest));
//   std::string digest = ManifestDigest(manifest);  // 32 raw bytes
//
// Canonical encoding (version 1), fed to SHA-256 as one byte stream:
//
//   digest = SHA-256( "repro.manifest.v1\0"                      (18 bytes, NUL included)
//                     || for each file, in bytewise path order:
//                          be64(len(path)) || path || be64(size) || sha256 )  (sha256: 32 bytes)
//
// where be64 is an unsigned 64-bit big-endian integer and `path` is the relative, '/'-separated
// path as stored in FileEntry.path (no normalisation: a valid manifest is already canonical).
// mtime is deliberately NOT part of the digest, so copies of a tree keep their digest. Directories
// are not listed: an empty subdirectory does not change the digest.
//
// Changing this encoding changes every digest ever recorded; a new encoding needs a new domain
// string ("repro.manifest.v2\0"), never an edit of this one.
#ifndef REPRO_DAEMON_HASHING_MANIFEST_H_
#define REPRO_DAEMON_HASHING_MANIFEST_H_

#include <string>

#include "absl/status/status.h"
#include "absl/strings/string_view.h"
#include "repro/v1/journal.pb.h"

namespace repro {

// Domain separation prefix of the version-1 manifest encoding (18 bytes, the NUL included).
inline constexpr absl::string_view kManifestDigestDomain{"repro.manifest.v1\0", 18};

// Sorts `manifest->files` by path, bytewise (unsigned), which is the canonical order.
// `manifest` must not be null.
void SortManifest(v1::Manifest* manifest);

// OK when `path` is a valid manifest path: non-empty, relative ('/' is not its first byte),
// '/'-separated, with no empty, "." or ".." component and no NUL byte. Otherwise
// INVALID_ARGUMENT naming the path.
absl::Status ValidateManifestPath(absl::string_view path);

// OK when `manifest` is canonical: every path valid (see ValidateManifestPath), paths strictly
// increasing in bytewise order (sorted and unique). Errors name the offending path:
// INVALID_ARGUMENT for a bad, unsorted or duplicate path; DATA_LOSS for a sha256 that is not
// exactly 32 bytes (a truncated or corrupt record).
absl::Status ValidateManifest(const v1::Manifest& manifest);

// The 32-byte SHA-256 of the canonical encoding above. Precondition: ValidateManifest(manifest)
// is OK (it is not checked again here; an invalid manifest gets a meaningless digest).
std::string ManifestDigest(const v1::Manifest& manifest);

// The entry for `path` in a sorted manifest (binary search), or null when the manifest has none.
// The pointer is owned by `manifest` and valid while it is not modified.
const v1::FileEntry* FindFile(const v1::Manifest& manifest, absl::string_view path);

}  // namespace repro

#endif  // REPRO_DAEMON_HASHING_MANIFEST_H_
