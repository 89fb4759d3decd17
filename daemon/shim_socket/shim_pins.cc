#include "daemon/shim_socket/shim_pins.h"

#include <utility>
#include <vector>

#include "absl/strings/str_cat.h"
#include "common/paths.h"
#include "common/status_macros.h"
#include "daemon/registry/seeds.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

// Pins kept in memory; the cache is emptied when it grows past this.
constexpr size_t kMaxCachedPins = 4096;

}  // namespace

absl::StatusOr<std::shared_ptr<const v1::Pin>> ShimPins::Get(const std::string& job) {
  {
    absl::MutexLock lock(&mu_);
    auto it = cache_.find(job);
    if (it != cache_.end()) return it->second;
  }
  absl::StatusOr<v1::Pin> pin = pins_->Get(job);
  if (absl::IsNotFound(pin.status())) {
    return absl::NotFoundError(absl::StrCat(
        "job ", job, " has no pinned data version; run `reproctl pin ", job, " dataset@version`"));
  }
  RETURN_IF_ERROR(pin.status());
  if (absl::Status s = pins_->JournalPin(*pin); !s.ok()) {
    return absl::UnavailableError(
        absl::StrCat("cannot journal the pin of job ", job, ": ", s.message()));
  }
  auto shared = std::make_shared<const v1::Pin>(*std::move(pin));
  absl::MutexLock lock(&mu_);
  if (cache_.size() >= kMaxCachedPins) cache_.clear();
  cache_.emplace(job, shared);
  return shared;
}

ShimPinReply ShimPins::Reply(const v1::Pin& pin, const ShimHello& hello) {
  ShimPinReply reply;
  reply.seed = pin.seed();
  reply.rank_seed = DeriveRankSeed(pin.seed(), static_cast<uint64_t>(hello.rank));
  reply.mode = hello.mode;
  for (const v1::PinnedVersion& v : pin.versions()) {
    ShimPinDataset d;
    d.name = v.dataset();
    d.version = v.version();
    d.root = v.root();
    d.pinned_dir = std::string(Basename(v.path()));
    absl::StatusOr<std::vector<v1::VersionInfo>> all = versions_->List(v.dataset());
    if (all.ok()) {
      for (const v1::VersionInfo& other : *all) {
        if (other.version() != v.version()) d.other_dirs.emplace_back(Basename(other.path()));
      }
    } else {
      spdlog::warn("shim socket: cannot list the versions of {}: {}", v.dataset(),
                   all.status().ToString());
    }
    reply.datasets.push_back(std::move(d));
  }
  return reply;
}

}  // namespace repro
