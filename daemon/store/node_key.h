// NodeKey: the node's Ed25519 identity, which signs its journal heads.
//
//   ASSIGN_OR_RETURN(std::unique_ptr<NodeKey> key, NodeKey::LoadOrCreate(dir + "/node_key.pem"));
//   std::string sig = key->Sign(bytes);
//   bool ok = NodeKey::Verify(key->public_key(), bytes, sig);
#ifndef REPRO_DAEMON_STORE_NODE_KEY_H_
#define REPRO_DAEMON_STORE_NODE_KEY_H_

#include <memory>
#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "common/ed25519_verify.h"
#include "common/signed_statements.h"

typedef struct evp_pkey_st EVP_PKEY;

namespace repro {

// Thread-safe after construction (Sign may run on many threads).
class NodeKey {
 public:
  // Loads the PKCS#8 PEM private key at `path`, or creates one there (mode 0600, written to a
  // temporary file and renamed, so a crash never leaves half a key). DATA_LOSS when the file
  // exists but is not an Ed25519 key.
  // After creating it, the directory is fsync'ed too, so the new name survives power loss.
  static absl::StatusOr<std::unique_ptr<NodeKey>> LoadOrCreate(const std::string& path);
  // Loads the key at `path`, which must exist (e.g. a read-only mounted Secret): NOT_FOUND when
  // it does not, DATA_LOSS when it is not an Ed25519 PEM private key.
  static absl::StatusOr<std::unique_ptr<NodeKey>> Load(const std::string& path);
  ~NodeKey();
  NodeKey(const NodeKey&) = delete;
  NodeKey& operator=(const NodeKey&) = delete;

  // 64-byte Ed25519 signature of `message`.
  std::string Sign(absl::string_view message) const;
  // Raw 32-byte public key.
  const std::string& public_key() const { return public_key_; }

  // True when `signature` is a valid Ed25519 signature of `message` by `public_key` (raw bytes).
  static bool Verify(absl::string_view public_key, absl::string_view message,
                     absl::string_view signature);

 private:
  NodeKey(EVP_PKEY* key, std::string public_key);
  // Takes ownership of the key.
  static absl::StatusOr<std::unique_ptr<NodeKey>> FromPkey(absl::StatusOr<EVP_PKEY*> key);

  EVP_PKEY* const key_;
  const std::string public_key_;
};

}  // namespace repro

#endif  // REPRO_DAEMON_STORE_NODE_KEY_H_
