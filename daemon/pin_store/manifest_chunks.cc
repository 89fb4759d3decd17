#include "daemon/pin_store/manifest_chunks.h"

#include "absl/strings/str_cat.h"

namespace repro {

std::vector<std::string> SplitManifest(const v1::Manifest& manifest, size_t max_chunk_bytes) {
  std::vector<std::string> chunks;
  v1::Manifest chunk;
  size_t chunk_bytes = 0;
  for (const v1::FileEntry& file : manifest.files()) {
    size_t bytes = file.ByteSizeLong() + 8;  // + tag and length prefix, roughly
    if (chunk.files_size() > 0 && chunk_bytes + bytes > max_chunk_bytes) {
      chunks.push_back(chunk.SerializeAsString());
      chunk.Clear();
      chunk_bytes = 0;
    }
    *chunk.add_files() = file;
    chunk_bytes += bytes;
  }
  if (chunk.files_size() > 0 || chunks.empty()) chunks.push_back(chunk.SerializeAsString());
  return chunks;
}

absl::StatusOr<v1::Manifest> JoinManifest(const std::vector<std::string>& chunks) {
  v1::Manifest manifest;
  for (size_t i = 0; i < chunks.size(); ++i) {
    v1::Manifest chunk;
    if (!chunk.ParseFromString(chunks[i])) {
      return absl::DataLossError(absl::StrCat("manifest chunk ", i, " is corrupt"));
    }
    for (v1::FileEntry& file : *chunk.mutable_files()) {
      *manifest.add_files() = std::move(file);
    }
  }
  return manifest;
}

}  // namespace repro
