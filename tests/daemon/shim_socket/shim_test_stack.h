// The parts of reprod the shim socket works with, for its tests: a RocksDB store, journal, hash
// cache, version and pin registries on a temporary directory, with a dataset "ds" whose versions
// v1 and v2 are registered (files a.csv and sub/b.csv; root/latest -> v2).
//
//   ShimTestStack stack;
//   stack.PinJob("job-1", "v1");
//   DataChecker checker(stack.versions.get(), DefaultFileSystem(), stack.cache.get());
//   std::vector<v1::JournalEntry> entries = stack.Entries("job-1");
#ifndef REPRO_TESTS_DAEMON_SHIM_SOCKET_SHIM_TEST_STACK_H_
#define REPRO_TESTS_DAEMON_SHIM_SOCKET_SHIM_TEST_STACK_H_

#include <functional>
#include <memory>
#include <string>
#include <vector>

#include "absl/time/time.h"
#include "daemon/hashing/hash_cache.h"
#include "daemon/hashing/tree_hasher.h"
#include "daemon/pin_store/rocks_pin_store.h"
#include "daemon/registry/pin_registry.h"
#include "daemon/registry/version_registry.h"
#include "daemon/store/journal.h"
#include "daemon/store/node_key.h"
#include "daemon/store/rocks_store.h"
#include "tests/testutil/temp_dir.h"

namespace repro::testing {

class ShimTestStack {
 public:
  ShimTestStack();

  // The canonical dataset root (its versions are root()/v1 and root()/v2).
  const std::string& root() const { return root_; }
  // Pins `job` to ds@`version` with `seed`; fails the test on error.
  v1::Pin PinJob(const std::string& job, const std::string& version = "v1", uint64_t seed = 7);
  // Every journal entry of `job` on this node, oldest first.
  std::vector<v1::JournalEntry> Entries(const std::string& job);
  // Polls Entries(job) until `done` holds (true) or `timeout` passes (false).
  bool WaitForEntries(const std::string& job,
                      const std::function<bool(const std::vector<v1::JournalEntry>&)>& done,
                      absl::Duration timeout = absl::Seconds(10));

  TempDir dir;
  std::unique_ptr<RocksStore> store;
  std::unique_ptr<NodeKey> key;
  std::unique_ptr<Journal> journal;
  std::unique_ptr<HashCache> cache;
  std::unique_ptr<TreeHasher> hasher;
  std::unique_ptr<RocksPinStore> pin_store;
  std::unique_ptr<VersionRegistry> versions;
  std::unique_ptr<PinRegistry> pins;

 private:
  std::string root_;
};

// Number of entries of `kind` (a JournalEntry::KindCase) in `entries`.
int CountKind(const std::vector<v1::JournalEntry>& entries, v1::JournalEntry::KindCase kind);

}  // namespace repro::testing

#endif  // REPRO_TESTS_DAEMON_SHIM_SOCKET_SHIM_TEST_STACK_H_
