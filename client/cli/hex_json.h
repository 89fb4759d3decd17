// Protobuf JSON with digests in hex: the protobuf JSON mapping (lowerCamelCase names, 64-bit
// integers as strings, enums by name, Timestamps in RFC 3339), except that every `bytes` field —
// digests, hashes, keys, signatures — is printed as a lowercase hex string, the way sha256sum and
// reproctl's text output print them (DESIGN.md "Interfaces"). The gRPC API keeps its bytes.
//
//   google::protobuf::util::JsonPrintOptions options;
//   ASSIGN_OR_RETURN(std::string json, MessageToHexJson(pin_response, options));
//   // {"pin":{"job":"j","versions":[{"digest":"9f86d0...",...}],...}}
#ifndef REPRO_CLIENT_CLI_HEX_JSON_H_
#define REPRO_CLIENT_CLI_HEX_JSON_H_

#include <string>

#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "google/protobuf/message.h"
#include "google/protobuf/util/json_util.h"

namespace repro::cli {

// `message` in the JSON mapping above. INTERNAL if the message cannot be converted (a type
// whose descriptor is not in the generated pool). Thread-safe.
absl::StatusOr<std::string> MessageToHexJson(const google::protobuf::Message& message,
                                             const google::protobuf::util::JsonPrintOptions& options);

// The inverse, for scripts' and tests' JSON: parses `json` (as MessageToHexJson prints it) into
// `message`, hex strings into bytes fields. INVALID_ARGUMENT for bad JSON or a digest that is not
// hex.
absl::Status HexJsonToMessage(const std::string& json, google::protobuf::Message* message);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_HEX_JSON_H_
