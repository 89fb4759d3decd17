#include "client/shim/pin_table.h"

#include <stdatomic.h>
#include <string.h>

#include "proto/shim/shim_protocol.h"

static struct shim_pin g_tables[2];
static _Atomic(struct shim_pin*) g_current;

const struct shim_pin* shim_pin_current(void) {
  return atomic_load_explicit(&g_current, memory_order_acquire);
}

/* Empties `pin` (the pool and arrays are reused as they are). */
static void Clear(struct shim_pin* pin) {
  pin->complete = 0;
  pin->mode = REPRO_SHIM_MODE_RECORD;
  pin->has_seeds = 0;
  pin->seed = pin->rank_seed = 0;
  pin->count = 0;
  pin->other_count = 0;
  pin->pool_used = 0;
}

struct shim_pin* shim_pin_spare(void) {
  struct shim_pin* current = atomic_load_explicit(&g_current, memory_order_acquire);
  struct shim_pin* spare = current == &g_tables[0] ? &g_tables[1] : &g_tables[0];
  Clear(spare);
  return spare;
}

void shim_pin_publish(struct shim_pin* pin) {
  struct shim_pin* current = atomic_load_explicit(&g_current, memory_order_acquire);
  if (current != NULL && current->complete) return;
  atomic_store_explicit(&g_current, pin, memory_order_release);
}

/* Copies n bytes into the pool, NUL-terminated. NULL when the pool is full. */
static const char* Intern(struct shim_pin* pin, const void* s, size_t n) {
  if (n >= sizeof(pin->pool) - pin->pool_used) return NULL;
  char* out = pin->pool + pin->pool_used;
  memcpy(out, s, n);
  out[n] = '\0';
  pin->pool_used += (uint32_t)n + 1;
  return out;
}

/* A directory name: not empty, no '/', not "." or "..". */
static int IsDirName(const char* s, size_t n) {
  if (n == 0 || memchr(s, '/', n) != NULL) return 0;
  return !(n == 1 && s[0] == '.') && !(n == 2 && s[0] == '.' && s[1] == '.');
}

/* An absolute path without a trailing slash (and not "/" itself). */
static int IsRoot(const char* s, size_t n) { return n > 1 && s[0] == '/' && s[n - 1] != '/'; }

/* Adds a dataset; its strings are interned. 0, or -1 when a limit is hit or a value is invalid. */
static int AddDataset(struct shim_pin* pin, const char* name, size_t name_len, const char* version,
                      size_t version_len, const char* root, size_t root_len,
                      const char* pinned_dir, size_t pinned_dir_len) {
  if (pin->count == SHIM_MAX_DATASETS || name_len == 0 || version_len == 0 ||
      !IsRoot(root, root_len) || !IsDirName(pinned_dir, pinned_dir_len)) {
    return -1;
  }
  struct shim_dataset* d = &pin->datasets[pin->count];
  d->name = Intern(pin, name, name_len);
  d->version = Intern(pin, version, version_len);
  d->root = Intern(pin, root, root_len);
  d->pinned_dir = Intern(pin, pinned_dir, pinned_dir_len);
  if (d->name == NULL || d->version == NULL || d->root == NULL || d->pinned_dir == NULL) return -1;
  size_t path_len = root_len + 1 + pinned_dir_len;
  if (path_len >= sizeof(pin->pool) - pin->pool_used) return -1;
  char* path = pin->pool + pin->pool_used;
  memcpy(path, root, root_len);
  path[root_len] = '/';
  memcpy(path + root_len + 1, pinned_dir, pinned_dir_len);
  path[path_len] = '\0';
  pin->pool_used += (uint32_t)path_len + 1;
  d->pinned_path = path;
  d->root_len = (uint32_t)root_len;
  d->pinned_dir_len = (uint32_t)pinned_dir_len;
  d->pinned_path_len = (uint32_t)path_len;
  d->first_other = pin->other_count;
  d->other_count = 0;
  pin->count++;
  return 0;
}

static int AddOther(struct shim_pin* pin, const char* dir, size_t len) {
  if (pin->other_count == SHIM_MAX_OTHER_DIRS || !IsDirName(dir, len)) return -1;
  const char* s = Intern(pin, dir, len);
  if (s == NULL) return -1;
  pin->others[pin->other_count] = s;
  pin->other_len[pin->other_count] = (uint32_t)len;
  pin->other_count++;
  pin->datasets[pin->count - 1].other_count++;
  return 0;
}

/* Parses one DATASET field's nested fields into the pin. */
static int ParseDataset(struct shim_pin* pin, const uint8_t* p, size_t size) {
  struct repro_shim_field f;
  size_t off = 0;
  const uint8_t *name = NULL, *root = NULL, *dir = NULL, *version = NULL;
  uint32_t name_len = 0, root_len = 0, dir_len = 0, version_len = 0;
  int r;
  /* First pass: the dataset's own fields; OTHER_DIR fields are added after it. */
  while ((r = repro_shim_next_field(p, size, &off, &f)) == 1) {
    if (f.tag != REPRO_SHIM_F_OTHER_DIR && !repro_shim_field_is_str(&f)) return -1;
    switch (f.tag) {
      case REPRO_SHIM_F_NAME: name = f.value; name_len = f.size; break;
      case REPRO_SHIM_F_ROOT: root = f.value; root_len = f.size; break;
      case REPRO_SHIM_F_PINNED_DIR: dir = f.value; dir_len = f.size; break;
      case REPRO_SHIM_F_VERSION: version = f.value; version_len = f.size; break;
      case REPRO_SHIM_F_OTHER_DIR: break;
      default: return -1;
    }
  }
  if (r < 0 || name == NULL || root == NULL || dir == NULL || version == NULL) return -1;
  if (AddDataset(pin, (const char*)name, name_len, (const char*)version, version_len,
                 (const char*)root, root_len, (const char*)dir, dir_len) != 0) {
    return -1;
  }
  off = 0;
  while (repro_shim_next_field(p, size, &off, &f) == 1) {
    if (f.tag != REPRO_SHIM_F_OTHER_DIR) continue;
    if (!repro_shim_field_is_str(&f) || AddOther(pin, (const char*)f.value, f.size) != 0) {
      return -1;
    }
  }
  return 0;
}

int shim_pin_from_message(struct shim_pin* pin, const uint8_t* msg, size_t len) {
  struct repro_shim_header h;
  Clear(pin);
  if (repro_shim_read_header(msg, len, &h) != REPRO_SHIM_HEADER_OK || h.type != REPRO_SHIM_PIN) {
    return -1;
  }
  struct repro_shim_field f;
  size_t off = REPRO_SHIM_HEADER_SIZE;
  int r, have_seed = 0, have_rank_seed = 0;
  uint64_t v;
  while ((r = repro_shim_next_field(msg, len, &off, &f)) == 1) {
    switch (f.tag) {
      case REPRO_SHIM_F_SEED:
        if (!repro_shim_field_u64(&f, &pin->seed)) return -1;
        have_seed = 1;
        break;
      case REPRO_SHIM_F_RANK_SEED:
        if (!repro_shim_field_u64(&f, &pin->rank_seed)) return -1;
        have_rank_seed = 1;
        break;
      case REPRO_SHIM_F_MODE:
        if (!repro_shim_field_u64(&f, &v) ||
            (v != REPRO_SHIM_MODE_RECORD && v != REPRO_SHIM_MODE_ENFORCE)) {
          return -1;
        }
        pin->mode = (int)v;
        break;
      case REPRO_SHIM_F_DATASET:
        if (ParseDataset(pin, f.value, f.size) != 0) return -1;
        break;
      default:
        return -1;
    }
  }
  if (r < 0 || !have_seed || !have_rank_seed) return -1;
  pin->has_seeds = 1;
  pin->complete = 1;
  return 0;
}

int shim_pin_from_env(struct shim_pin* pin, const char* value, int mode) {
  Clear(pin);
  pin->mode = mode;
  const char* p = value;
  while (p != NULL && *p != '\0') {
    const char* end = strchr(p, ':');
    size_t n = end != NULL ? (size_t)(end - p) : strlen(p);
    const char* at = memchr(p, '@', n);
    const char* eq = memchr(p, '=', n);
    if (at != NULL && eq != NULL && at < eq) {
      const char* path = eq + 1;
      size_t path_len = (size_t)(p + n - path);
      const char* slash = path_len > 0 ? memrchr(path, '/', path_len) : NULL;
      if (slash != NULL && slash > path) {
        AddDataset(pin, p, (size_t)(at - p), at + 1, (size_t)(eq - at - 1), path,
                   (size_t)(slash - path), slash + 1, (size_t)(path + path_len - slash - 1));
      }
    }
    p = end != NULL ? end + 1 : NULL;
  }
  return (int)pin->count;
}

int shim_pin_to_env(const struct shim_pin* pin, char* buf, size_t cap) {
  size_t len = 0;
  for (uint32_t i = 0; i < pin->count; ++i) {
    const struct shim_dataset* d = &pin->datasets[i];
    size_t name_len = strlen(d->name), version_len = strlen(d->version);
    size_t need = (i > 0) + name_len + 1 + version_len + 1 + d->pinned_path_len;
    if (need >= cap - len) return -1;
    if (i > 0) buf[len++] = ':';
    memcpy(buf + len, d->name, name_len);
    len += name_len;
    buf[len++] = '@';
    memcpy(buf + len, d->version, version_len);
    len += version_len;
    buf[len++] = '=';
    memcpy(buf + len, d->pinned_path, d->pinned_path_len);
    len += d->pinned_path_len;
  }
  if (cap == 0) return -1;
  buf[len] = '\0';
  return 0;
}

int shim_pin_find_root(const struct shim_pin* pin, const char* path, size_t len) {
  for (uint32_t i = 0; i < pin->count; ++i) {
    const struct shim_dataset* d = &pin->datasets[i];
    if (len >= d->root_len && memcmp(path, d->root, d->root_len) == 0 &&
        (len == d->root_len || path[d->root_len] == '/')) {
      return (int)i;
    }
  }
  return -1;
}

enum shim_name_kind shim_pin_classify_name(const struct shim_pin* pin, int dataset,
                                           const char* name, size_t len) {
  const struct shim_dataset* d = &pin->datasets[dataset];
  if (len == d->pinned_dir_len && memcmp(name, d->pinned_dir, len) == 0) return SHIM_NAME_PINNED;
  for (uint32_t i = d->first_other; i < d->first_other + d->other_count; ++i) {
    if (len == pin->other_len[i] && memcmp(name, pin->others[i], len) == 0) return SHIM_NAME_OTHER;
  }
  return SHIM_NAME_ALIAS;
}
