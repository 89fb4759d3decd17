// Fuzzes manifest decoding: a stored manifest chunk or a whole serialized Manifest
// (daemon/pin_store/manifest_chunks, daemon/hashing/manifest), validated, sorted, digested,
// looked up and split into chunks again, which must join back to the same manifest.
#include <string>
#include <vector>

#include "daemon/hashing/manifest.h"
#include "daemon/pin_store/manifest_chunks.h"
#include "repro/v1/journal.pb.h"
#include "tests/fuzz/fuzz_target.h"

namespace {

using repro::fuzz::FuzzCheck;

void CheckValid(const repro::v1::Manifest& manifest, size_t chunk_bytes) {
  FuzzCheck(repro::ManifestDigest(manifest).size() == 32, "a digest that is not 32 bytes");
  for (const repro::v1::FileEntry& file : manifest.files()) {
    FuzzCheck(repro::FindFile(manifest, file.path()) == &file, "FindFile misses a listed path");
  }
  std::vector<std::string> chunks = repro::SplitManifest(manifest, chunk_bytes);
  absl::StatusOr<repro::v1::Manifest> joined = repro::JoinManifest(chunks);
  FuzzCheck(joined.ok(), "chunks of a valid manifest do not join");
  FuzzCheck(joined->SerializeAsString() == manifest.SerializeAsString(),
            "split and join change the manifest");
}

}  // namespace

REPRO_FUZZ_TARGET(manifest) {
  if (size == 0) return 0;
  // The first byte picks the chunk size; the rest is chunks separated by '\n--\n'.
  const size_t chunk_bytes = 16 + data[0] * 8;
  absl::string_view input(reinterpret_cast<const char*>(data) + 1, size - 1);
  std::vector<std::string> chunks;
  for (size_t start = 0;;) {
    size_t end = input.find("\n--\n", start);
    chunks.emplace_back(input.substr(start, end == absl::string_view::npos ? end : end - start));
    if (end == absl::string_view::npos) break;
    start = end + 4;
  }
  absl::StatusOr<repro::v1::Manifest> manifest = repro::JoinManifest(chunks);
  if (!manifest.ok()) return 0;
  if (repro::ValidateManifest(*manifest).ok()) {
    CheckValid(*manifest, chunk_bytes);
    return 0;
  }
  repro::SortManifest(&*manifest);
  if (repro::ValidateManifest(*manifest).ok()) CheckValid(*manifest, chunk_bytes);
  return 0;
}
