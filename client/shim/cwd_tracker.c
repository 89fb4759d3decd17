#include "client/shim/cwd_tracker.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "client/shim/fixed_table.h"

/* Seeds the hash of the working directory (and so the keys of relative paths). */
#define SHIM_CWD_SEED 0x6377645f73656564ull

static struct {
  atomic_uint sequence; /* odd while an update is in progress */
  int known;
  size_t len;
  uint64_t seed;
  char path[SHIM_PATH_MAX];
} g_cwd;
static pthread_mutex_t g_update_mu = PTHREAD_MUTEX_INITIALIZER;

/* Caller holds g_update_mu. */
static void Publish(const char* path, size_t len) {
  atomic_fetch_add_explicit(&g_cwd.sequence, 1, memory_order_acq_rel);
  atomic_thread_fence(memory_order_release);
  if (path != NULL) {
    memcpy(g_cwd.path, path, len);
    g_cwd.path[len] = '\0';
    g_cwd.len = len;
    g_cwd.seed = shim_hash(path, len, SHIM_CWD_SEED);
  }
  g_cwd.known = path != NULL;
  atomic_fetch_add_explicit(&g_cwd.sequence, 1, memory_order_release);
}

/* Folds ".", ".." and repeated slashes of the absolute path in buf, in place; returns the new
 * length (at least 1: "/"). */
static size_t Normalize(char* buf, size_t len) {
  size_t out = 0, i = 0;
  while (i < len) {
    while (i < len && buf[i] == '/') ++i;
    size_t start = i;
    while (i < len && buf[i] != '/') ++i;
    size_t n = i - start;
    if (n == 0 || (n == 1 && buf[start] == '.')) continue;
    if (n == 2 && buf[start] == '.' && buf[start + 1] == '.') {
      while (out > 0 && buf[out - 1] != '/') --out;
      if (out > 0) --out;
      continue;
    }
    buf[out++] = '/';
    memmove(buf + out, buf + start, n);
    out += n;
  }
  if (out == 0) buf[out++] = '/';
  buf[out] = '\0';
  return out;
}

static int IsWorkingDirectory(const char* path) {
  struct stat a, b;
  return stat(path, &a) == 0 && stat(".", &b) == 0 && a.st_dev == b.st_dev && a.st_ino == b.st_ino;
}

/* Caller holds g_update_mu. Publishes `logical` (normalized, length len) when it names the working
 * directory, else what getcwd says. */
static void PublishBest(char* logical, size_t len) {
  if (logical != NULL && IsWorkingDirectory(logical)) {
    Publish(logical, len);
    return;
  }
  char physical[SHIM_PATH_MAX];
  if (getcwd(physical, sizeof(physical)) != NULL && physical[0] == '/') {
    Publish(physical, strlen(physical));
  } else {
    Publish(NULL, 0);
  }
}

void shim_cwd_init(void) {
  char buf[SHIM_PATH_MAX];
  const char* pwd = getenv("PWD");
  size_t len = pwd != NULL ? strlen(pwd) : 0;
  pthread_mutex_lock(&g_update_mu);
  if (len > 0 && len < sizeof(buf) && pwd[0] == '/') {
    memcpy(buf, pwd, len + 1);
    PublishBest(buf, Normalize(buf, len));
  } else {
    PublishBest(NULL, 0);
  }
  pthread_mutex_unlock(&g_update_mu);
}

void shim_cwd_changed(const char* path) {
  char buf[SHIM_PATH_MAX];
  pthread_mutex_lock(&g_update_mu);
  size_t n = path != NULL ? strlen(path) : 0;
  char* logical = NULL;
  size_t len = 0;
  if (n > 0 && path[0] == '/' && n < sizeof(buf)) {
    memcpy(buf, path, n + 1);
    logical = buf;
    len = Normalize(buf, n);
  } else if (n > 0 && g_cwd.known && g_cwd.len + 1 + n < sizeof(buf)) {
    memcpy(buf, g_cwd.path, g_cwd.len);
    buf[g_cwd.len] = '/';
    memcpy(buf + g_cwd.len + 1, path, n + 1);
    logical = buf;
    len = Normalize(buf, g_cwd.len + 1 + n);
  }
  PublishBest(logical, len);
  pthread_mutex_unlock(&g_update_mu);
}

void shim_cwd_after_fork_child(void) {
  pthread_mutex_init(&g_update_mu, NULL);
  if (atomic_load_explicit(&g_cwd.sequence, memory_order_acquire) & 1) {
    /* A parent thread was mid-update: the copy is torn. Forget it. */
    g_cwd.known = 0;
    atomic_fetch_add_explicit(&g_cwd.sequence, 1, memory_order_release);
  }
}

int shim_cwd_view(struct shim_cwd_view* view) {
  uint32_t s = atomic_load_explicit(&g_cwd.sequence, memory_order_acquire);
  if ((s & 1) != 0 || !g_cwd.known) return 0;
  view->sequence = s;
  view->seed = g_cwd.seed;
  view->path = g_cwd.path;
  view->len = g_cwd.len;
  return shim_cwd_still_valid(view);
}

int shim_cwd_still_valid(const struct shim_cwd_view* view) {
  atomic_thread_fence(memory_order_acquire);
  return atomic_load_explicit(&g_cwd.sequence, memory_order_relaxed) == view->sequence;
}

long shim_cwd_copy(char* buf, size_t cap, uint64_t* seed) {
  for (int attempt = 0; attempt < 4; ++attempt) {
    struct shim_cwd_view view;
    if (!shim_cwd_view(&view)) break;
    if (view.len >= cap) return -1;
    memcpy(buf, view.path, view.len);
    buf[view.len] = '\0';
    if (shim_cwd_still_valid(&view)) {
      *seed = view.seed;
      return (long)view.len;
    }
  }
  if (getcwd(buf, cap) == NULL || buf[0] != '/') return -1;
  size_t len = strlen(buf);
  *seed = shim_hash(buf, len, SHIM_CWD_SEED);
  return (long)len;
}
