// The bytes repro hashes and signs, shared by reprod (which signs) and reproctl (which checks
// without trusting reprod). Every statement starts with a domain tag ending in a NUL byte, so a
// signature over one kind can never pass for another.
//
//   hash_n          = ChainHash(hash_{n-1}, payload_n), hash_0 = GenesisHash()
//   journal head    : HeadSigningBytes(node, job, seq, hash)        "repro.head.v1\0..."
//   head log leaf   : the same bytes (each head a node signs is one leaf of its head log)
//   tree head       : TreeHeadSigningBytes(node, size, root, time)  "repro.treehead.v1\0..."
//   key rotation    : KeyRotationSigningBytes(node, old, new)       "repro.keyrotation.v1\0..."
//
//   bool ok = VerifyEd25519(public_key, HeadSigningBytes(node, job, seq, hash), signature);
#ifndef REPRO_COMMON_SIGNED_STATEMENTS_H_
#define REPRO_COMMON_SIGNED_STATEMENTS_H_

#include <cstdint>
#include <set>
#include <string>
#include <vector>

#include "absl/strings/string_view.h"
#include "common/ed25519_verify.h"  // the statements below are checked with VerifyEd25519
#include "repro/v1/journal.pb.h"

namespace repro {

// 32 zero bytes: the predecessor of entry 1.
const std::string& GenesisHash();

// SHA-256(prev || payload).
std::string ChainHash(absl::string_view prev, absl::string_view payload);

std::string EncodeBigEndian64(uint64_t value);
// Requires at least 8 bytes.
uint64_t DecodeBigEndian64(absl::string_view bytes);

// "repro.head.v1\0" node "\0" job "\0" be64(seq) hash.
std::string HeadSigningBytes(absl::string_view node, absl::string_view job, uint64_t seq,
                             absl::string_view hash);

// "repro.treehead.v1\0" node "\0" be64(size) root be64(unix nanoseconds).
std::string TreeHeadSigningBytes(absl::string_view node, uint64_t size, absl::string_view root,
                                 int64_t time_unix_nanos);

// "repro.keyrotation.v1\0" node "\0" old_public_key new_public_key: signed by the old key, it
// says that heads of `node` signed by the new key are as good as those signed by the old one.
std::string KeyRotationSigningBytes(absl::string_view node, absl::string_view old_public_key,
                                    absl::string_view new_public_key);

// `keys` and every key of `node` that a chain of genuine rotation statements in `rotations` leads
// to from one of them (each statement signed by the key before it), in any order.
std::set<std::string> KeysRotatedTo(absl::string_view node, std::set<std::string> keys,
                                    const std::vector<v1::KeyRotation>& rotations);

}  // namespace repro

#endif  // REPRO_COMMON_SIGNED_STATEMENTS_H_
