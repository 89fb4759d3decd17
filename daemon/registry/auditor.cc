#include "daemon/registry/auditor.h"

#include "absl/strings/str_cat.h"
#include "common/names.h"
#include "common/status_macros.h"

namespace repro {
namespace {

v1::Drift MakeDrift(absl::string_view dataset, absl::string_view version, absl::string_view path,
                    absl::string_view problem) {
  v1::Drift drift;
  drift.set_dataset(std::string(dataset));
  drift.set_version(std::string(version));
  drift.set_path(std::string(path));
  drift.set_problem(std::string(problem));
  return drift;
}

}  // namespace

std::vector<v1::Drift> DiffManifests(const v1::Manifest& registered, const v1::Manifest& now,
                                     absl::string_view dataset, absl::string_view version) {
  std::vector<v1::Drift> out;
  int i = 0, j = 0;
  while (i < registered.files_size() || j < now.files_size()) {
    if (j == now.files_size() ||
        (i < registered.files_size() && registered.files(i).path() < now.files(j).path())) {
      out.push_back(MakeDrift(dataset, version, registered.files(i++).path(), "missing"));
    } else if (i == registered.files_size() || now.files(j).path() < registered.files(i).path()) {
      out.push_back(MakeDrift(dataset, version, now.files(j++).path(), "added"));
    } else {
      if (registered.files(i).sha256() != now.files(j).sha256()) {
        out.push_back(MakeDrift(dataset, version, now.files(j).path(), "content changed"));
      }
      ++i;
      ++j;
    }
  }
  return out;
}

absl::Status Auditor::Rehash(const v1::PinnedVersion& version,
                             v1::VerifyJournalResponse* response) {
  ASSIGN_OR_RETURN(v1::Manifest registered,
                   store_->GetManifest(version.dataset(), version.version()));
  absl::StatusOr<TreeHashResult> now = rehasher_->HashTree(version.path(), TreeHashOptions());
  if (!now.ok()) {
    *response->add_drift() = MakeDrift(version.dataset(), version.version(), "",
                                       absl::StrCat("unreadable: ", now.status().message()));
    return absl::OkStatus();
  }
  response->set_files_rehashed(response->files_rehashed() + now->manifest.files_size());
  for (v1::Drift& drift :
       DiffManifests(registered, now->manifest, version.dataset(), version.version())) {
    *response->add_drift() = std::move(drift);
  }
  return absl::OkStatus();
}

absl::StatusOr<v1::HeadLogProofResponse> Auditor::ProveHead(
    const v1::HeadLogProofRequest& request) {
  if (!request.job().empty()) RETURN_IF_ERROR(ValidateJobId(request.job()));
  if (head_log_ == nullptr) return absl::FailedPreconditionError("this node keeps no head log");
  v1::HeadLogProofResponse response;
  // The head first: once a head is visible its leaf is in the log, so the tree signed next
  // includes it.
  if (!request.job().empty()) {
    ASSIGN_OR_RETURN(*response.mutable_head(), journal_->Head(request.job()));
  }
  *response.mutable_tree_head() = head_log_->SignedHead();
  const uint64_t size = response.tree_head().size();
  if (!request.job().empty()) {
    absl::StatusOr<v1::HeadLogInclusion> inclusion =
        head_log_->ProveHead(request.job(), response.head().seq(), size);
    if (inclusion.ok()) {
      *response.mutable_inclusion() = *std::move(inclusion);
    } else if (!absl::IsNotFound(inclusion.status())) {
      return inclusion.status();
    }
  }
  // An older tree larger than today's gets no proof: the client sees the log shrank.
  const uint64_t new_size = request.tree_size() > 0 ? request.tree_size() : size;
  if (request.old_tree_size() > 0 && request.old_tree_size() <= new_size && new_size <= size) {
    ASSIGN_OR_RETURN(std::vector<std::string> proof,
                     head_log_->ProveConsistency(request.old_tree_size(), new_size));
    for (std::string& hash : proof) response.add_consistency(std::move(hash));
  }
  ASSIGN_OR_RETURN(std::vector<v1::KeyRotation> rotations, head_log_->Rotations());
  for (v1::KeyRotation& r : rotations) *response.add_rotations() = std::move(r);
  return response;
}

absl::StatusOr<v1::VerifyJournalResponse> Auditor::Verify(
    const v1::VerifyJournalRequest& request) {
  RETURN_IF_ERROR(ValidateJobId(request.job()));
  v1::VerifyJournalResponse response;
  ASSIGN_OR_RETURN(*response.add_nodes(), journal_->Verify(request.job()));
  response.set_intact(response.nodes(0).intact());
  if (head_log_ != nullptr) {
    ASSIGN_OR_RETURN(std::vector<v1::KeyRotation> rotations, head_log_->Rotations());
    for (v1::KeyRotation& r : rotations) *response.mutable_nodes(0)->add_rotations() = std::move(r);
  }
  if (request.rehash()) {
    ASSIGN_OR_RETURN(v1::Pin pin, store_->GetPin(request.job()));
    for (const v1::PinnedVersion& version : pin.versions()) {
      RETURN_IF_ERROR(Rehash(version, &response));
    }
    response.set_rehashed(true);
  }
  return response;
}

}  // namespace repro
