// record, journal, verify (the journal verbs) and node.
#include "client/cli/verbs.h"

#include <fstream>
#include <map>
#include <memory>
#include <set>
#include <sstream>

#include "client/cli/entry_text.h"
#include "client/cli/interrupt.h"
#include "client/cli/journal_audit.h"
#include "client/cli/message_text.h"
#include "client/cli/requests.h"
#include "client/cli/provenance.h"
#include "common/names.h"
#include "common/sha256.h"
#include "google/protobuf/util/json_util.h"

namespace repro::cli {
namespace {

using ReplayedByNode = std::map<std::string, std::vector<v1::ReplayResponse>>;

// The earlier export `path` of `job` (reproctl export's JSON document).
absl::StatusOr<v1::Provenance> ReadExport(const std::string& path, const std::string& job) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read the export ", path));
  std::stringstream text;
  text << in.rdbuf();
  v1::Provenance exported;
  google::protobuf::util::JsonParseOptions options;
  options.ignore_unknown_fields = true;
  if (!google::protobuf::util::JsonStringToMessage(text.str(), &exported, options).ok() ||
      exported.format() != kProvenanceFormat) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is not a document written by `reproctl export`"));
  }
  if (exported.job() != job) {
    return absl::InvalidArgumentError(
        absl::StrCat(path, " is the export of job ", exported.job(), ", not of ", job));
  }
  return exported;
}

// --trusted_keys FILE, else the keys in the --against export, else keys pinned on first use.
absl::StatusOr<KeyTrust> ChooseKeyTrust(Invocation& inv,
                                        const std::optional<v1::Provenance>& exported) {
  if (std::optional<std::string> file = inv.args().Value("trusted_keys")) {
    return KeyTrust::FromFile(*file, absl::StrCat("in the trusted keys ", *file));
  }
  if (exported.has_value()) {
    return KeyTrust::FromExport(*exported,
                                absl::StrCat("in the export ", *inv.args().Value("against")));
  }
  const std::string& dir = inv.env().config_dir;
  return KeyTrust::PinnedOnFirstUse(dir.empty() ? "" : dir + "/known_nodes");
}

// The head log proof of the node reproctl talks to (named in *node), with a consistency proof
// from the exported tree of the same node; nullopt when it serves none (an older reprod, or a
// head signed before the log).
absl::StatusOr<std::optional<v1::HeadLogProofResponse>> FetchHeadLogProof(
    ReproClient& client, const std::string& job, const std::optional<v1::Provenance>& exported,
    std::string* local_node) {
  ASSIGN_OR_RETURN(v1::NodeInfo node, client.Call(kGetNodeInfo, v1::GetNodeInfoRequest()));
  *local_node = node.node();
  v1::HeadLogProofRequest request;
  request.set_job(job);
  if (exported.has_value()) {
    for (const v1::ProvenanceHead& head : exported->heads()) {
      if (head.node() == node.node()) request.set_old_tree_size(head.tree_head().size());
    }
  }
  absl::StatusOr<v1::HeadLogProofResponse> proof = client.Call(kGetHeadLogProof, request);
  if (proof.ok()) return std::optional<v1::HeadLogProofResponse>(*std::move(proof));
  if (absl::IsNotFound(proof.status()) || absl::IsUnimplemented(proof.status()) ||
      absl::IsFailedPrecondition(proof.status())) {
    return std::optional<v1::HeadLogProofResponse>();
  }
  return proof.status();
}

// Every node's replayed entries, by node. A node that cannot be read (unreachable) is said on
// stderr and its part stays missing, so its audit fails rather than the whole command.
absl::StatusOr<ReplayedByNode> ReplayAll(Invocation& inv, const std::string& job) {
  ReproClient& client = inv.client();
  ReplayedByNode out;
  v1::ReplayRequest request;
  request.set_job(job);
  absl::Status status = client.Stream(
      kReplay, request,
      [&out](const v1::ReplayResponse& r) {
        out[r.entry().node()].push_back(r);
        return absl::OkStatus();
      },
      CallLength::kShort);
  if (absl::IsNotFound(status)) return out;
  if (absl::IsUnavailable(status)) {
    inv.output().err() << "reproctl: replay: " << status.message() << "\n";
    return out;
  }
  RETURN_IF_ERROR(status);
  return out;
}

// Re-checks every node's part of `response` (and every node of the export) on this side and
// marks what fails; never relies on reprod's verdict.
absl::Status AuditResponse(Invocation& inv, const std::string& job, const std::string& local_node,
                           const std::optional<v1::Provenance>& exported,
                           const std::optional<v1::HeadLogProofResponse>& proof,
                           ReplayedByNode& replayed, KeyTrust& trust,
                           v1::VerifyJournalResponse* response) {
  std::map<std::string, const v1::ProvenanceHead*> exported_heads;
  if (exported.has_value()) {
    for (const v1::ProvenanceHead& head : exported->heads()) exported_heads[head.node()] = &head;
  }
  std::set<std::string> seen;
  for (v1::NodeJournalCheck& check : *response->mutable_nodes()) {
    seen.insert(check.node());
    NodeEvidence evidence{.node = check.node(), .head = check.head()};
    for (v1::ReplayResponse& r : replayed[check.node()]) {
      if (r.entry().seq() <= check.head().seq()) evidence.entries.push_back(std::move(r));
    }
    if (proof.has_value() && proof->head().node() == check.node()) evidence.proof = proof;
    // The statements are signed by the node's keys, so the relaying node need not be trusted.
    std::vector<v1::KeyRotation> rotations(check.rotations().begin(), check.rotations().end());
    if (proof.has_value()) {
      rotations.insert(rotations.end(), proof->rotations().begin(), proof->rotations().end());
    }
    bool first_use = false;
    absl::Status trusted = trust.Accept(check.node(), check.head().public_key(), rotations,
                                        &first_use);
    if (first_use) {
      inv.output().err() << "reproctl: pinned the key of node " << check.node()
                         << " on first use: " << HexDigest(check.head().public_key()) << " ("
                         << trust.source() << ")\n";
    }
    check.set_key_trust(trust.source());
    auto exported_head = exported_heads.find(check.node());
    // The node that served the export's tree head must prove its log still extends it.
    if (trusted.ok() && !evidence.proof.has_value() && check.node() == local_node &&
        exported_head != exported_heads.end() && exported_head->second->has_tree_head()) {
      trusted = absl::DataLossError(absl::StrCat(
          "node ", local_node, " serves no head log proof, so it cannot show that its log "
          "extends the tree head in the export"));
    }
    NodeAudit audit =
        trusted.ok()
            ? AuditNode(job, evidence,
                        exported_head == exported_heads.end() ? nullptr : exported_head->second,
                        check.head().public_key())
            : NodeAudit{.problem = trusted};
    for (const auto& [kind, count] : audit.lost) {
      v1::GapCount* lost = check.add_lost();
      lost->set_kind(kind);
      lost->set_count(count);
      response->set_incomplete(true);
    }
    // Where reprod already found the part broken its own finding stays; where it claimed
    // intact, reproctl's finding replaces the claim.
    if (!audit.problem.ok() && check.intact()) {
      check.set_intact(false);
      check.set_problem(absl::StrCat("reproctl: ", audit.problem.message()));
    }
    if (!audit.problem.ok()) response->set_intact(false);
  }
  for (const auto& [node, head] : exported_heads) {
    if (seen.count(node)) continue;
    v1::NodeJournalCheck* check = response->add_nodes();
    check->set_node(node);
    check->set_intact(false);
    check->set_first_broken_seq(1);
    check->set_problem(absl::StrCat("reproctl: the export covers entry ", head->seq(),
                                    " of this node, but its journal of the job is gone "
                                    "(deleted job)"));
    response->set_intact(false);
  }
  response->set_checked_by_client(true);
  return absl::OkStatus();
}

}  // namespace

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
  std::optional<v1::Provenance> exported;
  if (std::optional<std::string> against = inv.args().Value("against")) {
    ASSIGN_OR_RETURN(exported, ReadExport(*against, request.job()));
  }
  ASSIGN_OR_RETURN(KeyTrust trust, ChooseKeyTrust(inv, exported));

  // The evidence: the head log proof, then the heads, then the entries they sign.
  std::string local_node;
  ASSIGN_OR_RETURN(std::optional<v1::HeadLogProofResponse> proof,
                   FetchHeadLogProof(inv.client(), request.job(), exported, &local_node));
  // Re-hashing reads the pinned data again, which takes as long as `version add` did.
  absl::StatusOr<v1::VerifyJournalResponse> daemon = inv.client().Call(
      kVerifyJournal, request, request.rehash() ? CallLength::kLong : CallLength::kShort);
  if (!daemon.ok() && absl::IsNotFound(daemon.status()) && exported.has_value()) {
    daemon = v1::VerifyJournalResponse();  // the job is gone: every exported node fails below
  }
  if (!daemon.ok()) return daemon.status();
  v1::VerifyJournalResponse response = *std::move(daemon);
  ASSIGN_OR_RETURN(ReplayedByNode replayed, ReplayAll(inv, request.job()));
  RETURN_IF_ERROR(AuditResponse(inv, request.job(), local_node, exported, proof, replayed, trust,
                                &response));
  RETURN_IF_ERROR(inv.Print(response, [&](const v1::VerifyJournalResponse& r) {
    return FormatVerify(request.job(), r);
  }));
  return VerifyPassed(response) ? kExitOk : kExitTampered;
}

absl::StatusOr<ExitCode> RunNode(Invocation& inv) {
  RETURN_IF_ERROR(
      inv.CallAndPrint(kGetNodeInfo, v1::GetNodeInfoRequest(), FormatNodeInfo).status());
  return kExitOk;
}

}  // namespace repro::cli
