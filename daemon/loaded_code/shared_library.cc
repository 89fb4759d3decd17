#include "daemon/loaded_code/shared_library.h"

#include <elf.h>

#include <algorithm>
#include <cstdint>
#include <cstring>
#include <memory>
#include <optional>
#include <type_traits>
#include <vector>

#include "absl/strings/ascii.h"
#include "absl/strings/match.h"
#include "absl/strings/str_cat.h"
#include "absl/strings/strip.h"
#include "common/status_macros.h"

namespace repro {
namespace {

// Bounds on what is read of a file, whatever its headers claim.
constexpr uint64_t kMaxProgramHeaders = 1024;
constexpr uint64_t kMaxDynamicEntries = 4096;
constexpr uint64_t kMaxSonameLength = 1024;

#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
constexpr unsigned char kNativeElfData = ELFDATA2LSB;
#else
constexpr unsigned char kNativeElfData = ELFDATA2MSB;
#endif

// An open file of known size, read at offsets that are checked against that size.
class BoundedFile {
 public:
  BoundedFile(std::unique_ptr<ReadableFile> file, std::string path, uint64_t size)
      : file_(std::move(file)), path_(std::move(path)), size_(size) {}

  uint64_t size() const { return size_; }

  // INVALID_ARGUMENT naming the file and `why`.
  absl::Status Malformed(absl::string_view why) const {
    return absl::InvalidArgumentError(
        absl::StrCat(path_, " is not a well-formed ELF64 shared object: ", why));
  }

  // `count` objects of type T stored at `offset`; INVALID_ARGUMENT when they do not all lie
  // inside the file.
  template <typename T>
  absl::StatusOr<std::vector<T>> ReadArray(uint64_t offset, uint64_t count,
                                           absl::string_view what) {
    static_assert(std::is_trivially_copyable_v<T>);
    if (count > size_ / sizeof(T) || offset > size_ - count * sizeof(T)) {
      return Malformed(absl::StrCat(what, " lies outside the file"));
    }
    std::vector<T> out(count);
    RETURN_IF_ERROR(
        ReadFully(offset, reinterpret_cast<char*>(out.data()), count * sizeof(T), what));
    return out;
  }

  // The NUL-terminated string at `offset`, at most `max_length` bytes long before its NUL.
  absl::StatusOr<std::string> ReadString(uint64_t offset, uint64_t max_length,
                                         absl::string_view what) {
    if (offset >= size_) return Malformed(absl::StrCat(what, " lies outside the file"));
    std::string buffer(std::min(max_length + 1, size_ - offset), '\0');
    RETURN_IF_ERROR(ReadFully(offset, buffer.data(), buffer.size(), what));
    size_t end = buffer.find('\0');
    if (end == std::string::npos) return Malformed(absl::StrCat(what, " is not terminated"));
    buffer.resize(end);
    return buffer;
  }

 private:
  absl::Status ReadFully(uint64_t offset, char* out, size_t n, absl::string_view what) {
    for (size_t done = 0; done < n;) {
      ASSIGN_OR_RETURN(size_t got, file_->ReadAt(offset + done, out + done, n - done));
      if (got == 0) return Malformed(absl::StrCat(what, " is cut short"));  // file shrank
      done += got;
    }
    return absl::OkStatus();
  }

  const std::unique_ptr<ReadableFile> file_;
  const std::string path_;
  const uint64_t size_;
};

// The file offset at which the loaded image holds virtual address `vaddr`, from the PT_LOAD
// segments; nullopt when no segment's file content covers it.
std::optional<uint64_t> FileOffsetOf(const std::vector<Elf64_Phdr>& segments, uint64_t vaddr) {
  for (const Elf64_Phdr& p : segments) {
    if (p.p_type == PT_LOAD && vaddr >= p.p_vaddr && vaddr - p.p_vaddr < p.p_filesz) {
      return p.p_offset + (vaddr - p.p_vaddr);  // may overflow: checked by the read that uses it
    }
  }
  return std::nullopt;
}

// What the dynamic section says about the soname.
struct DynamicNames {
  std::optional<uint64_t> strtab;  // DT_STRTAB: virtual address of the string table
  std::optional<uint64_t> strsz;   // DT_STRSZ: its size
  std::optional<uint64_t> soname;  // DT_SONAME: offset of the name in the string table
};

DynamicNames ScanDynamic(const std::vector<Elf64_Dyn>& entries) {
  DynamicNames names;
  for (const Elf64_Dyn& d : entries) {
    if (d.d_tag == DT_NULL) break;
    if (d.d_tag == DT_STRTAB) names.strtab = d.d_un.d_ptr;
    if (d.d_tag == DT_STRSZ) names.strsz = d.d_un.d_val;
    if (d.d_tag == DT_SONAME) names.soname = d.d_un.d_val;
  }
  return names;
}

// ReadElfSoname's answer for the open `file`: ELF header -> program headers -> PT_DYNAMIC ->
// DT_SONAME, an offset in the string table whose address DT_STRTAB gives, mapped to a file offset
// through the PT_LOAD segments.
absl::StatusOr<std::string> SonameOf(BoundedFile& file) {
  ASSIGN_OR_RETURN(std::vector<Elf64_Ehdr> header, file.ReadArray<Elf64_Ehdr>(0, 1, "ELF header"));
  const Elf64_Ehdr& eh = header[0];
  if (std::memcmp(eh.e_ident, ELFMAG, SELFMAG) != 0) return file.Malformed("no ELF magic");
  if (eh.e_ident[EI_CLASS] != ELFCLASS64 || eh.e_ident[EI_DATA] != kNativeElfData) {
    return file.Malformed("not ELF64 in this machine's byte order");
  }
  if (eh.e_phentsize != sizeof(Elf64_Phdr) || eh.e_phnum > kMaxProgramHeaders) {
    return file.Malformed("unexpected program header table");
  }
  ASSIGN_OR_RETURN(std::vector<Elf64_Phdr> segments,
                   file.ReadArray<Elf64_Phdr>(eh.e_phoff, eh.e_phnum, "program header table"));
  auto dynamic = std::find_if(segments.begin(), segments.end(),
                              [](const Elf64_Phdr& p) { return p.p_type == PT_DYNAMIC; });
  if (dynamic == segments.end()) return std::string();
  const uint64_t count = std::min(dynamic->p_filesz / sizeof(Elf64_Dyn), kMaxDynamicEntries);
  ASSIGN_OR_RETURN(std::vector<Elf64_Dyn> entries,
                   file.ReadArray<Elf64_Dyn>(dynamic->p_offset, count, "dynamic section"));
  const DynamicNames names = ScanDynamic(entries);
  if (!names.soname.has_value()) return std::string();
  if (!names.strtab.has_value()) return file.Malformed("DT_SONAME without DT_STRTAB");
  uint64_t max_length = kMaxSonameLength;
  if (names.strsz.has_value()) {
    if (*names.soname >= *names.strsz) return file.Malformed("DT_SONAME outside the string table");
    max_length = std::min(max_length, *names.strsz - *names.soname - 1);
  }
  std::optional<uint64_t> strtab = FileOffsetOf(segments, *names.strtab);
  if (!strtab.has_value() || *names.soname > file.size() || *strtab > file.size()) {
    return file.Malformed("string table outside the loaded segments");
  }
  return file.ReadString(*strtab + *names.soname, max_length, "soname");
}

bool IsVersion(absl::string_view v) {
  if (v.empty() || !absl::ascii_isdigit(v.front()) || !absl::ascii_isdigit(v.back())) return false;
  return std::all_of(v.begin(), v.end(),
                     [](char c) { return absl::ascii_isdigit(c) || c == '.'; }) &&
         !absl::StrContains(v, "..");
}

}  // namespace

absl::StatusOr<std::string> ReadElfSoname(FileSystem* fs, const std::string& path) {
  ASSIGN_OR_RETURN(std::unique_ptr<ReadableFile> opened, fs->OpenForRead(path));
  ASSIGN_OR_RETURN(FileStat stat, opened->Stat());
  if (stat.type != FileType::kRegular) {
    return absl::InvalidArgumentError(absl::StrCat(path, " is not a regular file"));
  }
  BoundedFile file(std::move(opened), path, stat.size);
  return SonameOf(file);
}

std::string VersionFromFileName(absl::string_view file_name) {
  size_t so = file_name.find(".so.");
  if (so != absl::string_view::npos && IsVersion(file_name.substr(so + 4))) {
    return std::string(file_name.substr(so + 4));
  }
  if (absl::ConsumeSuffix(&file_name, ".so")) {
    size_t dash = file_name.rfind('-');
    if (dash != absl::string_view::npos && IsVersion(file_name.substr(dash + 1))) {
      return std::string(file_name.substr(dash + 1));
    }
  }
  return "";
}

}  // namespace repro
