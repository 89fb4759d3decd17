/* The pin as the shim holds it: for each pinned dataset its root, the directory of the pinned
 * version and the directories of the dataset's other registered versions, in static storage.
 *
 *   struct shim_pin* spare = shim_pin_spare();
 *   if (shim_pin_from_message(spare, msg, len) == 0) shim_pin_publish(spare);
 *   const struct shim_pin* pin = shim_pin_current();   // NULL: no pin known yet
 *   int d = shim_pin_find_root(pin, path, len);         // dataset whose root holds `path`
 *
 * A pin comes from reprod's PIN reply (complete: other versions are known) or, while reprod cannot
 * be reached, from $REPRO_PINNED, which `reproctl run` and the shim itself set (incomplete: every
 * name under a root other than the pinned directory counts as an alias). Pins are immutable, so a
 * published pin is only ever replaced once, by a complete one.
 *
 * Thread-safe for readers (lock-free); shim_pin_spare/shim_pin_publish must be serialized by the
 * caller (the daemon link's mutex).
 */
#ifndef REPRO_CLIENT_SHIM_PIN_TABLE_H_
#define REPRO_CLIENT_SHIM_PIN_TABLE_H_

#include <stddef.h>
#include <stdint.h>

#define SHIM_MAX_DATASETS 32
#define SHIM_MAX_OTHER_DIRS 4096
#define SHIM_PIN_POOL 65536

struct shim_dataset {
  const char* name;        /* dataset name */
  const char* version;     /* pinned version name */
  const char* root;        /* absolute, symlink-free, no trailing slash */
  const char* pinned_dir;  /* directory name of the pinned version inside root */
  const char* pinned_path; /* root + "/" + pinned_dir */
  uint32_t root_len;
  uint32_t pinned_dir_len;
  uint32_t pinned_path_len;
  uint32_t first_other; /* other registered versions: others[first_other ..+ other_count] */
  uint32_t other_count;
};

struct shim_pin {
  int complete; /* from reprod: the other registered versions are known */
  int mode;     /* REPRO_SHIM_MODE_* */
  int has_seeds;
  uint64_t seed;
  uint64_t rank_seed;
  uint32_t count;
  struct shim_dataset datasets[SHIM_MAX_DATASETS];
  uint32_t other_count;
  const char* others[SHIM_MAX_OTHER_DIRS];
  uint32_t other_len[SHIM_MAX_OTHER_DIRS];
  uint32_t pool_used;
  char pool[SHIM_PIN_POOL];
};

/* How a name directly under a dataset root relates to the pin. */
enum shim_name_kind {
  SHIM_NAME_PINNED, /* the pinned version's directory */
  SHIM_NAME_OTHER,  /* another registered version's directory */
  SHIM_NAME_ALIAS,  /* anything else: latest, current, a symlink, an unregistered copy */
};

/* The published pin, or NULL. */
const struct shim_pin* shim_pin_current(void);

/* A table that is not the published one, cleared, to fill and publish. */
struct shim_pin* shim_pin_spare(void);

/* Makes `pin` current. Ignored when the current pin is complete (pins do not change). */
void shim_pin_publish(struct shim_pin* pin);

/* Empties `pin` and fills it from a PIN message (header included). 0 on success, -1 when it is
 * malformed or does not fit the static limits. */
int shim_pin_from_message(struct shim_pin* pin, const uint8_t* msg, size_t len);

/* Empties `pin` and fills it (incomplete) from $REPRO_PINNED: "DATASET@VERSION=/abs/version/dir"
 * entries joined by ':'. Malformed entries are skipped. Returns the number of datasets. */
int shim_pin_from_env(struct shim_pin* pin, const char* value, int mode);

/* Writes the $REPRO_PINNED form of `pin` into buf (NUL-terminated). 0, or -1 if it does not fit. */
int shim_pin_to_env(const struct shim_pin* pin, char* buf, size_t cap);

/* The dataset whose root is `path` or a prefix of it at a '/' boundary, or -1. */
int shim_pin_find_root(const struct shim_pin* pin, const char* path, size_t len);

enum shim_name_kind shim_pin_classify_name(const struct shim_pin* pin, int dataset,
                                           const char* name, size_t len);

#endif /* REPRO_CLIENT_SHIM_PIN_TABLE_H_ */
