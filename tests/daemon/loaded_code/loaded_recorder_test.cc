// The recorder journals reports in the background, once per job and library, drains its queue on
// Stop, and drops (and counts) what does not fit in its queue.
#include "daemon/loaded_code/loaded_recorder.h"

#include <gnu/libc-version.h>
#include <unistd.h>

#include <string>

#include "gmock/gmock.h"
#include "gtest/gtest.h"
#include "tests/daemon/shim_socket/shim_test_stack.h"
#include "tests/testutil/system_runtime.h"

namespace repro {
namespace {

using testing::CountKind;
using ::testing::HasSubstr;
using testing::LoadedLibraryPath;
using testing::ShimTestStack;

class LoadedRecorderTest : public ::testing::Test {
 protected:
  LoadedRecorderTest()
      : parts_{.journal = stack_.journal.get(),
               .fs = DefaultFileSystem(),
               .hash_cache = stack_.cache.get(),
               .metrics = &metrics_} {}

  static LoadedSource Source(pid_t pid) {
    return {.job = "job-1", .pid = pid, .uid = getuid(), .gid = getgid(), .rank = 0};
  }

  static LoadedReport Libc() {
    LoadedReport loaded;
    loaded.libraries = {LoadedLibraryPath("libc.so.6")};
    loaded.libc_version = gnu_get_libc_version();
    return loaded;
  }

  std::vector<v1::JournalEntry> Journaled() {
    stack_.journal->FlushAsync();
    return stack_.Entries("job-1");
  }

  ShimTestStack stack_;
  Metrics metrics_;
  LoadedRecorderParts parts_;
};

TEST_F(LoadedRecorderTest, JournalsEachLibraryOncePerJob) {
  LoadedRecorder recorder(parts_);
  for (pid_t pid : {100, 101, 102}) EXPECT_TRUE(recorder.Record(Source(pid), Libc()));
  recorder.Flush();
  std::vector<v1::JournalEntry> entries = Journaled();
  ASSERT_EQ(CountKind(entries, v1::JournalEntry::kLibraries), 1);
  EXPECT_EQ(entries[0].libraries().pid(), 100);  // the first report's process
  EXPECT_EQ(entries[0].libraries().libraries(0).soname(), "libc.so.6");
  EXPECT_EQ(entries[0].libraries().libraries(0).version(), gnu_get_libc_version());
  EXPECT_THAT(metrics_.RenderPrometheus(), HasSubstr("repro_shim_loaded_reports_total 3"));
}

TEST_F(LoadedRecorderTest, StopJournalsWhatWasQueued) {
  auto recorder = std::make_unique<LoadedRecorder>(parts_);
  LoadedReport libraries = Libc();
  libraries.libraries.push_back(LoadedLibraryPath("libz.so.1"));
  libraries.libraries.push_back(LoadedLibraryPath("libstdc++.so.6"));
  for (pid_t pid = 100; pid < 120; ++pid) ASSERT_TRUE(recorder->Record(Source(pid), libraries));
  recorder->Stop();
  EXPECT_FALSE(recorder->Record(Source(200), Libc()));  // stopped: dropped
  EXPECT_EQ(CountKind(Journaled(), v1::JournalEntry::kLibraries), 3);
  EXPECT_THAT(metrics_.RenderPrometheus(), HasSubstr("repro_shim_loaded_dropped_total 1"));
}

TEST_F(LoadedRecorderTest, AFullQueueDropsReports) {
  LoadedRecorder recorder(parts_, {.max_queued = 0});
  EXPECT_FALSE(recorder.Record(Source(100), Libc()));
  recorder.Flush();
  EXPECT_EQ(CountKind(Journaled(), v1::JournalEntry::kLibraries), 0);
  EXPECT_THAT(metrics_.RenderPrometheus(), HasSubstr("repro_shim_loaded_dropped_total 1"));
}

TEST_F(LoadedRecorderTest, CountsWhatItSkips) {
  LoadedRecorder recorder(parts_);
  LoadedReport loaded;
  loaded.libraries = {"/nonexistent/libx.so.1"};
  loaded.package_dirs = {"/nonexistent/site-packages/foo"};
  ASSERT_TRUE(recorder.Record(Source(100), loaded));
  recorder.Flush();
  std::string rendered = metrics_.RenderPrometheus();
  EXPECT_THAT(rendered, HasSubstr("repro_shim_loaded_skipped_total{what=\"library\"} 1"));
  EXPECT_THAT(rendered, HasSubstr("repro_shim_loaded_skipped_total{what=\"package\"} 1"));
}

}  // namespace
}  // namespace repro
