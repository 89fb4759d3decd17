// The verdict index: built by reprod, read by the shim's C lookup through a fresh read-only
// mapping, as the shim maps it. A 1M-file index answers after touching a few of its pages.
#include "daemon/shim_socket/verdict_index.h"

#include <fcntl.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include <fstream>
#include <string>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/numbers.h"
#include "absl/strings/str_cat.h"
#include "gtest/gtest.h"
#include "proto/shim/shim_index.h"

namespace repro {
namespace {

VerdictIndexEntry Entry(int i) {
  VerdictIndexEntry e;
  e.path = absl::StrCat("/ml/ds/v1/shard-", i / 1000, "/part-", i, ".bin");
  e.stat.device = 2049;
  e.stat.inode = 1000000 + i;
  e.stat.size = 4096 + i;
  e.stat.mtime_ns = 1700000000000000000ll + i;
  e.stat.ctime_ns = 1700000000000000001ll + i;
  e.sha256 = std::string(32, static_cast<char>(i));
  return e;
}

const repro_shim_index_slot* Find(const uint8_t* map, const std::string& path) {
  return repro_shim_index_find(map, path.data(), path.size());
}

// Resident set of this process, in KiB (shared mappings count once touched).
long RssKib() {
  std::ifstream status("/proc/self/status");
  for (std::string line; std::getline(status, line);) {
    if (line.rfind("VmRSS:", 0) == 0) {
      long kib = 0;
      (void)absl::SimpleAtoi(absl::StripAsciiWhitespace(line.substr(6, line.size() - 9)), &kib);
      return kib;
    }
  }
  return -1;
}

TEST(VerdictIndexTest, FindsEntriesAndTheirIdentity) {
  std::vector<VerdictIndexEntry> entries;
  for (int i = 0; i < 1000; ++i) entries.push_back(Entry(i));
  auto index = VerdictIndex::Build(entries);
  ASSERT_TRUE(index.ok()) << index.status();
  void* map = mmap(nullptr, (*index)->size(), PROT_READ, MAP_SHARED, (*index)->fd(), 0);
  ASSERT_NE(map, MAP_FAILED);
  const auto* bytes = static_cast<const uint8_t*>(map);
  ASSERT_TRUE(repro_shim_index_valid(bytes, (*index)->size()));
  for (int i : {0, 1, 499, 999}) {
    const VerdictIndexEntry e = Entry(i);
    const repro_shim_index_slot* s = Find(bytes, e.path);
    ASSERT_NE(s, nullptr) << e.path;
    EXPECT_TRUE(repro_shim_index_same(s, e.stat.device, e.stat.inode, e.stat.size, e.stat.mtime_ns,
                                      e.stat.ctime_ns));
    // A write moves ctime, even when size and mtime are put back.
    EXPECT_FALSE(repro_shim_index_same(s, e.stat.device, e.stat.inode, e.stat.size, e.stat.mtime_ns,
                                       e.stat.ctime_ns + 1));
    EXPECT_EQ(std::string(reinterpret_cast<const char*>(s->sha256), 32), e.sha256);
  }
  EXPECT_EQ(Find(bytes, "/ml/ds/v1/shard-0/part-1000.bin"), nullptr);
  EXPECT_EQ(Find(bytes, "/ml/ds/v1/shard-0/part-1.bi"), nullptr);
  munmap(map, (*index)->size());
}

TEST(VerdictIndexTest, IsSealedAgainstWritesAndResizing) {
  auto index = VerdictIndex::Build({Entry(1)});
  ASSERT_TRUE(index.ok());
  EXPECT_EQ(mmap(nullptr, (*index)->size(), PROT_READ | PROT_WRITE, MAP_SHARED, (*index)->fd(), 0),
            MAP_FAILED);
  EXPECT_NE(ftruncate((*index)->fd(), 0), 0);
  EXPECT_NE(pwrite((*index)->fd(), "x", 1, 0), 1);
}

TEST(VerdictIndexTest, AMillionFileIndexAnswersWithoutBeingReadWhole) {
  constexpr int kFiles = 1000000;
  std::unique_ptr<VerdictIndex> index;
  {
    std::vector<VerdictIndexEntry> entries;
    entries.reserve(kFiles);
    for (int i = 0; i < kFiles; ++i) entries.push_back(Entry(i));
    auto built = VerdictIndex::Build(entries);
    ASSERT_TRUE(built.ok()) << built.status();
    index = *std::move(built);
  }
  ASSERT_GT(index->size(), 100u << 20);  // well over 100 MiB
  const long before = RssKib();
  void* map = mmap(nullptr, index->size(), PROT_READ, MAP_SHARED, index->fd(), 0);
  ASSERT_NE(map, MAP_FAILED);
  const auto* bytes = static_cast<const uint8_t*>(map);
  ASSERT_TRUE(repro_shim_index_valid(bytes, index->size()));
  for (int i = 0; i < kFiles; i += kFiles / 100) {
    const VerdictIndexEntry e = Entry(i);
    const repro_shim_index_slot* s = Find(bytes, e.path);
    ASSERT_NE(s, nullptr) << e.path;
    EXPECT_EQ(s->inode, e.stat.inode);
  }
  EXPECT_EQ(Find(bytes, "/ml/ds/v1/not-there"), nullptr);
  // 101 lookups touch a slot and a path each; with the kernel's fault-around (up to 64 KiB mapped
  // per fault) that is at most ~13 MiB, far below the index's ~225 MiB.
  const long touched = RssKib() - before;
  EXPECT_LT(touched, static_cast<long>(index->size() >> 10) / 8)
      << "KiB resident after the lookups, of " << (index->size() >> 10);
  munmap(map, index->size());
}

}  // namespace
}  // namespace repro
