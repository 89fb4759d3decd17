// Text that shims report (file names, arguments, library paths), made fit for journal entries.
//
//   entry.mutable_data_open()->set_opened_path(JournalText(open.opened_path));
//
// Protobuf string fields must hold UTF-8, while POSIX file names and arguments are any bytes.
#ifndef REPRO_DAEMON_STORE_JOURNAL_TEXT_H_
#define REPRO_DAEMON_STORE_JOURNAL_TEXT_H_

#include <string>

#include "absl/strings/string_view.h"

namespace repro {

// `s` with every byte that is not part of valid UTF-8 written as "\xNN"; valid UTF-8 is kept as is.
std::string JournalText(absl::string_view s);

}  // namespace repro

#endif  // REPRO_DAEMON_STORE_JOURNAL_TEXT_H_
