// Stores a manifest as a sequence of bounded chunks, because a version may hold millions of
// files and a single value that large is slow in RocksDB and impossible in etcd (1.5 MiB limit).
//
// Chunk i is a serialized Manifest holding consecutive files; concatenating the chunks' files in
// order gives the manifest back. An empty manifest is one empty chunk.
#ifndef REPRO_DAEMON_PIN_STORE_MANIFEST_CHUNKS_H_
#define REPRO_DAEMON_PIN_STORE_MANIFEST_CHUNKS_H_

#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "repro/v1/journal.pb.h"

namespace repro {

inline constexpr size_t kDefaultManifestChunkBytes = 512 * 1024;

// Serialized chunks of at most ~max_chunk_bytes each (a single huge entry gets its own chunk).
std::vector<std::string> SplitManifest(const v1::Manifest& manifest,
                                       size_t max_chunk_bytes = kDefaultManifestChunkBytes);

// Reassembles chunks. DATA_LOSS naming the chunk when one does not parse.
absl::StatusOr<v1::Manifest> JoinManifest(const std::vector<std::string>& chunks);

}  // namespace repro

#endif  // REPRO_DAEMON_PIN_STORE_MANIFEST_CHUNKS_H_
