/* The process's working directory as the shim sees it, kept up to date by the chdir/fchdir
 * wrappers so that a relative open costs no getcwd syscall.
 *
 *   shim_cwd_init();                         // constructor: $PWD when it is ".", else getcwd
 *   shim_cwd_changed("data/latest");         // after a successful chdir("data/latest")
 *   struct shim_cwd_view v;
 *   if (shim_cwd_view(&v)) ... v.seed ...    // lock-free snapshot for the hot path
 *
 * The directory is kept logical, as shells do (`cd -L`): after `cd /ml/ds/latest` it is
 * /ml/ds/latest, not the version the alias points at, so relative opens go through the alias
 * rules. It falls back to getcwd() whenever the logical spelling is not the same directory.
 *
 * Thread-safe: readers use a sequence lock and never block; updates are serialized. After fork
 * the child keeps the parent's copy (same directory). A vfork child never updates it (its chdir
 * must not change what the suspended parent sees).
 */
#ifndef REPRO_CLIENT_SHIM_CWD_TRACKER_H_
#define REPRO_CLIENT_SHIM_CWD_TRACKER_H_

#include <stddef.h>
#include <stdint.h>

#define SHIM_PATH_MAX 4096

struct shim_cwd_view {
  uint32_t sequence; /* pass to shim_cwd_still_valid */
  uint64_t seed;     /* hash of the directory: seeds the keys of relative paths */
  const char* path;  /* valid while shim_cwd_still_valid() */
  size_t len;
};

/* Reads $PWD / getcwd. Call once, before threads start (the constructor). */
void shim_cwd_init(void);

/* After a successful chdir(path) (path NULL: fchdir). The caller makes sure it runs in the process
 * that owns the shim state, never in a vfork child. */
void shim_cwd_changed(const char* path);

/* In a fork child: resets the update lock (a parent thread may have held it). */
void shim_cwd_after_fork_child(void);

/* Snapshot for the hot path: 0 when unknown or being updated (then use shim_cwd_copy). */
int shim_cwd_view(struct shim_cwd_view* view);

/* 1 when nothing changed since `view` was taken (its path bytes were stable). */
int shim_cwd_still_valid(const struct shim_cwd_view* view);

/* Copies the directory into buf (cap >= SHIM_PATH_MAX) and returns its length and seed; falls back
 * to getcwd when unknown. Returns -1 when there is no usable working directory. */
long shim_cwd_copy(char* buf, size_t cap, uint64_t* seed);

#endif /* REPRO_CLIENT_SHIM_CWD_TRACKER_H_ */
