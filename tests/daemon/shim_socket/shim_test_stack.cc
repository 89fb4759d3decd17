#include "tests/daemon/shim_socket/shim_test_stack.h"

#include <filesystem>

#include "absl/time/clock.h"
#include "gtest/gtest.h"

namespace repro::testing {

ShimTestStack::ShimTestStack() {
  auto opened = RocksStore::Open({.data_dir = dir.Path("state")});
  if (!opened.ok()) {
    ADD_FAILURE() << opened.status();
    std::abort();
  }
  store = *std::move(opened);
  auto loaded = NodeKey::LoadOrCreate(dir.Path("state/key.pem"));
  if (!loaded.ok()) std::abort();
  key = *std::move(loaded);
  journal = std::make_unique<Journal>(store.get(), JournalOptions{.node = "n1", .key = key.get()});
  cache = std::make_unique<HashCache>(store.get(),
                                      HashCacheOptions{.racy_window = absl::ZeroDuration()});
  hasher = std::make_unique<TreeHasher>(DefaultFileSystem(), cache.get(), 2);
  pin_store = std::make_unique<RocksPinStore>(store.get());
  versions = std::make_unique<VersionRegistry>(pin_store.get(), hasher.get(), DefaultFileSystem(),
                                               DefaultClock(), "n1");
  pins = std::make_unique<PinRegistry>(pin_store.get(), journal.get(), DefaultFileSystem(),
                                       DefaultClock(), "n1");
  root_ = std::filesystem::canonical(dir.path()).string() + "/ml/ds";
  for (const char* version : {"v1", "v2"}) {
    WriteFileOrDie(root_ + "/" + version + "/a.csv", std::string("a of ") + version + "\n");
    WriteFileOrDie(root_ + "/" + version + "/sub/b.csv", std::string("b of ") + version + "\n");
    v1::RegisterVersionRequest request;
    request.set_dataset("ds");
    request.set_version(version);
    request.set_path(root_ + "/" + version);
    absl::StatusOr<v1::RegisterResult> registered = versions->Register(request, {});
    if (!registered.ok()) {
      ADD_FAILURE() << registered.status();
      std::abort();
    }
  }
  std::filesystem::create_directory_symlink("v2", root_ + "/latest");
}

v1::Pin ShimTestStack::PinJob(const std::string& job, const std::string& version, uint64_t seed) {
  v1::PinRequest request;
  request.set_job(job);
  v1::VersionRef* ref = request.add_versions();
  ref->set_dataset("ds");
  ref->set_version(version);
  request.set_seed(seed);
  absl::StatusOr<v1::PinResponse> response = pins->Pin(request);
  EXPECT_TRUE(response.ok()) << response.status();
  return response.ok() ? response->pin() : v1::Pin();
}

std::vector<v1::JournalEntry> ShimTestStack::Entries(const std::string& job) {
  std::vector<v1::JournalEntry> out;
  absl::StatusOr<std::vector<StoredEntry>> stored = journal->Read(job, 0, 100000);
  if (!stored.ok()) return out;
  for (const StoredEntry& e : *stored) {
    v1::JournalEntry entry;
    EXPECT_TRUE(entry.ParseFromString(e.payload));
    out.push_back(std::move(entry));
  }
  return out;
}

bool ShimTestStack::WaitForEntries(
    const std::string& job, const std::function<bool(const std::vector<v1::JournalEntry>&)>& done,
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  do {
    if (done(Entries(job))) return true;
    absl::SleepFor(absl::Milliseconds(10));
  } while (absl::Now() < deadline);
  return done(Entries(job));
}

int CountKind(const std::vector<v1::JournalEntry>& entries, v1::JournalEntry::KindCase kind) {
  int n = 0;
  for (const v1::JournalEntry& e : entries) n += e.kind_case() == kind;
  return n;
}

}  // namespace repro::testing
