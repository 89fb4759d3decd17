// The soname reader on real system libraries and on files that are not, or no longer, well-formed
// ELF objects; versions from library file names.
#include "daemon/loaded_code/shared_library.h"

#include <elf.h>
#include <sys/stat.h>

#include <cerrno>
#include <random>
#include <string>

#include "common/paths.h"
#include "gtest/gtest.h"
#include "tests/testutil/fault_file_system.h"
#include "tests/testutil/system_runtime.h"
#include "tests/testutil/temp_dir.h"

namespace repro {
namespace {

using testing::FaultFileSystem;
using testing::LoadedLibraryPath;
using testing::ReadFileOrDie;
using testing::TempDir;
using testing::WriteFileOrDie;

// The symlink-free path of the library the loader loaded as `soname`; fails the test when none.
std::string RealLibrary(const std::string& soname) {
  std::string loaded = LoadedLibraryPath(soname);
  EXPECT_FALSE(loaded.empty()) << soname << " cannot be loaded";
  absl::StatusOr<std::string> real = DefaultFileSystem()->RealPath(loaded);
  EXPECT_TRUE(real.ok()) << real.status();
  return real.value_or("");
}

absl::StatusCode SonameError(const std::string& path) {
  return ReadElfSoname(DefaultFileSystem(), path).status().code();
}

TEST(ReadElfSonameTest, SystemLibraries) {
  for (const char* soname : {"libc.so.6", "libz.so.1", "libstdc++.so.6"}) {
    absl::StatusOr<std::string> read = ReadElfSoname(DefaultFileSystem(), RealLibrary(soname));
    ASSERT_TRUE(read.ok()) << soname << ": " << read.status();
    EXPECT_EQ(*read, soname);
  }
}

TEST(ReadElfSonameTest, ProgramsHaveNone) {
  absl::StatusOr<std::string> exe = DefaultFileSystem()->RealPath("/proc/self/exe");
  ASSERT_TRUE(exe.ok()) << exe.status();
  absl::StatusOr<std::string> read = ReadElfSoname(DefaultFileSystem(), *exe);
  ASSERT_TRUE(read.ok()) << read.status();
  EXPECT_EQ(*read, "");
}

TEST(ReadElfSonameTest, DoesNotFollowSymlinks) {
  // The loader's name of libz is a symlink to the versioned file.
  std::string loaded = LoadedLibraryPath("libz.so.1");
  ASSERT_NE(loaded, RealLibrary("libz.so.1")) << "expected libz.so.1 to be a symlink";
  EXPECT_FALSE(ReadElfSoname(DefaultFileSystem(), loaded).ok());
}

TEST(ReadElfSonameTest, NotElf) {
  TempDir dir;
  WriteFileOrDie(dir.Path("empty"), "");
  WriteFileOrDie(dir.Path("script.so"), "/* GNU ld script */\nGROUP ( libc.so.6 )\n");
  WriteFileOrDie(dir.Path("magic-only"),
                 "\x7f"
                 "ELF");
  std::string elf32 = ReadFileOrDie(RealLibrary("libz.so.1"));
  elf32[EI_CLASS] = ELFCLASS32;
  WriteFileOrDie(dir.Path("elf32"), elf32);
  std::string other_order = ReadFileOrDie(RealLibrary("libz.so.1"));
  other_order[EI_DATA] = other_order[EI_DATA] == ELFDATA2LSB ? ELFDATA2MSB : ELFDATA2LSB;
  WriteFileOrDie(dir.Path("other-order"), other_order);
  for (const char* name : {"empty", "script.so", "magic-only", "elf32", "other-order"}) {
    EXPECT_EQ(SonameError(dir.Path(name)), absl::StatusCode::kInvalidArgument) << name;
  }
  ASSERT_EQ(mkfifo(dir.Path("fifo").c_str(), 0600), 0);
  EXPECT_EQ(SonameError(dir.Path("fifo")), absl::StatusCode::kInvalidArgument);
  EXPECT_NE(SonameError(dir.path()), absl::StatusCode::kOk);
  EXPECT_EQ(SonameError(dir.Path("missing")), absl::StatusCode::kNotFound);
}

TEST(ReadElfSonameTest, TruncatedFilesAreErrorsNotCrashes) {
  const std::string libz = ReadFileOrDie(RealLibrary("libz.so.1"));
  TempDir dir;
  for (size_t size :
       {size_t{1}, size_t{16}, sizeof(Elf64_Ehdr) - 1, sizeof(Elf64_Ehdr), sizeof(Elf64_Ehdr) + 1,
        size_t{200}, size_t{1000}, size_t{4096}, libz.size() / 2, libz.size() - 1}) {
    const std::string path = dir.Path("cut-" + std::to_string(size));
    WriteFileOrDie(path, libz.substr(0, size));
    absl::StatusOr<std::string> read = ReadElfSoname(DefaultFileSystem(), path);
    if (read.ok()) {  // what the soname needs may lie before the cut
      EXPECT_EQ(*read, "libz.so.1") << size;
    } else {
      EXPECT_EQ(read.status().code(), absl::StatusCode::kInvalidArgument) << size;
    }
  }
  WriteFileOrDie(dir.Path("header-only"), libz.substr(0, sizeof(Elf64_Ehdr)));
  EXPECT_EQ(SonameError(dir.Path("header-only")), absl::StatusCode::kInvalidArgument);
}

TEST(ReadElfSonameTest, HostileHeadersAreErrorsNotCrashes) {
  const std::string libz = ReadFileOrDie(RealLibrary("libz.so.1"));
  TempDir dir;
  auto with = [&](const std::string& name, auto edit) {
    std::string bytes = libz;
    auto* header = reinterpret_cast<Elf64_Ehdr*>(bytes.data());
    edit(header, &bytes);
    WriteFileOrDie(dir.Path(name), bytes);
    return SonameError(dir.Path(name));
  };
  EXPECT_EQ(with("phoff", [](Elf64_Ehdr* h, std::string*) { h->e_phoff = ~uint64_t{0} - 8; }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with("phnum", [](Elf64_Ehdr* h, std::string*) { h->e_phnum = 0xffff; }),
            absl::StatusCode::kInvalidArgument);
  EXPECT_EQ(with("phentsize", [](Elf64_Ehdr* h, std::string*) { h->e_phentsize = 8; }),
            absl::StatusCode::kInvalidArgument);
  // Every program header's offsets pointing far past the end of the file.
  EXPECT_EQ(with("segments",
                 [](Elf64_Ehdr* h, std::string* bytes) {
                   auto* p = reinterpret_cast<Elf64_Phdr*>(bytes->data() + h->e_phoff);
                   for (int i = 0; i < h->e_phnum; ++i) p[i].p_offset += uint64_t{1} << 62;
                 }),
            absl::StatusCode::kInvalidArgument);

  // Random damage to the headers and program headers: any answer but a crash or a hang.
  std::mt19937 random(42);
  for (int i = 0; i < 300; ++i) {
    std::string bytes = libz;
    for (int k = 0; k < 8; ++k) bytes[random() % 1024] = static_cast<char>(random());
    WriteFileOrDie(dir.Path("damaged"), bytes);
    absl::StatusOr<std::string> read = ReadElfSoname(DefaultFileSystem(), dir.Path("damaged"));
    if (read.ok()) {
      EXPECT_LE(read->size(), 1024u);
    }
  }
}

TEST(ReadElfSonameTest, ReadErrorsComeFromTheFileSystem) {
  FaultFileSystem fs;
  const std::string libz = RealLibrary("libz.so.1");
  fs.FailOn(FaultFileSystem::Op::kRead, libz, EACCES);
  EXPECT_EQ(ReadElfSoname(&fs, libz).status().code(), absl::StatusCode::kPermissionDenied);
}

TEST(VersionFromFileNameTest, Names) {
  struct Case {
    const char* name;
    const char* version;
  };
  for (const Case& c : std::initializer_list<Case>{
           {"libstdc++.so.6.0.30", "6.0.30"},
           {"libz.so.1.2.13", "1.2.13"},
           {"libfoo-1.2.so", "1.2"},
           {"libc-2.31.so", "2.31"},
           {"libc.so.6", "6"},
           {"ld-linux-x86-64.so.2", "2"},
           {"libpython3.11.so.1.0", "1.0"},
           {"libtorch_cpu.so", ""},
           {"_yaml.cpython-311-x86_64-linux-gnu.so", ""},
           {"libfoo.so.1.x", ""},
           {"libfoo.so.", ""},
           {"libfoo-.so", ""},
           {"libfoo-1..2.so", ""},
           {"libfoo.so.1.", ""},
           {"", ""},
       }) {
    EXPECT_EQ(VersionFromFileName(c.name), c.version) << c.name;
  }
}

}  // namespace
}  // namespace repro
