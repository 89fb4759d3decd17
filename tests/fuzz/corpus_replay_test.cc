// Replays every file of tests/fuzz/corpus/<target>/ through its fuzz target, in the ordinary build
// (no clang, no libFuzzer): the seeds and every crasher the fuzzers found stay fixed.
#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <iterator>
#include <string>

#include "gtest/gtest.h"
#include "tests/fuzz/fuzz_target.h"

namespace repro::fuzz {
namespace {

std::filesystem::path CorpusRoot() {
  const char* source = std::getenv("REPRO_SOURCE_DIR");
  return std::filesystem::path(source != nullptr ? source : ".") / "tests/fuzz/corpus";
}

TEST(FuzzCorpusReplay, EveryTargetRunsEveryFileOfItsCorpus) {
  ASSERT_EQ(FuzzTargets().size(), 6u) << "a fuzz target is not linked into the replay test";
  for (const auto& [name, function] : FuzzTargets()) {
    std::filesystem::path dir = CorpusRoot() / name;
    ASSERT_TRUE(std::filesystem::is_directory(dir)) << dir << " is missing";
    int files = 0;
    for (const auto& file : std::filesystem::directory_iterator(dir)) {
      std::ifstream in(file.path(), std::ios::binary);
      std::string bytes((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
      SCOPED_TRACE(file.path().string());
      EXPECT_EQ(function(reinterpret_cast<const uint8_t*>(bytes.data()), bytes.size()), 0);
      ++files;
    }
    EXPECT_GT(files, 0) << "the corpus of " << name << " is empty";
    std::printf("%s: %d corpus files replayed\n", name.c_str(), files);
  }
}

}  // namespace
}  // namespace repro::fuzz
