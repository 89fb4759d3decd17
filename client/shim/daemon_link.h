/* The shim's connection to reprod's shim socket: HELLO at process start, reports of dataset
 * opens, verdicts in enforce mode, reconnection after reprod restarts or after fork.
 *
 *   shim_link_init(&config);                 // constructor
 *   if (shim_link_start() == 0) ...          // HELLO answered: the pin is published
 *   enum shim_answer a = shim_link_report(&report, wait, reason, sizeof(reason));
 *
 * Never hangs or crashes its host: the socket is non-blocking; a synchronous wait (HELLO at start,
 * a verdict in enforce mode) is bounded by the configured timeout. Record-mode reports never
 * wait: they are copied into the report ring reprod passed with the PIN (memory reprod also maps,
 * proto/shim/shim_ring.h), with a DOORBELL datagram only when reprod sleeps; nothing is held in
 * the process's own memory, so exit, exec, fork or a quiet process strand nothing. Without a ring
 * (or with it full) a report is sent as a datagram; when the socket is full or reprod is away
 * they queue in a fixed 256 KiB backlog that is sent at the next report (or at exit, _exit or
 * exec, within the timeout); beyond it they are dropped and counted (one line at exit). A lost
 * reprod is warned about once per outage and tried again at most once a second (every 250 ms in
 * enforce mode). The socket is close-on-exec and sits on a high descriptor number, away from the
 * program's own.
 *
 * Thread-safe (one mutex; a verdict wait holds it, so enforce-mode verdicts of one process are
 * asked one at a time). Fork-safe: the child drops the inherited socket and reconnects on its
 * first report with its own HELLO. A process that shares memory with the shim's owner without
 * fork() having run its handlers (vfork, _Fork) never touches the connection: its reports are
 * dropped and counted.
 */
#ifndef REPRO_CLIENT_SHIM_DAEMON_LINK_H_
#define REPRO_CLIENT_SHIM_DAEMON_LINK_H_

#include <stddef.h>
#include <stdint.h>
#include <sys/stat.h>

struct shim_link_config {
  const char* job;
  const char* socket_path; /* at most 107 bytes */
  int64_t rank;
  int mode; /* REPRO_SHIM_MODE_* asked for */
  int timeout_ms;
  int argc;
  char** argv; /* the process's argv (read at each HELLO) */
};

enum shim_answer {
  SHIM_ANSWER_NONE,  /* not sent, or no verdict in time: reprod unreachable */
  SHIM_ANSWER_SENT,  /* sent without waiting (record mode) */
  SHIM_ANSWER_ALLOW, /* reprod's verdict */
  SHIM_ANSWER_DENY,  /* reprod's verdict; the reason is filled in */
};

struct shim_report {
  const char* dataset;
  uint32_t flags; /* REPRO_SHIM_OPEN_* */
  const char* requested_path;
  const char* opened_path;
  const struct stat* stat; /* NULL when the file was not opened */
  uint32_t view_use;       /* REPRO_SHIM_VIEW_*: not opened but listed, stat-ed...; 0: opened */
};

/* Copies `config`. Call once from the constructor. */
void shim_link_init(const struct shim_link_config* config);

/* Connects, says HELLO and waits (bounded) for the pin, which it publishes. 0 when reprod
 * answered with a pin; -1 otherwise (one line on stderr says why). */
int shim_link_start(void);

/* While no pin is known: a rate-limited, non-blocking attempt to connect or to read the answer
 * to an earlier HELLO (record mode, reprod was down at start). */
void shim_link_poll(void);

/* Reports an open. `wait` = 0: never blocks on reprod; returns SENT or NONE. `wait` = 1: waits up
 * to the timeout for the verdict; on DENY, `reason` (cap bytes) holds reprod's one-line reason. */
enum shim_answer shim_link_report(const struct shim_report* report, int wait, char* reason,
                                  size_t cap);

/* Enforce mode, for a file the verdict index vouches for: publishes the report in the report
 * ring, never waiting, when reprod is there to read it. 1 when published (the open may go ahead:
 * it will be journaled); 0 when not (no ring, reprod gone, ring full): ask for a verdict instead. */
int shim_link_report_vouched(const struct shim_report* report);

/* Sends a message that wants no answer (LOADED, request_id 0) like a record-mode report: now, or
 * from the backlog later, where such messages may fill at most half, the rest staying for dataset
 * opens; never waits. 0 when sent or kept; -1 when dropped (no pin known yet, no room, or a vfork
 * child). The caller keeps `msg`; it is copied when kept. */
int shim_link_post(const uint8_t* msg, uint32_t n);

/* 1 when called from the process that owns the shim state (not a vfork or _Fork child). */
int shim_link_in_owner(void);

/* pthread_atfork child handler. */
void shim_link_after_fork_child(void);

/* Before exec ends the process image: sends what waits in the backlog (reports that found the
 * socket full or reprod away) and the count of reports made so far, waiting for room up to the
 * timeout. */
void shim_link_before_exec(void);

/* At exit: what shim_link_before_exec sends (once), then one line on stderr when reports were
 * dropped. */
void shim_link_at_exit(void);

/* shim_link_at_exit for _exit, which may be called from a signal handler: does nothing when the
 * link is busy (the interrupted code may hold it; reprod then counts what is lost from the report
 * ring, issue 13). Async-signal-safe. */
void shim_link_at_exit_now(void);

const char* shim_link_socket_path(void);

/* The process's executable (/proc/self/exe, read by shim_link_init), or "" when unknown. */
const char* shim_link_exe(void);

#endif /* REPRO_CLIENT_SHIM_DAEMON_LINK_H_ */
