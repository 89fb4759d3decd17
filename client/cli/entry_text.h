// One-line text for journal entries, as `reproctl journal` prints them:
//
//        3  2025-01-08T10:00:01.250Z  data_open           match user_ctr@v1 train/part-0 rank=0
//        pid=4242
//
// seq (right-aligned), UTC time with milliseconds, the entry kind (the name of the field in the
// JournalEntry `kind` oneof) and a compact key=value summary of the kind's fields.
#ifndef REPRO_CLIENT_CLI_ENTRY_TEXT_H_
#define REPRO_CLIENT_CLI_ENTRY_TEXT_H_

#include <string>

#include "repro/v1/journal.pb.h"

namespace repro::cli {

// The kind of `entry`: "pin_applied", "data_open", ...; "unknown" when no kind is set (e.g. a
// kind newer than this reproctl).
std::string EntryKindName(const v1::JournalEntry& entry);

// The summary of the entry's kind-specific fields (no seq, time or kind).
std::string SummarizeEntry(const v1::JournalEntry& entry);

// A one-line summary of host facts (also used by `reproctl node`).
std::string SummarizeHost(const v1::HostFacts& host);

// The whole line for `entry`, without a trailing newline.
std::string FormatJournalLine(const v1::JournalEntry& entry);

// "match", "not_in_manifest", ... (the enum name without its prefix, lower case).
std::string VerdictName(v1::Verdict verdict);

// The name a library is listed and compared by: its soname, else the file name of its path.
std::string LibraryName(const v1::Library& library);

}  // namespace repro::cli

#endif  // REPRO_CLIENT_CLI_ENTRY_TEXT_H_
