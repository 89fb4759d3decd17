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

/* The wrapped functions. */
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
  /* The view (view_wrappers.c): the stat family and extended attributes... */
  SHIM_FN_STAT,
  SHIM_FN_STAT64,
  SHIM_FN_LSTAT,
  SHIM_FN_LSTAT64,
  SHIM_FN_FSTATAT,
  SHIM_FN_FSTATAT64,
  SHIM_FN___XSTAT,
  SHIM_FN___XSTAT64,
  SHIM_FN___LXSTAT,
  SHIM_FN___LXSTAT64,
  SHIM_FN___FXSTATAT,
  SHIM_FN___FXSTATAT64,
  SHIM_FN_STATX,
  SHIM_FN_GETXATTR,
  SHIM_FN_LGETXATTR,
  SHIM_FN_LISTXATTR,
  SHIM_FN_LLISTXATTR,
  /* ...access... */
  SHIM_FN_ACCESS,
  SHIM_FN_FACCESSAT,
  SHIM_FN_EUIDACCESS,
  SHIM_FN_EACCESS,
  /* ...readlink... */
  SHIM_FN_READLINK,
  SHIM_FN_READLINKAT,
  SHIM_FN___READLINK_CHK,
  SHIM_FN___READLINKAT_CHK,
  /* ...realpath... */
  SHIM_FN_REALPATH,
  SHIM_FN_CANONICALIZE_FILE_NAME,
  SHIM_FN___REALPATH_CHK,
  /* ...listing and exec. */
  SHIM_FN_OPENDIR,
  SHIM_FN_SCANDIR,
  SHIM_FN_SCANDIR64,
  SHIM_FN_EXECVE,
  SHIM_FN_EXECV,
  SHIM_FN_EXECVP,
  SHIM_FN_EXECVPE,
  SHIM_FN_COUNT,
};

/* Calls the real open-like function `fn` (one of OPEN .. CREAT64). `dirfd` is used by the openat
 * variants only, `mode` by those that take one. Sets errno as libc does. */
int shim_real_open(enum shim_fn fn, int dirfd, const char* path, int flags, mode_t mode);

/* Calls the real fopen, fopen64 (stream ignored), freopen or freopen64. */
FILE* shim_real_fopen(enum shim_fn fn, const char* path, const char* modes, FILE* stream);

int shim_real_chdir(const char* path);
int shim_real_fchdir(int fd);

/* The stat family (STAT .. STATX): `ver` for the __xstat forms, `dirfd` and `flags` for the *at
 * forms and statx, `mask` for statx; `buf` is the caller's struct stat, stat64 or statx. */
int shim_real_stat(enum shim_fn fn, int ver, int dirfd, const char* path, void* buf, int flags,
                   unsigned mask);

/* GETXATTR, LGETXATTR (name, value, size) and LISTXATTR, LLISTXATTR (value as the list, size). */
ssize_t shim_real_xattr(enum shim_fn fn, const char* path, const char* name, void* value,
                        size_t size);

/* ACCESS .. EACCESS: `dirfd` and `flags` for faccessat only. */
int shim_real_access(enum shim_fn fn, int dirfd, const char* path, int mode, int flags);

/* READLINK .. __READLINKAT_CHK: `dirfd` for the *at forms, `buflen` for the _chk forms. */
ssize_t shim_real_readlink(enum shim_fn fn, int dirfd, const char* path, char* buf, size_t size,
                           size_t buflen);

/* REALPATH, CANONICALIZE_FILE_NAME (resolved ignored), __REALPATH_CHK (resolvedlen). */
char* shim_real_realpath(enum shim_fn fn, const char* path, char* resolved, size_t resolvedlen);

/* The real function `fn` for the calls without a raw fallback (OPENDIR, SCANDIR*, EXEC*), or NULL
 * while the table is being resolved (then the caller fails the call with ENOSYS). */
void* shim_real_fn(enum shim_fn fn);

/* Resolves the table now (the constructor calls it; every call above does it lazily too). */
void shim_real_resolve(void);

#endif /* REPRO_CLIENT_SHIM_REAL_LIBC_H_ */
