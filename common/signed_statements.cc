#include "common/signed_statements.h"

#include "absl/strings/str_cat.h"
#include "common/sha256.h"

namespace repro {
namespace {

constexpr absl::string_view kNul("\0", 1);

}  // namespace

const std::string& GenesisHash() {
  static const std::string* genesis = new std::string(kSha256Size, '\0');
  return *genesis;
}

std::string ChainHash(absl::string_view prev, absl::string_view payload) {
  Sha256 h;
  h.Update(prev);
  h.Update(payload);
  return h.Finish();
}

std::string EncodeBigEndian64(uint64_t value) {
  std::string out(8, '\0');
  for (int i = 7; i >= 0; --i) {
    out[i] = static_cast<char>(value & 0xff);
    value >>= 8;
  }
  return out;
}

uint64_t DecodeBigEndian64(absl::string_view bytes) {
  uint64_t value = 0;
  for (int i = 0; i < 8; ++i) value = (value << 8) | static_cast<uint8_t>(bytes[i]);
  return value;
}

std::string HeadSigningBytes(absl::string_view node, absl::string_view job, uint64_t seq,
                             absl::string_view hash) {
  return absl::StrCat(absl::string_view("repro.head.v1\0", 14), node, kNul, job, kNul,
                      EncodeBigEndian64(seq), hash);
}

std::string TreeHeadSigningBytes(absl::string_view node, uint64_t size, absl::string_view root,
                                 int64_t time_unix_nanos) {
  return absl::StrCat(absl::string_view("repro.treehead.v1\0", 18), node, kNul,
                      EncodeBigEndian64(size), root,
                      EncodeBigEndian64(static_cast<uint64_t>(time_unix_nanos)));
}

std::string KeyRotationSigningBytes(absl::string_view node, absl::string_view old_public_key,
                                    absl::string_view new_public_key) {
  return absl::StrCat(absl::string_view("repro.keyrotation.v1\0", 21), node, kNul,
                      old_public_key, new_public_key);
}

std::set<std::string> KeysRotatedTo(absl::string_view node, std::set<std::string> keys,
                                    const std::vector<v1::KeyRotation>& rotations) {
  for (bool grew = true; grew;) {
    grew = false;
    for (const v1::KeyRotation& r : rotations) {
      if (r.node() == node && keys.count(r.old_public_key()) &&
          !keys.count(r.new_public_key()) &&
          VerifyEd25519(r.old_public_key(),
                        KeyRotationSigningBytes(node, r.old_public_key(), r.new_public_key()),
                        r.signature())) {
        keys.insert(r.new_public_key());
        grew = true;
      }
    }
  }
  return keys;
}

}  // namespace repro
