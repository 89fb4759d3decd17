#include "client/cli/address.h"

#include <cstdint>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"

namespace repro::cli {
namespace {

absl::Status Invalid(absl::string_view text, absl::string_view why) {
  return absl::InvalidArgumentError(absl::StrCat("invalid address \"", text, "\": ", why,
                                                 " (expected unix:/path/to/socket or host:port)"));
}

}  // namespace

absl::StatusOr<Address> ParseAddress(absl::string_view text) {
  absl::string_view rest = text;
  if (absl::ConsumePrefix(&rest, "unix:")) {
    // "unix:///abs" and "unix:/abs" name the same socket; gRPC takes both spellings.
    absl::string_view path = rest;
    absl::ConsumePrefix(&path, "//");
    if (path.empty() || path == "/") return Invalid(text, "no socket path");
    return Address{Address::Kind::kUnix, std::string(text), std::string(text)};
  }
  if (absl::StrContains(rest, "://") || absl::StartsWith(rest, "unix-abstract:")) {
    return Invalid(text, "unsupported scheme");
  }

  absl::string_view host;
  absl::string_view port;
  if (absl::StartsWith(rest, "[")) {  // [v6]:port
    size_t close = rest.find(']');
    if (close == absl::string_view::npos || close + 1 >= rest.size() || rest[close + 1] != ':') {
      return Invalid(text, "expected [ipv6]:port");
    }
    host = rest.substr(1, close - 1);
    port = rest.substr(close + 2);
  } else {
    size_t colon = rest.rfind(':');
    if (colon == absl::string_view::npos) return Invalid(text, "no port");
    host = rest.substr(0, colon);
    port = rest.substr(colon + 1);
    if (absl::StrContains(host, ':')) return Invalid(text, "write IPv6 hosts as [addr]:port");
  }
  if (host.empty()) return Invalid(text, "no host");
  for (char c : host) {
    if (absl::ascii_isspace(c) || c == '/') return Invalid(text, "bad host");
  }
  uint32_t port_number = 0;
  if (port.empty() || !absl::SimpleAtoi(port, &port_number) || port_number == 0 ||
      port_number > 65535 || !absl::ascii_isdigit(port[0])) {
    return Invalid(text, "port must be a number from 1 to 65535");
  }
  return Address{Address::Kind::kTcp, std::string(text), std::string(text)};
}

}  // namespace repro::cli
