#include "tests/client/shim/shim_job.h"

#include <filesystem>
#include <fstream>
#include <iterator>

#include <grpcpp/grpcpp.h>

#include "absl/strings/str_cat.h"
#include "absl/strings/match.h"
#include "absl/time/clock.h"
#include "tests/testutil/http_client.h"

namespace repro::testing {

const std::vector<std::string>& ShimJobTest::Files() {
  static const std::vector<std::string>* const kFiles =
      new std::vector<std::string>{"a.csv", "sub/b.csv", "sub/deep/c.csv", "x.bin", "y.bin"};
  return *kFiles;
}

std::string ShimJobTest::Content(const std::string& version, const std::string& file) {
  if (absl::EndsWith(file, ".bin")) {
    // Binary content of 4 KiB, different per version and file.
    std::string bytes(4096, '\0');
    for (size_t i = 0; i < bytes.size(); ++i) {
      bytes[i] = static_cast<char>((i * 7 + file.size() * 13 + version.back()) & 0xff);
    }
    return bytes;
  }
  return absl::StrCat(file, " of ", version, "\n");
}

void ShimJobTest::SetUp() {
  root_ = std::filesystem::canonical(dir_.path()).string() + "/ml/ds";
  work_ = std::filesystem::canonical(dir_.path()).string() + "/work";
  std::filesystem::create_directories(work_);
  for (const std::string version : {"v1", "v2"}) {
    for (const std::string& file : Files()) {
      WriteFileOrDie(absl::StrCat(root_, "/", version, "/", file), Content(version, file));
    }
  }
  std::filesystem::create_directory_symlink("v2", root_ + "/latest");
  // A port PickFreePort gave (ReprodFlags) may be taken by a test running beside this one before
  // reprod binds it: then reprod starts again on new ports.
  absl::Status started;
  for (int attempt = 0; attempt < 3; ++attempt) {
    ReprodOptions options;
    options.extra_flags = ReprodFlags();
    reprod_ = std::make_unique<ReprodProcess>(dir_.Path("node"), options);
    started = reprod_->Start();
    if (started.ok() || !absl::StrContains(started.message(), "Address already in use")) break;
  }
  ASSERT_TRUE(started.ok()) << started << "\n" << reprod_->log();
  for (const std::string version : {"v1", "v2"}) {
    RunResult r = reprod_->Ctl({"version", "add", "ds", version, root_ + "/" + version});
    ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
  }
}

void ShimJobTest::Pin(const std::string& job, const std::string& version) {
  RunResult r = reprod_->Ctl({"pin", job, "ds@" + version, "--seed", "1234"});
  ASSERT_EQ(r.exit_code, 0) << r.stderr_text;
}

std::map<std::string, std::string> ShimJobTest::JobEnv(const std::string& job,
                                                       const std::string& mode) {
  return {{"LD_PRELOAD", LibPath("libreproshim.so")},
          {"REPRO_JOB", job},
          {"REPRO_MODE", mode},
          {"REPRO_SHIM_SOCKET", reprod_->shim_socket()}};
}

RunResult ShimJobTest::RunAs(const std::string& job, const std::string& mode,
                             const std::vector<std::string>& argv,
                             const std::map<std::string, std::string>& extra,
                             const std::string& cwd) {
  RunOptions options;
  options.env = JobEnv(job, mode);
  for (const auto& [key, value] : extra) options.env[key] = value;
  options.unset_env = {"REPRO_PINNED", "REPRO_RANK_SEED", "RANK", "REPRO_RANK"};
  options.cwd = cwd.empty() ? work_ : cwd;
  return RunCommand(argv, options);
}

std::vector<std::string> ShimJobTest::MetricsFlags() {
  metrics_port_ = PickFreePort();
  return {absl::StrCat("--metrics_listen=127.0.0.1:", metrics_port_)};
}

std::string ShimJobTest::Metrics() {
  absl::StatusOr<HttpTestResponse> response =
      HttpFetch({.port = metrics_port_}, "GET", "/metrics");
  EXPECT_TRUE(response.ok()) << response.status();
  return response.ok() ? response->body : "";
}

void ShimJobTest::WaitForMetric(const std::string& line) {
  const absl::Time deadline = absl::Now() + absl::Seconds(30);
  while (absl::Now() < deadline) {
    if (absl::StrContains(Metrics(), line)) return;
    absl::SleepFor(absl::Milliseconds(100));
  }
  ADD_FAILURE() << "no \"" << line << "\" in\n" << Metrics();
}

std::string ShimJobTest::Script(const std::string& name, const std::string& code) {
  std::string path = absl::StrCat(work_, "/", name);
  std::ofstream(path) << code;
  return path;
}

std::vector<v1::JournalEntry> ShimJobTest::Journal(const std::string& job, uint64_t since_seq) {
  std::unique_ptr<v1::Repro::Stub> stub = reprod_->NewStub();
  v1::ReplayRequest request;
  request.set_job(job);
  request.set_since_seq(since_seq);
  request.set_local_only(true);
  grpc::ClientContext context;
  auto reader = stub->Replay(&context, request);
  std::vector<v1::JournalEntry> entries;
  v1::ReplayResponse response;
  while (reader->Read(&response)) entries.push_back(response.entry());
  reader->Finish();
  return entries;
}

std::vector<v1::JournalEntry> ShimJobTest::WaitForJournal(
    const std::string& job, const std::function<bool(const std::vector<v1::JournalEntry>&)>& done,
    absl::Duration timeout) {
  const absl::Time deadline = absl::Now() + timeout;
  std::vector<v1::JournalEntry> entries = Journal(job);
  while (!done(entries) && absl::Now() < deadline) {
    absl::SleepFor(absl::Milliseconds(50));
    // Only what was appended since: a long journal is read once, not at every look.
    std::vector<v1::JournalEntry> newer = Journal(job, entries.empty() ? 0 : entries.back().seq());
    entries.insert(entries.end(), std::make_move_iterator(newer.begin()),
                   std::make_move_iterator(newer.end()));
  }
  EXPECT_TRUE(done(entries)) << "journal of " << job << " (" << entries.size()
                             << " entries) never got there";
  return entries;
}

std::map<std::string, v1::DataOpen> ShimJobTest::WaitForOpens(const std::string& job,
                                                              size_t count) {
  auto opens = [](const std::vector<v1::JournalEntry>& entries) {
    size_t n = 0;
    for (const v1::JournalEntry& e : entries) n += e.has_data_open();
    return n;
  };
  std::vector<v1::JournalEntry> entries =
      WaitForJournal(job, [&](const auto& e) { return opens(e) >= count; });
  std::map<std::string, v1::DataOpen> out;
  for (const v1::JournalEntry& e : entries) {
    if (!e.has_data_open()) continue;
    const v1::DataOpen& o = e.data_open();
    std::string key = o.version() == "v1" ? o.relative_path()
                                          : absl::StrCat(o.version(), "/", o.relative_path());
    EXPECT_TRUE(out.emplace(key, o).second) << key << " journaled twice for " << job;
  }
  return out;
}

std::vector<v1::Violation> ShimJobTest::WaitForViolations(const std::string& job, size_t count) {
  std::vector<v1::JournalEntry> entries = WaitForJournal(job, [&](const auto& entries) {
    size_t n = 0;
    for (const v1::JournalEntry& e : entries) n += e.has_violation();
    return n >= count;
  });
  std::vector<v1::Violation> out;
  for (const v1::JournalEntry& e : entries) {
    if (e.has_violation()) out.push_back(e.violation());
  }
  return out;
}

std::vector<v1::ProcessStart> ShimJobTest::Starts(const std::string& job) {
  std::vector<v1::ProcessStart> out;
  for (const v1::JournalEntry& e : Journal(job)) {
    if (e.has_process_start()) out.push_back(e.process_start());
  }
  return out;
}

}  // namespace repro::testing
