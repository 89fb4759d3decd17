#include "daemon/registry/pin_registry.h"

#include <algorithm>

#include "absl/container/flat_hash_set.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_join.h"
#include "common/names.h"
#include "common/sha256.h"
#include "common/status_macros.h"
#include "daemon/registry/seeds.h"
#include "google/protobuf/util/time_util.h"

namespace repro {
namespace {

using google::protobuf::util::TimeUtil;

bool SameVersions(const v1::Pin& a, const v1::Pin& b) {
  if (a.versions_size() != b.versions_size()) return false;
  for (int i = 0; i < a.versions_size(); ++i) {
    const v1::PinnedVersion& x = a.versions(i);
    const v1::PinnedVersion& y = b.versions(i);
    if (x.dataset() != y.dataset() || x.version() != y.version() || x.digest() != y.digest()) {
      return false;
    }
  }
  return true;
}

std::string PinHint(absl::string_view job) {
  return absl::StrCat("run `reproctl pin ", job, " dataset@version`");
}

}  // namespace

std::string DescribePin(const v1::Pin& pin) {
  std::vector<std::string> parts;
  for (const v1::PinnedVersion& v : pin.versions()) {
    parts.push_back(absl::StrCat(v.dataset(), "@", v.version(), " (",
                                 HexDigest(v.digest()).substr(0, 12), ")"));
  }
  return absl::StrCat(absl::StrJoin(parts, ", "), " seed ", pin.seed());
}

PinRegistry::PinRegistry(PinStore* store, Journal* journal, FileSystem* fs, Clock* clock,
                         std::string node, const v1::HostFacts* host)
    : store_(store),
      journal_(journal),
      fs_(fs),
      clock_(clock),
      node_(std::move(node)),
      host_(host) {}

absl::StatusOr<v1::PinnedVersion> PinRegistry::Resolve(absl::string_view dataset,
                                                       absl::string_view version) {
  absl::StatusOr<v1::VersionInfo> info = store_->GetVersion(dataset, version);
  if (absl::IsNotFound(info.status())) {
    return absl::NotFoundError(absl::StrCat(dataset, "@", version,
                                            " is not registered; run `reproctl version add ",
                                            dataset, " ", version, " PATH` first"));
  }
  RETURN_IF_ERROR(info.status());
  v1::PinnedVersion pinned;
  pinned.set_dataset(info->dataset());
  pinned.set_version(info->version());
  pinned.set_digest(info->digest());
  pinned.set_root(info->root());
  pinned.set_path(info->path());
  return pinned;
}

absl::StatusOr<v1::Pin> PinRegistry::BuildPin(const v1::PinRequest& request,
                                              absl::string_view owner) {
  v1::Pin pin;
  pin.set_job(request.job());
  if (!request.like_job().empty()) {
    RETURN_IF_ERROR(ValidateJobId(request.like_job()));
    if (request.versions_size() > 0 || request.has_seed()) {
      return absl::InvalidArgumentError(
          "a pin copied with --like takes its versions and seed from the other job; give "
          "either --like or versions and a seed");
    }
    absl::StatusOr<v1::Pin> like = store_->GetPin(request.like_job());
    if (absl::IsNotFound(like.status())) {
      return absl::NotFoundError(absl::StrCat("job ", request.like_job(), " has no pin to copy"));
    }
    RETURN_IF_ERROR(like.status());
    for (const v1::PinnedVersion& v : like->versions()) {
      ASSIGN_OR_RETURN(v1::PinnedVersion now, Resolve(v.dataset(), v.version()));
      if (now.digest() != v.digest()) {
        return absl::FailedPreconditionError(absl::StrCat(
            v.dataset(), "@", v.version(), " pinned by ", request.like_job(),
            " is now registered with other content; it cannot be reproduced"));
      }
      *pin.add_versions() = v;
    }
    pin.set_seed(like->seed());
    pin.set_seed_derived(like->seed_derived());
    pin.set_like_job(request.like_job());
  } else {
    if (request.versions_size() == 0) {
      return absl::InvalidArgumentError(absl::StrCat(
          "a pin needs at least one DATASET@VERSION (or --like OTHER_JOB) for job ", request.job()));
    }
    absl::flat_hash_set<std::string> datasets;
    for (const v1::VersionRef& ref : request.versions()) {
      RETURN_IF_ERROR(ValidateDatasetName(ref.dataset()));
      RETURN_IF_ERROR(ValidateVersionName(ref.version()));
      if (!datasets.insert(ref.dataset()).second) {
        return absl::InvalidArgumentError(absl::StrCat(
            "dataset ", ref.dataset(), " appears twice; a job reads one version of each dataset"));
      }
      ASSIGN_OR_RETURN(*pin.add_versions(), Resolve(ref.dataset(), ref.version()));
    }
    std::sort(pin.mutable_versions()->begin(), pin.mutable_versions()->end(),
              [](const v1::PinnedVersion& a, const v1::PinnedVersion& b) {
                return a.dataset() < b.dataset();
              });
    if (request.has_seed()) {
      pin.set_seed(request.seed());
    } else {
      pin.set_seed(DeriveJobSeed(pin.job(), pin.versions()));
      pin.set_seed_derived(true);
    }
  }
  *pin.mutable_created_at() = TimeUtil::NanosecondsToTimestamp(absl::ToUnixNanos(clock_->Now()));
  pin.set_created_on(node_);
  pin.set_owner(std::string(owner));
  return pin;
}

absl::StatusOr<v1::PinResponse> PinRegistry::Pin(const v1::PinRequest& request,
                                                 absl::string_view owner) {
  RETURN_IF_ERROR(ValidateJobId(request.job()));
  ASSIGN_OR_RETURN(v1::Pin pin, BuildPin(request, owner));
  ASSIGN_OR_RETURN(Created<v1::Pin> stored, store_->CreatePin(pin));
  if (!stored.created) {
    bool seed_matches = !request.has_seed() || stored.value.seed() == pin.seed();
    if (!request.like_job().empty()) seed_matches = stored.value.seed() == pin.seed();
    if (!SameVersions(stored.value, pin) || !seed_matches) {
      return absl::FailedPreconditionError(absl::StrCat(
          "job ", request.job(), " is already pinned to ", DescribePin(stored.value),
          "; pins are immutable: use a new job id for different data or seed"));
    }
  }
  // Journal even when the pin existed: a crash after storing the pin but before journaling it
  // is repaired by the launcher's retry.
  RETURN_IF_ERROR(JournalPin(stored.value));
  v1::PinResponse response;
  *response.mutable_pin() = std::move(stored.value);
  response.set_created(stored.created);
  return response;
}

absl::Status PinRegistry::JournalPin(const v1::Pin& pin) {
  std::vector<JournalItem> items;
  JournalItem applied;
  *applied.entry.mutable_pin_applied()->mutable_pin() = pin;
  applied.once_key = "pin";
  items.push_back(std::move(applied));
  for (const v1::PinnedVersion& v : pin.versions()) {
    ASSIGN_OR_RETURN(v1::VersionInfo info, store_->GetVersion(v.dataset(), v.version()));
    JournalItem registered;
    *registered.entry.mutable_version_registered()->mutable_version() = std::move(info);
    registered.once_key = absl::StrCat("version/", v.dataset(), "@", v.version());
    items.push_back(std::move(registered));
  }
  if (host_ != nullptr) {
    JournalItem host;
    *host.entry.mutable_host() = *host_;
    host.once_key = "host";
    items.push_back(std::move(host));
  }
  return journal_->Append(pin.job(), std::move(items)).status();
}

absl::StatusOr<v1::Pin> PinRegistry::Get(absl::string_view job) {
  RETURN_IF_ERROR(ValidateJobId(job));
  return store_->GetPin(job);
}

absl::StatusOr<std::vector<v1::Pin>> PinRegistry::List() { return store_->ListPins(); }

std::string PinRegistry::RefusalReason(const v1::Pin& pin) {
  for (const v1::PinnedVersion& v : pin.versions()) {
    const std::string name = absl::StrCat(v.dataset(), "@", v.version());
    absl::StatusOr<v1::VersionInfo> info = store_->GetVersion(v.dataset(), v.version());
    if (absl::IsNotFound(info.status())) {
      return absl::StrCat("job ", pin.job(), " is pinned to ", name,
                          ", which is no longer registered");
    }
    if (!info.ok()) {
      return absl::StrCat("cannot check ", name, " for job ", pin.job(), ": ",
                          info.status().message());
    }
    if (info->digest() != v.digest()) {
      return absl::StrCat("job ", pin.job(), " is pinned to ", name, " with digest ",
                          HexDigest(v.digest()).substr(0, 12), " but it is now registered as ",
                          HexDigest(info->digest()).substr(0, 12));
    }
    absl::StatusOr<FileStat> st = fs_->Stat(info->path());
    if (!st.ok() || st->type != FileType::kDirectory) {
      return absl::StrCat("the data of ", name, " pinned by job ", pin.job(), " is gone (",
                          info->path(), st.ok() ? " is not a directory" : " does not exist",
                          "); restore it, or pin a new job to a version that exists");
    }
  }
  return "";
}

absl::StatusOr<v1::AdmitResponse> PinRegistry::Admit(absl::string_view job) {
  RETURN_IF_ERROR(ValidateJobId(job));
  v1::AdmitResponse response;
  // Fail closed: even a pin this node holds is not trusted for admission while the store that
  // makes it the cluster's pin cannot be reached.
  absl::Status available = store_->CheckAvailable();
  if (!available.ok()) {
    response.set_reason(absl::StrCat("cannot check job ", job,
                                     " against the pin store (refusing until it can): ",
                                     available.message()));
    return response;
  }
  absl::StatusOr<v1::Pin> pin = store_->GetPin(job);
  if (absl::IsNotFound(pin.status())) {
    response.set_reason(absl::StrCat("job ", job, " has no pinned data version: ", PinHint(job)));
    return response;
  }
  if (!pin.ok()) {
    response.set_reason(absl::StrCat("cannot read the pin of job ", job,
                                     " (refusing until it can be checked): ",
                                     pin.status().message()));
    return response;
  }
  std::string reason = RefusalReason(*pin);
  response.set_admitted(reason.empty());
  response.set_reason(std::move(reason));
  *response.mutable_pin() = *std::move(pin);
  return response;
}

}  // namespace repro
