/* libreproshim.so: the LD_PRELOAD shim that makes a training process read its pinned data.
 *
 *   LD_PRELOAD=libreproshim.so REPRO_JOB=train-42 python train.py   (reproctl run does this)
 *
 * Exports exactly the libc functions it wraps (shim_exports.map): the open family that programs
 * on glibc call through the PLT (open, open64, __open, __open64, openat, openat64, the fortified
 * __open_2, __open64_2, __openat_2, __openat64_2, creat, creat64), stdio's fopen, fopen64, freopen,
 * freopen64 (glibc's fopen opens without going through open's PLT), fchdir to track the
 * working directory, and _exit and _Exit (to say how many reports the process made, as at exit);
 * view_wrappers.c adds every other path-taking call (listing, stat, access, readlink, realpath,
 * chdir, exec) under the same rules. Without REPRO_JOB every call goes straight to libc.
 *
 * With REPRO_JOB, an open is checked by path_resolver.h: outside the pinned datasets' roots it
 * goes to libc untouched (no allocation added; enforce mode adds one stat of the directory);
 * under a root, an alias is rewritten to the pinned version, another version is refused in
 * enforce mode (its directories too: listing it is refused), and the first open of each dataset
 * file is reported to reprod (daemon_link.h), which journals it and, in enforce mode, gives a
 * verdict the open waits for (unless the verdict index, verdict_index.h, vouches for the file).
 * errno is always what libc left, or EACCES for a refusal.
 *
 * Enforce mode fails closed: no pin known at start (reprod unreachable, no REPRO_PINNED) -> the
 * process does not run (exit 126, one line); a pin known but no verdict from reprod -> the
 * dataset open is refused; a path the shim cannot resolve (too long, too many symlinks) -> a
 * read libc manages anyway is refused after the fact, a write before; the "outside every root"
 * cache is keyed by the directory's device and inode, so a directory swapped for a symlink into
 * a root is looked at again.
 * What the process runs with (loaded libraries, imported Python packages: loaded_report.h) is
 * reported at its first dataset open and at exit.
 *
 * Thread-safe, fork-safe (pthread_atfork child handler), re-entrancy-safe (a per-thread flag sends
 * calls made while the shim is working, e.g. from a signal handler, straight to libc).
 */
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client/shim/cwd_tracker.h"
#include "client/shim/daemon_link.h"
#include "client/shim/fixed_table.h"
#include "client/shim/loaded_report.h"
#include "client/shim/path_resolver.h"
#include "client/shim/pin_table.h"
#include "client/shim/real_libc.h"
#include "client/shim/shim_state.h"
#include "client/shim/shim_text.h"
#include "client/shim/verdict_index.h"
#include "proto/shim/shim_protocol.h"

#define SHIM_EXPORT __attribute__((visibility("default")))
#define SHIM_DEFAULT_SOCKET "/run/reprod/shim/shim.sock"
#define SHIM_DEFAULT_TIMEOUT_MS 2000
#define SHIM_REPORTED_SLOTS 65536
/* Seeds of the reported-file keys: opened to read, opened to write, refused by the shim. */
#define SHIM_READ_SEED 0x726561645f6b6579ull
#define SHIM_WRITE_SEED 0x77726974655f6b79ull
#define SHIM_REFUSED_SEED 0x726566757365646bull

int g_active; /* shim_state.h */
static char g_job[160];
__thread int t_busy __attribute__((tls_model("initial-exec")));

/* Files this process already reported or got a verdict for: key -> epoch << 8 | state. The epoch
 * changes in fork children, which report their own first opens. */
static struct shim_slot g_reported_slots[SHIM_REPORTED_SLOTS] __attribute__((aligned(4096)));
static struct shim_table g_reported = SHIM_TABLE_INIT(g_reported_slots, SHIM_REPORTED_SLOTS);
static atomic_uint g_epoch = 1;
static atomic_int g_reported_populated; /* in this process (not in a fork child, whose pages are
                                         * copied on write) */
enum { kReported = SHIM_REPORTED, kAllowed = SHIM_ALLOWED, kDenied = SHIM_DENIED };

int shim_lookup(uint64_t key, int* state) {
  uint64_t value;
  if (!shim_table_get(&g_reported, key, &value)) return 0;
  if ((value >> 8) != atomic_load_explicit(&g_epoch, memory_order_relaxed)) return 0;
  *state = (int)(value & 0xff);
  return 1;
}

/* Before the first report of a process: the table of reported files is faulted in with one call
 * instead of two page faults per page at first use (a read maps the zero page, the write then
 * copies it), which was a quarter of a first open's cost in a process opening thousands of files.
 * 1 MiB, once per process that opens a dataset file; where the kernel lacks
 * MADV_POPULATE_WRITE (before 5.14) the pages fault in as before. */
static void PopulateReported(void) {
  /* Read first: every first open passes here, and a write would bounce the line between the
   * process's threads. */
  if (atomic_load_explicit(&g_reported_populated, memory_order_relaxed) ||
      atomic_exchange_explicit(&g_reported_populated, 1, memory_order_relaxed)) {
    return;
  }
  int saved = errno;
  madvise(g_reported_slots, sizeof(g_reported_slots), MADV_POPULATE_WRITE);
  errno = saved;
}

void shim_remember(uint64_t key, int state) {
  uint64_t epoch = atomic_load_explicit(&g_epoch, memory_order_relaxed);
  shim_table_put(&g_reported, key, (epoch << 8) | (uint64_t)state);
}

/* What to do with one open under a dataset root. kRefused: refused already (the view rules);
 * kUnresolved: enforce mode, the shim cannot resolve the path: a read that libc manages anyway is
 * refused after the fact (it may lie under a root), a write before. */
enum action { kPass, kOpenTarget, kRefuse, kRefused, kUnresolved };

struct plan {
  enum action action;
  int report;     /* report the opened file (first open per process) */
  uint32_t flags; /* REPRO_SHIM_OPEN_* */
  const struct shim_pin* pin;
  const char* requested;
  const char* why; /* kRefuse: the reason */
  struct shim_target target;
};

static int IsWrite(int flags) {
  return (flags & O_ACCMODE) != O_RDONLY || (flags & (O_CREAT | O_TRUNC)) != 0;
}

static int IsDirectory(const char* path) {
  struct stat st;
  return stat(path, &st) == 0 && S_ISDIR(st.st_mode);
}

/* Decides what an open of `path` becomes. `no_data`: O_DIRECTORY or O_PATH; `directory`:
 * O_DIRECTORY (the path is followed to its end). */
static void Plan(const struct shim_pin* pin, int dirfd, const char* path, int write, int no_data,
                 int directory, struct plan* p) {
  p->action = kPass;
  p->report = 0;
  p->flags = 0;
  p->pin = pin;
  p->requested = path;
  p->why = NULL;
  struct shim_target* t = &p->target;
  const int enforce = pin->mode == REPRO_SHIM_MODE_ENFORCE;
  if (shim_resolve(pin, dirfd, path, directory, t) != 0) {
    if (enforce) p->action = kUnresolved; /* fails closed */
    return;
  }
  if (t->place != SHIM_IN_VERSION) return;
  if (t->redirected) p->flags |= REPRO_SHIM_OPEN_REDIRECTED;
  if (t->other) p->flags |= REPRO_SHIM_OPEN_OTHER_VERSION;
  if (write) {
    p->flags |= REPRO_SHIM_OPEN_WRITE;
    if (enforce) {
      p->action = kRefuse;
      p->why = "opened for writing, and data versions are read-only";
      p->flags |= REPRO_SHIM_OPEN_REFUSED;
    } else {
      p->report = !t->version_dir; /* record mode: untouched, journaled as a violation */
    }
    return;
  }
  if (t->other && (t->version_dir || no_data || IsDirectory(t->path))) {
    /* Another version's directory, opened to be listed: the view rules (view_wrappers.c). */
    p->action = shim_view_other(pin, t, path, REPRO_SHIM_VIEW_LIST) == 0 ? kOpenTarget : kRefused;
    return;
  }
  if (t->version_dir || no_data) {
    p->action = kOpenTarget; /* a directory: rewritten, nothing to journal */
    return;
  }
  if (t->other && enforce) {
    p->action = kRefuse;
    p->why = "it belongs to another version";
    p->flags |= REPRO_SHIM_OPEN_REFUSED;
    return;
  }
  p->action = kOpenTarget;
  p->report = 1;
}

void shim_print_refusal(const struct shim_pin* pin, const struct shim_target* target,
                        const char* requested, const char* why) {
  const struct shim_dataset* d = &pin->datasets[target->dataset];
  struct shim_text t;
  shim_text_init(&t);
  shim_text_add(&t, "repro: job ");
  shim_text_add(&t, g_job);
  shim_text_add(&t, " refused ");
  shim_text_add(&t, requested);
  if (strcmp(requested, target->path) != 0) {
    shim_text_add(&t, " (");
    shim_text_add(&t, target->path);
    shim_text_add(&t, ")");
  }
  shim_text_add(&t, ": ");
  shim_text_add(&t, why);
  shim_text_add(&t, "; ");
  shim_text_add(&t, d->name);
  shim_text_add(&t, " is pinned to ");
  shim_text_add(&t, d->version);
  shim_text_add(&t, " (");
  shim_text_add(&t, d->pinned_path);
  shim_text_add(&t, ")");
  shim_text_line_to_stderr(&t);
}

void shim_print_unresolved(const char* requested) {
  struct shim_text t;
  shim_text_init(&t);
  shim_text_add(&t, "repro: job ");
  shim_text_add(&t, g_job);
  shim_text_add(&t, " refused a path the shim cannot resolve (too long, or too many symbolic "
                    "links), which may lie under a pinned dataset root: ");
  shim_text_add(&t, requested); /* last: a long path is cut, not the reason */
  shim_text_line_to_stderr(&t);
}

/* One line on stderr naming the job, the path and the pinned version. */
static void PrintRefusal(const struct plan* p, const char* why) {
  shim_print_refusal(p->pin, &p->target, p->requested, why);
}

static struct shim_report MakeReport(const struct plan* p, const struct stat* st) {
  struct shim_report r = {.dataset = p->pin->datasets[p->target.dataset].name,
                          .flags = p->flags,
                          .requested_path = p->requested,
                          .opened_path = p->target.path,
                          .stat = st};
  return r;
}

/* A refusal decided by the shim: the line on stderr, and a report (once per file) so that reprod
 * journals the violation. */
static void Refuse(const struct plan* p) {
  PrintRefusal(p, p->why);
  uint64_t key = shim_hash(p->target.path, p->target.len, SHIM_REFUSED_SEED);
  int state;
  if (shim_lookup(key, &state)) return;
  struct shim_report r = MakeReport(p, NULL);
  if (shim_link_report(&r, 0, NULL, 0) == SHIM_ANSWER_SENT) shim_remember(key, kReported);
}

/* After `fd` was opened as planned: reports the first open of a regular file and, in enforce
 * mode, waits for reprod's verdict. 0 keeps the file open; -1 means refuse it. */
static int Check(const struct plan* p, int fd) {
  const int write = (p->flags & REPRO_SHIM_OPEN_WRITE) != 0;
  uint64_t key = shim_hash(p->target.path, p->target.len, write ? SHIM_WRITE_SEED : SHIM_READ_SEED);
  int state;
  if (shim_lookup(key, &state)) {
    if (state != kDenied) return 0;
    PrintRefusal(p, "reprod refused this file earlier in this process");
    return -1;
  }
  struct stat st;
  if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) return 0; /* not a data file */
  PopulateReported();
  const int wait = p->pin->mode == REPRO_SHIM_MODE_ENFORCE && !write;
  char reason[512];
  struct shim_report r = MakeReport(p, &st);
  /* The verdict index vouches for this very file (device, inode, size, mtime and ctime as reprod
   * verified): allowed without waiting once its report is on its way to reprod. */
  if (wait && shim_index_allows(p->target.path, p->target.len, &st) &&
      shim_link_report_vouched(&r)) {
    shim_loaded_report(0);
    shim_remember(key, kAllowed);
    return 0;
  }
  enum shim_answer answer = shim_link_report(&r, wait, reason, sizeof(reason));
  shim_loaded_report(0); /* the first time, or when packages were imported since */
  if (!wait) {
    if (answer == SHIM_ANSWER_SENT) shim_remember(key, kReported);
    return 0;
  }
  if (answer == SHIM_ANSWER_ALLOW) {
    shim_remember(key, kAllowed);
    return 0;
  }
  if (answer == SHIM_ANSWER_DENY) {
    shim_remember(key, kDenied);
    PrintRefusal(p, reason[0] != '\0' ? reason : "reprod refused it");
    return -1;
  }
  struct shim_text why;
  shim_text_init(&why);
  shim_text_add(&why, "reprod is unreachable at ");
  shim_text_add(&why, shim_link_socket_path());
  shim_text_add(&why, " and enforce mode needs its verdict");
  PrintRefusal(p, shim_text_str(&why));
  return -1;
}

void shim_poll_for_pin(void) {
  int saved = errno;
  t_busy = 1;
  shim_link_poll();
  t_busy = 0;
  errno = saved;
}

static __attribute__((noinline)) int OpenSlow(const struct shim_pin* pin, enum shim_fn fn,
                                              int dirfd, const char* path, int flags,
                                              mode_t mode) {
  int saved = errno;
  t_busy = 1;
  struct plan p;
  Plan(pin, dirfd, path, IsWrite(flags), (flags & (O_DIRECTORY | O_PATH)) != 0,
       (flags & O_DIRECTORY) != 0, &p);
  int fd = -1;
  if (p.action == kUnresolved && IsWrite(flags)) {
    shim_print_unresolved(path);
    saved = EACCES;
  } else if (p.action == kRefuse || p.action == kRefused) {
    if (p.action == kRefuse) Refuse(&p);
    saved = EACCES;
  } else {
    errno = saved;
    if (p.action == kOpenTarget) {
      fd = shim_real_open(fn, AT_FDCWD, p.target.path, flags, mode);
    } else {
      fd = shim_real_open(fn, dirfd, path, flags, mode);
    }
    saved = errno;
    if (fd >= 0 && p.action == kPass) shim_loaded_note_open(path); /* outside the datasets */
    if (fd >= 0 && ((p.report && Check(&p, fd) != 0) || p.action == kUnresolved)) {
      if (p.action == kUnresolved) shim_print_unresolved(path);
      close(fd);
      fd = -1;
      saved = EACCES;
    }
  }
  t_busy = 0;
  errno = saved;
  return fd;
}

static inline int OpenLike(enum shim_fn fn, int dirfd, const char* path, int flags, mode_t mode) {
  if (g_active && !t_busy) {
    const struct shim_pin* pin = shim_pin_current();
    if (pin == NULL) {
      shim_poll_for_pin();
    } else if (pin->count > 0 && shim_quick_check(pin, dirfd, path, (flags & O_DIRECTORY) != 0)) {
      return OpenSlow(pin, fn, dirfd, path, flags, mode);
    }
  }
  int fd = shim_real_open(fn, dirfd, path, flags, mode);
  if (fd >= 0 && g_active && !t_busy) shim_loaded_note_open(path);
  return fd;
}

static int ModesWrite(const char* modes) {
  return modes[0] != 'r' || strchr(modes, '+') != NULL;
}

static __attribute__((noinline)) FILE* FopenSlow(const struct shim_pin* pin, enum shim_fn fn,
                                                 const char* path, const char* modes,
                                                 FILE* stream) {
  int saved = errno;
  t_busy = 1;
  struct plan p;
  Plan(pin, AT_FDCWD, path, ModesWrite(modes), 0, 0, &p);
  FILE* file = NULL;
  if (p.action == kUnresolved && ModesWrite(modes)) {
    shim_print_unresolved(path);
    saved = EACCES;
  } else if (p.action == kRefuse || p.action == kRefused) {
    if (p.action == kRefuse) Refuse(&p);
    saved = EACCES;
  } else {
    errno = saved;
    file = shim_real_fopen(fn, p.action == kOpenTarget ? p.target.path : path, modes, stream);
    saved = errno;
    if (file != NULL && p.action == kPass) shim_loaded_note_open(path);
    if (file != NULL &&
        ((p.report && Check(&p, fileno(file)) != 0) || p.action == kUnresolved)) {
      if (p.action == kUnresolved) shim_print_unresolved(path);
      fclose(file);
      file = NULL;
      saved = EACCES;
    }
  }
  t_busy = 0;
  errno = saved;
  return file;
}

static inline FILE* FopenLike(enum shim_fn fn, const char* path, const char* modes, FILE* stream) {
  if (g_active && !t_busy && path != NULL && modes != NULL) {
    const struct shim_pin* pin = shim_pin_current();
    if (pin == NULL) {
      shim_poll_for_pin();
    } else if (pin->count > 0 && shim_quick_check(pin, AT_FDCWD, path, 0)) {
      return FopenSlow(pin, fn, path, modes, stream);
    }
  }
  FILE* file = shim_real_fopen(fn, path, modes, stream);
  if (file != NULL && g_active && !t_busy) shim_loaded_note_open(path);
  return file;
}

/* ---- The exported wrappers ---------------------------------------------------------------- */

/* glibc's rule for when open's variadic mode argument is there. */
#define SHIM_NEEDS_MODE(flags) \
  (((flags) & O_CREAT) != 0 || ((flags) & __O_TMPFILE) == __O_TMPFILE)

#define SHIM_READ_MODE(flags, mode)   \
  do {                                \
    if (SHIM_NEEDS_MODE(flags)) {     \
      va_list ap;                     \
      va_start(ap, flags);            \
      mode = va_arg(ap, mode_t);      \
      va_end(ap);                     \
    }                                 \
  } while (0)

#define SHIM_OPEN_WRAPPER(name, fn)                             \
  SHIM_EXPORT int name(const char* path, int flags, ...) {      \
    mode_t mode = 0;                                            \
    SHIM_READ_MODE(flags, mode);                                \
    return OpenLike(fn, AT_FDCWD, path, flags, mode);           \
  }

#define SHIM_OPENAT_WRAPPER(name, fn)                                \
  SHIM_EXPORT int name(int dirfd, const char* path, int flags, ...) { \
    mode_t mode = 0;                                                 \
    SHIM_READ_MODE(flags, mode);                                     \
    return OpenLike(fn, dirfd, path, flags, mode);                   \
  }

SHIM_OPEN_WRAPPER(open, SHIM_FN_OPEN)
SHIM_OPEN_WRAPPER(open64, SHIM_FN_OPEN64)
SHIM_OPEN_WRAPPER(__open, SHIM_FN___OPEN)
SHIM_OPEN_WRAPPER(__open64, SHIM_FN___OPEN64)
SHIM_OPENAT_WRAPPER(openat, SHIM_FN_OPENAT)
SHIM_OPENAT_WRAPPER(openat64, SHIM_FN_OPENAT64)

SHIM_EXPORT int __open_2(const char* path, int flags) {
  return OpenLike(SHIM_FN_OPEN_2, AT_FDCWD, path, flags, 0);
}
SHIM_EXPORT int __open64_2(const char* path, int flags) {
  return OpenLike(SHIM_FN_OPEN64_2, AT_FDCWD, path, flags, 0);
}
SHIM_EXPORT int __openat_2(int dirfd, const char* path, int flags) {
  return OpenLike(SHIM_FN_OPENAT_2, dirfd, path, flags, 0);
}
SHIM_EXPORT int __openat64_2(int dirfd, const char* path, int flags) {
  return OpenLike(SHIM_FN_OPENAT64_2, dirfd, path, flags, 0);
}
SHIM_EXPORT int creat(const char* path, mode_t mode) {
  return OpenLike(SHIM_FN_CREAT, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}
SHIM_EXPORT int creat64(const char* path, mode_t mode) {
  return OpenLike(SHIM_FN_CREAT64, AT_FDCWD, path, O_CREAT | O_WRONLY | O_TRUNC, mode);
}

SHIM_EXPORT FILE* fopen(const char* path, const char* modes) {
  return FopenLike(SHIM_FN_FOPEN, path, modes, NULL);
}
SHIM_EXPORT FILE* fopen64(const char* path, const char* modes) {
  return FopenLike(SHIM_FN_FOPEN64, path, modes, NULL);
}
SHIM_EXPORT FILE* freopen(const char* path, const char* modes, FILE* stream) {
  return FopenLike(SHIM_FN_FREOPEN, path, modes, stream);
}
SHIM_EXPORT FILE* freopen64(const char* path, const char* modes, FILE* stream) {
  return FopenLike(SHIM_FN_FREOPEN64, path, modes, stream);
}

void shim_after_chdir(const char* path) {
  int saved = errno;
  t_busy = 1;
  if (shim_link_in_owner()) shim_cwd_changed(path);
  t_busy = 0;
  errno = saved;
}

/* chdir is a view call (view_wrappers.c). */
SHIM_EXPORT int fchdir(int fd) {
  int r = shim_real_fchdir(fd);
  if (r == 0 && g_active && !t_busy) shim_after_chdir(NULL);
  return r;
}

/* ---- Process start, fork, exit ------------------------------------------------------------ */

static void Warn(const char* a, const char* b, const char* c) {
  struct shim_text t;
  shim_text_init(&t);
  shim_text_add(&t, "repro: ");
  shim_text_add(&t, a);
  shim_text_add(&t, b);
  shim_text_add(&t, c);
  shim_text_line_to_stderr(&t);
}

/* A job id as reprod accepts it: 1..128 of [A-Za-z0-9._-], starting with a letter or digit. */
static int IsJobId(const char* s) {
  size_t n = strlen(s);
  if (n == 0 || n > 128) return 0;
  for (size_t i = 0; i < n; ++i) {
    char c = s[i];
    int alnum = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9');
    if (!alnum && (i == 0 || (c != '.' && c != '_' && c != '-'))) return 0;
  }
  return 1;
}

/* The rank from the launcher's environment: REPRO_RANK, else torchrun/Slurm/MPI variables. */
static int64_t Rank(void) {
  static const char* const kNames[] = {"REPRO_RANK", "RANK", "SLURM_PROCID",
                                       "OMPI_COMM_WORLD_RANK", "PMI_RANK"};
  for (size_t i = 0; i < sizeof(kNames) / sizeof(kNames[0]); ++i) {
    const char* value = getenv(kNames[i]);
    int64_t rank;
    if (value == NULL || value[0] == '\0') continue;
    if (shim_parse_i64(value, 0, &rank)) return rank;
    Warn(kNames[i], "=", " is not a rank (a non-negative integer); using rank 0");
    return 0;
  }
  return 0;
}

static int Mode(void) {
  const char* mode = getenv("REPRO_MODE");
  if (mode == NULL || mode[0] == '\0' || strcmp(mode, "record") == 0) return REPRO_SHIM_MODE_RECORD;
  if (strcmp(mode, "enforce") == 0) return REPRO_SHIM_MODE_ENFORCE;
  Warn("REPRO_MODE=", mode, " is neither record nor enforce; using record");
  return REPRO_SHIM_MODE_RECORD;
}

static int TimeoutMs(void) {
  int64_t ms;
  const char* value = getenv("REPRO_SHIM_TIMEOUT_MS");
  if (value != NULL && shim_parse_i64(value, 0, &ms) && ms > 0 && ms <= 600000) return (int)ms;
  return SHIM_DEFAULT_TIMEOUT_MS;
}

/* Hands the pin to this process and its exec'd children: REPRO_RANK_SEED for training code, and
 * REPRO_PINNED so that a child started while reprod is down still knows the pinned versions. */
static void ExportPin(const struct shim_pin* pin) {
  static char pinned[8192];
  struct shim_text seed;
  shim_text_init(&seed);
  shim_text_add_u64(&seed, pin->rank_seed);
  if (pin->has_seeds) setenv("REPRO_RANK_SEED", shim_text_str(&seed), 1);
  if (shim_pin_to_env(pin, pinned, sizeof(pinned)) == 0) setenv("REPRO_PINNED", pinned, 1);
}

static void AfterForkChild(void) {
  atomic_fetch_add_explicit(&g_epoch, 1, memory_order_relaxed);
  atomic_store_explicit(&g_reported_populated, 0, memory_order_relaxed);
  shim_cwd_after_fork_child();
  shim_link_after_fork_child();
  shim_loaded_after_fork_child();
}

/* A Python interpreter: the executable's name starts with "python" (python3, python3.11). Call
 * after shim_link_init, which reads the executable. */
static int IsPython(void) {
  const char* exe = shim_link_exe();
  const char* base = strrchr(exe, '/');
  return strncmp(base != NULL ? base + 1 : exe, "python", 6) == 0;
}

/* glibc passes argc, argv and envp to the constructors of shared objects. */
__attribute__((constructor)) static void ShimStart(int argc, char** argv, char** envp) {
  (void)envp;
  shim_real_resolve();
  const char* job = getenv("REPRO_JOB");
  if (job == NULL || job[0] == '\0') return;
  if (!IsJobId(job)) {
    Warn("REPRO_JOB=", job, " is not a valid job id; the shim stays out of the way");
    return;
  }
  strncpy(g_job, job, sizeof(g_job) - 1);
  const char* socket_path = getenv("REPRO_SHIM_SOCKET");
  if (socket_path == NULL || socket_path[0] == '\0') socket_path = SHIM_DEFAULT_SOCKET;
  if (strlen(socket_path) >= 108) {
    Warn("REPRO_SHIM_SOCKET=", socket_path, " is too long for a Unix socket path");
    socket_path = SHIM_DEFAULT_SOCKET;
  }
  const int mode = Mode();
  struct shim_link_config config = {.job = job,
                                    .socket_path = socket_path,
                                    .rank = Rank(),
                                    .mode = mode,
                                    .timeout_ms = TimeoutMs(),
                                    .argc = argc,
                                    .argv = argv};
  shim_cwd_init();
  shim_link_init(&config);
  shim_loaded_init(IsPython());
  pthread_atfork(NULL, NULL, AfterForkChild);

  /* What reproctl run (or a parent process) knew of the pin, in case reprod cannot be reached. */
  const char* pinned = getenv("REPRO_PINNED");
  if (pinned != NULL && pinned[0] != '\0') {
    struct shim_pin* spare = shim_pin_spare();
    if (shim_pin_from_env(spare, pinned, mode) > 0) shim_pin_publish(spare);
  }
  if (shim_link_start() == 0) {
    ExportPin(shim_pin_current());
  } else if (mode == REPRO_SHIM_MODE_ENFORCE && shim_pin_current() == NULL) {
    /* Enforce mode fails closed: without a pin no path can be told to be a dataset's. */
    Warn("job ", job,
         " runs in enforce mode, but no pin is known (reprod cannot be reached and REPRO_PINNED "
         "is not set, see above): refusing to run rather than read data unchecked");
    _exit(126);
  }
  g_active = 1;
}

/* _exit and _Exit end a process without destructors: Python's os._exit (how multiprocessing and
 * DataLoader workers end) and many forked children. The link's last step runs here instead, so
 * the process's count of reports reaches reprod (issue 13). Async-signal-safe, as _exit is: it
 * never waits for a lock, and what it sends is bounded by the shim's timeout. exit() does not come
 * here (glibc calls its own _exit directly); ShimStop runs then. */
static __attribute__((noreturn)) void ExitNow(int status) {
  if (g_active && !t_busy) {
    t_busy = 1;
    shim_link_at_exit_now();
  }
  for (;;) syscall(SYS_exit_group, status);
}

SHIM_EXPORT void _exit(int status) { ExitNow(status); }
SHIM_EXPORT void _Exit(int status) { ExitNow(status); }

__attribute__((destructor)) static void ShimStop(void) {
  if (!g_active) return;
  int saved = errno;
  t_busy = 1;
  shim_loaded_report(1); /* libraries loaded late: CUDA, cuDNN, NCCL, plugins */
  shim_link_at_exit();
  t_busy = 0;
  errno = saved;
}
