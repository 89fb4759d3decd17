// Version registration throughput, against `sha256sum` run in parallel on all cores over the same
// files in the same run (both read from the page cache: the files were just written).
//
//   register_bench [--large_files=4] [--large_mib=512] [--small_files=100000] [--small_kib=4]
//
// Prints: GB/s on a few large files (reprod vs sha256sum), files/s on many small files (reprod vs
// sha256sum), and the time to re-register the unchanged small tree (stat cache: nothing re-read).
#include <unistd.h>

#include <grpcpp/grpcpp.h>

#include <cstdio>
#include <filesystem>
#include <string>
#include <thread>

#include "absl/flags/flag.h"
#include "absl/strings/str_cat.h"
#include "tests/bench/bench_util.h"
#include "tests/testutil/reprod_process.h"
#include "tests/testutil/temp_dir.h"

ABSL_FLAG(int, large_files, 4, "number of large files");
ABSL_FLAG(int, large_mib, 512, "size of each large file in MiB");
ABSL_FLAG(int, small_files, 100000, "number of small files");
ABSL_FLAG(int, small_kib, 4, "size of each small file in KiB");

namespace repro::bench {
namespace {

// Registers `path` as dataset@version through reprod's gRPC API; returns the result.
v1::RegisterResult Register(v1::Repro::Stub* stub, const std::string& dataset,
                            const std::string& version, const std::string& path) {
  v1::RegisterVersionRequest request;
  request.set_dataset(dataset);
  request.set_version(version);
  request.set_path(path);
  grpc::ClientContext context;
  auto reader = stub->RegisterVersion(&context, request);
  v1::RegisterVersionResponse response;
  v1::RegisterResult result;
  while (reader->Read(&response)) {
    if (response.has_result()) result = response.result();
  }
  grpc::Status status = reader->Finish();
  if (!status.ok()) {
    fprintf(stderr, "register %s: %s\n", path.c_str(), status.error_message().c_str());
    exit(1);
  }
  return result;
}

// `tool` over every file of `dir`, one process per `files_per_process` files, on all cores.
std::string HashAll(const std::string& tool, const std::string& dir, int files_per_process) {
  return absl::StrCat("find ", dir, " -type f -print0 | xargs -0 -P ",
                      std::thread::hardware_concurrency(), " -n ", files_per_process, " ", tool,
                      " > /dev/null");
}

}  // namespace

int Main() {
  testing::TempDir dir;
  const int cores = static_cast<int>(std::thread::hardware_concurrency());
  printf("register_bench: %d cores; data in %s (page cache warm for both sides)\n", cores,
         dir.path().c_str());

  const int large_files = absl::GetFlag(FLAGS_large_files);
  const uint64_t large_bytes = static_cast<uint64_t>(absl::GetFlag(FLAGS_large_mib)) << 20;
  const int small_files = absl::GetFlag(FLAGS_small_files);
  const uint64_t small_bytes = static_cast<uint64_t>(absl::GetFlag(FLAGS_small_kib)) << 10;
  MakeFiles(dir.Path("large/v1"), large_files, large_bytes, 1);
  MakeFiles(dir.Path("small/v1"), small_files, small_bytes, 2);
  sync();

  testing::ReprodProcess reprod(dir.Path("node"));
  if (!reprod.Start().ok()) {
    fprintf(stderr, "cannot start reprod:\n%s\n", reprod.log().c_str());
    return 1;
  }
  auto stub = reprod.NewStub();

  const double gb = static_cast<double>(large_bytes) * large_files / 1e9;
  double sha_large = TimeSeconds([&] { Shell(HashAll("sha256sum", dir.Path("large/v1"), 1)); });
  double ossl_large =
      TimeSeconds([&] { Shell(HashAll("openssl dgst -sha256", dir.Path("large/v1"), 1)); });
  double repro_large = TimeSeconds([&] { Register(stub.get(), "large", "v1", dir.Path("large/v1")); });
  Report(absl::StrCat("sha256sum -P", cores, " large files"), gb / sha_large, "GB/s");
  Report(absl::StrCat("openssl dgst -sha256 -P", cores, " large files"), gb / ossl_large, "GB/s");
  Report(absl::StrCat("reprod register large files (", large_files, " x ",
                      absl::GetFlag(FLAGS_large_mib), " MiB)"),
         gb / repro_large, "GB/s", gb / sha_large, "sha256sum");
  printf("  (%.2fx openssl dgst, the SHA-NI ceiling)\n", ossl_large / repro_large);

  double sha_small = TimeSeconds([&] { Shell(HashAll("sha256sum", dir.Path("small/v1"), 256)); });
  v1::RegisterResult first;
  double repro_small = TimeSeconds([&] { first = Register(stub.get(), "small", "v1", dir.Path("small/v1")); });
  Report(absl::StrCat("sha256sum -P", cores, " small files"), small_files / sha_small, "files/s");
  Report(absl::StrCat("reprod register small files (", small_files, " x ",
                      absl::GetFlag(FLAGS_small_kib), " KiB)"),
         small_files / repro_small, "files/s", small_files / sha_small, "sha256sum");

  // Past the hash cache's racy window, so every file is eligible for the cache.
  usleep(100 * 1000);
  v1::RegisterResult again;
  double repro_again = TimeSeconds([&] { again = Register(stub.get(), "small", "v1", dir.Path("small/v1")); });
  Report("reprod re-register unchanged small tree", repro_again, "s", sha_small,
         "sha256sum time");
  printf("  (re-register read %llu files, %llu from the stat cache; first pass %.2f s)\n",
         static_cast<unsigned long long>(again.files_hashed()),
         static_cast<unsigned long long>(again.files_cached()), repro_small);
  return 0;
}

}  // namespace repro::bench
