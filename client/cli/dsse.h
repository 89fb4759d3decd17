// DSSE (Dead Simple Signing Envelope, github.com/secure-systems-lab/dsse) for in-toto statements:
// the pre-authentication encoding that is signed, and the envelope's JSON.
//
//   std::string pae = PreAuthEncoding(kInTotoPayloadType, statement_json);
//   DsseEnvelope envelope{kInTotoPayloadType, statement_json, {{HexDigest(key), key.Sign(pae)}}};
//   std::string text = EnvelopeJson(envelope);
//   ASSIGN_OR_RETURN(DsseEnvelope parsed, ParseEnvelope(text));
#ifndef REPRO_CLIENT_CLI_DSSE_H_
#define REPRO_CLIENT_CLI_DSSE_H_

#include <string>
#include <vector>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace repro::cli {

inline constexpr char kInTotoPayloadType[] = "application/vnd.in-toto+json";

struct DsseSignature {
  std::string keyid;  // repro: lowercase hex of the signer's raw Ed25519 public key
  std::string sig;    // raw signature bytes
};

struct DsseEnvelope {
  std::string payload_type;
  std::string payload;  // raw bytes (base64 only inside the JSON)
  std::vector<DsseSignature> signatures;
};

// "DSSEv1" SP len(type) SP type SP len(body) SP body, lengths in ASCII decimal.
std::string PreAuthEncoding(absl::string_view payload_type, absl::string_view payload);

// {"payloadType":...,"payload":base64,"signatures":[{"keyid":...,"sig":base64}]}, one line.
std::string EnvelopeJson(const DsseEnvelope& envelope);

// Parses an envelope. INVALID_ARGUMENT when `text` is not JSON, a member is missing or not a
// string, or payload / sig is not standard base64.
absl::StatusOr<DsseEnvelope> ParseEnvelope(absl::string_view text);

// OK when some signature is a valid Ed25519 signature of the envelope's PAE by one of
// `trusted_keys` (raw 32-byte keys); keyids are hints and are not trusted. DATA_LOSS when
// there is no such signature.
absl::Status VerifyEnvelope(const DsseEnvelope& envelope,
                            const std::vector<std::string>& trusted_keys);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_DSSE_H_
