#include "tests/testutil/temp_dir.h"

#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace repro::testing {

TempDir::TempDir() {
  const char* base = getenv("TMPDIR");
  std::string templ = std::string(base != nullptr && *base ? base : "/tmp") + "/repro-test-XXXXXX";
  if (mkdtemp(templ.data()) == nullptr) {
    perror("mkdtemp");
    abort();
  }
  path_ = templ;
}

TempDir::~TempDir() {
  std::error_code ec;
  // Make everything removable again (tests chmod files to provoke errors).
  for (auto it = std::filesystem::recursive_directory_iterator(
           path_, std::filesystem::directory_options::skip_permission_denied, ec);
       !ec && it != std::filesystem::recursive_directory_iterator(); it.increment(ec)) {
    if (!it->is_symlink()) {
      std::filesystem::permissions(it->path(), std::filesystem::perms::owner_all,
                                   std::filesystem::perm_options::add, ec);
    }
  }
  std::filesystem::remove_all(path_, ec);
}

std::string TempDir::Path(std::string_view relative) const {
  return path_ + "/" + std::string(relative);
}

void WriteFileOrDie(const std::string& path, std::string_view contents) {
  std::filesystem::create_directories(std::filesystem::path(path).parent_path());
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out.write(contents.data(), static_cast<std::streamsize>(contents.size()));
  if (!out) {
    fprintf(stderr, "cannot write %s\n", path.c_str());
    abort();
  }
}

std::string ReadFileOrDie(const std::string& path) {
  std::ifstream in(path, std::ios::binary);
  if (!in) {
    fprintf(stderr, "cannot read %s\n", path.c_str());
    abort();
  }
  std::stringstream ss;
  ss << in.rdbuf();
  return ss.str();
}

UnwritableDir::UnwritableDir(std::string dir) : dir_(std::move(dir)) {
  std::filesystem::create_directories(dir_);
  if (geteuid() == 0) {
    ok_ = std::system(("chattr +i '" + dir_ + "' 2>/dev/null").c_str()) == 0;
  } else {
    ok_ = chmod(dir_.c_str(), 0500) == 0;
  }
}

UnwritableDir::~UnwritableDir() {
  if (!ok_) return;
  if (geteuid() == 0) {
    (void)std::system(("chattr -i '" + dir_ + "'").c_str());
  } else {
    chmod(dir_.c_str(), 0700);
  }
}

}  // namespace repro::testing
