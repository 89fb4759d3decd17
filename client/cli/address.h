// Where reprod listens, as given to `reproctl --addr` (or $REPRO_ADDR):
//
//   unix:/run/reprod/reprod.sock     a Unix socket (also unix:///abs/path)
//   10.0.0.7:7443, [::1]:7443        TCP; TLS when --tls_ca (and --tls_cert/--tls_key for mTLS)
//
//   ASSIGN_OR_RETURN(Address addr, ParseAddress("unix:/tmp/r.sock"));
//   grpc::CreateChannel(addr.target, credentials);
#ifndef REPRO_CLIENT_CLI_ADDRESS_H_
#define REPRO_CLIENT_CLI_ADDRESS_H_

#include <string>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"

namespace repro::cli {

inline constexpr absl::string_view kDefaultAddress = "unix:/run/reprod/reprod.sock";

struct Address {
  enum class Kind { kUnix, kTcp };
  Kind kind;
  std::string target;  // what grpc::CreateChannel takes
  std::string text;    // as the user wrote it, for messages
};

// Parses an address of one of the forms above. INVALID_ARGUMENT otherwise (an empty socket path,
// a missing or out-of-range port, an unknown scheme).
absl::StatusOr<Address> ParseAddress(absl::string_view text);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_ADDRESS_H_
