// What differs between two jobs: `reproctl diff JOB_A JOB_B` compares their provenance
// (provenance.h) group by group and names every difference.
//
//   v1::JobDiff diff = DiffJobs(provenance_a, provenance_b);
//   RETURN_IF_ERROR(AddDataDetails(provenance_a, provenance_b, fetch_manifest, &diff));
//   return diff.same() ? kExitOk : kExitError;  // 1: the runs differ
//
// Each group reduces a provenance to KEY -> VALUE text and compares those maps; a job spread
// over several nodes is compared as a whole (values seen on several nodes are merged). What is
// compared (and what deliberately is not):
//   data             dataset -> "VERSION DIGEST" of the pin (not paths: copies keep digests)
//   files            "DATASET/PATH" -> SHA-256 of each file opened (not the version it was
//                    opened in, which `data` covers); violations: "PATH (VERDICT)" -> refused or
//                    allowed
//   seeds            "seed" -> the job seed; "rank N" -> its rank seed (not whether the seed was
//                    derived: the same number gives the same random numbers)
//   programs         executable path -> SHA-256
//   libraries        soname (else file name) -> "VERSION SHA256" (not the path it loaded from)
//   python_packages  normalized name (PEP 503, NormalizePackageName in common/names.h) ->
//                    version (not the install location)
//   gpu              "gpus" -> "Nx MODEL" over every node; "driver", "cuda" (not UUIDs, PCI bus
//                    ids or memory sizes, which differ between boards of one model)
//   host             "nodes" -> how many; "cpu_model", "cpu_count", "kernel", "os", "glibc"
//                    (not hostnames, node names, memory sizes, times, pids)
//   facts            custom fact key -> its last value
// Values seen differently on several nodes read "X (2 nodes), Y (1 node)".
#ifndef REPRO_CLIENT_CLI_JOB_DIFF_H_
#define REPRO_CLIENT_CLI_JOB_DIFF_H_

#include <cstddef>
#include <string>
#include <vector>

#include "absl/functional/function_ref.h"
#include "absl/status/status.h"
#include "absl/status/statusor.h"
#include "absl/strings/string_view.h"
#include "repro/v1/journal.pb.h"
#include "repro/v1/provenance.pb.h"

namespace repro::cli {

// Details listed under one difference; the rest are counted in more_details.
inline constexpr size_t kMaxDetails = 20;

// The groups, in the order they are compared and printed.
const std::vector<std::string>& DiffGroupNames();

// Every difference between `a` and `b`; job_a and job_b are taken from them.
v1::JobDiff DiffJobs(const v1::Provenance& a, const v1::Provenance& b);

// The files that differ between two manifests of one dataset, by path: "changed" content,
// "removed" (only in `a`), "added" (only in `b`); values are SHA-256 hex.
std::vector<v1::Difference> DiffManifests(const v1::Manifest& a, const v1::Manifest& b);

// Fetches the manifest of dataset@version; NOT_FOUND when it is no longer registered.
using ManifestFetcher = absl::FunctionRef<absl::StatusOr<v1::Manifest>(const std::string& dataset,
                                                                       const std::string& version)>;

// Lists, under each changed dataset of the "data" group whose two versions have different
// digests, the files that differ between them (DiffManifests, at most kMaxDetails). A version
// that `fetch` reports NOT_FOUND gets no details; other failures are returned.
absl::Status AddDataDetails(const v1::Provenance& a, const v1::Provenance& b, ManifestFetcher fetch,
                            v1::JobDiff* diff);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_JOB_DIFF_H_
