// Ed25519 signature checks for anyone who holds only a public key (reproctl, auditors). Signing
// stays with the node key (daemon/store/node_key.h).
//
//   if (!VerifyEd25519(public_key, message, signature)) return absl::DataLossError("forged");
#ifndef REPRO_COMMON_ED25519_VERIFY_H_
#define REPRO_COMMON_ED25519_VERIFY_H_

#include <cstddef>

#include "absl/strings/string_view.h"

namespace repro {

inline constexpr size_t kEd25519PublicKeySize = 32;
inline constexpr size_t kEd25519SignatureSize = 64;

// True when `signature` (64 raw bytes) is a valid Ed25519 signature of `message` by
// `public_key` (32 raw bytes). Thread-safe.
bool VerifyEd25519(absl::string_view public_key, absl::string_view message,
                   absl::string_view signature);

}  // namespace repro

#endif  // REPRO_COMMON_ED25519_VERIFY_H_
