/* The view: every path-taking call a data stack makes answers, under a pinned dataset root, as if
 * each alias were the pinned version, not only open (shim.c).
 *
 *   ls -l /ml/ds/latest/      lists /ml/ds/v1, with v1's sizes and times
 *   os.path.realpath(latest)  /ml/ds/v1          readlink("/ml/ds/latest") -> "v1"
 *
 * Wrapped here: opendir and scandir (glibc's call open internally, not through the PLT; a
 * directory opened with open/openat and then fdopendir'ed, as fts in find, du and tar does, is
 * rewritten by shim.c's open wrappers), the stat family (stat, lstat, fstatat, their 64-bit names,
 * glibc's older __xstat, __lxstat, __fxstatat and their 64-bit names, statx), getxattr,
 * lgetxattr, listxattr, llistxattr (ls asks for labels and ACLs), access, faccessat,
 * euidaccess, eaccess, readlink, readlinkat (and their _chk forms), realpath, __realpath_chk,
 * canonicalize_file_name, chdir, execve, execv, and execvp/execvpe of a file named with a '/'.
 * The path rules are path_resolver.h's, as for open:
 *   - an alias is rewritten to the pinned version (a symlink alias itself, asked without
 *     following it, stays the symlink it is, and readlink answers the pinned version's name in
 *     the form of the real link: "v1" or "/ml/ds/v1");
 *   - another registered version: enforce mode refuses (EACCES, one line naming the pin); record
 *     mode lets it be; reprod is told once per process and version directory (VIEW_USE);
 *   - enforce mode, a path the shim cannot resolve (too long, too many links): what libc manages
 *     anyway is refused (EACCES) since it may lie under a root; exec is refused before.
 * Outside the roots a call costs what shim_quick_check costs; nothing is allocated, errno is what
 * libc left (or EACCES for a refusal).
 *
 * Not seen (no LD_PRELOAD can see them): static or Go binaries, io_uring, raw syscall(),
 * posix_spawn and the exec* calls glibc makes internally (execl*, execvp of a bare name found on
 * PATH), glob(3), ftw/nftw (they call glibc's internal opendir and stat). `reproctl run --isolate`
 * shows such programs the pinned version through a private mount namespace instead.
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/xattr.h>
#include <unistd.h>

#include "client/shim/daemon_link.h"
#include "client/shim/fixed_table.h"
#include "client/shim/path_resolver.h"
#include "client/shim/pin_table.h"
#include "client/shim/real_libc.h"
#include "proto/shim/shim_protocol.h"
#include "client/shim/shim_state.h"

#define SHIM_EXPORT __attribute__((visibility("default")))
/* Seed of the keys of version directories whose use was reported. */
#define SHIM_VIEW_SEED 0x766965775f646972ull

int shim_view_other(const struct shim_pin* pin, const struct shim_target* t,
                    const char* requested, uint32_t use) {
  const int enforce = pin->mode == REPRO_SHIM_MODE_ENFORCE;
  if (enforce) shim_print_refusal(pin, t, requested, "it belongs to another version");
  size_t dir_len = t->version_dir ? t->len : t->rel_off - 1;
  uint64_t key = shim_hash(t->path, dir_len, SHIM_VIEW_SEED);
  int state;
  if (!shim_lookup(key, &state)) {
    struct shim_report r = {
        .dataset = pin->datasets[t->dataset].name,
        .flags = REPRO_SHIM_OPEN_OTHER_VERSION | (enforce ? REPRO_SHIM_OPEN_REFUSED : 0u),
        .requested_path = requested,
        .opened_path = t->path,
        .stat = NULL,
        .view_use = use};
    if (shim_link_report(&r, 0, NULL, 0) == SHIM_ANSWER_SENT) shim_remember(key, SHIM_REPORTED);
  }
  return enforce ? -1 : 0;
}

/* One view call: what libc is given instead of (dirfd, path). */
struct view {
  int dirfd;
  const char* path;
  int unresolved; /* enforce mode, the shim could not resolve it: refuse what libc manages */
  int alias_link; /* the path is a symlink alias itself, asked for without following it */
  const struct shim_pin* pin;
  const char* requested;
  struct shim_target t; /* filled only on the slow path */
};

/* The last component of `path` is a name (not "." or "..", no trailing '/'). */
static int EndsInName(const char* path) {
  size_t n = strlen(path);
  if (n == 0 || path[n - 1] == '/') return 0;
  const char* slash = strrchr(path, '/');
  const char* last = slash != NULL ? slash + 1 : path;
  return strcmp(last, ".") != 0 && strcmp(last, "..") != 0;
}

/* (dirfd, path) names a symbolic link (the kernel, not the wrappers, is asked). */
static int IsSymlink(int dirfd, const char* path) {
  struct stat st;
  return syscall(SYS_newfstatat, dirfd, path, &st, AT_SYMLINK_NOFOLLOW) == 0 &&
         S_ISLNK(st.st_mode);
}

static __attribute__((noinline)) int ViewSlow(struct view* v, const struct shim_pin* pin,
                                              uint32_t use, int nofollow, int whole) {
  int saved = errno;
  int refused = 0;
  t_busy = 1;
  v->pin = pin;
  struct shim_target* t = &v->t;
  if (shim_resolve(pin, v->dirfd, v->path, whole, t) != 0) {
    v->unresolved = pin->mode == REPRO_SHIM_MODE_ENFORCE;
  } else if (t->place == SHIM_IN_VERSION && t->other) {
    refused = shim_view_other(pin, t, v->path, use) != 0; /* record mode: left as asked */
  } else if (t->place == SHIM_IN_VERSION && t->redirected) {
    if (nofollow && t->version_dir && EndsInName(v->path) && IsSymlink(v->dirfd, v->path)) {
      v->alias_link = 1; /* lstat shows the link; readlink answers the pinned name */
    } else {
      v->dirfd = AT_FDCWD;
      v->path = t->path;
    }
  }
  t_busy = 0;
  errno = refused ? EACCES : saved;
  return refused ? -1 : 0;
}

/* Decides what a call on (dirfd, path) gives libc; -1 (errno EACCES) when it is refused.
 * `nofollow`: the last component is not followed (lstat, readlink, AT_SYMLINK_NOFOLLOW). A
 * listing or chdir follows it to its end (a directory, as open's O_DIRECTORY). */
static inline int ViewEnter(struct view* v, int dirfd, const char* path, uint32_t use,
                            int nofollow) {
  const int whole = use == REPRO_SHIM_VIEW_LIST || use == REPRO_SHIM_VIEW_CHDIR;
  v->dirfd = dirfd;
  v->path = path;
  v->requested = path;
  v->unresolved = 0;
  v->alias_link = 0;
  if (!g_active || t_busy || path == NULL) return 0;
  const struct shim_pin* pin = shim_pin_current();
  if (pin == NULL) {
    shim_poll_for_pin();
    return 0;
  }
  if (pin->count == 0 || !shim_quick_check(pin, dirfd, path, whole)) return 0;
  return ViewSlow(v, pin, use, nofollow, whole);
}

/* After libc succeeded with an unresolved path in enforce mode: the refusal. Returns -1. */
static int RefuseUnresolved(const struct view* v) {
  t_busy = 1;
  shim_print_unresolved(v->requested);
  t_busy = 0;
  errno = EACCES;
  return -1;
}

/* ---- stat, access --------------------------------------------------------------------------- */

static int StatLike(enum shim_fn fn, int ver, int dirfd, const char* path, void* buf, int flags,
                    unsigned mask) {
  struct view v;
  if (ViewEnter(&v, dirfd, path, REPRO_SHIM_VIEW_STAT, (flags & AT_SYMLINK_NOFOLLOW) != 0) != 0) {
    return -1;
  }
  int r = shim_real_stat(fn, ver, v.dirfd, v.path, buf, flags, mask);
  return r == 0 && v.unresolved ? RefuseUnresolved(&v) : r;
}

SHIM_EXPORT int stat(const char* restrict path, struct stat* restrict buf) {
  return StatLike(SHIM_FN_STAT, 0, AT_FDCWD, path, buf, 0, 0);
}
SHIM_EXPORT int stat64(const char* restrict path, struct stat64* restrict buf) {
  return StatLike(SHIM_FN_STAT64, 0, AT_FDCWD, path, buf, 0, 0);
}
SHIM_EXPORT int lstat(const char* restrict path, struct stat* restrict buf) {
  return StatLike(SHIM_FN_LSTAT, 0, AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW, 0);
}
SHIM_EXPORT int lstat64(const char* restrict path, struct stat64* restrict buf) {
  return StatLike(SHIM_FN_LSTAT64, 0, AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW, 0);
}
SHIM_EXPORT int fstatat(int dirfd, const char* restrict path, struct stat* restrict buf,
                        int flags) {
  return StatLike(SHIM_FN_FSTATAT, 0, dirfd, path, buf, flags, 0);
}
SHIM_EXPORT int fstatat64(int dirfd, const char* restrict path, struct stat64* restrict buf,
                          int flags) {
  return StatLike(SHIM_FN_FSTATAT64, 0, dirfd, path, buf, flags, 0);
}
SHIM_EXPORT int statx(int dirfd, const char* restrict path, int flags, unsigned int mask,
                      struct statx* restrict buf) {
  return StatLike(SHIM_FN_STATX, 0, dirfd, path, buf, flags, mask);
}

/* glibc before 2.33 compiled stat calls into these (still exported for old binaries). */
int __xstat(int ver, const char* path, struct stat* buf);
int __xstat64(int ver, const char* path, struct stat64* buf);
int __lxstat(int ver, const char* path, struct stat* buf);
int __lxstat64(int ver, const char* path, struct stat64* buf);
int __fxstatat(int ver, int dirfd, const char* path, struct stat* buf, int flags);
int __fxstatat64(int ver, int dirfd, const char* path, struct stat64* buf, int flags);

SHIM_EXPORT int __xstat(int ver, const char* path, struct stat* buf) {
  return StatLike(SHIM_FN___XSTAT, ver, AT_FDCWD, path, buf, 0, 0);
}
SHIM_EXPORT int __xstat64(int ver, const char* path, struct stat64* buf) {
  return StatLike(SHIM_FN___XSTAT64, ver, AT_FDCWD, path, buf, 0, 0);
}
SHIM_EXPORT int __lxstat(int ver, const char* path, struct stat* buf) {
  return StatLike(SHIM_FN___LXSTAT, ver, AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW, 0);
}
SHIM_EXPORT int __lxstat64(int ver, const char* path, struct stat64* buf) {
  return StatLike(SHIM_FN___LXSTAT64, ver, AT_FDCWD, path, buf, AT_SYMLINK_NOFOLLOW, 0);
}
SHIM_EXPORT int __fxstatat(int ver, int dirfd, const char* path, struct stat* buf, int flags) {
  return StatLike(SHIM_FN___FXSTATAT, ver, dirfd, path, buf, flags, 0);
}
SHIM_EXPORT int __fxstatat64(int ver, int dirfd, const char* path, struct stat64* buf,
                             int flags) {
  return StatLike(SHIM_FN___FXSTATAT64, ver, dirfd, path, buf, flags, 0);
}

/* Extended attributes (ls asks for SELinux labels and ACLs): a stat-like use. */
static ssize_t XattrLike(enum shim_fn fn, const char* path, const char* name, void* value,
                         size_t size) {
  struct view v;
  int nofollow = fn == SHIM_FN_LGETXATTR || fn == SHIM_FN_LLISTXATTR;
  if (ViewEnter(&v, AT_FDCWD, path, REPRO_SHIM_VIEW_STAT, nofollow) != 0) return -1;
  ssize_t n = shim_real_xattr(fn, v.path, name, value, size);
  return n >= 0 && v.unresolved ? RefuseUnresolved(&v) : n;
}

SHIM_EXPORT ssize_t getxattr(const char* path, const char* name, void* value, size_t size) {
  return XattrLike(SHIM_FN_GETXATTR, path, name, value, size);
}
SHIM_EXPORT ssize_t lgetxattr(const char* path, const char* name, void* value, size_t size) {
  return XattrLike(SHIM_FN_LGETXATTR, path, name, value, size);
}
SHIM_EXPORT ssize_t listxattr(const char* path, char* list, size_t size) {
  return XattrLike(SHIM_FN_LISTXATTR, path, NULL, list, size);
}
SHIM_EXPORT ssize_t llistxattr(const char* path, char* list, size_t size) {
  return XattrLike(SHIM_FN_LLISTXATTR, path, NULL, list, size);
}

static int AccessLike(enum shim_fn fn, int dirfd, const char* path, int mode, int flags) {
  struct view v;
  if (ViewEnter(&v, dirfd, path, REPRO_SHIM_VIEW_STAT, (flags & AT_SYMLINK_NOFOLLOW) != 0) != 0) {
    return -1;
  }
  int r = shim_real_access(fn, v.dirfd, v.path, mode, flags);
  return r == 0 && v.unresolved ? RefuseUnresolved(&v) : r;
}

SHIM_EXPORT int access(const char* path, int mode) {
  return AccessLike(SHIM_FN_ACCESS, AT_FDCWD, path, mode, 0);
}
SHIM_EXPORT int faccessat(int dirfd, const char* path, int mode, int flags) {
  return AccessLike(SHIM_FN_FACCESSAT, dirfd, path, mode, flags);
}
SHIM_EXPORT int euidaccess(const char* path, int mode) {
  return AccessLike(SHIM_FN_EUIDACCESS, AT_FDCWD, path, mode, 0);
}
SHIM_EXPORT int eaccess(const char* path, int mode) {
  return AccessLike(SHIM_FN_EACCESS, AT_FDCWD, path, mode, 0);
}

/* ---- readlink, realpath --------------------------------------------------------------------- */

static ssize_t ReadlinkLike(enum shim_fn fn, int dirfd, const char* path, char* buf, size_t size,
                            size_t buflen) {
  struct view v;
  if (ViewEnter(&v, dirfd, path, REPRO_SHIM_VIEW_RESOLVE, 1) != 0) return -1;
  ssize_t n = shim_real_readlink(fn, v.dirfd, v.path, buf, size, buflen);
  if (n > 0 && v.alias_link) {
    /* The alias names the pinned version, relative or absolute as the link itself does. */
    const struct shim_dataset* d = &v.pin->datasets[v.t.dataset];
    const char* name = buf[0] == '/' ? d->pinned_path : d->pinned_dir;
    size_t len = buf[0] == '/' ? d->pinned_path_len : d->pinned_dir_len;
    n = (ssize_t)(len < size ? len : size); /* readlink truncates silently */
    memcpy(buf, name, (size_t)n);
  }
  return n >= 0 && v.unresolved ? RefuseUnresolved(&v) : n;
}

SHIM_EXPORT ssize_t readlink(const char* restrict path, char* restrict buf, size_t size) {
  return ReadlinkLike(SHIM_FN_READLINK, AT_FDCWD, path, buf, size, 0);
}
SHIM_EXPORT ssize_t readlinkat(int dirfd, const char* restrict path, char* restrict buf,
                               size_t size) {
  return ReadlinkLike(SHIM_FN_READLINKAT, dirfd, path, buf, size, 0);
}

ssize_t __readlink_chk(const char* path, char* buf, size_t size, size_t buflen);
ssize_t __readlinkat_chk(int dirfd, const char* path, char* buf, size_t size, size_t buflen);
char* __realpath_chk(const char* path, char* resolved, size_t resolvedlen);

SHIM_EXPORT ssize_t __readlink_chk(const char* path, char* buf, size_t size, size_t buflen) {
  return ReadlinkLike(SHIM_FN___READLINK_CHK, AT_FDCWD, path, buf, size, buflen);
}
SHIM_EXPORT ssize_t __readlinkat_chk(int dirfd, const char* path, char* buf, size_t size,
                                     size_t buflen) {
  return ReadlinkLike(SHIM_FN___READLINKAT_CHK, dirfd, path, buf, size, buflen);
}

static char* RealpathLike(enum shim_fn fn, const char* path, char* resolved, size_t resolvedlen) {
  struct view v;
  if (ViewEnter(&v, AT_FDCWD, path, REPRO_SHIM_VIEW_RESOLVE, 0) != 0) return NULL;
  char* r = shim_real_realpath(fn, v.path, resolved, resolvedlen);
  if (r != NULL && v.unresolved) {
    if (r != resolved) free(r); /* libc allocated it for the caller */
    RefuseUnresolved(&v);
    return NULL;
  }
  return r;
}

SHIM_EXPORT char* realpath(const char* restrict path, char* restrict resolved) {
  return RealpathLike(SHIM_FN_REALPATH, path, resolved, 0);
}
SHIM_EXPORT char* __realpath_chk(const char* path, char* resolved, size_t resolvedlen) {
  return RealpathLike(SHIM_FN___REALPATH_CHK, path, resolved, resolvedlen);
}
SHIM_EXPORT char* canonicalize_file_name(const char* path) {
  return RealpathLike(SHIM_FN_CANONICALIZE_FILE_NAME, path, NULL, 0);
}

/* ---- listing, chdir, exec ------------------------------------------------------------------- */

SHIM_EXPORT DIR* opendir(const char* path) {
  struct view v;
  if (ViewEnter(&v, AT_FDCWD, path, REPRO_SHIM_VIEW_LIST, 0) != 0) return NULL;
  typedef DIR* (*opendir_fn)(const char*);
  opendir_fn f = (opendir_fn)shim_real_fn(SHIM_FN_OPENDIR);
  if (f == NULL) {
    errno = ENOSYS;
    return NULL;
  }
  DIR* dir = f(v.path);
  if (dir != NULL && v.unresolved) {
    closedir(dir);
    RefuseUnresolved(&v);
    return NULL;
  }
  return dir;
}

/* scandir and scandir64 take the same arguments with dirent or dirent64 (the same layout on
 * 64-bit Linux). */
typedef int (*scandir_fn)(const char*, void*, void*, void*);

static int ScandirLike(enum shim_fn fn, const char* path, void* namelist, void* filter,
                       void* compar) {
  struct view v;
  if (ViewEnter(&v, AT_FDCWD, path, REPRO_SHIM_VIEW_LIST, 0) != 0) return -1;
  scandir_fn f = (scandir_fn)shim_real_fn(fn);
  if (f == NULL) {
    errno = ENOSYS;
    return -1;
  }
  int n = f(v.path, namelist, filter, compar);
  if (n >= 0 && v.unresolved) {
    struct dirent** list = *(struct dirent***)namelist;
    for (int i = 0; i < n; ++i) free(list[i]);
    free(list);
    return RefuseUnresolved(&v);
  }
  return n;
}

SHIM_EXPORT int scandir(const char* restrict path, struct dirent*** restrict namelist,
                        int (*filter)(const struct dirent*),
                        int (*compar)(const struct dirent**, const struct dirent**)) {
  return ScandirLike(SHIM_FN_SCANDIR, path, namelist, (void*)filter, (void*)compar);
}
SHIM_EXPORT int scandir64(const char* restrict path, struct dirent64*** restrict namelist,
                          int (*filter)(const struct dirent64*),
                          int (*compar)(const struct dirent64**, const struct dirent64**)) {
  return ScandirLike(SHIM_FN_SCANDIR64, path, namelist, (void*)filter, (void*)compar);
}

/* For calls that cannot be undone after the fact (chdir, exec): an unresolved path is refused
 * before libc sees it. */
static int EnterOrRefuse(struct view* v, const char* path, uint32_t use) {
  if (ViewEnter(v, AT_FDCWD, path, use, 0) != 0) return -1;
  return v->unresolved ? RefuseUnresolved(v) : 0;
}

/* chdir into an alias enters the pinned version itself, so that everything relative to the
 * working directory (getcwd, children, calls the shim cannot see) is in the pinned version. */
SHIM_EXPORT int chdir(const char* path) {
  struct view v;
  if (EnterOrRefuse(&v, path, REPRO_SHIM_VIEW_CHDIR) != 0) return -1;
  int r = shim_real_chdir(v.path);
  if (r == 0 && g_active && !t_busy) shim_after_chdir(v.path);
  return r;
}

typedef int (*execve_fn)(const char*, char* const[], char* const[]);
typedef int (*execv_fn)(const char*, char* const[]);

/* Reports still waiting in the backlog, and the count of reports, leave before the process image
 * does (the report ring needs nothing: reprod reads it when the connection ends). */
static void FlushBeforeExec(void) {
  if (!g_active || t_busy || !shim_link_in_owner()) return;
  int saved = errno;
  t_busy = 1;
  shim_link_before_exec();
  t_busy = 0;
  errno = saved;
}

/* Sets *out to the path an exec gives libc: `file` itself when it has no '/' (`searched`: execvp
 * and execvpe search PATH inside glibc, where the shim does not see it). -1: refused. */
static int ExecPath(struct view* v, const char* file, int searched, const char** out) {
  *out = file;
  if (!searched || (file != NULL && strchr(file, '/') != NULL)) {
    if (EnterOrRefuse(v, file, REPRO_SHIM_VIEW_EXEC) != 0) return -1;
    *out = v->path;
  }
  FlushBeforeExec();
  return 0;
}

static int NoReal(void) {
  errno = ENOSYS;
  return -1;
}

SHIM_EXPORT int execve(const char* path, char* const argv[], char* const envp[]) {
  struct view v;
  if (ExecPath(&v, path, 0, &path) != 0) return -1;
  execve_fn f = (execve_fn)shim_real_fn(SHIM_FN_EXECVE);
  return f != NULL ? f(path, argv, envp) : NoReal();
}

SHIM_EXPORT int execv(const char* path, char* const argv[]) {
  struct view v;
  if (ExecPath(&v, path, 0, &path) != 0) return -1;
  execv_fn f = (execv_fn)shim_real_fn(SHIM_FN_EXECV);
  return f != NULL ? f(path, argv) : NoReal();
}

SHIM_EXPORT int execvp(const char* file, char* const argv[]) {
  struct view v;
  if (ExecPath(&v, file, 1, &file) != 0) return -1;
  execv_fn f = (execv_fn)shim_real_fn(SHIM_FN_EXECVP);
  return f != NULL ? f(file, argv) : NoReal();
}

SHIM_EXPORT int execvpe(const char* file, char* const argv[], char* const envp[]) {
  struct view v;
  if (ExecPath(&v, file, 1, &file) != 0) return -1;
  execve_fn f = (execve_fn)shim_real_fn(SHIM_FN_EXECVPE);
  return f != NULL ? f(file, argv, envp) : NoReal();
}
