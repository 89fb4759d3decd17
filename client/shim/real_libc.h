/* The shim's one way to libc: a table of the real functions it wraps, resolved once with
 * dlsym(RTLD_NEXT), plus raw-syscall fallbacks for calls that arrive while the table is being
 * resolved (dlsym may re-enter the shim through an allocator that opens files).
 *
 *   int fd = shim_real_open(SHIM_FN_OPEN64, AT_FDCWD, path, flags, mode);
 *   FILE* f = shim_real_fopen(SHIM_FN_FOPEN, path, "r", NULL);
 *
 * Thread-safe and fork-safe: resolution runs once; threads that race with it wait for it, and a
 * call made from inside the resolution itself uses the raw syscall.
 */
#ifndef REPRO_CLIENT_SHIM_REAL_LIBC_H_
#define REPRO_CLIENT_SHIM_REAL_LIBC_H_

#include <stdio.h>
#include <sys/types.h>

/* The wrapped open-like functions. */
enum shim_fn {
  SHIM_FN_OPEN,
  SHIM_FN_OPEN64,
  SHIM_FN___OPEN,
  SHIM_FN___OPEN64,
  SHIM_FN_OPEN_2,
  SHIM_FN_OPEN64_2,
  SHIM_FN_OPENAT,
  SHIM_FN_OPENAT64,
  SHIM_FN_OPENAT_2,
  SHIM_FN_OPENAT64_2,
  SHIM_FN_CREAT,
  SHIM_FN_CREAT64,
  SHIM_FN_FOPEN,
  SHIM_FN_FOPEN64,
  SHIM_FN_FREOPEN,
  SHIM_FN_FREOPEN64,
  SHIM_FN_CHDIR,
  SHIM_FN_FCHDIR,
  SHIM_FN_COUNT,
};

/* Calls the real open-like function `fn` (one of OPEN .. CREAT64). `dirfd` is used by the openat
 * variants only, `mode` by those that take one. Sets errno as libc does. */
int shim_real_open(enum shim_fn fn, int dirfd, const char* path, int flags, mode_t mode);

/* Calls the real fopen, fopen64 (stream ignored), freopen or freopen64. */
FILE* shim_real_fopen(enum shim_fn fn, const char* path, const char* modes, FILE* stream);

int shim_real_chdir(const char* path);
int shim_real_fchdir(int fd);

/* Resolves the table now (the constructor calls it; every call above does it lazily too). */
void shim_real_resolve(void);

#endif /* REPRO_CLIENT_SHIM_REAL_LIBC_H_ */
