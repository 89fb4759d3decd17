// Building requests from command-line words: KEY=VALUE facts, seeds and sequence numbers,
// DATASET@VERSION pins, absolute paths. Shared by the verbs that take them (`pin` and `run` both
// build their PinRequest with BuildPinRequest).
//
//   PinSpec spec{.job = "train-42", .refs = {"user_ctr@v1"}, .seed = "7"};
//   ASSIGN_OR_RETURN(v1::PinRequest request, BuildPinRequest(spec));
#ifndef REPRO_CLIENT_CLI_REQUESTS_H_
#define REPRO_CLIENT_CLI_REQUESTS_H_

#include <cstdint>
#include <optional>
#include <string>
#include <vector>

#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "absl/types/span.h"
#include "repro/v1/journal.pb.h"
#include "repro/v1/repro.pb.h"

namespace repro::cli {

// Splits "KEY=VALUE" on the first '=' ("lr=a=b" -> "lr", "a=b") and validates the fact
// (names.h). INVALID_ARGUMENT without '=' or for a bad key or value.
absl::StatusOr<v1::Fact> ParseFact(absl::string_view arg);
// ParseFact for each word; INVALID_ARGUMENT as well when a key repeats.
absl::StatusOr<std::vector<v1::Fact>> ParseFacts(absl::Span<const std::string> args);

// A decimal unsigned 64-bit number given to --`flag` (seed, seq). INVALID_ARGUMENT otherwise.
absl::StatusOr<uint64_t> ParseUint64Flag(absl::string_view flag, absl::string_view text);

// What a pin is made of on the command line.
struct PinSpec {
  std::string job;
  std::vector<std::string> refs;    // DATASET@VERSION words
  std::optional<std::string> seed;  // --seed
  std::optional<std::string> like;  // --like OTHER_JOB
  std::optional<std::string> owner;  // --owner (admins: pin on behalf of another identity)
};

// Validates `spec` and makes the PinRequest. INVALID_ARGUMENT for a bad job id or reference, a
// dataset given twice, no versions and no --like, or --like mixed with versions or --seed.
absl::StatusOr<v1::PinRequest> BuildPinRequest(const PinSpec& spec);

// `path` made absolute against `cwd` (itself absolute), with "." parts and repeated or trailing
// slashes removed. ".." is kept: only reprod, which resolves symlinks, can fold it correctly.
// INVALID_ARGUMENT for an empty path.
absl::StatusOr<std::string> AbsolutePath(absl::string_view path, absl::string_view cwd);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_REQUESTS_H_
