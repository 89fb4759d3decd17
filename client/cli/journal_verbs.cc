// record, journal, verify (the journal verbs) and node.
#include "client/cli/verbs.h"

#include <memory>

#include "client/cli/entry_text.h"
#include "client/cli/interrupt.h"
#include "client/cli/message_text.h"
#include "client/cli/requests.h"
#include "common/names.h"

namespace repro::cli {

absl::StatusOr<ExitCode> RunRecord(Invocation& inv) {
  const std::vector<std::string>& ops = inv.operands();
  v1::RecordRequest request;
  request.set_job(ops[0]);
  RETURN_IF_ERROR(ValidateJobId(request.job()));
  ASSIGN_OR_RETURN(std::vector<v1::Fact> facts, ParseFacts(absl::MakeConstSpan(ops).subspan(1)));
  for (v1::Fact& fact : facts) *request.add_facts() = std::move(fact);
  RETURN_IF_ERROR(inv.CallAndPrint(kRecord, request,
                                   [&](const v1::RecordResponse& r) {
                                     return FormatRecord(request.job(), request.facts_size(), r);
                                   })
                      .status());
  return kExitOk;
}

absl::StatusOr<ExitCode> RunJournal(Invocation& inv) {
  v1::ReplayRequest request;
  request.set_job(inv.operands()[0]);
  RETURN_IF_ERROR(ValidateJobId(request.job()));
  if (std::optional<std::string> since = inv.args().Value("since")) {
    absl::StatusOr<uint64_t> seq = ParseUint64Flag("since", *since);
    if (!seq.ok()) return inv.UsageError(seq.status().message());
    request.set_since_seq(*seq);
  }
  bool follow = inv.args().Bool("follow");
  request.set_follow(follow);
  std::unique_ptr<InterruptGuard> interrupt;
  if (follow) {
    ASSIGN_OR_RETURN(interrupt, InterruptGuard::Install());
  }

  RETURN_IF_ERROR(inv.client().Stream(
      kReplay, request,
      [&](const v1::ReplayResponse& response) -> absl::Status {
        RETURN_IF_ERROR(inv.Print(response, [](const v1::ReplayResponse& r) {
          return FormatJournalLine(r.entry()) + "\n";
        }));
        if (follow) inv.output().Flush();
        return absl::OkStatus();
      },
      follow ? CallLength::kLong : CallLength::kShort, interrupt.get()));
  return kExitOk;
}

absl::StatusOr<ExitCode> RunVerify(Invocation& inv) {
  v1::VerifyJournalRequest request;
  request.set_job(inv.operands()[0]);
  RETURN_IF_ERROR(ValidateJobId(request.job()));
  request.set_rehash(inv.args().Bool("rehash"));
  // Re-hashing reads the pinned data again, which takes as long as `version add` did.
  ASSIGN_OR_RETURN(
      v1::VerifyJournalResponse response,
      inv.CallAndPrint(
          kVerifyJournal, request,
          [&](const v1::VerifyJournalResponse& r) { return FormatVerify(request.job(), r); },
          request.rehash() ? CallLength::kLong : CallLength::kShort));
  return VerifyPassed(response) ? kExitOk : kExitTampered;
}

absl::StatusOr<ExitCode> RunNode(Invocation& inv) {
  RETURN_IF_ERROR(
      inv.CallAndPrint(kGetNodeInfo, v1::GetNodeInfoRequest(), FormatNodeInfo).status());
  return kExitOk;
}

}  // namespace repro::cli
