// Text output of every reply and journal entry kind. The exact strings here are what people read
// and scripts grep, so a change that breaks one of them should be deliberate.
#include "client/cli/message_text.h"

#include <sstream>
#include <string>

#include "client/cli/entry_text.h"
#include "client/cli/progress.h"
#include "gmock/gmock.h"
#include "gtest/gtest.h"

namespace repro::cli {
namespace {

using ::testing::HasSubstr;
using ::testing::Not;
using ::testing::StartsWith;

constexpr int64_t kTime = 1736330400;  // 2025-01-08T10:00:00Z

std::string Digest(char fill) { return std::string(32, fill); }

v1::VersionInfo Version() {
  v1::VersionInfo v;
  v.set_dataset("user_ctr");
  v.set_version("v20250108");
  v.set_root("/ml_data/user_ctr");
  v.set_path("/ml_data/user_ctr/v20250108");
  v.set_digest(Digest('\xab'));
  v.set_file_count(1234);
  v.set_total_bytes(12 * 1024 * 1024);
  v.mutable_registered_at()->set_seconds(kTime);
  v.set_registered_on("node-a");
  return v;
}

v1::Pin Pin() {
  v1::Pin pin;
  pin.set_job("train-42");
  v1::PinnedVersion* v = pin.add_versions();
  v->set_dataset("user_ctr");
  v->set_version("v20250108");
  v->set_digest(Digest('\xab'));
  v->set_path("/ml_data/user_ctr/v20250108");
  pin.set_seed(1234);
  pin.set_seed_derived(true);
  pin.mutable_created_at()->set_seconds(kTime);
  pin.set_created_on("node-a");
  return pin;
}

std::string Hex(char fill) {
  static const char* kHex = "0123456789abcdef";
  auto u = static_cast<unsigned char>(fill);
  std::string two = {kHex[u >> 4], kHex[u & 15]};
  std::string out;
  for (int i = 0; i < 32; ++i) out += two;
  return out;
}

TEST(MessageTextTest, RegisterResult) {
  v1::RegisterResult result;
  *result.mutable_version() = Version();
  result.set_created(true);
  result.set_files_hashed(1000);
  result.set_files_cached(234);
  result.set_bytes_hashed(10 * 1024 * 1024);
  result.set_seconds(1.5);
  EXPECT_EQ(FormatRegisterResult(result),
            "version  user_ctr@v20250108\n"
            "status   created\n"
            "digest   " +
                Hex('\xab') +
                "\n"
                "path     /ml_data/user_ctr/v20250108\n"
                "files    1234 (12.0 MiB)\n"
                "hashed   1000 files, 10.0 MiB in 1.50s; 234 from cache\n");
  result.set_created(false);
  EXPECT_THAT(FormatRegisterResult(result),
              HasSubstr("status   already registered (same content)"));
}

TEST(MessageTextTest, VersionShowHasFullDigest) {
  EXPECT_EQ(FormatVersion(Version()),
            "version     user_ctr@v20250108\n"
            "digest      " +
                Hex('\xab') +
                "\n"
                "path        /ml_data/user_ctr/v20250108\n"
                "root        /ml_data/user_ctr\n"
                "files       1234\n"
                "size        12.0 MiB (12582912 bytes)\n"
                "registered  2025-01-08T10:00:00Z on node-a\n");
}

TEST(MessageTextTest, Manifest) {
  v1::Manifest manifest;
  v1::FileEntry* a = manifest.add_files();
  a->set_path("train/part-0.parquet");
  a->set_size(2048);
  a->set_sha256(Digest('\x01'));
  v1::FileEntry* b = manifest.add_files();
  b->set_path("with space");
  b->set_size(5);
  EXPECT_EQ(FormatManifest(manifest), "SHA256" + std::string(58 + 2 + 3, ' ') + "SIZE  PATH\n" +
                                          Hex('\x01') +
                                          "  2.0 KiB  train/part-0.parquet\n"
                                          "-" +
                                          std::string(63 + 2 + 4, ' ') + "5 B  with space\n");
}

TEST(MessageTextTest, VersionListShortensDigests) {
  v1::ListVersionsResponse response;
  *response.add_versions() = Version();
  v1::VersionInfo* other = response.add_versions();
  other->set_dataset("images");
  other->set_version("v1");
  EXPECT_EQ(FormatVersionList(response),
            "DATASET   VERSION    DIGEST        FILES      SIZE  REGISTERED\n"
            "user_ctr  v20250108  abababababab   1234  12.0 MiB  2025-01-08T10:00:00Z\n"
            "images    v1         -                 0       0 B  -\n");
  EXPECT_EQ(FormatVersionList(v1::ListVersionsResponse()), "no versions registered\n");
}

TEST(MessageTextTest, PinShowAndPinResponse) {
  std::string expected =
      "job      train-42\n"
      "seed     1234 (derived)\n"
      "created  2025-01-08T10:00:00Z on node-a\n"
      "\n"
      "DATASET   VERSION    DIGEST" +
      std::string(60, ' ') +
      "PATH\n"
      "user_ctr  v20250108  " +
      Hex('\xab') + "  /ml_data/user_ctr/v20250108\n";
  EXPECT_EQ(FormatPin(Pin()), expected);

  v1::PinResponse response;
  *response.mutable_pin() = Pin();
  response.set_created(true);
  EXPECT_EQ(FormatPinResponse(response), "pinned\n" + expected);
  response.set_created(false);
  EXPECT_THAT(FormatPinResponse(response), StartsWith("already pinned (same pin"));

  v1::Pin like = Pin();
  like.set_like_job("train-41");
  like.set_seed_derived(false);
  EXPECT_THAT(FormatPin(like), HasSubstr("seed     1234\nlike     train-41\n"));
  EXPECT_THAT(FormatPin(v1::Pin()), HasSubstr("no data versions"));
}

TEST(MessageTextTest, PinList) {
  v1::ListPinsResponse response;
  *response.add_pins() = Pin();
  v1::Pin* two = response.add_pins();
  *two = Pin();
  two->set_job("j2");
  two->set_seed(7);
  *two->add_versions() = two->versions(0);
  two->mutable_versions(1)->set_dataset("images");
  EXPECT_EQ(FormatPinList(response),
            "JOB       SEED  VERSIONS                             CREATED\n"
            "train-42  1234  user_ctr@v20250108                   2025-01-08T10:00:00Z\n"
            "j2           7  user_ctr@v20250108,images@v20250108  2025-01-08T10:00:00Z\n");
  EXPECT_EQ(FormatPinList(v1::ListPinsResponse()), "no pins\n");
}

TEST(MessageTextTest, AdmitAndRecord) {
  v1::AdmitResponse yes;
  yes.set_admitted(true);
  EXPECT_EQ(FormatAdmit("j", yes), "admitted j\n");
  v1::AdmitResponse no;
  no.set_reason("job j has no pin;\nrun `reproctl pin j ...`");
  EXPECT_EQ(FormatAdmit("j", no), "refused j\n");
  EXPECT_EQ(AdmitRefusal("j", no),
            "job j would not be admitted: job j has no pin; run `reproctl pin j ...`");
  EXPECT_THAT(AdmitRefusal("j", v1::AdmitResponse()), HasSubstr("no reason"));

  v1::RecordResponse record;
  record.set_seq(17);
  EXPECT_EQ(FormatRecord("j", 2, record), "recorded 2 facts for j at seq 17\n");
  EXPECT_EQ(FormatRecord("j", 1, record), "recorded 1 fact for j at seq 17\n");
}

v1::VerifyJournalResponse GoodVerify() {
  v1::VerifyJournalResponse response;
  response.set_intact(true);
  v1::NodeJournalCheck* node = response.add_nodes();
  node->set_node("node-a");
  node->set_intact(true);
  node->set_entries(42);
  node->mutable_head()->set_seq(42);
  node->mutable_head()->set_hash(Digest('\x12'));
  return response;
}

TEST(MessageTextTest, VerifyIntact) {
  v1::VerifyJournalResponse response = GoodVerify();
  EXPECT_TRUE(VerifyPassed(response));
  EXPECT_EQ(FormatVerify("j", response),
            "job      j\n"
            "result   ok\n"
            "journal  intact\n"
            "data     not re-hashed (use --rehash)\n"
            "\n"
            "NODE    INTACT  ENTRIES  HEAD             PROBLEM\n"
            "node-a  yes          42  42 121212121212  -\n");
}

TEST(MessageTextTest, VerifyTamperedAndDrifted) {
  v1::VerifyJournalResponse response = GoodVerify();
  response.set_rehashed(true);
  response.set_files_rehashed(10);
  v1::NodeJournalCheck* broken = response.add_nodes();
  broken->set_node("node-b");
  broken->set_entries(7);
  broken->set_first_broken_seq(5);
  broken->set_problem("hash mismatch");
  v1::Drift* drift = response.add_drift();
  drift->set_dataset("user_ctr");
  drift->set_version("v1");
  drift->set_path("part 0.csv");
  drift->set_problem("content changed");
  EXPECT_FALSE(VerifyPassed(response));  // the node, even though the top-level flag says intact
  std::string text = FormatVerify("j", response);
  EXPECT_THAT(text, HasSubstr("result   TAMPERED, DRIFTED\n"));
  EXPECT_THAT(text, HasSubstr("journal  broken\n"));
  EXPECT_THAT(text, HasSubstr("data     10 files re-hashed, 1 drift\n"));
  EXPECT_THAT(text,
              HasSubstr("node-b  no            7  -                at seq 5: hash mismatch\n"));
  EXPECT_THAT(text, HasSubstr("user_ctr  v1       \"part 0.csv\"  content changed\n"));

  v1::VerifyJournalResponse drift_only = GoodVerify();
  *drift_only.add_drift() = *drift;
  EXPECT_FALSE(VerifyPassed(drift_only));
  v1::VerifyJournalResponse flag_only = GoodVerify();
  flag_only.set_intact(false);
  EXPECT_FALSE(VerifyPassed(flag_only));
}

TEST(MessageTextTest, NodeInfo) {
  v1::NodeInfo node;
  node.set_node("node-a");
  node.set_mode("embedded");
  node.set_version("0.1.0");
  node.set_data_dir("/var/lib/reprod");
  node.set_public_key(Digest('\x0f'));
  node.mutable_started_at()->set_seconds(kTime);
  node.set_versions(3);
  node.set_pins(2);
  v1::HostFacts* host = node.mutable_host();
  host->set_hostname("gpu-01");
  host->set_cpu_model("AMD EPYC");
  host->set_cpu_count(64);
  host->set_memory_bytes(uint64_t{512} << 30);
  host->set_driver_version("535.104.05");
  host->set_cuda_driver_version("12.2");
  host->set_gpu_source("nvml");
  v1::Gpu* gpu = host->add_gpus();
  gpu->set_name("NVIDIA H100 80GB HBM3");
  gpu->set_uuid("GPU-1234");
  gpu->set_memory_bytes(uint64_t{80} << 30);
  std::string text = FormatNodeInfo(node);
  EXPECT_THAT(text, StartsWith("node        node-a\nmode        embedded\n"));
  EXPECT_THAT(text, HasSubstr("public_key  " + Hex('\x0f') + "\n"));
  EXPECT_THAT(text, HasSubstr("started     2025-01-08T10:00:00Z\n"));
  EXPECT_THAT(text, HasSubstr("cpu         AMD EPYC (64 cpus)\n"));
  EXPECT_THAT(text, HasSubstr("memory      512.0 GiB\n"));
  EXPECT_THAT(text, HasSubstr("gpu0        NVIDIA H100 80GB HBM3 80.0 GiB GPU-1234\n"));
  EXPECT_THAT(text, HasSubstr("driver      535.104.05 (CUDA 12.2, from nvml)\n"));
  EXPECT_THAT(text, Not(HasSubstr("etcd")));

  node.add_etcd_endpoints("h1:2379");
  node.add_etcd_endpoints("h2:2379");
  EXPECT_THAT(FormatNodeInfo(node), HasSubstr("etcd        h1:2379,h2:2379\n"));
  // Nothing set at all: still one line per key, no crash.
  EXPECT_THAT(FormatNodeInfo(v1::NodeInfo()), HasSubstr("node        -\n"));
}

v1::JournalEntry Entry(uint64_t seq) {
  v1::JournalEntry entry;
  entry.set_job("j");
  entry.set_seq(seq);
  entry.mutable_time()->set_seconds(kTime);
  entry.mutable_time()->set_nanos(250'000'000);
  return entry;
}

TEST(EntryTextTest, LineLayout) {
  v1::JournalEntry entry = Entry(3);
  *entry.mutable_pin_applied()->mutable_pin() = Pin();
  EXPECT_EQ(FormatJournalLine(entry),
            "     3  2025-01-08T10:00:00.250Z  pin_applied         user_ctr@v20250108 seed=1234 "
            "derived");
  EXPECT_EQ(EntryKindName(entry), "pin_applied");
}

TEST(EntryTextTest, EveryKind) {
  v1::JournalEntry e = Entry(1);

  *e.mutable_version_registered()->mutable_version() = Version();
  EXPECT_EQ(EntryKindName(e), "version_registered");
  EXPECT_EQ(SummarizeEntry(e), "user_ctr@v20250108 digest=abababababab files=1234 size=12.0MiB");

  v1::Fact* fact = e.mutable_record()->add_facts();
  fact->set_key("git/commit");
  fact->set_value("abc123");
  fact = e.mutable_record()->add_facts();
  fact->set_key("note");
  fact->set_value("two words");
  EXPECT_EQ(EntryKindName(e), "record");
  EXPECT_EQ(SummarizeEntry(e), "git/commit=abc123 note=\"two words\"");

  v1::ProcessStart* p = e.mutable_process_start();
  p->set_pid(4242);
  p->set_rank(1);
  p->set_rank_seed(99);
  p->set_mode("enforce");
  p->set_exe("/usr/bin/python3.11");
  p->add_argv("python3");
  p->add_argv("train.py");
  EXPECT_EQ(EntryKindName(e), "process_start");
  EXPECT_EQ(SummarizeEntry(e),
            "pid=4242 rank=1 rank_seed=99 mode=enforce exe=/usr/bin/python3.11 "
            "argv=\"python3 train.py\"");
  p->set_parent_pid(4000);
  p->add_argv(std::string(300, 'x'));
  EXPECT_THAT(SummarizeEntry(e), HasSubstr("parent_pid=4000"));
  EXPECT_THAT(SummarizeEntry(e), HasSubstr("...\""));
  EXPECT_LT(SummarizeEntry(e).size(), 300u);

  v1::DataOpen* o = e.mutable_data_open();
  o->set_dataset("user_ctr");
  o->set_version("v1");
  o->set_requested_path("/ml/user_ctr/latest/part-0");
  o->set_opened_path("/ml/user_ctr/v1/part-0");
  o->set_relative_path("part-0");
  o->set_size(4096);
  o->set_sha256(Digest('\x01'));
  o->set_rank(0);
  o->set_pid(4242);
  o->set_verdict(v1::VERDICT_MATCH);
  o->set_redirected(true);
  EXPECT_EQ(EntryKindName(e), "data_open");
  EXPECT_EQ(SummarizeEntry(e),
            "match user_ctr@v1 part-0 rank=0 pid=4242 size=4.0KiB sha256=010101010101 "
            "from=/ml/user_ctr/latest/part-0");

  v1::Violation* v = e.mutable_violation();
  v->set_verdict(v1::VERDICT_OTHER_VERSION);
  v->set_path("/ml/user_ctr/v2/part-0");
  v->set_dataset("user_ctr");
  v->set_pinned_version("v1");
  v->set_detail("pinned to v1");
  v->set_pid(4242);
  v->set_refused(true);
  EXPECT_EQ(EntryKindName(e), "violation");
  EXPECT_EQ(SummarizeEntry(e),
            "other_version refused path=/ml/user_ctr/v2/part-0 dataset=user_ctr pinned=v1 rank=0 "
            "pid=4242 detail=\"pinned to v1\"");

  v1::LibrariesLoaded* libs = e.mutable_libraries();
  libs->set_pid(4242);
  for (int i = 0; i < 7; ++i) {
    v1::Library* lib = libs->add_libraries();
    lib->set_path("/usr/lib/x86_64-linux-gnu/libfoo" + std::to_string(i) + ".so");
    if (i == 0) {
      lib->set_soname("libc.so.6");
      lib->set_version("2.36");
    }
  }
  EXPECT_EQ(EntryKindName(e), "libraries");
  EXPECT_EQ(SummarizeEntry(e),
            "pid=4242 rank=0 count=7 libc.so.6@2.36 libfoo1.so libfoo2.so libfoo3.so libfoo4.so "
            "+2 more");

  v1::HostFacts* h = e.mutable_host();
  h->set_hostname("gpu-01");
  for (int i = 0; i < 8; ++i) h->add_gpus()->set_name("NVIDIA H100");
  h->set_driver_version("535.104.05");
  h->set_cuda_driver_version("12.2");
  h->set_kernel_release("6.1.0-18-amd64");
  h->set_cpu_count(64);
  EXPECT_EQ(EntryKindName(e), "host");
  EXPECT_EQ(SummarizeEntry(e),
            "hostname=gpu-01 gpus=\"8x NVIDIA H100\" driver=535.104.05 cuda=12.2 "
            "kernel=6.1.0-18-amd64 cpus=64");

  v1::PythonPackages* py = e.mutable_python_packages();
  py->set_pid(4242);
  py->set_rank(2);
  v1::PythonPackage* numpy = py->add_packages();
  numpy->set_name("numpy");
  numpy->set_version("1.24.2");
  EXPECT_EQ(EntryKindName(e), "python_packages");
  EXPECT_EQ(SummarizeEntry(e), "pid=4242 rank=2 count=1 numpy==1.24.2");
}

TEST(EntryTextTest, UnknownKindAndEmptyFields) {
  v1::JournalEntry e = Entry(9);
  EXPECT_EQ(EntryKindName(e), "unknown");
  EXPECT_THAT(FormatJournalLine(e), HasSubstr("unknown"));
  e.mutable_host();
  EXPECT_EQ(SummarizeEntry(e), "gpus=none");
  e.mutable_data_open()->set_verdict(static_cast<v1::Verdict>(77));  // newer server
  EXPECT_THAT(SummarizeEntry(e), StartsWith("verdict_77 @ "));
  EXPECT_EQ(FormatJournalLine(v1::JournalEntry()).substr(0, 34),
            "     0  -                         ");
}

TEST(ProgressTest, Format) {
  v1::RegisterProgress p;
  p.set_files_done(120);
  p.set_bytes_done(uint64_t{200} << 20);
  p.set_files_cached(100);
  EXPECT_EQ(FormatProgress(p, absl::Seconds(2)),
            "hashing  120/? files  200.0 MiB/?  100.0 MiB/s  100 cached");
  p.set_files_total(1234);
  p.set_bytes_total(uint64_t{1} << 30);
  EXPECT_EQ(FormatProgress(p, absl::ZeroDuration()),
            "hashing  120/1234 files  200.0 MiB/1.0 GiB  -  100 cached");
}

TEST(ProgressTest, RedrawsInPlaceThrottledAndClears) {
  std::ostringstream out;
  absl::Time t0 = absl::FromUnixSeconds(1000);
  ProgressLine line(&out, t0 - absl::Seconds(1));
  v1::RegisterProgress p;
  p.set_files_total(10);
  p.set_files_done(1);
  line.Update(p, t0);
  std::string first = out.str();
  EXPECT_EQ(first, "\rhashing  1/10 files  0 B/?  0 B/s  0 cached");
  p.set_files_done(2);
  line.Update(p, t0 + absl::Milliseconds(10));  // too soon: not drawn
  EXPECT_EQ(out.str(), first);
  p.set_files_done(10);
  line.Update(p, t0 + absl::Seconds(1));
  EXPECT_THAT(out.str().substr(first.size()), StartsWith("\rhashing  10/10 files"));
  line.Clear();
  std::string all = out.str();
  EXPECT_EQ(all.back(), '\r');
  EXPECT_EQ(all.find('\n'), std::string::npos);

  std::ostringstream quiet;
  ProgressLine unused(&quiet, t0);
  unused.Clear();
  EXPECT_EQ(quiet.str(), "");
}

}  // namespace
}  // namespace repro::cli
