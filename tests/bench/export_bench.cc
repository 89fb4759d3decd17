// `reproctl export` of a job whose journal holds 100,000 data-open entries, per format: wall time
// of the whole command (Replay and VerifyJournal over gRPC, summarizing, printing) and the size of
// what it prints, each as a ratio to the `repro` format measured in the same run. The journal is
// written with reprod's own Journal engine and node key before reprod starts on it.
//
//   export_bench [--opens=100000] [--runs=3]
#include <cstdio>
#include <string>
#include <vector>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "common/sha256.h"
#include "daemon/store/journal.h"
#include "daemon/store/node_key.h"
#include "daemon/store/rocks_store.h"
#include "tests/bench/bench_util.h"
#include "tests/testutil/reprod_process.h"
#include "tests/testutil/temp_dir.h"

ABSL_FLAG(int, opens, 100000, "data-open entries in the job's journal");
ABSL_FLAG(int, runs, 3, "exports per format (the fastest counts)");

namespace repro::bench {
namespace {

constexpr char kJob[] = "bench";
constexpr int kBatch = 1000;

// Appends `opens` distinct data-open entries for kJob (plus one process start) to the journal in
// `data_dir`, signed with the key reprod will load from there. False on failure.
bool WriteJournal(const std::string& data_dir, const std::string& node, int opens) {
  auto store = RocksStore::Open({.data_dir = data_dir});
  auto key = NodeKey::LoadOrCreate(data_dir + "/node_key.pem");
  if (!store.ok() || !key.ok()) return false;
  Journal journal(store->get(), {.node = node, .key = key->get()});
  JournalItem start;
  start.entry.mutable_process_start()->set_pid(4242);
  start.entry.mutable_process_start()->set_exe("/usr/bin/python3.11");
  if (!journal.Append(kJob, {std::move(start)}).ok()) return false;
  for (int base = 0; base < opens; base += kBatch) {
    std::vector<JournalItem> items;
    for (int i = base; i < base + kBatch && i < opens; ++i) {
      JournalItem item;
      v1::DataOpen* open = item.entry.mutable_data_open();
      open->set_dataset("ds");
      open->set_version("v1");
      open->set_relative_path(absl::StrCat("shard-", i / 1000, "/part-", i, ".parquet"));
      open->set_opened_path(absl::StrCat("/ml/ds/v1/", open->relative_path()));
      open->set_requested_path(absl::StrCat("/ml/ds/latest/", open->relative_path()));
      open->set_size(1 << 20);
      open->set_sha256(Sha256Of(open->relative_path()));
      open->set_verdict(v1::VERDICT_MATCH);
      open->set_rank(i % 8);
      open->set_pid(4242);
      items.push_back(std::move(item));
    }
    if (!journal.Append(kJob, std::move(items)).ok()) return false;
  }
  return true;
}

}  // namespace

int Main() {
  const int opens = absl::GetFlag(FLAGS_opens);
  const int runs = absl::GetFlag(FLAGS_runs);
  testing::TempDir dir;
  testing::ReprodOptions options;
  options.extra_flags = {"--log_level=warn"};
  testing::ReprodProcess reprod(dir.Path("node"), options);
  double write_s = TimeSeconds([&] {
    if (!WriteJournal(reprod.data_dir(), options.node_name, opens)) exit(1);
  });
  testing::WriteFileOrDie(dir.Path("ml/ds/v1/a"), "a");
  if (!reprod.Start().ok() ||
      reprod.Ctl({"version", "add", "ds", "v1", dir.Path("ml/ds/v1")}).exit_code != 0 ||
      reprod.Ctl({"pin", kJob, "ds@v1"}).exit_code != 0) {
    return 1;
  }
  printf("export_bench: job with %d data-open entries (journal written in %.1f s), best of %d\n",
         opens, write_s, runs);
  struct Format {
    std::string name;
    std::vector<std::string> flags;
  };
  const std::vector<Format> formats = {
      {"repro", {}},
      {"in-toto", {"--format", "in-toto"}},
      {"runtime-trace", {"--format", "runtime-trace"}},
      {"openlineage", {"--format", "openlineage"}},
      {"in-toto --sign", {"--format", "in-toto", "--sign"}},
      {"runtime-trace --sign", {"--format", "runtime-trace", "--sign"}},
  };
  double base_s = 0, base_bytes = 0;
  for (const Format& format : formats) {
    std::vector<std::string> args = {"export", kJob};
    args.insert(args.end(), format.flags.begin(), format.flags.end());
    double best = 1e30;
    size_t bytes = 0;
    for (int r = 0; r < runs; ++r) {
      testing::RunResult result;
      double s = TimeSeconds([&] { result = reprod.Ctl(args); });
      if (result.exit_code != 0) {
        fprintf(stderr, "export %s failed: %s\n", format.name.c_str(), result.stderr_text.c_str());
        return 1;
      }
      best = std::min(best, s);
      bytes = result.stdout_text.size();
    }
    if (base_s == 0) {
      base_s = best;
      base_bytes = static_cast<double>(bytes);
    }
    Report(absl::StrCat("export --format ", format.name, ": time"), best, "s", base_s, "repro");
    Report(absl::StrCat("export --format ", format.name, ": size"),
           static_cast<double>(bytes) / (1 << 20), "MiB", base_bytes / (1 << 20), "repro");
  }
  return 0;
}

}  // namespace repro::bench
