// Text for people from `reproctl diff`: one block per group that differs, one line per
// difference, and the files that differ between two data versions under their dataset.
//
//   job-1 and job-2 differ (- only in job-1, + only in job-2, ~ job-1 -> job-2)
//
//   data versions
//     ~ users: v1 3f2a9c1d2e3f -> v2 9f86d081884c
//         ~ part-1.csv: 0d4c2a1f9b8e -> 77a1e0c3b2d4
//   custom facts
//     + lr: 0.02
//
// SHA-256 digests are cut to 12 hex characters (--output json has them whole).
#ifndef REPRO_CLIENT_CLI_DIFF_TEXT_H_
#define REPRO_CLIENT_CLI_DIFF_TEXT_H_

#include <string>

#include "absl/strings/string_view.h"
#include "repro/v1/provenance.pb.h"

namespace repro::cli {

// The whole report, lines ending in '\n'.
std::string FormatJobDiff(const v1::JobDiff& diff);

// `text` with every 64-character lower-case hex word cut to its first 12 characters.
std::string ShortenDigests(absl::string_view text);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_DIFF_TEXT_H_
