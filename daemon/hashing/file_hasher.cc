#include "daemon/hashing/file_hasher.h"

#include <sys/stat.h>

#include <utility>

#include "absl/strings/str_cat.h"
#include "common/status_macros.h"
#include "spdlog/spdlog.h"

namespace repro {
namespace {

// CANCELLED naming `path` when `cancelled` is set and returns true.
absl::Status CheckCancelled(const std::function<bool()>& cancelled, const std::string& path) {
  if (cancelled && cancelled()) {
    return absl::CancelledError(absl::StrCat("hashing ", path, " was cancelled"));
  }
  return absl::OkStatus();
}

absl::Status NotRegular(const std::string& path, const FileStat& stat) {
  return absl::InvalidArgumentError(
      absl::StrCat(path, " is ", FileKindName(stat), ", not a regular file"));
}

}  // namespace

absl::string_view FileKindName(const FileStat& stat) {
  switch (stat.type) {
    case FileType::kRegular:
      return "a regular file";
    case FileType::kDirectory:
      return "a directory";
    case FileType::kSymlink:
      return "a symlink";
    case FileType::kOther:
      break;
  }
  if (S_ISFIFO(stat.mode)) return "a FIFO";
  if (S_ISSOCK(stat.mode)) return "a socket";
  if (S_ISCHR(stat.mode)) return "a character device";
  if (S_ISBLK(stat.mode)) return "a block device";
  return "an unknown kind of file";
}

FileHasher::FileHasher(FileSystem* fs, HashCache* cache, size_t cache_batch)
    : fs_(fs), cache_(cache), buffer_(new char[kHashChunkSize]) {
  if (cache_ != nullptr) cache_writer_.emplace(cache_, cache_batch);
}

void FileHasher::Flush() {
  if (cache_writer_.has_value()) cache_writer_->Flush();
}

absl::StatusOr<HashedFile> FileHasher::Hash(const std::string& path,
                                            const HashFileOptions& options) {
  if (cache_ != nullptr && options.lstat != nullptr && options.lstat->type == FileType::kRegular) {
    RETURN_IF_ERROR(CheckCancelled(options.cancelled, path));
    if (std::optional<std::string> sha256 = cache_->Lookup(*options.lstat)) {
      return HashedFile{*options.lstat, *std::move(sha256), /*from_cache=*/true};
    }
  }
  uint64_t reported = 0;
  for (int attempt = 0; attempt <= kHashFileRetries; ++attempt) {
    ASSIGN_OR_RETURN(std::optional<HashedFile> hashed, HashOnce(path, options, &reported));
    if (hashed.has_value()) return *std::move(hashed);
    spdlog::debug("{} changed while it was being hashed (attempt {})", path, attempt + 1);
  }
  return absl::AbortedError(absl::StrCat(path, " changed while it was being hashed (read ",
                                         kHashFileRetries + 1,
                                         " times); is something still writing to it?"));
}

absl::StatusOr<std::optional<HashedFile>> FileHasher::HashOnce(const std::string& path,
                                                               const HashFileOptions& options,
                                                               uint64_t* reported) {
  RETURN_IF_ERROR(CheckCancelled(options.cancelled, path));
  absl::StatusOr<std::unique_ptr<ReadableFile>> opened = fs_->OpenForRead(path);
  if (!opened.ok()) {
    // O_NOFOLLOW reports a symlink as ELOOP ("too many levels of symbolic links"); say what it is.
    absl::StatusOr<FileStat> lstat = fs_->Stat(path);
    if (lstat.ok() && lstat->type != FileType::kRegular) return NotRegular(path, *lstat);
    return opened.status();
  }
  std::unique_ptr<ReadableFile> file = *std::move(opened);
  ASSIGN_OR_RETURN(const FileStat before, file->Stat());
  if (before.type != FileType::kRegular) return NotRegular(path, before);

  // Skip the lookup when Hash already looked up options.lstat and it matches this file.
  const bool looked_up = options.lstat != nullptr && options.lstat->type == FileType::kRegular &&
                         SameFileState(*options.lstat, before);
  if (cache_ != nullptr && !looked_up) {
    if (std::optional<std::string> sha256 = cache_->Lookup(before)) {
      return HashedFile{before, *std::move(sha256), /*from_cache=*/true};
    }
  }

  if (options.max_bytes != 0 && before.size > options.max_bytes) {
    return absl::ResourceExhaustedError(absl::StrCat(path, " is too large to hash (", before.size,
                                                     " bytes; the limit is ", options.max_bytes,
                                                     ")"));
  }
  if (sha_dirty_) sha_.Finish();  // drop what a failed attempt left behind
  sha_dirty_ = true;
  // Read up to the size fstat reported, not until a read returns 0 (one syscall less per file):
  // a file that grew or shrank meanwhile has another size in the fstat below.
  uint64_t offset = 0;
  while (offset < before.size) {
    RETURN_IF_ERROR(CheckCancelled(options.cancelled, path));
    ASSIGN_OR_RETURN(size_t n, file->Read(buffer_.get(), kHashChunkSize));
    if (n == 0) break;  // shrank
    sha_.Update(buffer_.get(), n);
    offset += n;
    if (offset > *reported) {
      if (options.on_read) options.on_read(offset - *reported);
      *reported = offset;
    }
  }
  ASSIGN_OR_RETURN(const FileStat after, file->Stat());
  if (!SameFileState(before, after) || offset != after.size) return std::nullopt;

  HashedFile hashed{after, sha_.Finish(), /*from_cache=*/false};
  sha_dirty_ = false;
  if (cache_writer_.has_value()) cache_writer_->Insert(hashed.stat, hashed.sha256);
  return hashed;
}

absl::StatusOr<HashedFile> HashFile(FileSystem* fs, const std::string& path, HashCache* cache,
                                    const std::function<bool()>& cancelled) {
  FileHasher hasher(fs, cache);
  HashFileOptions options;
  options.cancelled = cancelled;
  return hasher.Hash(path, options);
}

}  // namespace repro
