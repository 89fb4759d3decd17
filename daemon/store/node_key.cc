#include "daemon/store/node_key.h"

#include <fcntl.h>
#include <unistd.h>

#include <cerrno>
#include <cstdio>
#include <cstdlib>

#include <openssl/evp.h>
#include <openssl/pem.h>

#include "absl/strings/str_cat.h"
#include "common/posix_error.h"

namespace repro {
namespace {

absl::StatusOr<std::string> RawPublicKey(EVP_PKEY* key) {
  std::string raw(kEd25519PublicKeySize, '\0');
  size_t len = raw.size();
  if (EVP_PKEY_get_raw_public_key(key, reinterpret_cast<unsigned char*>(raw.data()), &len) != 1 ||
      len != kEd25519PublicKeySize) {
    return absl::InternalError("cannot read the Ed25519 public key");
  }
  return raw;
}

absl::StatusOr<EVP_PKEY*> ReadKey(const std::string& path) {
  FILE* f = fopen(path.c_str(), "re");
  if (f == nullptr) return PosixError(errno, absl::StrCat("open node key ", path));
  EVP_PKEY* key = PEM_read_PrivateKey(f, nullptr, nullptr, nullptr);
  fclose(f);
  if (key == nullptr || EVP_PKEY_get_id(key) != EVP_PKEY_ED25519) {
    EVP_PKEY_free(key);
    return absl::DataLossError(absl::StrCat(
        "node key ", path, " is not an Ed25519 PEM private key; restore it from a backup, or "
        "move it away to let reprod create a new one (old heads then no longer verify)"));
  }
  return key;
}

// fsync of the directory holding `path`, so a rename into it is durable. False with errno set.
bool SyncParentDirectory(const std::string& path) {
  std::string::size_type slash = path.rfind('/');
  std::string dir = slash == std::string::npos ? "." : slash == 0 ? "/" : path.substr(0, slash);
  int fd = open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);
  if (fd < 0) return false;
  bool ok = fsync(fd) == 0;
  int err = errno;
  close(fd);
  errno = err;
  return ok;
}

absl::StatusOr<EVP_PKEY*> CreateKey(const std::string& path) {
  EVP_PKEY* key = EVP_PKEY_Q_keygen(nullptr, nullptr, "ED25519");
  if (key == nullptr) return absl::InternalError("cannot generate an Ed25519 key");
  std::string tmp = absl::StrCat(path, ".tmp");
  int fd = open(tmp.c_str(), O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
  if (fd < 0) {
    EVP_PKEY_free(key);
    return PosixError(errno, absl::StrCat("create node key ", tmp));
  }
  FILE* f = fdopen(fd, "w");
  bool ok = f != nullptr &&
            PEM_write_PrivateKey(f, key, nullptr, nullptr, 0, nullptr, nullptr) == 1 &&
            fflush(f) == 0 && fsync(fd) == 0;
  int err = errno;
  if (f != nullptr) fclose(f); else close(fd);
  if (!ok || rename(tmp.c_str(), path.c_str()) != 0 || !SyncParentDirectory(path)) {
    EVP_PKEY_free(key);
    return PosixError(ok ? errno : err, absl::StrCat("write node key ", path));
  }
  return key;
}

}  // namespace

NodeKey::NodeKey(EVP_PKEY* key, std::string public_key)
    : key_(key), public_key_(std::move(public_key)) {}

NodeKey::~NodeKey() { EVP_PKEY_free(key_); }

absl::StatusOr<std::unique_ptr<NodeKey>> NodeKey::LoadOrCreate(const std::string& path) {
  if (access(path.c_str(), F_OK) == 0) return Load(path);
  return FromPkey(CreateKey(path));
}

absl::StatusOr<std::unique_ptr<NodeKey>> NodeKey::Load(const std::string& path) {
  return FromPkey(ReadKey(path));
}

absl::StatusOr<std::unique_ptr<NodeKey>> NodeKey::FromPkey(absl::StatusOr<EVP_PKEY*> key) {
  if (!key.ok()) return key.status();
  absl::StatusOr<std::string> raw = RawPublicKey(*key);
  if (!raw.ok()) {
    EVP_PKEY_free(*key);
    return raw.status();
  }
  return std::unique_ptr<NodeKey>(new NodeKey(*key, *std::move(raw)));
}

std::string NodeKey::Sign(absl::string_view message) const {
  std::string signature(kEd25519SignatureSize, '\0');
  size_t len = signature.size();
  EVP_MD_CTX* ctx = EVP_MD_CTX_new();
  bool ok = ctx != nullptr && EVP_DigestSignInit(ctx, nullptr, nullptr, nullptr, key_) == 1 &&
            EVP_DigestSign(ctx, reinterpret_cast<unsigned char*>(signature.data()), &len,
                           reinterpret_cast<const unsigned char*>(message.data()),
                           message.size()) == 1;
  EVP_MD_CTX_free(ctx);
  if (!ok) abort();  // Signing with a loaded key cannot fail short of memory exhaustion.
  return signature;
}

bool NodeKey::Verify(absl::string_view public_key, absl::string_view message,
                     absl::string_view signature) {
  return VerifyEd25519(public_key, message, signature);
}

}  // namespace repro
