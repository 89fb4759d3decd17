#include "common/sha256.h"

#include <cstdlib>

#include <openssl/evp.h>

#include "absl/strings/escaping.h"

namespace repro {
namespace {

// Fetched once: EVP_get_digestbyname / EVP_MD_fetch per hasher costs a lock and a lookup.
const EVP_MD* Sha256Md() {
  static const EVP_MD* md = EVP_MD_fetch(nullptr, "SHA256", nullptr);
  if (md == nullptr) abort();  // OpenSSL without SHA-256 is not a configuration we can run on.
  return md;
}

}  // namespace

Sha256::Sha256() : ctx_(EVP_MD_CTX_new()) {
  if (ctx_ == nullptr || EVP_DigestInit_ex2(ctx_, Sha256Md(), nullptr) != 1) abort();
}

Sha256::~Sha256() { EVP_MD_CTX_free(ctx_); }

void Sha256::Update(const void* data, size_t size) { EVP_DigestUpdate(ctx_, data, size); }

std::string Sha256::Finish() {
  std::string out(kSha256Size, '\0');
  unsigned int len = 0;
  EVP_DigestFinal_ex(ctx_, reinterpret_cast<unsigned char*>(out.data()), &len);
  EVP_DigestInit_ex2(ctx_, Sha256Md(), nullptr);
  return out;
}

std::string Sha256Of(absl::string_view data) {
  Sha256 h;
  h.Update(data);
  return h.Finish();
}

std::string HexDigest(absl::string_view digest) { return absl::BytesToHexString(digest); }

}  // namespace repro
