#include "client/shim/real_libc.h"

#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <sched.h>
#include <stdatomic.h>
#include <stddef.h>
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
