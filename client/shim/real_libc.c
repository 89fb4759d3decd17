#include "client/shim/real_libc.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

typedef int (*open_fn)(const char*, int, ...);
typedef int (*openat_fn)(int, const char*, int, ...);
typedef int (*open2_fn)(const char*, int);
typedef int (*openat2_fn)(int, const char*, int);
typedef int (*creat_fn)(const char*, mode_t);
typedef FILE* (*fopen_fn)(const char*, const char*);
typedef FILE* (*freopen_fn)(const char*, const char*, FILE*);
typedef int (*chdir_fn)(const char*);
typedef int (*fchdir_fn)(int);

static const char* const kNames[SHIM_FN_COUNT] = {
    [SHIM_FN_OPEN] = "open",           [SHIM_FN_OPEN64] = "open64",
    [SHIM_FN___OPEN] = "__open",       [SHIM_FN___OPEN64] = "__open64",
    [SHIM_FN_OPEN_2] = "__open_2",     [SHIM_FN_OPEN64_2] = "__open64_2",
    [SHIM_FN_OPENAT] = "openat",       [SHIM_FN_OPENAT64] = "openat64",
    [SHIM_FN_OPENAT_2] = "__openat_2", [SHIM_FN_OPENAT64_2] = "__openat64_2",
    [SHIM_FN_CREAT] = "creat",         [SHIM_FN_CREAT64] = "creat64",
    [SHIM_FN_FOPEN] = "fopen",         [SHIM_FN_FOPEN64] = "fopen64",
    [SHIM_FN_FREOPEN] = "freopen",     [SHIM_FN_FREOPEN64] = "freopen64",
    [SHIM_FN_CHDIR] = "chdir",         [SHIM_FN_FCHDIR] = "fchdir",
    [SHIM_FN_STAT] = "stat",           [SHIM_FN_STAT64] = "stat64",
    [SHIM_FN_LSTAT] = "lstat",         [SHIM_FN_LSTAT64] = "lstat64",
    [SHIM_FN_FSTATAT] = "fstatat",     [SHIM_FN_FSTATAT64] = "fstatat64",
    [SHIM_FN___XSTAT] = "__xstat",     [SHIM_FN___XSTAT64] = "__xstat64",
    [SHIM_FN___LXSTAT] = "__lxstat",   [SHIM_FN___LXSTAT64] = "__lxstat64",
    [SHIM_FN___FXSTATAT] = "__fxstatat", [SHIM_FN___FXSTATAT64] = "__fxstatat64",
    [SHIM_FN_STATX] = "statx",
    [SHIM_FN_GETXATTR] = "getxattr",   [SHIM_FN_LGETXATTR] = "lgetxattr",
    [SHIM_FN_LISTXATTR] = "listxattr", [SHIM_FN_LLISTXATTR] = "llistxattr",
    [SHIM_FN_ACCESS] = "access",       [SHIM_FN_FACCESSAT] = "faccessat",
    [SHIM_FN_EUIDACCESS] = "euidaccess", [SHIM_FN_EACCESS] = "eaccess",
    [SHIM_FN_READLINK] = "readlink",   [SHIM_FN_READLINKAT] = "readlinkat",
    [SHIM_FN___READLINK_CHK] = "__readlink_chk",
    [SHIM_FN___READLINKAT_CHK] = "__readlinkat_chk",
    [SHIM_FN_REALPATH] = "realpath",
    [SHIM_FN_CANONICALIZE_FILE_NAME] = "canonicalize_file_name",
    [SHIM_FN___REALPATH_CHK] = "__realpath_chk",
    [SHIM_FN_OPENDIR] = "opendir",     [SHIM_FN_SCANDIR] = "scandir",
    [SHIM_FN_SCANDIR64] = "scandir64", [SHIM_FN_EXECVE] = "execve",
    [SHIM_FN_EXECV] = "execv",         [SHIM_FN_EXECVP] = "execvp",
    [SHIM_FN_EXECVPE] = "execvpe",
};

enum { kUnresolved = 0, kResolving = 1, kResolved = 2 };
/* Spins before a thread that finds another one resolving gives up and uses raw syscalls (the
 * resolver may be a thread that vanished in fork()). */
enum { kMaxResolveSpins = 10000 };

static void* g_real[SHIM_FN_COUNT];
static atomic_int g_state = kUnresolved;
static __thread int t_resolving __attribute__((tls_model("initial-exec")));

void shim_real_resolve(void) {
  if (atomic_load_explicit(&g_state, memory_order_acquire) == kResolved || t_resolving) return;
  int expected = kUnresolved;
  if (atomic_compare_exchange_strong(&g_state, &expected, kResolving)) {
    t_resolving = 1;
    for (int i = 0; i < SHIM_FN_COUNT; ++i) g_real[i] = dlsym(RTLD_NEXT, kNames[i]);
    t_resolving = 0;
    atomic_store_explicit(&g_state, kResolved, memory_order_release);
    return;
  }
  for (int i = 0; i < kMaxResolveSpins; ++i) {
    if (atomic_load_explicit(&g_state, memory_order_acquire) == kResolved) return;
    sched_yield();
  }
}

/* The real function, or NULL while it cannot be had (re-entered during resolution). */
static void* Real(enum shim_fn fn) {
  if (atomic_load_explicit(&g_state, memory_order_acquire) != kResolved) {
    shim_real_resolve();
    if (atomic_load_explicit(&g_state, memory_order_acquire) != kResolved) return NULL;
  }
  return g_real[fn];
}

/* open(2) flags for an fopen mode string ("r", "w+", "ab", "re", ...). */
static int FlagsForModes(const char* modes) {
  int flags;
  switch (modes[0]) {
    case 'w': flags = O_WRONLY | O_CREAT | O_TRUNC; break;
    case 'a': flags = O_WRONLY | O_CREAT | O_APPEND; break;
    default: flags = O_RDONLY; break;
  }
  for (const char* m = modes + 1; *m != '\0'; ++m) {
    if (*m == '+') flags = (flags & ~O_ACCMODE) | O_RDWR;
    if (*m == 'e') flags |= O_CLOEXEC;
    if (*m == 'x') flags |= O_EXCL;
  }
  return flags;
}

static int RawOpen(enum shim_fn fn, int dirfd, const char* path, int flags, mode_t mode) {
  switch (fn) {
    case SHIM_FN_OPENAT:
    case SHIM_FN_OPENAT64:
    case SHIM_FN_OPENAT_2:
    case SHIM_FN_OPENAT64_2:
      break;
    case SHIM_FN_CREAT:
    case SHIM_FN_CREAT64:
      dirfd = AT_FDCWD;
      flags = O_CREAT | O_WRONLY | O_TRUNC;
      break;
    default:
      dirfd = AT_FDCWD;
      break;
  }
  return (int)syscall(SYS_openat, dirfd, path, flags, mode);
}

int shim_real_open(enum shim_fn fn, int dirfd, const char* path, int flags, mode_t mode) {
  void* f = Real(fn);
  if (f == NULL) return RawOpen(fn, dirfd, path, flags, mode);
  switch (fn) {
    case SHIM_FN_OPEN_2:
    case SHIM_FN_OPEN64_2:
      return ((open2_fn)f)(path, flags);
    case SHIM_FN_OPENAT:
    case SHIM_FN_OPENAT64:
      return ((openat_fn)f)(dirfd, path, flags, mode);
    case SHIM_FN_OPENAT_2:
    case SHIM_FN_OPENAT64_2:
      return ((openat2_fn)f)(dirfd, path, flags);
    case SHIM_FN_CREAT:
    case SHIM_FN_CREAT64:
      return ((creat_fn)f)(path, mode);
    default:
      return ((open_fn)f)(path, flags, mode);
  }
}

FILE* shim_real_fopen(enum shim_fn fn, const char* path, const char* modes, FILE* stream) {
  void* f = Real(fn);
  if (f != NULL) {
    if (fn == SHIM_FN_FREOPEN || fn == SHIM_FN_FREOPEN64) {
      return ((freopen_fn)f)(path, modes, stream);
    }
    return ((fopen_fn)f)(path, modes);
  }
  if (fn == SHIM_FN_FREOPEN || fn == SHIM_FN_FREOPEN64) {
    errno = EAGAIN; /* no freopen without libc's; nothing reopens a stream this early */
    return NULL;
  }
  int fd = (int)syscall(SYS_openat, AT_FDCWD, path, FlagsForModes(modes), 0666);
  if (fd < 0) return NULL;
  FILE* file = fdopen(fd, modes);
  if (file == NULL) {
    int saved = errno;
    close(fd);
    errno = saved;
  }
  return file;
}

int shim_real_chdir(const char* path) {
  void* f = Real(SHIM_FN_CHDIR);
  return f != NULL ? ((chdir_fn)f)(path) : (int)syscall(SYS_chdir, path);
}

int shim_real_fchdir(int fd) {
  void* f = Real(SHIM_FN_FCHDIR);
  return f != NULL ? ((fchdir_fn)f)(fd) : (int)syscall(SYS_fchdir, fd);
}

void* shim_real_fn(enum shim_fn fn) { return Real(fn); }

typedef int (*stat_fn)(const char*, void*);
typedef int (*fstatat_fn)(int, const char*, void*, int);
typedef int (*xstat_fn)(int, const char*, void*);
typedef int (*fxstatat_fn)(int, int, const char*, void*, int);
typedef int (*statx_fn)(int, const char*, int, unsigned, void*);

int shim_real_stat(enum shim_fn fn, int ver, int dirfd, const char* path, void* buf, int flags,
                   unsigned mask) {
  void* f = Real(fn);
  switch (fn) {
    case SHIM_FN_STAT:
    case SHIM_FN_STAT64:
    case SHIM_FN_LSTAT:
    case SHIM_FN_LSTAT64:
      if (f != NULL) return ((stat_fn)f)(path, buf);
      break;
    case SHIM_FN_FSTATAT:
    case SHIM_FN_FSTATAT64:
      if (f != NULL) return ((fstatat_fn)f)(dirfd, path, buf, flags);
      break;
    case SHIM_FN___XSTAT:
    case SHIM_FN___XSTAT64:
    case SHIM_FN___LXSTAT:
    case SHIM_FN___LXSTAT64:
      if (f != NULL) return ((xstat_fn)f)(ver, path, buf);
      break;
    case SHIM_FN___FXSTATAT:
    case SHIM_FN___FXSTATAT64:
      if (f != NULL) return ((fxstatat_fn)f)(ver, dirfd, path, buf, flags);
      break;
    default: /* STATX */
      if (f != NULL) return ((statx_fn)f)(dirfd, path, flags, mask, buf);
      return (int)syscall(SYS_statx, dirfd, path, flags, mask, buf);
  }
  /* Re-entered during resolution: the kernel's struct stat is glibc's on 64-bit Linux. */
  return (int)syscall(SYS_newfstatat, dirfd, path, buf, flags);
}

typedef ssize_t (*getxattr_fn)(const char*, const char*, void*, size_t);
typedef ssize_t (*listxattr_fn)(const char*, char*, size_t);

ssize_t shim_real_xattr(enum shim_fn fn, const char* path, const char* name, void* value,
                        size_t size) {
  void* f = Real(fn);
  switch (fn) {
    case SHIM_FN_GETXATTR:
      return f != NULL ? ((getxattr_fn)f)(path, name, value, size)
                       : syscall(SYS_getxattr, path, name, value, size);
    case SHIM_FN_LGETXATTR:
      return f != NULL ? ((getxattr_fn)f)(path, name, value, size)
                       : syscall(SYS_lgetxattr, path, name, value, size);
    case SHIM_FN_LISTXATTR:
      return f != NULL ? ((listxattr_fn)f)(path, value, size)
                       : syscall(SYS_listxattr, path, value, size);
    default: /* LLISTXATTR */
      return f != NULL ? ((listxattr_fn)f)(path, value, size)
                       : syscall(SYS_llistxattr, path, value, size);
  }
}

typedef int (*access_fn)(const char*, int);
typedef int (*faccessat_fn)(int, const char*, int, int);

int shim_real_access(enum shim_fn fn, int dirfd, const char* path, int mode, int flags) {
  void* f = Real(fn);
  if (f == NULL) return (int)syscall(SYS_faccessat, dirfd, path, mode);
  if (fn == SHIM_FN_FACCESSAT) return ((faccessat_fn)f)(dirfd, path, mode, flags);
  return ((access_fn)f)(path, mode);
}

typedef ssize_t (*readlink_fn)(const char*, char*, size_t);
typedef ssize_t (*readlinkat_fn)(int, const char*, char*, size_t);
typedef ssize_t (*readlink_chk_fn)(const char*, char*, size_t, size_t);
typedef ssize_t (*readlinkat_chk_fn)(int, const char*, char*, size_t, size_t);

ssize_t shim_real_readlink(enum shim_fn fn, int dirfd, const char* path, char* buf, size_t size,
                           size_t buflen) {
  void* f = Real(fn);
  switch (f == NULL ? SHIM_FN_COUNT : fn) {
    case SHIM_FN_READLINK: return ((readlink_fn)f)(path, buf, size);
    case SHIM_FN_READLINKAT: return ((readlinkat_fn)f)(dirfd, path, buf, size);
    case SHIM_FN___READLINK_CHK: return ((readlink_chk_fn)f)(path, buf, size, buflen);
    case SHIM_FN___READLINKAT_CHK: return ((readlinkat_chk_fn)f)(dirfd, path, buf, size, buflen);
    default: return syscall(SYS_readlinkat, dirfd, path, buf, size);
  }
}

typedef char* (*realpath_fn)(const char*, char*);
typedef char* (*canonicalize_fn)(const char*);
typedef char* (*realpath_chk_fn)(const char*, char*, size_t);

char* shim_real_realpath(enum shim_fn fn, const char* path, char* resolved, size_t resolvedlen) {
  void* f = Real(fn);
  if (f == NULL) {
    errno = ENOSYS; /* nothing resolves paths while the shim's own table is being resolved */
    return NULL;
  }
  if (fn == SHIM_FN_CANONICALIZE_FILE_NAME) return ((canonicalize_fn)f)(path);
  if (fn == SHIM_FN___REALPATH_CHK) return ((realpath_chk_fn)f)(path, resolved, resolvedlen);
  return ((realpath_fn)f)(path, resolved);
}
