// fuzz_make_seeds DIR: writes the seed inputs of tests/fuzz/corpus/ into DIR/<target>/, made with
// the same helpers and encoders as the tests (AdmissionReviews of TrainingPod/TrainingJob, stored
// journal entries and a signed head, manifest chunks). Not part of any test; rerun it when a
// format changes:  build/bin/fuzz_make_seeds tests/fuzz/corpus
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <string>
#include <vector>

#include "daemon/pin_store/manifest_chunks.h"
#include "daemon/shim_socket/shim_message.h"
#include "daemon/store/chain.h"
#include "daemon/store/node_key.h"
#include "google/protobuf/text_format.h"
#include "proto/shim/shim_ring.h"
#include "repro/v1/journal.pb.h"
#include "tests/testutil/admission_reviews.h"

namespace {

namespace fs = std::filesystem;

void Write(const fs::path& dir, const std::string& name, const std::string& bytes) {
  fs::create_directories(dir);
  std::ofstream(dir / name, std::ios::binary) << bytes;
}

void HttpSeeds(const fs::path& dir) {
  Write(dir, "get", "GET /metrics HTTP/1.1\r\nHost: localhost\r\n\r\n");
  Write(dir, "post", "POST /validate?timeout=10s HTTP/1.1\r\nHost: x\r\nContent-Type: "
                     "application/json\r\nContent-Length: 2\r\n\r\n{}");
  Write(dir, "http10_lf", "GET / HTTP/1.0\nConnection: keep-alive\n\n");
  Write(dir, "expect", "POST /echo HTTP/1.1\r\nExpect: 100-continue\r\nContent-Length: 5\r\n\r\n");
  Write(dir, "chunked", "POST /echo HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n");
  Write(dir, "folded", "GET / HTTP/1.1\r\nA: b\r\n c\r\n\r\n");
  Write(dir, "two_lengths", "POST / HTTP/1.1\r\nContent-Length: 1\r\nContent-Length: 2\r\n\r\n");
}

void AdmissionSeeds(const fs::path& dir) {
  using namespace repro::testing;
  Write(dir, "pod", AdmissionReviewFor(TrainingPod("train-42"), "uid-1").dump());
  Write(dir, "pod_unpinned", AdmissionReviewFor(TrainingPod("train-7"), "uid-2").dump());
  Write(dir, "pod_unlabelled", AdmissionReviewFor(TrainingPod(""), "uid-3").dump());
  Write(dir, "job", AdmissionReviewFor(TrainingJob("train-42"), "uid-4").dump());
  Write(dir, "update", AdmissionReviewFor(TrainingPod("train-42"), "uid-5", "UPDATE").dump());
}

void JournalSeeds(const fs::path& dir) {
  const std::vector<std::string> entries = {
      R"(job: "train-42" seq: 1 node: "n1" time { seconds: 1700000000 }
         record { facts { key: "commit" value: "abc" } })",
      R"(job: "train-42" seq: 2 node: "n1" process_start { pid: 7 uid: 1000 exe: "/usr/bin/python3"
         argv: "python3" argv: "train.py" mode: "enforce" })",
      R"(job: "train-42" seq: 3 node: "n1" data_open { dataset: "ctr" version: "v1"
         requested_path: "/ml/ctr/latest/a" opened_path: "/ml/ctr/v1/a" relative_path: "a"
         size: 3 redirected: true })",
      R"(job: "train-42" seq: 4 node: "n1" violation { path: "/ml/ctr/v2/a" dataset: "ctr"
         pinned_version: "v1" refused: true })",
      R"(job: "train-42" seq: 5 node: "n1" libraries { libraries { path: "/lib/libc.so.6"
         soname: "libc.so.6" version: "2.36" } pid: 7 })",
      R"(job: "train-42" seq: 6 node: "n1" python_packages { packages { name: "numpy"
         version: "1.24" } })",
  };
  std::string hash = repro::GenesisHash();
  for (size_t i = 0; i < entries.size(); ++i) {
    repro::v1::JournalEntry entry;
    if (!google::protobuf::TextFormat::ParseFromString(entries[i], &entry)) std::abort();
    std::string payload = entry.SerializeAsString();
    hash = repro::ChainHash(hash, payload);
    Write(dir, "entry" + std::to_string(i + 1), repro::EncodeStoredEntry(hash, payload));
  }
  fs::path key_dir = fs::temp_directory_path() / "repro-fuzz-seeds";
  fs::remove_all(key_dir);
  fs::create_directories(key_dir);
  auto key = repro::NodeKey::LoadOrCreate((key_dir / "node_key.pem").string());
  if (!key.ok()) std::abort();
  repro::v1::JournalHead head;
  head.set_job("train-42");
  head.set_node("n1");
  head.set_seq(entries.size());
  head.set_hash(hash);
  head.set_signature((*key)->Sign(repro::HeadSigningBytes("n1", "train-42", head.seq(), hash)));
  head.set_public_key((*key)->public_key());
  Write(dir, "head", head.SerializeAsString());
  Write(dir, "key", repro::JournalKey("train-42", 3));
  fs::remove_all(key_dir);
}

void ManifestSeeds(const fs::path& dir) {
  repro::v1::Manifest manifest;
  for (const char* path : {"a.csv", "b/c.csv", "b/d/e.bin", "z"}) {
    repro::v1::FileEntry* file = manifest.add_files();
    file->set_path(path);
    file->set_size(3);
    file->set_mtime_ns(1);
    file->set_sha256(std::string(32, 'h'));
  }
  std::vector<std::string> chunks = repro::SplitManifest(manifest, 64);
  std::string joined;
  for (size_t i = 0; i < chunks.size(); ++i) joined += (i ? "\n--\n" : "") + chunks[i];
  Write(dir, "chunks", std::string(1, '\x06') + joined);
  Write(dir, "whole", std::string(1, '\xff') + manifest.SerializeAsString());
  Write(dir, "empty", std::string(1, '\0'));
}

// What shims send: a HELLO, OPENs (record, enforce, view use), a LOADED report, a DOORBELL;
// and a report ring image (8-byte tail, then the data area) holding two OPEN records and a wrap.
void ShimDatagramSeeds(const fs::path& dir) {
  repro::ShimHello hello;
  hello.job = "train-42";
  hello.rank = 1;
  hello.claimed_pid = 7;
  hello.parent_pid = 6;
  hello.nonce = 0x1234;
  hello.mode = repro::ShimMode::kEnforce;
  hello.exe = "/usr/bin/python3";
  hello.argv = {"python3", "train.py"};
  hello.launcher = {{"LOCAL_RANK", "1"}, {"WORLD_SIZE", "2"}};
  Write(dir, "hello", repro::EncodeShimHello(3, hello));
  repro::ShimOpen open;
  open.dataset = "ctr";
  open.flags = REPRO_SHIM_OPEN_REDIRECTED;
  open.requested_path = "/ml/ctr/latest/a.csv";
  open.opened_path = "/ml/ctr/v1/a.csv";
  open.has_stat = true;
  open.device = 2049;
  open.inode = 77;
  open.size = 3;
  open.mtime_ns = 1700000000000000000;
  open.ctime_ns = 1700000000000000001;
  const std::string record_open = repro::EncodeShimOpen(0, open);
  Write(dir, "open_record", record_open);
  Write(dir, "open_enforce", repro::EncodeShimOpen(9, open));
  repro::ShimOpen view = open;
  view.flags = REPRO_SHIM_OPEN_OTHER_VERSION | REPRO_SHIM_OPEN_REFUSED;
  view.has_stat = false;
  view.view_use = REPRO_SHIM_VIEW_LIST;
  Write(dir, "open_view", repro::EncodeShimOpen(10, view));
  repro::ShimLoaded loaded;
  loaded.libraries = {"/lib/x86_64-linux-gnu/libc.so.6", "/usr/lib/libtorch.so"};
  loaded.libc_version = "2.36";
  loaded.package_dirs = {"/usr/lib/python3/dist-packages/numpy"};
  Write(dir, "loaded", repro::EncodeShimLoaded(0, loaded));
  uint8_t doorbell[REPRO_SHIM_HEADER_SIZE];
  repro_shim_writer w;
  repro_shim_writer_init(&w, doorbell, sizeof(doorbell), REPRO_SHIM_DOORBELL, 0);
  Write(dir, "doorbell", std::string(reinterpret_cast<char*>(doorbell), repro_shim_finish(&w)));

  std::string data;  // two records, then a wrap marker
  for (int i = 0; i < 2; ++i) {
    const uint32_t size = record_open.size();
    data.append(reinterpret_cast<const char*>(&size), sizeof(size));
    data += record_open;
    data.resize(repro_shim_ring_record_size(size) * (i + 1), '\0');
  }
  const uint64_t tail = data.size();
  const uint32_t wrap = REPRO_SHIM_RING_WRAP;
  data.append(reinterpret_cast<const char*>(&wrap), sizeof(wrap));
  Write(dir, "ring", std::string(reinterpret_cast<const char*>(&tail), sizeof(tail)) + data);
}

// What reprod answers: a PIN with two datasets (one with other versions), VERDICTs, an ERROR.
void ShimReplySeeds(const fs::path& dir) {
  repro::ShimPinReply pin;
  pin.seed = 42;
  pin.rank_seed = 43;
  pin.mode = repro::ShimMode::kEnforce;
  pin.datasets.push_back({"ctr", "v1", "/ml/ctr", "v1", {"v2", "v3"}});
  pin.datasets.push_back({"img", "2024-01", "/data/img", "snap-1", {}});
  Write(dir, "pin", repro::EncodeShimPin(3, pin));
  Write(dir, "verdict_allow", repro::EncodeShimVerdict(9, repro::v1::VERDICT_MATCH, true, ""));
  Write(dir, "verdict_deny", repro::EncodeShimVerdict(
                                 10, repro::v1::VERDICT_OTHER_VERSION, false,
                                 "/ml/ctr/v2/a.csv is in version v2; the job is pinned to v1"));
  Write(dir, "error", repro::EncodeShimError(3, "job train-42 has no pin"));
}

}  // namespace

int main(int argc, char** argv) {
  if (argc != 2) {
    std::fprintf(stderr, "usage: fuzz_make_seeds DIR\n");
    return 2;
  }
  fs::path root = argv[1];
  HttpSeeds(root / "http_request");
  AdmissionSeeds(root / "admission_review");
  JournalSeeds(root / "journal_entry");
  ManifestSeeds(root / "manifest");
  ShimDatagramSeeds(root / "shim_datagram");
  ShimReplySeeds(root / "shim_reply");
  return 0;
}
