#include "client/shim/loaded_report.h"

#include <gnu/libc-version.h>
#include <link.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdint.h>
#include <string.h>

#include "client/shim/daemon_link.h"
#include "client/shim/fixed_table.h"
#include "proto/shim/shim_protocol.h"

#define kSlots 4096
/* Package directories seen but not sent yet wait here, NUL-terminated, back to back. */
#define kPendingBytes (32 * 1024)
/* LOADED messages one report sends at most (each holds hundreds of libraries). */
#define kMaxMessages 16
#define kLibrarySeed 0x6c6962726172792eull
#define kPackageSeed 0x7061636b6167652eull
#define kPackagesDir "-packages/"
#define kPackagesDirLen (sizeof(kPackagesDir) - 1)

static int g_python;

/* What this process (or the parent it was forked from) sent or queued already. A table is a
 * cache: an entry it forgets is sent again, and reprod deduplicates. */
static struct shim_slot g_lib_slots[kSlots];
static struct shim_table g_libs = SHIM_TABLE_INIT(g_lib_slots, kSlots);
static struct shim_slot g_pkg_slots[kSlots];
static struct shim_table g_pkgs = SHIM_TABLE_INIT(g_pkg_slots, kSlots);

static pthread_mutex_t g_pending_mu = PTHREAD_MUTEX_INITIALIZER;
static char g_pending[kPendingBytes]; /* guarded by g_pending_mu */
static size_t g_pending_len;          /* guarded by g_pending_mu */
static atomic_int g_news;             /* g_pending holds something */

static pthread_mutex_t g_report_mu = PTHREAD_MUTEX_INITIALIZER;
static uint8_t g_msg[REPRO_SHIM_MAX_MESSAGE]; /* guarded by g_report_mu */
static atomic_int g_reported;                 /* this process sent a report */

void shim_loaded_init(int is_python) { g_python = is_python; }

size_t shim_package_dir_length(const char* path) {
  for (const char* at = strstr(path, kPackagesDir); at != NULL;
       at = strstr(at + kPackagesDirLen, kPackagesDir)) {
    if (at - path < 4 || (memcmp(at - 4, "site", 4) != 0 && memcmp(at - 4, "dist", 4) != 0)) {
      continue;
    }
    const char* top = at + kPackagesDirLen;
    const char* end = strchr(top, '/');
    if (end == NULL) return top[0] != '\0' ? strlen(path) : 0; /* a module: six.py */
    if (end == top) return 0;
    if (end - top == 11 && memcmp(top, "__pycache__", 11) == 0) {
      const char* file = end + 1; /* six.cpython-311.pyc */
      return file[0] != '\0' && strchr(file, '/') == NULL ? strlen(path) : 0;
    }
    return (size_t)(end - path); /* a package: numpy */
  }
  return 0;
}

void shim_loaded_note_open(const char* path) {
  if (!g_python || path == NULL || path[0] != '/') return;
  size_t n = shim_package_dir_length(path);
  if (n == 0) return;
  uint64_t key = shim_hash(path, n, kPackageSeed);
  if (shim_table_get(&g_pkgs, key, NULL)) return;
  pthread_mutex_lock(&g_pending_mu);
  /* When the buffer is full the directory is not remembered: it is noted again after the next
   * report empties the buffer. */
  if (!shim_table_get(&g_pkgs, key, NULL) && g_pending_len + n + 1 <= sizeof(g_pending)) {
    memcpy(g_pending + g_pending_len, path, n);
    g_pending[g_pending_len + n] = '\0';
    g_pending_len += n + 1;
    shim_table_put(&g_pkgs, key, 1);
    atomic_store_explicit(&g_news, 1, memory_order_release);
  }
  pthread_mutex_unlock(&g_pending_mu);
}

static int Fits(const struct repro_shim_writer* w, size_t n) {
  return !w->overflow && w->cap - w->len >= REPRO_SHIM_FIELD_HEADER_SIZE + n;
}

struct collect {
  struct repro_shim_writer* w;
  int full; /* libraries are left for another message */
};

/* dl_iterate_phdr callback: adds the libraries not sent yet while they fit. */
static int AddLibrary(struct dl_phdr_info* info, size_t size, void* data) {
  (void)size;
  struct collect* c = data;
  const char* name = info->dlpi_name;
  if (name == NULL || name[0] != '/') return 0; /* the program itself, the vDSO */
  size_t n = strlen(name);
  if (n > REPRO_SHIM_MAX_STRING) return 0;
  uint64_t key = shim_hash(name, n, kLibrarySeed);
  if (shim_table_get(&g_libs, key, NULL)) return 0;
  if (!Fits(c->w, n)) {
    c->full = 1;
    return 1; /* stops the iteration */
  }
  repro_shim_put_str(c->w, REPRO_SHIM_F_LIBRARY, name, n);
  shim_table_put(&g_libs, key, 1);
  return 0;
}

/* Moves pending package directories into the message while they fit. 1 when some are left. */
static int AddPackages(struct repro_shim_writer* w) {
  pthread_mutex_lock(&g_pending_mu);
  size_t at = 0;
  while (at < g_pending_len) {
    size_t n = strlen(g_pending + at);
    if (!Fits(w, n)) break;
    repro_shim_put_str(w, REPRO_SHIM_F_PACKAGE_DIR, g_pending + at, n);
    at += n + 1;
  }
  memmove(g_pending, g_pending + at, g_pending_len - at);
  g_pending_len -= at;
  const int left = g_pending_len > 0;
  atomic_store_explicit(&g_news, left, memory_order_relaxed);
  pthread_mutex_unlock(&g_pending_mu);
  return left;
}

void shim_loaded_report(int at_exit) {
  if (!at_exit && atomic_load_explicit(&g_reported, memory_order_relaxed) &&
      !atomic_load_explicit(&g_news, memory_order_acquire)) {
    return;
  }
  pthread_mutex_lock(&g_report_mu);
  const char* libc = gnu_get_libc_version();
  for (int i = 0; i < kMaxMessages; ++i) {
    struct repro_shim_writer w;
    repro_shim_writer_init(&w, g_msg, sizeof(g_msg), REPRO_SHIM_LOADED, 0);
    repro_shim_put_str(&w, REPRO_SHIM_F_LIBC_VERSION, libc, strlen(libc));
    const uint32_t empty = w.len;
    struct collect c = {.w = &w, .full = 0};
    dl_iterate_phdr(AddLibrary, &c);
    const int more = AddPackages(&w) || c.full;
    if (w.len > empty) shim_link_post(g_msg, repro_shim_finish(&w));
    if (!more) break;
  }
  atomic_store_explicit(&g_reported, 1, memory_order_relaxed);
  pthread_mutex_unlock(&g_report_mu);
}

void shim_loaded_after_fork_child(void) {
  /* The child keeps what the parent sent (same job, same libraries) and reports what it loads
   * or imports itself from its first dataset open on. */
  pthread_mutex_init(&g_pending_mu, NULL);
  pthread_mutex_init(&g_report_mu, NULL);
  atomic_store(&g_reported, 0);
}
