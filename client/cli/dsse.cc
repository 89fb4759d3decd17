#include "client/cli/dsse.h"

#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "common/ed25519_verify.h"
#include "common/sha256.h"
#include "nlohmann/json.hpp"

namespace repro::cli {

std::string PreAuthEncoding(absl::string_view payload_type, absl::string_view payload) {
  return absl::StrCat("DSSEv1 ", payload_type.size(), " ", payload_type, " ", payload.size(), " ",
                      payload);
}

std::string EnvelopeJson(const DsseEnvelope& envelope) {
  nlohmann::ordered_json signatures = nlohmann::ordered_json::array();
  for (const DsseSignature& s : envelope.signatures) {
    signatures.push_back({{"keyid", s.keyid}, {"sig", absl::Base64Escape(s.sig)}});
  }
  nlohmann::ordered_json out = {{"payloadType", envelope.payload_type},
                                {"payload", absl::Base64Escape(envelope.payload)},
                                {"signatures", signatures}};
  return out.dump();
}

namespace {

absl::StatusOr<std::string> StringMember(const nlohmann::json& object, const char* name) {
  auto it = object.find(name);
  if (it == object.end() || !it->is_string()) {
    return absl::InvalidArgumentError(
        absl::StrCat("the DSSE envelope has no string member \"", name, "\""));
  }
  return it->get<std::string>();
}

absl::StatusOr<std::string> Base64Member(const nlohmann::json& object, const char* name) {
  absl::StatusOr<std::string> text = StringMember(object, name);
  if (!text.ok()) return text.status();
  std::string raw;
  if (!absl::Base64Unescape(*text, &raw)) {
    return absl::InvalidArgumentError(
        absl::StrCat("the DSSE envelope's \"", name, "\" is not base64"));
  }
  return raw;
}

}  // namespace

absl::StatusOr<DsseEnvelope> ParseEnvelope(absl::string_view text) {
  nlohmann::json doc = nlohmann::json::parse(text.begin(), text.end(), nullptr,
                                             /*allow_exceptions=*/false);
  if (doc.is_discarded() || !doc.is_object()) {
    return absl::InvalidArgumentError("not a DSSE envelope: the file is not one JSON object");
  }
  DsseEnvelope envelope;
  absl::StatusOr<std::string> type = StringMember(doc, "payloadType");
  if (!type.ok()) return type.status();
  envelope.payload_type = *std::move(type);
  absl::StatusOr<std::string> payload = Base64Member(doc, "payload");
  if (!payload.ok()) return payload.status();
  envelope.payload = *std::move(payload);
  auto signatures = doc.find("signatures");
  if (signatures == doc.end() || !signatures->is_array()) {
    return absl::InvalidArgumentError("the DSSE envelope has no \"signatures\" list");
  }
  for (const nlohmann::json& s : *signatures) {
    if (!s.is_object()) return absl::InvalidArgumentError("a DSSE signature is not an object");
    DsseSignature signature;
    auto keyid = s.find("keyid");
    if (keyid != s.end() && keyid->is_string()) signature.keyid = keyid->get<std::string>();
    absl::StatusOr<std::string> sig = Base64Member(s, "sig");
    if (!sig.ok()) return sig.status();
    signature.sig = *std::move(sig);
    envelope.signatures.push_back(std::move(signature));
  }
  return envelope;
}

absl::Status VerifyEnvelope(const DsseEnvelope& envelope,
                            const std::vector<std::string>& trusted_keys) {
  if (envelope.signatures.empty()) return absl::DataLossError("the DSSE envelope is not signed");
  const std::string pae = PreAuthEncoding(envelope.payload_type, envelope.payload);
  for (const DsseSignature& s : envelope.signatures) {
    for (const std::string& key : trusted_keys) {
      if (VerifyEd25519(key, pae, s.sig)) return absl::OkStatus();
    }
  }
  return absl::DataLossError(absl::StrCat(
      "no signature of the DSSE envelope verifies with a trusted key (",
      envelope.signatures.size(), " signature(s), keyid ", envelope.signatures[0].keyid, ")"));
}

}  // namespace repro::cli
