// SHA-256 through OpenSSL EVP, with the digest algorithm fetched once per process.
//
//   Sha256 h;
//   h.Update(header);
//   h.Update(body);
//   std::string digest = h.Finish();  // 32 raw bytes
#ifndef REPRO_COMMON_SHA256_H_
#define REPRO_COMMON_SHA256_H_

#include <cstddef>
#include <string>

#include "absl/strings/string_view.h"

typedef struct evp_md_ctx_st EVP_MD_CTX;

namespace repro {

inline constexpr size_t kSha256Size = 32;

// Incremental SHA-256. Not thread-safe; cheap to create. Reusable after Finish().
class Sha256 {
 public:
  Sha256();
  ~Sha256();
  Sha256(const Sha256&) = delete;
  Sha256& operator=(const Sha256&) = delete;

  void Update(const void* data, size_t size);
  void Update(absl::string_view data) { Update(data.data(), data.size()); }
  // Returns the 32-byte digest and resets the hasher.
  std::string Finish();

 private:
  EVP_MD_CTX* ctx_;
};

// One-shot SHA-256 of `data` (32 raw bytes).
std::string Sha256Of(absl::string_view data);

// Hex of a digest, lower case.
std::string HexDigest(absl::string_view digest);

}  // namespace repro

#endif  // REPRO_COMMON_SHA256_H_
