// Where cluster mode keeps its records in etcd, and how they are encoded. Everything lives under
// the prefix /repro/ so one etcd cluster can serve other tenants, and operators can look with
//
//   ETCDCTL_API=3 etcdctl --endpoints=h1:2379 get --prefix /repro/ --keys-only
//
// Keys (names are validated by common/names.h and never contain '/'):
//   /repro/versions/<dataset>/<version>               VersionInfo (protobuf JSON)
//   /repro/manifests/<dataset>/<version>/<upload>/<i>-of-<n>
//                                                     manifest chunk i of n (binary Manifest,
//                                                     manifest_chunks.h); <upload> is
//                                                     <registered_on>-<registered_at in ns>,
//                                                     i and n are 8 digits
//   /repro/pins/<job>                                 Pin (protobuf JSON)
//   /repro/heads/<job>/<node>                         JournalHead of <node>'s part of <job>
//                                                     (protobuf JSON, signed by the node)
//   /repro/nodes/<node>                               NodeInfo subset: address, public key
//                                                     (protobuf JSON), under the node's lease
//   /repro/treeheads/<node>                           SignedTreeHead of <node>'s head log (binary)
//   /repro/forks/<node>                               TreeHeadFork: evidence that <node> showed
//                                                     two histories (protobuf JSON)
//
// Versions and pins are created once with create-if-absent transactions and never change; a
// node's head moves forward only; a node key disappears when its reprod stops (lease).
//
//   std::string key = etcd_keys::Pin("train-42");           // "/repro/pins/train-42"
//   ASSIGN_OR_RETURN(v1::Pin pin, etcd_keys::Decode<v1::Pin>(kv.value(), key));
#ifndef REPRO_DAEMON_ETCD_ETCD_KEYS_H_
#define REPRO_DAEMON_ETCD_ETCD_KEYS_H_

#include <cstdint>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "google/protobuf/message.h"
#include "repro/v1/journal.pb.h"

namespace repro::etcd_keys {

inline constexpr absl::string_view kRoot = "/repro/";
inline constexpr absl::string_view kVersions = "/repro/versions/";
inline constexpr absl::string_view kManifests = "/repro/manifests/";
inline constexpr absl::string_view kPins = "/repro/pins/";
inline constexpr absl::string_view kHeads = "/repro/heads/";
inline constexpr absl::string_view kNodes = "/repro/nodes/";
// Each node's latest signed tree head (its head log), published for the other nodes to check.
inline constexpr absl::string_view kTreeHeads = "/repro/treeheads/";
// The evidence of a node's fork (TreeHeadFork, protobuf JSON), kept until an operator deletes it.
inline constexpr absl::string_view kForks = "/repro/forks/";

std::string Version(absl::string_view dataset, absl::string_view version);
// Every version of `dataset`; every version of every dataset when `dataset` is empty.
std::string VersionsOf(absl::string_view dataset);
// The chunks of one upload of `info`'s manifest: a writer racing for the same name writes its
// own upload, so chunks of two uploads never mix.
std::string ManifestUpload(const v1::VersionInfo& info);
std::string ManifestChunk(absl::string_view upload, uint32_t index, uint32_t count);
// Parses the last part of a ManifestChunk key; false when it is not one.
bool ParseManifestChunk(absl::string_view key, uint32_t* index, uint32_t* count);
std::string Pin(absl::string_view job);
std::string Head(absl::string_view job, absl::string_view node);
std::string HeadsOf(absl::string_view job);
std::string Node(absl::string_view node);
std::string TreeHead(absl::string_view node);
std::string Fork(absl::string_view node);

// The last '/'-separated part of `key` ("/repro/heads/j/node-a" -> "node-a").
absl::string_view LastPart(absl::string_view key);

// etcd's range_end for "every key starting with `prefix`".
std::string PrefixEnd(absl::string_view prefix);

// Small records are protobuf JSON, so `etcdctl get` shows them readably.
std::string Encode(const google::protobuf::Message& record);
// DATA_LOSS naming `key` when `value` is not a valid `*record`. Unknown fields are ignored, so
// newer nodes may add fields.
absl::Status DecodeInto(absl::string_view value, absl::string_view key,
                        google::protobuf::Message* record);
template <typename T>
absl::StatusOr<T> Decode(absl::string_view value, absl::string_view key) {
  T record;
  absl::Status status = DecodeInto(value, key, &record);
  if (!status.ok()) return status;
  return record;
}

}  // namespace repro::etcd_keys

#endif  // REPRO_DAEMON_ETCD_ETCD_KEYS_H_
