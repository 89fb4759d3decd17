#include "client/cli/journal_audit.h"

#include <filesystem>
#include <fstream>
#include <iostream>
#include <sstream>

#include "absl/strings/ascii.h"
#include "absl/strings/escaping.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "common/merkle.h"
#include "common/sha256.h"
#include "common/signed_statements.h"
#include "common/status_macros.h"
#include "google/protobuf/util/message_differencer.h"

namespace repro::cli {
namespace {

// Raw bytes of a lowercase hex string; nullopt when it is not hex of `size` bytes.
std::optional<std::string> FromHex(absl::string_view hex, size_t size) {
  if (hex.size() != 2 * size) return std::nullopt;
  for (char c : hex) {
    if (!absl::ascii_isxdigit(static_cast<unsigned char>(c))) return std::nullopt;
  }
  return absl::HexStringToBytes(hex);
}

absl::Status Tampered(absl::string_view node, absl::string_view problem) {
  return absl::DataLossError(absl::StrCat("node ", node, ": ", problem));
}

absl::Status ParseKeyLines(absl::string_view text, const std::string& path,
                           std::map<std::string, std::set<std::string>>* keys) {
  int line_number = 0;
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    ++line_number;
    line = absl::StripAsciiWhitespace(line);
    if (line.empty() || line[0] == '#') continue;
    std::vector<absl::string_view> words = absl::StrSplit(line, ' ', absl::SkipWhitespace());
    std::optional<std::string> key =
        words.size() == 2 ? FromHex(words[1], kEd25519PublicKeySize) : std::nullopt;
    if (!key) {
      return absl::InvalidArgumentError(absl::StrCat(
          path, ":", line_number, ": expected \"NODE HEX_PUBLIC_KEY\" (64 hex digits)"));
    }
    (*keys)[std::string(words[0])].insert(*key);
  }
  return absl::OkStatus();
}

absl::StatusOr<std::string> ReadWholeFile(const std::string& path) {
  std::ifstream in(path);
  if (!in) return absl::NotFoundError(absl::StrCat("cannot read ", path));
  std::stringstream buffer;
  buffer << in.rdbuf();
  return buffer.str();
}

// The exported head's tree head as a SignedTreeHead; nullopt when the export has none.
std::optional<v1::SignedTreeHead> ExportedTreeHead(const std::string& node,
                                                   const v1::ProvenanceHead& exported) {
  if (!exported.has_tree_head()) return std::nullopt;
  const v1::ProvenanceTreeHead& t = exported.tree_head();
  v1::SignedTreeHead out;
  out.set_node(node);
  out.set_size(t.size());
  out.set_root(FromHex(t.root(), kSha256Size).value_or(""));
  out.set_time_unix_nanos(t.time_unix_nanos());
  out.set_signature(FromHex(t.signature(), kEd25519SignatureSize).value_or(""));
  return out;
}

absl::Status CheckTreeHead(const v1::SignedTreeHead& sth, absl::string_view key) {
  if (!VerifyEd25519(key, TreeHeadSigningBytes(sth.node(), sth.size(), sth.root(),
                                               sth.time_unix_nanos()),
                     sth.signature())) {
    return Tampered(sth.node(), absl::StrCat("the signed tree head of size ", sth.size(),
                                             " does not verify with the trusted key"));
  }
  return absl::OkStatus();
}

// The chain hash after each entry (index = seq), recomputed from the stored bytes.
absl::StatusOr<std::vector<std::string>> RecomputeChain(const std::string& job,
                                                        const NodeEvidence& evidence,
                                                        std::map<std::string, uint64_t>* lost) {
  std::vector<std::string> hashes = {GenesisHash()};
  for (const v1::ReplayResponse& r : evidence.entries) {
    const uint64_t seq = hashes.size();
    if (r.entry().seq() != seq) {
      return Tampered(evidence.node, absl::StrCat("entry ", seq, " is missing (reprod sent entry ",
                                                  r.entry().seq(), " next)"));
    }
    if (r.payload().empty()) {
      return Tampered(evidence.node,
                      absl::StrCat("reprod sent no stored bytes for entry ", seq,
                                   " (a reprod older than this reproctl cannot be checked)"));
    }
    std::string hash = ChainHash(hashes.back(), r.payload());
    if (hash != r.hash()) {
      return Tampered(evidence.node, absl::StrCat("entry ", seq,
                                                  " does not match its chain hash (stored ",
                                                  HexDigest(r.hash()).substr(0, 16),
                                                  "…, recomputed ", HexDigest(hash).substr(0, 16),
                                                  "…)"));
    }
    v1::JournalEntry stored;
    if (!stored.ParseFromString(r.payload()) || stored.seq() != seq || stored.job() != job ||
        stored.node() != evidence.node) {
      return Tampered(evidence.node, absl::StrCat("the stored bytes of entry ", seq,
                                                  " are not entry ", seq, " of job ", job));
    }
    if (!google::protobuf::util::MessageDifferencer::Equals(stored, r.entry())) {
      return Tampered(evidence.node, absl::StrCat("entry ", seq,
                                                  " as reprod shows it differs from its stored "
                                                  "bytes"));
    }
    if (stored.has_gap()) {
      for (const v1::GapCount& g : stored.gap().lost()) (*lost)[g.kind()] += g.count();
    }
    hashes.push_back(std::move(hash));
  }
  return hashes;
}

absl::Status CheckHead(const std::string& job, const std::string& node,
                       const v1::JournalHead& head, const std::vector<std::string>& hashes,
                       absl::string_view key, absl::string_view what) {
  if (head.seq() >= hashes.size()) {
    return Tampered(node, absl::StrCat(what, " is at entry ", head.seq(), " but only ",
                                       hashes.size() - 1, " entries were replayed"));
  }
  if (hashes[head.seq()] != head.hash()) {
    return Tampered(node, absl::StrCat(what, " (entry ", head.seq(),
                                       ") does not match the recomputed chain"));
  }
  if (!VerifyEd25519(key, HeadSigningBytes(node, job, head.seq(), head.hash()),
                     head.signature())) {
    return Tampered(node, absl::StrCat(what, "'s signature does not verify with the trusted key"));
  }
  return absl::OkStatus();
}

absl::Status CheckInclusion(const std::string& job, const std::string& node, uint64_t seq,
                            absl::string_view hash, const v1::SignedTreeHead& sth,
                            uint64_t leaf_index, absl::Span<const std::string> path) {
  absl::Status included =
      VerifyMerkleInclusion(leaf_index, sth.size(),
                            MerkleLeafHash(HeadSigningBytes(node, job, seq, hash)), path,
                            sth.root());
  if (!included.ok()) {
    return Tampered(node, absl::StrCat("the head at entry ", seq, " is not in the head log of ",
                                       sth.size(), " heads: ", included.message()));
  }
  return absl::OkStatus();
}

// Today's evidence against the export: the chain still holds the exported head, and today's
// head log extends the exported one.
absl::Status CheckAgainstExport(const std::string& job, const NodeEvidence& evidence,
                                const std::vector<std::string>& hashes,
                                const v1::ProvenanceHead& exported) {
  const std::string& node = evidence.node;
  std::optional<std::string> hash = FromHex(exported.hash(), kSha256Size);
  if (!hash) return Tampered(node, "the export's head hash is malformed");
  if (exported.seq() >= hashes.size()) {
    return Tampered(node, absl::StrCat("rolled back or truncated: the export covers entry ",
                                       exported.seq(), " but the journal now ends at entry ",
                                       hashes.size() - 1));
  }
  if (hashes[exported.seq()] != *hash) {
    return Tampered(node, absl::StrCat("rewritten: entry ", exported.seq(),
                                       " is not the one the export signed"));
  }
  std::optional<v1::SignedTreeHead> old_tree = ExportedTreeHead(node, exported);
  if (!old_tree || !evidence.proof.has_value()) return absl::OkStatus();
  const v1::SignedTreeHead& now = evidence.proof->tree_head();
  if (now.size() < old_tree->size()) {
    return Tampered(node, absl::StrCat("rolled back: the head log shrank from ", old_tree->size(),
                                       " heads at export to ", now.size()));
  }
  std::vector<std::string> proof(evidence.proof->consistency().begin(),
                                 evidence.proof->consistency().end());
  absl::Status consistent =
      VerifyMerkleConsistency(old_tree->size(), now.size(), old_tree->root(), now.root(), proof);
  if (!consistent.ok()) {
    return Tampered(node, absl::StrCat("the head log does not extend the exported one: ",
                                       consistent.message()));
  }
  return absl::OkStatus();
}

}  // namespace

absl::StatusOr<KeyTrust> KeyTrust::FromFile(const std::string& path, std::string source) {
  ASSIGN_OR_RETURN(std::string text, ReadWholeFile(path));
  KeyTrust trust;
  trust.source_ = std::move(source);
  RETURN_IF_ERROR(ParseKeyLines(text, path, &trust.keys_));
  return trust;
}

KeyTrust KeyTrust::FromExport(const v1::Provenance& exported, std::string source) {
  KeyTrust trust;
  trust.source_ = std::move(source);
  for (const v1::ProvenanceHead& head : exported.heads()) {
    if (std::optional<std::string> key = FromHex(head.public_key(), kEd25519PublicKeySize)) {
      trust.keys_[head.node()].insert(*key);
    }
  }
  return trust;
}

absl::StatusOr<KeyTrust> KeyTrust::PinnedOnFirstUse(const std::string& path) {
  KeyTrust trust;
  trust.source_ = path.empty() ? "the key reprod presents (nothing pinned: no config dir)"
                               : absl::StrCat("pinned in ", path);
  trust.pin_file_ = path;
  trust.accept_unknown_ = path.empty();
  if (path.empty()) return trust;
  absl::StatusOr<std::string> text = ReadWholeFile(path);
  if (text.ok()) RETURN_IF_ERROR(ParseKeyLines(*text, path, &trust.keys_));
  return trust;
}

absl::Status KeyTrust::Accept(const std::string& node, absl::string_view presented,
                              const std::vector<v1::KeyRotation>& rotations, bool* first_use) {
  *first_use = false;
  auto known = keys_.find(node);
  if (known == keys_.end()) {
    if (accept_unknown_) return absl::OkStatus();
    if (pin_file_.empty()) {
      return absl::PermissionDeniedError(
          absl::StrCat("no trusted key for node ", node, " in ", source_));
    }
    std::error_code ec;
    std::filesystem::create_directories(std::filesystem::path(pin_file_).parent_path(), ec);
    std::ofstream out(pin_file_, std::ios::app);
    out << node << " " << HexDigest(presented) << "\n";
    if (!out.flush()) {  // trusted for this run only: a later one pins it, or asks again
      std::cerr << "reproctl: cannot write " << pin_file_ << "; the key of node " << node
                << " is trusted for this run only\n";
    }
    keys_[node].insert(std::string(presented));
    *first_use = true;
    return absl::OkStatus();
  }
  // Follow rotation statements from the trusted keys, each signed by the key before it.
  const std::set<std::string> trusted = KeysRotatedTo(node, known->second, rotations);
  if (!trusted.count(std::string(presented))) {
    return absl::PermissionDeniedError(absl::StrCat(
        "node ", node, " signs with key ", HexDigest(presented), ", which is not the key ",
        source_, " (", HexDigest(*known->second.begin()),
        ") and no signed rotation leads to it: re-signed by a different key?"));
  }
  return absl::OkStatus();
}

NodeAudit AuditNode(const std::string& job, const NodeEvidence& evidence,
                    const v1::ProvenanceHead* exported, absl::string_view key) {
  NodeAudit audit;
  absl::StatusOr<std::vector<std::string>> hashes = RecomputeChain(job, evidence, &audit.lost);
  if (!hashes.ok()) {
    audit.problem = hashes.status();
    return audit;
  }
  audit.problem = CheckHead(job, evidence.node, evidence.head, *hashes, key, "the signed head");
  if (audit.problem.ok() && evidence.proof.has_value()) {
    const v1::HeadLogProofResponse& proof = *evidence.proof;
    audit.problem = CheckTreeHead(proof.tree_head(), key);
    if (audit.problem.ok()) {
      audit.problem = CheckHead(job, evidence.node, proof.head(), *hashes, key,
                                "the head in the log proof");
    }
    if (audit.problem.ok() && proof.has_inclusion()) {
      std::vector<std::string> path(proof.inclusion().path().begin(),
                                    proof.inclusion().path().end());
      audit.problem = CheckInclusion(job, evidence.node, proof.head().seq(), proof.head().hash(),
                                     proof.tree_head(), proof.inclusion().leaf_index(), path);
    }
    audit.log_checked = audit.problem.ok() && proof.has_inclusion();
  }
  if (audit.problem.ok() && exported != nullptr) {
    audit.problem = CheckExportedHead(job, *exported, key);
    if (audit.problem.ok()) audit.problem = CheckAgainstExport(job, evidence, *hashes, *exported);
  }
  return audit;
}

absl::Status CheckExportedHead(const std::string& job, const v1::ProvenanceHead& exported,
                               absl::string_view key) {
  const std::string& node = exported.node();
  std::optional<std::string> hash = FromHex(exported.hash(), kSha256Size);
  std::optional<std::string> signature = FromHex(exported.signature(), kEd25519SignatureSize);
  if (!hash || !signature ||
      !VerifyEd25519(key, HeadSigningBytes(node, job, exported.seq(), *hash), *signature)) {
    return Tampered(node, "the export's head is not signed by the trusted key");
  }
  std::optional<v1::SignedTreeHead> tree = ExportedTreeHead(node, exported);
  if (!tree) return absl::OkStatus();
  RETURN_IF_ERROR(CheckTreeHead(*tree, key));
  std::vector<std::string> path;
  for (const std::string& hex : exported.inclusion()) {
    std::optional<std::string> h = FromHex(hex, kSha256Size);
    if (!h) return Tampered(node, "the export's inclusion proof is malformed");
    path.push_back(*h);
  }
  return CheckInclusion(job, node, exported.seq(), *hash, *tree, exported.leaf_index(), path);
}

}  // namespace repro::cli
