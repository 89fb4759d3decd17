/* The verdict index reprod passes with the PIN in enforce mode (proto/shim/shim_index.h), mapped
 * read-only: the shim allows the first open of a file whose fstat matches it without a round trip.
 *
 *   shim_index_attach(fd);                               // from the PIN answer; takes fd
 *   if (shim_index_allows(t.path, t.len, &st)) ...        // allocation-free, no syscall
 *
 * Thread-safe: the index is published once (atomically) and never unmapped, so a lookup never
 * races an unmap; a later index (reconnect) is ignored, since a job's pin never changes. Fork
 * children keep it (same job, read-only).
 */
#ifndef REPRO_CLIENT_SHIM_VERDICT_INDEX_H_
#define REPRO_CLIENT_SHIM_VERDICT_INDEX_H_

#include <stddef.h>
#include <sys/stat.h>

/* Maps the index in `fd` and closes fd. 0 when it is now (or already was) the index; -1 when fd
 * is not a well-formed index. */
int shim_index_attach(int fd);

/* 1 when `path` (len bytes, absolute, in the pinned version) is in the index with exactly the
 * identity in `st`; 0 otherwise (no index, unknown file, changed file). */
int shim_index_allows(const char* path, size_t len, const struct stat* st);

#endif /* REPRO_CLIENT_SHIM_VERDICT_INDEX_H_ */
