#include "daemon/host_probe/root_dir.h"

#include <dirent.h>
#include <fcntl.h>
#include <unistd.h>

#include <algorithm>
#include <cerrno>

#include "absl/strings/ascii.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/str_split.h"
#include "absl/strings/strip.h"

namespace repro {

RootDir::RootDir(std::string root) : root_(std::move(root)) {
  while (root_.size() > 1 && root_.back() == '/') root_.pop_back();
  if (root_.empty()) root_ = "/";
}

std::string RootDir::Resolve(absl::string_view path) const {
  absl::ConsumePrefix(&path, "/");
  return live() ? absl::StrCat("/", path) : absl::StrCat(root_, "/", path);
}

std::optional<std::string> RootDir::Read(absl::string_view path) const {
  int fd = open(Resolve(path).c_str(), O_RDONLY | O_CLOEXEC);
  if (fd < 0) return std::nullopt;
  std::string contents;
  char buffer[16384];
  while (contents.size() < kMaxFileBytes) {
    ssize_t n = read(fd, buffer, sizeof(buffer));
    if (n < 0 && errno == EINTR) continue;
    if (n < 0) {
      close(fd);
      return std::nullopt;
    }
    if (n == 0) break;
    contents.append(buffer, static_cast<size_t>(n));
  }
  close(fd);
  if (contents.size() > kMaxFileBytes) contents.resize(kMaxFileBytes);
  return contents;
}

std::vector<std::string> RootDir::List(absl::string_view path) const {
  std::vector<std::string> names;
  DIR* dir = opendir(Resolve(path).c_str());
  if (dir == nullptr) return names;
  while (struct dirent* entry = readdir(dir)) {
    absl::string_view name = entry->d_name;
    if (name != "." && name != "..") names.emplace_back(name);
  }
  closedir(dir);
  std::sort(names.begin(), names.end());
  return names;
}

std::string LineValue(absl::string_view text, absl::string_view key, char separator) {
  for (absl::string_view line : absl::StrSplit(text, '\n')) {
    size_t at = line.find(separator);
    if (at == absl::string_view::npos) continue;
    if (absl::StripAsciiWhitespace(line.substr(0, at)) != key) continue;
    return std::string(absl::StripAsciiWhitespace(line.substr(at + 1)));
  }
  return "";
}

}  // namespace repro
