#include "client/shim/path_resolver.h"

#include <errno.h>
#include <fcntl.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "client/shim/fixed_table.h"
#include "proto/shim/shim_protocol.h"
#include "client/shim/shim_text.h"

/* Seeds of directory keys: absolute spellings, spellings relative to the working directory
 * (mixed with the directory's own hash), and (enforce mode) device and inode. */
#define SHIM_ABS_DIR_SEED 0x6162735f6469725full
#define SHIM_REL_DIR_SEED 0x72656c5f6469725full
#define SHIM_INODE_DIR_SEED 0x696e6f64655f6469ull
/* Longest file name (the kernel's NAME_MAX). */
#define SHIM_NAME_MAX 255
/* Symlinks followed in one resolution before giving up (the kernel's limit). */
#define SHIM_MAX_LINKS 40
#define SHIM_OUTSIDE_SLOTS 8192

static struct shim_slot g_outside_slots[SHIM_OUTSIDE_SLOTS];
/* Directories found to lie outside every dataset root: by spelling in record mode, by device and
 * inode in enforce mode. */
static struct shim_table g_outside =
    SHIM_TABLE_INIT(g_outside_slots, SHIM_OUTSIDE_SLOTS);

void shim_resolver_forget(void) {
  for (size_t i = 0; i < SHIM_OUTSIDE_SLOTS; ++i) {
    atomic_store_explicit(&g_outside_slots[i].key, 0, memory_order_relaxed);
    atomic_store_explicit(&g_outside_slots[i].value, 0, memory_order_relaxed);
  }
}

/* The last component of `path` (len bytes) is "." or "..": its directory says nothing about it. */
static int EndsInDots(const char* path, size_t len) {
  const char* slash = memrchr(path, '/', len);
  const char* last = slash != NULL ? slash + 1 : path;
  size_t n = (size_t)(path + len - last);
  return (n == 1 && last[0] == '.') || (n == 2 && last[0] == '.' && last[1] == '.');
}

/* Length of the directory part of `path`: up to its last '/' (0 when there is none). */
static size_t DirLength(const char* path, size_t len) {
  const char* slash = memrchr(path, '/', len);
  return slash != NULL ? (size_t)(slash - path) : 0;
}

/* The keys of a directory in the outside-cache: an absolute spelling, or one relative to the working
 * directory (mixed with its hash). The directory is `path` itself when `whole`, else its parent. */
static uint64_t AbsDirKey(const char* path, size_t len, int whole) {
  return shim_hash(path, whole ? len : DirLength(path, len), SHIM_ABS_DIR_SEED);
}

static uint64_t RelDirKey(const char* path, size_t len, int whole, uint64_t cwd_seed) {
  return shim_hash(path, whole ? len : DirLength(path, len), cwd_seed ^ SHIM_REL_DIR_SEED);
}

/* The enforce-mode key of a directory: what it is (device and inode), not how it is spelled, so
 * that a directory replaced by a symlink into a root is a new key. 0 when it cannot be had. */
static uint64_t InodeKey(const struct stat* st) {
  uint64_t id[2] = {(uint64_t)st->st_dev, (uint64_t)st->st_ino};
  return shim_hash((const char*)id, sizeof(id), SHIM_INODE_DIR_SEED);
}

/* Enforce mode: the directory of `path` (the path itself when `whole`) is known to lie outside
 * every root. One stat of it (the kernel's, not the shim's wrapper). */
static int KnownOutsideByInode(const char* path, size_t len, int whole) {
  char dir[SHIM_PATH_MAX];
  size_t n = whole ? len : DirLength(path, len);
  if (n >= sizeof(dir)) return 0;
  memcpy(dir, path, n);
  dir[n] = '\0';
  if (n == 0) strcpy(dir, path[0] == '/' ? "/" : ".");
  struct stat st;
  int saved = errno;
  long r = syscall(SYS_newfstatat, AT_FDCWD, dir, &st, 0);
  errno = saved;
  return r == 0 && shim_table_get(&g_outside, InodeKey(&st), NULL);
}

int shim_quick_check(const struct shim_pin* pin, int dirfd, const char* path, int whole) {
  if (path == NULL || path[0] == '\0') return 0;
  size_t len = strlen(path);
  if (!whole && EndsInDots(path, len)) return 1;
  const int by_inode = pin->mode == REPRO_SHIM_MODE_ENFORCE;
  if (path[0] == '/') {
    if (shim_pin_find_root(pin, path, len) >= 0) return 1;
    if (by_inode) return !KnownOutsideByInode(path, len, whole);
    return !shim_table_get(&g_outside, AbsDirKey(path, len, whole), NULL);
  }
  if (dirfd != AT_FDCWD) return 1;
  struct shim_cwd_view cwd;
  if (!shim_cwd_view(&cwd) || shim_pin_find_root(pin, cwd.path, cwd.len) >= 0) return 1;
  if (by_inode) return !KnownOutsideByInode(path, len, whole);
  uint64_t key = RelDirKey(path, len, whole, cwd.seed);
  if (!shim_cwd_still_valid(&cwd)) return 1;
  return !shim_table_get(&g_outside, key, NULL);
}

/* The state of one resolution: the resolved prefix and what is left to walk. */
struct walker {
  const struct shim_pin* pin;
  char* out; /* resolved so far, NUL-terminated; "" stands for "/" */
  size_t len;
  char* rest; /* rest[off, end) is still to be walked */
  size_t off;
  size_t end;
  char* link; /* SHIM_PATH_MAX bytes for readlink */
  int links;
  int complete;   /* every component outside the roots was resolved */
  int redirected; /* an alias was replaced */
  int in_version; /* out lies inside a version directory: the rest is lexical */
};

static int Push(struct walker* w, const char* name, size_t n) {
  if (w->len + 1 + n >= SHIM_PATH_MAX) return -1;
  w->out[w->len++] = '/';
  memcpy(w->out + w->len, name, n);
  w->len += n;
  w->out[w->len] = '\0';
  return 0;
}

static void Pop(struct walker* w) {
  while (w->len > 0 && w->out[w->len - 1] != '/') --w->len;
  if (w->len > 0) --w->len;
  w->out[w->len] = '\0';
  w->in_version = 0; /* perhaps back at a root: the next name is looked at again */
}

/* The length of rest[off, end) without one trailing '/' when it is spelled plainly (no empty,
 * "." or ".." component), else -1. */
static long PlainLength(const struct walker* w) {
  const char* p = w->rest + w->off;
  const char* end = w->rest + w->end;
  if (p < end && end[-1] == '/') --end;
  if (p == end) return 0;
  if (*p == '/' || *p == '.') return -1;
  for (const char* slash = memchr(p, '/', (size_t)(end - p)); slash != NULL;
       slash = memchr(slash + 1, '/', (size_t)(end - slash - 1))) {
    if (slash + 1 == end || slash[1] == '/' || slash[1] == '.') return -1;
  }
  return end - p;
}

/* Replaces rest[0, off) by the symlink target link[0, n). */
static int Splice(struct walker* w, size_t n) {
  size_t tail = w->end - w->off;
  if (n + 1 + tail >= SHIM_PATH_MAX) return -1;
  memmove(w->rest + n + 1, w->rest + w->off, tail);
  memcpy(w->rest, w->link, n);
  w->rest[n] = '/';
  w->off = 0;
  w->end = n + 1 + tail;
  return 0;
}

/* Walks rest[off, end) onto out. -1 on overflow or a symlink loop. */
static int Walk(struct walker* w) {
  while (w->off < w->end) {
    const long plain = w->in_version ? PlainLength(w) : -1;
    if (plain >= 0) { /* the common case: the rest appended in one copy */
      if (plain > 0 && Push(w, w->rest + w->off, (size_t)plain) != 0) return -1;
      w->off = w->end;
      return 0;
    }
    size_t start = w->off;
    while (w->off < w->end && w->rest[w->off] != '/') ++w->off;
    const char* name = w->rest + start;
    size_t n = w->off - start;
    if (w->off < w->end) ++w->off;
    if (n == 0 || (n == 1 && name[0] == '.')) continue;
    if (n == 2 && name[0] == '.' && name[1] == '.') {
      Pop(w);
      continue;
    }
    int d = shim_pin_find_root(w->pin, w->out, w->len);
    if (d >= 0 && w->len == w->pin->datasets[d].root_len) {
      /* A name directly under a root: decided by the name, never followed. */
      const struct shim_dataset* ds = &w->pin->datasets[d];
      if (shim_pin_classify_name(w->pin, d, name, n) == SHIM_NAME_ALIAS) {
        w->redirected = 1;
        name = ds->pinned_dir;
        n = ds->pinned_dir_len;
      }
      if (Push(w, name, n) != 0) return -1;
      w->in_version = 1;
      continue;
    }
    if (Push(w, name, n) != 0) return -1;
    if (d >= 0 || !w->complete) continue; /* inside a version, or past an error: lexical */
    ssize_t k = readlink(w->out, w->link, SHIM_PATH_MAX);
    if (k < 0) {
      if (errno != EINVAL) w->complete = 0; /* ENOENT, EACCES...: the rest stays lexical */
      continue;
    }
    if (k >= SHIM_PATH_MAX || ++w->links > SHIM_MAX_LINKS) return -1;
    if (w->link[0] == '/') {
      w->len = 0;
      w->out[0] = '\0';
    } else {
      Pop(w);
    }
    if (Splice(w, (size_t)k) != 0) return -1;
  }
  return 0;
}

/* Writes the absolute form of `path` into buf: the path itself, or the working directory or the
 * directory of `dirfd` joined with it. Returns its length and sets *key to the key its directory
 * (the path itself when `whole`) has in the outside-cache (0: not cacheable), or -1. */
static long Absolute(int dirfd, const char* path, int whole, char* buf, uint64_t* key) {
  size_t n = strlen(path);
  const int cacheable = whole || !EndsInDots(path, n);
  long base;
  *key = 0;
  if (path[0] == '/') {
    if (n >= SHIM_PATH_MAX) return -1;
    memcpy(buf, path, n + 1);
    if (cacheable) *key = AbsDirKey(path, n, whole);
    return (long)n;
  }
  if (dirfd == AT_FDCWD) {
    uint64_t seed;
    base = shim_cwd_copy(buf, SHIM_PATH_MAX, &seed);
    if (base >= 0 && cacheable) *key = RelDirKey(path, n, whole, seed);
  } else {
    struct shim_text proc;
    shim_text_init(&proc);
    shim_text_add(&proc, "/proc/self/fd/");
    shim_text_add_i64(&proc, dirfd);
    base = readlink(shim_text_str(&proc), buf, SHIM_PATH_MAX);
    if (base <= 0 || base >= SHIM_PATH_MAX || buf[0] != '/') return -1;
  }
  if (base < 0 || (size_t)base + 1 + n >= SHIM_PATH_MAX) return -1;
  buf[base] = '/';
  memcpy(buf + base + 1, path, n + 1);
  long len = base + 1 + (long)n;
  if (dirfd != AT_FDCWD && cacheable) *key = AbsDirKey(buf, (size_t)len, whole);
  return len;
}

/* Notes that the directory t->path resolved to (spelled `key` in record mode) lies outside every
 * root. */
static void RememberOutside(const struct shim_pin* pin, const struct shim_target* t,
                            uint64_t key) {
  if (pin->mode == REPRO_SHIM_MODE_ENFORCE) {
    struct stat st;
    if (syscall(SYS_newfstatat, AT_FDCWD, t->len > 0 ? t->path : "/", &st, 0) != 0) return;
    key = InodeKey(&st);
  }
  shim_table_put(&g_outside, key, 1);
}

/* Fills t for a target whose directory resolved to exactly the root of dataset d. */
static void AtRootLevel(const struct shim_pin* pin, int d, const char* name, size_t n,
                        struct shim_target* t) {
  const struct shim_dataset* ds = &pin->datasets[d];
  if (n == 0) {
    t->place = SHIM_ROOT_ENTRY;
    return;
  }
  enum shim_name_kind kind = shim_pin_classify_name(pin, d, name, n);
  if (kind == SHIM_NAME_ALIAS) {
    struct stat st;
    if (t->len + 1 + n >= SHIM_PATH_MAX) {
      t->place = SHIM_ROOT_ENTRY;
      return;
    }
    t->path[t->len] = '/';
    memcpy(t->path + t->len + 1, name, n);
    t->path[t->len + 1 + n] = '\0';
    if (stat(t->path, &st) != 0 || !S_ISDIR(st.st_mode)) {
      t->place = SHIM_ROOT_ENTRY; /* a file in the root, or nothing: not an alias of a version */
      return;
    }
    t->redirected = 1;
    name = ds->pinned_dir;
    n = ds->pinned_dir_len;
  }
  t->path[t->len] = '/';
  memcpy(t->path + t->len + 1, name, n);
  t->len += 1 + n;
  t->path[t->len] = '\0';
  t->place = SHIM_IN_VERSION;
  t->other = kind == SHIM_NAME_OTHER;
  t->version_dir = 1;
  t->rel_off = t->len;
}

int shim_resolve(const struct shim_pin* pin, int dirfd, const char* path, int whole,
                 struct shim_target* t) {
  char rest[SHIM_PATH_MAX];
  char link[SHIM_PATH_MAX];
  uint64_t key;
  long len = Absolute(dirfd, path, whole, rest, &key);
  if (len < 0) return -1;

  /* Split off the last component, unless the target is a directory to walk whole. */
  size_t dir_len = (size_t)len;
  const char* name = "";
  size_t name_len = 0;
  if (!whole && !EndsInDots(rest, (size_t)len) && rest[len - 1] != '/') {
    dir_len = DirLength(rest, (size_t)len);
    name = rest + dir_len + 1;
    name_len = (size_t)len - dir_len - 1;
  }

  memset(t, 0, offsetof(struct shim_target, path));
  t->dataset = -1;
  struct walker w = {.pin = pin, .out = t->path, .rest = rest, .end = dir_len, .link = link,
                     .complete = 1};
  t->path[0] = '\0';
  int start = shim_pin_find_root(pin, rest, dir_len);
  if (start >= 0) { /* the root is symlink-free: start walking from it */
    w.len = pin->datasets[start].root_len;
    memcpy(t->path, rest, w.len);
    t->path[w.len] = '\0';
    w.off = w.len;
  }
  /* Following symlinks rewrites rest, so the last component is kept apart. */
  char last[SHIM_NAME_MAX + 1];
  if (name_len > SHIM_NAME_MAX) return -1;
  memcpy(last, name, name_len);
  if (Walk(&w) != 0) return -1;
  name = last;
  t->len = w.len;
  t->redirected = w.redirected;

  int d = shim_pin_find_root(pin, t->path, t->len);
  if (d < 0) {
    t->place = SHIM_OUTSIDE;
    if (key != 0 && w.complete) RememberOutside(pin, t, key);
    return 0;
  }
  t->dataset = d;
  const struct shim_dataset* ds = &pin->datasets[d];
  if (t->len == ds->root_len) {
    AtRootLevel(pin, d, name, name_len, t);
    return 0;
  }
  /* Inside a version: ROOT/NAME[/...]. */
  const char* version_name = t->path + ds->root_len + 1;
  const char* slash = memchr(version_name, '/', t->len - ds->root_len - 1);
  size_t version_len = slash != NULL ? (size_t)(slash - version_name) : t->len - ds->root_len - 1;
  t->other = shim_pin_classify_name(pin, d, version_name, version_len) == SHIM_NAME_OTHER;
  t->place = SHIM_IN_VERSION;
  if (name_len > 0) {
    if (t->len + 1 + name_len >= SHIM_PATH_MAX) return -1;
    t->path[t->len] = '/';
    memcpy(t->path + t->len + 1, name, name_len);
    t->len += 1 + name_len;
    t->path[t->len] = '\0';
  }
  t->rel_off = ds->root_len + 1 + version_len + 1;
  if (t->rel_off > t->len) t->rel_off = t->len;
  t->version_dir = t->rel_off == t->len;
  return 0;
}
