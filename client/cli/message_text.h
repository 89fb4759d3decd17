// Human-readable text for the replies of reprod, as reproctl prints them with --output text
// (the default). Key/value blocks for one object, aligned tables for lists; hex digests in full in
// blocks ("show") and cut to 12 characters in lists; sizes binary-prefixed; times UTC RFC 3339.
//
//   std::cout << FormatPin(response.pin());
//   job      train-42
//   seed     1234 (derived)
//   created  2025-01-08T10:00:00Z on node-a
//
//   DATASET   VERSION  DIGEST                                                            PATH
//   user_ctr  v1       9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08  /ml/u/v1
//
// Every function returns whole lines ending in '\n' and copes with any field being unset.
#ifndef REPRO_CLIENT_CLI_MESSAGE_TEXT_H_
#define REPRO_CLIENT_CLI_MESSAGE_TEXT_H_

#include <string>

#include "absl/strings/string_view.h"
#include "repro/v1/journal.pb.h"
#include "repro/v1/repro.pb.h"

namespace repro::cli {

// `version add`: status (created / already registered), digest, size, hashing statistics.
std::string FormatRegisterResult(const v1::RegisterResult& result);

// `version show`: one version's summary.
std::string FormatVersion(const v1::VersionInfo& version);
// `version show --files`: a table of the manifest (full SHA-256, size, path).
std::string FormatManifest(const v1::Manifest& manifest);
// `version list`: a table, or "no versions registered".
std::string FormatVersionList(const v1::ListVersionsResponse& response);

// `pin show`: the pin's block and its versions table.
std::string FormatPin(const v1::Pin& pin);
// `pin`: like FormatPin, with whether the pin was created or already existed.
std::string FormatPinResponse(const v1::PinResponse& response);
// `pin list`: a table, or "no pins".
std::string FormatPinList(const v1::ListPinsResponse& response);

// `admit`: "admitted JOB" or "refused JOB" (the reason goes to stderr, see AdmitRefusal).
std::string FormatAdmit(absl::string_view job, const v1::AdmitResponse& response);
// The one-line reason for a refusal, without "reproctl: ".
std::string AdmitRefusal(absl::string_view job, const v1::AdmitResponse& response);

// `record`: "recorded N facts for JOB at seq S".
std::string FormatRecord(absl::string_view job, int facts, const v1::RecordResponse& response);

// True when every node's chain and signature check out and no data drifted.
bool VerifyPassed(const v1::VerifyJournalResponse& response);
// `verify`: the verdict, a table of nodes and, with --rehash, a table of drift.
std::string FormatVerify(absl::string_view job, const v1::VerifyJournalResponse& response);

// `node`: the node's identity, mode, key, counts and host facts.
std::string FormatNodeInfo(const v1::NodeInfo& node);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_MESSAGE_TEXT_H_
