/* What the shim's exported wrappers share (shim.c: the open family and chdir; view_wrappers.c:
 * listing, stat, access, readlink, realpath, exec). Hidden symbols of libreproshim.so only.
 *
 *   if (g_active && !t_busy) { t_busy = 1; ...shim work...; t_busy = 0; }
 */
#ifndef REPRO_CLIENT_SHIM_SHIM_STATE_H_
#define REPRO_CLIENT_SHIM_SHIM_STATE_H_

#include <stdint.h>

#include "client/shim/path_resolver.h"
#include "client/shim/pin_table.h"

/* Set once by the constructor when REPRO_JOB names a job. */
extern int g_active;
/* Per thread: the shim is at work; calls made meanwhile go straight to libc. */
extern __thread int t_busy __attribute__((tls_model("initial-exec")));

/* The per-process table of paths already reported or judged: key -> state (kept per fork
 * child). shim_lookup returns 1 and the state when `key` was remembered in this process. */
int shim_lookup(uint64_t key, int* state);
void shim_remember(uint64_t key, int state);
enum { SHIM_REPORTED = 1, SHIM_ALLOWED = 2, SHIM_DENIED = 3 };

/* One line on stderr: the job refused `requested` (resolved to t->path) because `why`, naming the
 * pin of t's dataset. */
void shim_print_refusal(const struct shim_pin* pin, const struct shim_target* t,
                        const char* requested, const char* why);

/* One line on stderr: enforce mode refused `requested`, which the shim could not resolve. */
void shim_print_unresolved(const char* requested);

/* After a successful chdir(path) (NULL: fchdir) by the process that owns the shim state. */
void shim_after_chdir(const char* path);

/* While no pin is known (reprod was down at start): try to get one, rate-limited; keeps errno. */
void shim_poll_for_pin(void);

/* A use (REPRO_SHIM_VIEW_*) of `requested`, resolved to t in another version than the pinned one
 * (t->other): in enforce mode the line on stderr and -1 (refuse it with EACCES); in record mode
 * 0 (let it be). Either way reprod is told once per process and version directory. Call with
 * t_busy set. */
int shim_view_other(const struct shim_pin* pin, const struct shim_target* t,
                    const char* requested, uint32_t use);

#endif /* REPRO_CLIENT_SHIM_SHIM_STATE_H_ */
