#include "daemon/store/journal_text.h"

#include "absl/strings/str_cat.h"

namespace repro {
namespace {

// Length of the valid UTF-8 sequence at s[i], or 0.
size_t Utf8Length(absl::string_view s, size_t i) {
  const auto c = static_cast<unsigned char>(s[i]);
  size_t n = c < 0x80 ? 1 : (c >> 5) == 0x6 ? 2 : (c >> 4) == 0xe ? 3 : (c >> 3) == 0x1e ? 4 : 0;
  if (n == 0 || i + n > s.size()) return 0;
  for (size_t k = 1; k < n; ++k) {
    if ((static_cast<unsigned char>(s[i + k]) & 0xc0) != 0x80) return 0;
  }
  return n;
}

}  // namespace

std::string JournalText(absl::string_view s) {
  std::string out;
  out.reserve(s.size());
  for (size_t i = 0; i < s.size();) {
    size_t n = Utf8Length(s, i);
    if (n > 0) {
      out.append(s.data() + i, n);
      i += n;
    } else {
      absl::StrAppend(&out, "\\x", absl::Hex(static_cast<unsigned char>(s[i]), absl::kZeroPad2));
      ++i;
    }
  }
  return out;
}

}  // namespace repro
