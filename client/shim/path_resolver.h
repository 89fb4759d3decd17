/* Where an open lands with respect to the pin: the path rules of the shim.
 *
 *   if (!shim_quick_check(pin, dirfd, path)) return real_open(...);   // not a dataset open
 *   struct shim_target t;
 *   if (shim_resolve(pin, dirfd, path, &t) == 0 && t.place == SHIM_IN_VERSION) {
 *     // open t.path instead: aliases rewritten, "..", "." and symlinks resolved
 *   }
 *
 * Rules. A path is made absolute (working directory, or the directory behind `dirfd` read from
 * /proc/self/fd) and walked component by component like the kernel does, following symlinks
 * (readlink) outside the dataset roots, so no spelling ("..", "//", ".", a symlink to a root or to
 * a version, a relative path after chdir) escapes the rules. Under a root ROOT, the first name N
 * decides: N is the pinned version's directory -> inside the pinned version; N is another
 * registered version's directory -> inside that version (`other`); any other N (latest, current,
 * a symlink) -> an alias, replaced by the pinned directory (`redirected`). Below N the path is
 * taken lexically: versions hold no symlinks (registration refuses them, and reprod reports a file
 * reached through one added later, since it is not in the manifest). An entry of ROOT that is not
 * a directory (a README) and ROOT itself are left alone.
 *
 * Cost. shim_quick_check allocates nothing: it compares absolute paths (and the working
 * directory of relative ones) with the roots, and looks the directory up in a lock-free cache of
 * directories already found to lie outside every root. In record mode the cache is keyed by the
 * directory's spelling (no syscall); in enforce mode by its device and inode (one stat of the
 * directory per call), so that a directory replaced by a symlink into a root is not taken for the
 * one that was found outside (enforce mode fails closed). A miss costs one
 * readlink per component of that directory, once. An openat() with a directory fd and a relative
 * path costs one readlink of /proc/self/fd/N per call. Limits: a symlink in the last component
 * of a file outside the roots is not followed (it would cost an lstat per open; directories opened
 * with O_DIRECTORY are followed to the end); in record mode, a directory outside the roots that is
 * turned into a symlink to a root after the process first used it is not noticed.
 *
 * Thread-safe.
 */
#ifndef REPRO_CLIENT_SHIM_PATH_RESOLVER_H_
#define REPRO_CLIENT_SHIM_PATH_RESOLVER_H_

#include <stddef.h>

#include "client/shim/cwd_tracker.h"
#include "client/shim/pin_table.h"

enum shim_place {
  SHIM_OUTSIDE,    /* not under any dataset root */
  SHIM_ROOT_ENTRY, /* a root itself, or an entry in it that is not a version: left alone */
  SHIM_IN_VERSION, /* a version directory or something inside one */
};

struct shim_target {
  enum shim_place place;
  int dataset;     /* index in the pin, when not SHIM_OUTSIDE */
  int other;       /* in another registered version than the pinned one */
  int redirected;  /* an alias was replaced by the pinned version's directory */
  int version_dir; /* the target is a version directory itself */
  size_t len;
  size_t rel_off;  /* path + rel_off: the part inside the version ("" when version_dir) */
  char path[SHIM_PATH_MAX]; /* absolute path to open instead of the one asked for */
};

/* 0 when the open certainly lies outside every dataset root (no syscall, no allocation); 1 when
 * shim_resolve must decide. `pin` must have at least one dataset. `whole`: the path names a
 * directory to open (O_DIRECTORY), so its last component is followed too. */
int shim_quick_check(const struct shim_pin* pin, int dirfd, const char* path, int whole);

/* Resolves the open of `path` relative to `dirfd` (AT_FDCWD: the working directory); `whole` as
 * for shim_quick_check. Returns 0 with *t filled, or -1 when the path cannot be resolved (too
 * long, a symlink loop, a dirfd that is not a directory of this process): record mode lets the
 * call go ahead untouched, enforce mode refuses what libc manages anyway (it may lie under a
 * root). Sets errno freely. */
int shim_resolve(const struct shim_pin* pin, int dirfd, const char* path, int whole,
                 struct shim_target* t);

/* Forgets the directories known to lie outside the roots (when the roots change). */
void shim_resolver_forget(void);

#endif /* REPRO_CLIENT_SHIM_PATH_RESOLVER_H_ */
