#include "client/shim/daemon_link.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <sys/random.h>
#include <sys/mman.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "client/shim/cwd_tracker.h"
#include "client/shim/path_resolver.h"
#include "client/shim/pin_table.h"
#include "client/shim/reply_parser.h"
#include "client/shim/shim_text.h"
#include "client/shim/verdict_index.h"
#include "proto/shim/shim_index.h"
#include "proto/shim/shim_protocol.h"
#include "proto/shim/shim_ring.h"

#define kNsPerMs 1000000ll
/* How often a lost reprod is tried again. */
#define kRecordRetryNs (1000 * kNsPerMs)
#define kEnforceRetryNs (250 * kNsPerMs)
/* How often a pending HELLO answer is looked for while no pin is known. */
#define kPollNs (20 * kNsPerMs)
/* After reprod refused the job (not pinned, ...): ask again this much later. */
#define kRefusedRetryNs (5000 * kNsPerMs)
/* The socket is moved to a descriptor at least this high (or half the limit, if lower). */
#define kHighFd 1000
/* Send buffer asked for (the kernel caps it at net.core.wmem_max): room for bursts of reports. */
#define kSendBuffer (1 << 20)
/* Reports that found the socket full or reprod away wait here, in order, for the next chance. */
#define kBacklogBytes (256 * 1024)
/* While reports go to the ring, the connection is checked for a departed reprod this often. */
#define kRingProbeNs (1 * kNsPerMs)

static struct {
  char job[160];
  char socket_path[sizeof(((struct sockaddr_un*)0)->sun_path)];
  int64_t rank;
  int mode;
  int timeout_ms;
  int argc;
  char** argv;
  char exe[SHIM_PATH_MAX];
} g_cfg;

/* "NAME=VALUE" of each launcher variable set at start (REPRO_SHIM_LAUNCHER_VARS), for HELLO. */
static char g_launcher[REPRO_SHIM_MAX_LAUNCHER_VARS][REPRO_SHIM_MAX_LAUNCHER_VAR];
static int g_launcher_count;

/* Everything below g_mu is guarded by it. */
static pthread_mutex_t g_mu = PTHREAD_MUTEX_INITIALIZER;
static int g_fd = -1;
static uint32_t g_hello_id;  /* request id of the HELLO on g_fd */
static int g_hello_answered; /* reprod answered it (nothing else comes unasked in record mode) */
static int64_t g_hello_sent_ns;
static int g_warned; /* the current outage has been reported on stderr */
static uint8_t g_out[REPRO_SHIM_MAX_MESSAGE]; /* the HELLO or enforce-mode OPEN being sent */
static uint8_t g_post[REPRO_SHIM_MAX_MESSAGE]; /* the record-mode OPEN being posted */
static uint8_t g_in[REPRO_SHIM_MAX_MESSAGE];  /* the message being received */
/* Unsent messages (record-mode OPEN; LOADED, in at most half of it), each as u32 size + bytes, in
 * g_backlog[g_backlog_head, g_backlog_tail). */
static uint8_t g_backlog[kBacklogBytes];
static size_t g_backlog_head, g_backlog_tail;
/* The report ring reprod passed with the PIN answer on g_fd (proto/shim/shim_ring.h), or NULL. */
static uint8_t* g_ring;
static int g_ring_populated; /* its pages were faulted in (Publish) */
static int64_t g_ring_probed_ns; /* when the connection was last checked for a departed reprod */
/* The number the next dataset-open report gets (REPORT_SEQ). A report keeps its number whether it
 * is sent, kept in the backlog or dropped, so reprod sees a dropped one as a number that never
 * came (issue 13: gaps). Reports are sent in number order: the backlog holds them in order, and
 * what reprod never read from the ring goes back in front of the backlog. */
static uint64_t g_report_seq;
/* The number the next connection's HELLO gets (LINK). */
static uint64_t g_link;
static int g_finished; /* the process's last step ran (at exit or _exit) */

static atomic_int g_owner_pid;
static uint64_t g_nonce;
static atomic_uint g_next_id = 1;
static _Atomic int64_t g_retry_at_ns;
static atomic_ulong g_dropped;
/* When reprod last failed to make room for a waiting report (see PostAfterRoom); long ago if never. */
static int64_t g_room_refused_ns = INT64_MIN / 2;

static int64_t NowNs(void) {
  struct timespec ts;
  clock_gettime(CLOCK_MONOTONIC, &ts);
  return (int64_t)ts.tv_sec * 1000000000ll + ts.tv_nsec;
}

static uint32_t NextId(void) {
  uint32_t id = atomic_fetch_add_explicit(&g_next_id, 1, memory_order_relaxed);
  return id != 0 ? id : atomic_fetch_add_explicit(&g_next_id, 1, memory_order_relaxed);
}

static uint64_t NewNonce(void) {
  uint64_t nonce = 0;
  if (getrandom(&nonce, sizeof(nonce), GRND_NONBLOCK) != (ssize_t)sizeof(nonce)) {
    nonce = (uint64_t)NowNs() ^ ((uint64_t)getpid() << 32) ^ (uint64_t)(uintptr_t)&nonce;
  }
  return nonce;
}

static void CopyString(char* dst, size_t cap, const char* src) {
  size_t n = strlen(src);
  if (n >= cap) n = cap - 1;
  memcpy(dst, src, n);
  dst[n] = '\0';
}

/* Copies the launcher variables of the environment (read once: getenv races with setenv in
 * other threads later). A value too long for REPRO_SHIM_MAX_LAUNCHER_VAR is left out. */
static void ReadLauncherVars(void) {
  static const char* const kNames[] = {
#define REPRO_LAUNCHER_NAME(name) name,
      REPRO_SHIM_LAUNCHER_VARS(REPRO_LAUNCHER_NAME)
#undef REPRO_LAUNCHER_NAME
  };
  g_launcher_count = 0;
  for (size_t i = 0; i < sizeof(kNames) / sizeof(kNames[0]); ++i) {
    const char* value = getenv(kNames[i]);
    if (value == NULL) continue;
    size_t name_len = strlen(kNames[i]), value_len = strlen(value);
    if (name_len + 1 + value_len >= REPRO_SHIM_MAX_LAUNCHER_VAR) continue;
    char* out = g_launcher[g_launcher_count++];
    memcpy(out, kNames[i], name_len);
    out[name_len] = '=';
    memcpy(out + name_len + 1, value, value_len + 1);
  }
}

void shim_link_init(const struct shim_link_config* config) {
  CopyString(g_cfg.job, sizeof(g_cfg.job), config->job);
  CopyString(g_cfg.socket_path, sizeof(g_cfg.socket_path), config->socket_path);
  g_cfg.rank = config->rank;
  g_cfg.mode = config->mode;
  g_cfg.timeout_ms = config->timeout_ms;
  g_cfg.argc = config->argc;
  g_cfg.argv = config->argv;
  ssize_t n = readlink("/proc/self/exe", g_cfg.exe, sizeof(g_cfg.exe) - 1);
  g_cfg.exe[n > 0 ? n : 0] = '\0';
  atomic_store(&g_owner_pid, (int)getpid());
  g_nonce = NewNonce();
  ReadLauncherVars();
}

const char* shim_link_socket_path(void) { return g_cfg.socket_path; }

const char* shim_link_exe(void) { return g_cfg.exe; }

int shim_link_in_owner(void) { return (int)getpid() == atomic_load(&g_owner_pid); }

/* What a failed socket call means, for the one warning line (no strerror: it may load locale
 * catalogs). */
static const char* Why(int err) {
  switch (err) {
    case ENOENT: return "no such socket";
    case ECONNREFUSED: return "connection refused";
    case EACCES:
    case EPERM: return "permission denied";
    case EAGAIN: return "its backlog is full";
    case EPIPE:
    case ECONNRESET:
    case ENOTCONN: return "connection lost";
    case ETIMEDOUT: return "no answer in time";
    default: return "socket error";
  }
}

static int Enforcing(void) {
  const struct shim_pin* pin = shim_pin_current();
  return (pin != NULL ? pin->mode : g_cfg.mode) == REPRO_SHIM_MODE_ENFORCE;
}

/* Caller holds g_mu. One line per outage. */
static void WarnUnreachable(int err) {
  if (g_warned) return;
  g_warned = 1;
  struct shim_text t;
  shim_text_init(&t);
  shim_text_add(&t, "repro: job ");
  shim_text_add(&t, g_cfg.job);
  shim_text_add(&t, ": cannot reach reprod at ");
  shim_text_add(&t, g_cfg.socket_path);
  shim_text_add(&t, " (");
  shim_text_add(&t, Why(err));
  shim_text_add(&t, Enforcing() ? "); enforce mode refuses dataset opens until it is back"
                                : "); the job keeps running, dataset opens go unjournaled until "
                                  "it is back");
  shim_text_line_to_stderr(&t);
}

/* Caller holds g_mu. Tells reprod, in the ring, how many reports this process has numbered:
 * its count of reports should it end without sending it (killed, say). After every report. */
static void PublishMade(void) {
  if (g_ring != NULL) {
    __atomic_store_n(repro_shim_ring_made(g_ring), g_report_seq, __ATOMIC_RELEASE);
  }
}

/* Caller holds g_mu. Maps the report ring in `fd` (closing fd); a bad one is ignored. */
static void AttachRing(int fd) {
  struct stat st;
  if (g_ring == NULL && fstat(fd, &st) == 0 && st.st_size == (off_t)REPRO_SHIM_RING_SIZE) {
    void* ring = mmap(NULL, REPRO_SHIM_RING_SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    if (ring != MAP_FAILED) g_ring = ring;
    PublishMade(); /* until now the ring says "not attached" */
  }
  close(fd);
}

/* Caller holds g_mu (or is a fork child). What was published stays readable by reprod. */
static void DetachRing(void) {
  if (g_ring != NULL) munmap(g_ring, REPRO_SHIM_RING_SIZE);
  g_ring = NULL;
  g_ring_populated = 0;
}

/* Caller holds g_mu. The connection is lost: what reprod has not read from the ring (it may have
 * died) is kept for the next connection, where reprod's once-keys absorb what it did read. It
 * goes in FRONT of the backlog: the ring is used only while the backlog is empty, so everything
 * in the backlog is newer, and reports must leave in number order (REPORT_SEQ). What does not fit
 * is dropped (newest first), and reprod sees those numbers missing. */
static void SalvageRing(void) {
  if (g_ring == NULL) return;
  const uint64_t head = __atomic_load_n(repro_shim_ring_head(g_ring), __ATOMIC_ACQUIRE);
  const uint64_t tail = __atomic_load_n(repro_shim_ring_tail(g_ring), __ATOMIC_RELAXED);
  const uint8_t* msg;
  uint32_t n;
  if (head > tail || tail - head > REPRO_SHIM_RING_CAPACITY) return;
  const size_t held = g_backlog_tail - g_backlog_head;
  size_t fits = 0; /* bytes of the oldest ring records that fit beside what the backlog holds */
  uint64_t pos = head;
  while (repro_shim_ring_next(g_ring, &pos, tail, &msg, &n) == 1) {
    if (held + fits + sizeof(n) + n > kBacklogBytes) {
      atomic_fetch_add_explicit(&g_dropped, 1, memory_order_relaxed);
    } else {
      fits += sizeof(n) + n;
    }
  }
  memmove(g_backlog + fits, g_backlog + g_backlog_head, held);
  g_backlog_head = 0;
  g_backlog_tail = fits + held;
  size_t at = 0;
  for (pos = head; at < fits && repro_shim_ring_next(g_ring, &pos, tail, &msg, &n) == 1;) {
    memcpy(g_backlog + at, &n, sizeof(n));
    memcpy(g_backlog + at + sizeof(n), msg, n);
    at += sizeof(n) + n;
  }
}

/* Caller holds g_mu. */
static void CloseLink(void) {
  SalvageRing();
  DetachRing();
  if (g_fd >= 0) close(g_fd);
  g_fd = -1;
  g_hello_id = 0;
  g_hello_answered = 0;
}

/* Caller holds g_mu. Drops the connection and waits `delay_ns` before the next attempt. */
static void LoseLink(int err, int64_t delay_ns) {
  CloseLink();
  atomic_store(&g_retry_at_ns, NowNs() + delay_ns);
  WarnUnreachable(err);
}

static int64_t RetryDelay(void) { return Enforcing() ? kEnforceRetryNs : kRecordRetryNs; }

/* Moves fd to a high descriptor number, out of the way of programs that reuse low numbers. */
static int MoveHigh(int fd) {
  struct rlimit limit;
  long high = kHighFd;
  if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur != RLIM_INFINITY &&
      (long)limit.rlim_cur / 2 < high) {
    high = (long)limit.rlim_cur / 2;
  }
  if (high <= fd) return fd;
  int moved = fcntl(fd, F_DUPFD_CLOEXEC, (int)high);
  if (moved < 0) return fd;
  close(fd);
  return moved;
}

/* Caller holds g_mu. Sends one message without blocking. 0, or -1 with errno. */
static int SendMessage(const uint8_t* msg, uint32_t n) {
  return send(g_fd, msg, n, MSG_DONTWAIT | MSG_NOSIGNAL) == (ssize_t)n ? 0 : -1;
}

/* Caller holds g_mu. The REPORT_SEQ of the oldest report the backlog holds, or of the next
 * report when it holds none: what HELLO tells reprod (proto/shim/shim_protocol.h). */
static uint64_t OldestHeldSeq(void) {
  for (size_t at = g_backlog_head; at < g_backlog_tail;) {
    uint32_t n;
    memcpy(&n, g_backlog + at, sizeof(n));
    const uint8_t* msg = g_backlog + at + sizeof(n);
    at += sizeof(n) + n;
    struct repro_shim_header h;
    if (repro_shim_read_header(msg, n, &h) != REPRO_SHIM_HEADER_OK || h.type != REPRO_SHIM_OPEN) {
      continue;
    }
    struct repro_shim_field f;
    size_t off = REPRO_SHIM_HEADER_SIZE;
    uint64_t seq;
    while (repro_shim_next_field(msg, n, &off, &f) == 1) {
      if (f.tag == REPRO_SHIM_F_REPORT_SEQ && repro_shim_field_u64(&f, &seq)) return seq;
    }
  }
  return g_report_seq;
}

/* Caller holds g_mu. */
static int SendHello(void) {
  struct repro_shim_writer w;
  uint32_t id = NextId();
  repro_shim_writer_init(&w, g_out, sizeof(g_out), REPRO_SHIM_HELLO, id);
  repro_shim_put_str(&w, REPRO_SHIM_F_JOB, g_cfg.job, strlen(g_cfg.job));
  repro_shim_put_u64(&w, REPRO_SHIM_F_RANK, (uint64_t)g_cfg.rank);
  repro_shim_put_u64(&w, REPRO_SHIM_F_PID, (uint64_t)getpid());
  repro_shim_put_u64(&w, REPRO_SHIM_F_PARENT_PID, (uint64_t)getppid());
  repro_shim_put_u64(&w, REPRO_SHIM_F_NONCE, g_nonce);
  repro_shim_put_u64(&w, REPRO_SHIM_F_MODE, (uint64_t)g_cfg.mode);
  repro_shim_put_u64(&w, REPRO_SHIM_F_REPORT_SEQ, OldestHeldSeq());
  repro_shim_put_u64(&w, REPRO_SHIM_F_LINK, g_link++);
  size_t exe_len = strlen(g_cfg.exe);
  if (exe_len > 0) repro_shim_put_str(&w, REPRO_SHIM_F_EXE, g_cfg.exe, exe_len);
  for (int i = 0; i < g_launcher_count; ++i) {
    repro_shim_put_str(&w, REPRO_SHIM_F_LAUNCHER_VAR, g_launcher[i], strlen(g_launcher[i]));
  }
  for (int i = 0; i < g_cfg.argc && i < REPRO_SHIM_MAX_ARGS && g_cfg.argv != NULL; ++i) {
    const char* arg = g_cfg.argv[i];
    if (arg == NULL) break;
    size_t n = strlen(arg);
    if (n > REPRO_SHIM_MAX_STRING) n = REPRO_SHIM_MAX_STRING;
    if (w.cap - w.len < REPRO_SHIM_FIELD_HEADER_SIZE + n) break; /* the rest does not fit */
    repro_shim_put_str(&w, REPRO_SHIM_F_ARG, arg, n);
  }
  if (SendMessage(g_out, repro_shim_finish(&w)) != 0) return -1;
  g_hello_id = id;
  g_hello_answered = 0;
  g_hello_sent_ns = NowNs();
  return 0;
}

/* Caller holds g_mu. Connects and sends HELLO unless connected; reports after it may follow at
 * once (reprod serves a connection's messages in order). 0 when connected. */
static int EnsureLink(void) {
  if (g_fd >= 0) return 0;
  int64_t now = NowNs();
  if (now < atomic_load(&g_retry_at_ns)) {
    errno = ECONNREFUSED;
    return -1;
  }
  int fd = socket(AF_UNIX, SOCK_SEQPACKET | SOCK_CLOEXEC | SOCK_NONBLOCK, 0);
  if (fd < 0) {
    LoseLink(errno, RetryDelay());
    return -1;
  }
  struct sockaddr_un addr;
  memset(&addr, 0, sizeof(addr));
  addr.sun_family = AF_UNIX;
  memcpy(addr.sun_path, g_cfg.socket_path, strlen(g_cfg.socket_path));
  if (connect(fd, (const struct sockaddr*)&addr, sizeof(addr)) != 0) {
    int err = errno;
    close(fd);
    LoseLink(err, RetryDelay());
    return -1;
  }
  int size = kSendBuffer;
  setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &size, sizeof(size));
  g_fd = MoveHigh(fd);
  if (SendHello() != 0) {
    LoseLink(errno, RetryDelay());
    return -1;
  }
  return 0;
}

/* Caller holds g_mu. Prints reprod's refusal of the job once per outage and drops the link. */
static void HelloRefused(const struct shim_reply* reply) {
  if (!g_warned) {
    g_warned = 1;
    struct shim_text t;
    shim_text_init(&t);
    shim_text_add(&t, "repro: job ");
    shim_text_add(&t, g_cfg.job);
    shim_text_add(&t, ": reprod refused it: ");
    if (reply->reason != NULL) shim_text_add_n(&t, (const char*)reply->reason, reply->reason_size);
    shim_text_line_to_stderr(&t);
  }
  CloseLink();
  atomic_store(&g_retry_at_ns, NowNs() + kRefusedRetryNs);
}

/* Caller holds g_mu. Publishes the pin in a PIN answer to our HELLO. */
static void TakePin(const uint8_t* msg, size_t n) {
  const struct shim_pin* current = shim_pin_current();
  g_warned = 0; /* reprod is back */
  g_hello_answered = 1;
  if (current != NULL && current->complete) return;
  struct shim_pin* spare = shim_pin_spare();
  if (shim_pin_from_message(spare, msg, n) != 0) return;
  if (current != NULL) shim_resolver_forget();
  shim_pin_publish(spare);
}

struct answer {
  uint32_t want_id; /* VERDICT/ERROR with this id end the wait; 0: none */
  int want_pin;     /* the answer to our HELLO ends the wait */
  enum shim_answer result;
  char* reason;
  size_t cap;
  int done;
};

/* Caller holds g_mu. Takes the descriptors of the PIN answer to our HELLO: the report ring and,
 * in enforce mode, the verdict index (told apart by the index's magic). Closes what it does not
 * keep. */
static void TakeDescriptors(int fds[2]) {
  for (int i = 0; i < 2; ++i) {
    if (fds[i] < 0) continue;
    uint32_t magic = 0;
    if (pread(fds[i], &magic, sizeof(magic), 0) == (ssize_t)sizeof(magic) &&
        magic == REPRO_SHIM_INDEX_MAGIC) {
      shim_index_attach(fds[i]);
    } else {
      AttachRing(fds[i]);
    }
  }
}

/* Caller holds g_mu. Handles one message from reprod; malformed ones are ignored. `fds`: the
 * descriptors that came with it (-1: none); they are always consumed. */
static void Handle(const uint8_t* msg, size_t n, int fds[2], struct answer* a) {
  struct shim_reply r;
  const int ok = shim_reply_parse(msg, n, &r) == 0;
  const struct repro_shim_header h = r.header;
  if (!ok || h.type != REPRO_SHIM_PIN || h.request_id != g_hello_id) {
    for (int i = 0; i < 2; ++i) { /* only the PIN answer to our HELLO carries any */
      if (fds[i] >= 0) close(fds[i]);
      fds[i] = -1;
    }
  }
  TakeDescriptors(fds);
  if (!ok) return;
  if (h.type == REPRO_SHIM_PIN) {
    if (h.request_id != g_hello_id) return;
    TakePin(msg, n);
    if (a != NULL && a->want_pin) a->done = 1;
    return;
  }
  if (h.type == REPRO_SHIM_ERROR && h.request_id == g_hello_id) {
    HelloRefused(&r);
    return;
  }
  if (a == NULL || a->want_id == 0 || h.request_id != a->want_id) return;
  if (h.type != REPRO_SHIM_VERDICT && h.type != REPRO_SHIM_ERROR) return;
  a->done = 1;
  a->result = h.type == REPRO_SHIM_VERDICT && r.has_allow
                  ? (r.allow ? SHIM_ANSWER_ALLOW : SHIM_ANSWER_DENY)
                  : SHIM_ANSWER_DENY;
  if (a->reason != NULL && a->cap > 0) {
    size_t len = r.reason != NULL ? r.reason_size : 0;
    if (len >= a->cap) len = a->cap - 1;
    if (len > 0) memcpy(a->reason, r.reason, len);
    a->reason[len] = '\0';
  }
}

/* Caller holds g_mu. Receives one message and the descriptors that came with it (fds[0..1],
 * -1 when absent; more are closed). */
static ssize_t Receive(int fds[2]) {
  struct iovec iov = {.iov_base = g_in, .iov_len = sizeof(g_in)};
  union {
    struct cmsghdr align;
    char bytes[CMSG_SPACE(4 * sizeof(int))];
  } control;
  struct msghdr msg = {.msg_iov = &iov,
                       .msg_iovlen = 1,
                       .msg_control = control.bytes,
                       .msg_controllen = sizeof(control.bytes)};
  fds[0] = fds[1] = -1;
  ssize_t n = recvmsg(g_fd, &msg, MSG_DONTWAIT | MSG_CMSG_CLOEXEC);
  for (struct cmsghdr* c = CMSG_FIRSTHDR(&msg); n >= 0 && c != NULL; c = CMSG_NXTHDR(&msg, c)) {
    if (c->cmsg_level != SOL_SOCKET || c->cmsg_type != SCM_RIGHTS) continue;
    size_t count = (c->cmsg_len - CMSG_LEN(0)) / sizeof(int);
    for (size_t i = 0; i < count; ++i) {
      int fd;
      memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
      if (i < 2 && fds[i] < 0) {
        fds[i] = fd;
      } else {
        close(fd);
      }
    }
  }
  return n;
}

/* Caller holds g_mu. Reads what is waiting without blocking. */
static void Drain(struct answer* a) {
  while (g_fd >= 0 && (a == NULL || !a->done)) {
    int fds[2];
    ssize_t n = Receive(fds);
    if (n > 0) {
      Handle(g_in, (size_t)n, fds, a);
      continue;
    }
    for (int i = 0; i < 2; ++i) {
      if (fds[i] >= 0) close(fds[i]);
    }
    if (n < 0 && (errno == EAGAIN || errno == EINTR)) return;
    LoseLink(n == 0 ? ECONNRESET : errno, RetryDelay()); /* reprod went away */
  }
}

/* Caller holds g_mu. Waits until `deadline_ns` for a->want_id's answer. */
static void Await(struct answer* a, int64_t deadline_ns) {
  while (g_fd >= 0 && !a->done) {
    Drain(a);
    if (a->done || g_fd < 0) return;
    int64_t left = deadline_ns - NowNs();
    if (left <= 0) return;
    struct pollfd p = {.fd = g_fd, .events = POLLIN};
    int ms = (int)((left + kNsPerMs - 1) / kNsPerMs);
    if (poll(&p, 1, ms) < 0 && errno != EINTR) return;
  }
}

int shim_link_start(void) {
  pthread_mutex_lock(&g_mu);
  if (EnsureLink() == 0) {
    struct answer a = {.want_pin = 1};
    Await(&a, NowNs() + (int64_t)g_cfg.timeout_ms * kNsPerMs); /* TakePin publishes the pin */
    if (!a.done && g_fd >= 0) LoseLink(ETIMEDOUT, RetryDelay());
  }
  const struct shim_pin* pin = shim_pin_current();
  int ok = pin != NULL && pin->complete ? 0 : -1;
  pthread_mutex_unlock(&g_mu);
  return ok;
}

void shim_link_poll(void) {
  if (NowNs() < atomic_load_explicit(&g_retry_at_ns, memory_order_relaxed)) return;
  if (!shim_link_in_owner() || pthread_mutex_trylock(&g_mu) != 0) return;
  int64_t now = NowNs();
  if (g_fd < 0) {
    if (EnsureLink() == 0) atomic_store(&g_retry_at_ns, now + kPollNs);
  } else {
    Drain(NULL);
    if (g_fd >= 0) {
      if (now - g_hello_sent_ns > (int64_t)g_cfg.timeout_ms * kNsPerMs) {
        LoseLink(ETIMEDOUT, RetryDelay());
      } else {
        atomic_store(&g_retry_at_ns, now + kPollNs);
      }
    }
  }
  pthread_mutex_unlock(&g_mu);
}

/* Encodes an OPEN numbered `seq` into `buf`; returns its size (0: does not fit). */
static uint32_t EncodeOpen(const struct shim_report* r, uint32_t id, uint64_t seq, uint8_t* buf,
                           uint32_t cap) {
  struct repro_shim_writer w;
  repro_shim_writer_init(&w, buf, cap, REPRO_SHIM_OPEN, id);
  repro_shim_put_str(&w, REPRO_SHIM_F_DATASET_NAME, r->dataset, strlen(r->dataset));
  repro_shim_put_u64(&w, REPRO_SHIM_F_OPEN_FLAGS, r->flags);
  repro_shim_put_str(&w, REPRO_SHIM_F_REQUESTED_PATH, r->requested_path,
                     strlen(r->requested_path));
  repro_shim_put_str(&w, REPRO_SHIM_F_OPENED_PATH, r->opened_path, strlen(r->opened_path));
  if (r->stat != NULL) {
    const struct stat* st = r->stat;
    repro_shim_put_u64(&w, REPRO_SHIM_F_DEVICE, (uint64_t)st->st_dev);
    repro_shim_put_u64(&w, REPRO_SHIM_F_INODE, (uint64_t)st->st_ino);
    repro_shim_put_u64(&w, REPRO_SHIM_F_SIZE, (uint64_t)st->st_size);
    repro_shim_put_u64(&w, REPRO_SHIM_F_MTIME_NS,
                       (uint64_t)((int64_t)st->st_mtim.tv_sec * 1000000000ll + st->st_mtim.tv_nsec));
    repro_shim_put_u64(&w, REPRO_SHIM_F_CTIME_NS,
                       (uint64_t)((int64_t)st->st_ctim.tv_sec * 1000000000ll + st->st_ctim.tv_nsec));
  }
  if (r->view_use != 0) repro_shim_put_u64(&w, REPRO_SHIM_F_VIEW_USE, r->view_use);
  repro_shim_put_u64(&w, REPRO_SHIM_F_REPORT_SEQ, seq);
  return repro_shim_finish(&w);
}

/* Caller holds g_mu. Sends what the backlog holds, in order, until the socket is full. */
static void FlushBacklog(void) {
  while (g_fd >= 0 && g_backlog_head < g_backlog_tail) {
    uint32_t n;
    memcpy(&n, g_backlog + g_backlog_head, sizeof(n));
    if (SendMessage(g_backlog + g_backlog_head + sizeof(n), n) != 0) {
      if (errno != EAGAIN) CloseLink(); /* reconnect on the next report */
      return;
    }
    g_backlog_head += sizeof(n) + n;
  }
  if (g_backlog_head == g_backlog_tail) g_backlog_head = g_backlog_tail = 0;
}

/* Caller holds g_mu. Keeps a copy of the message for later, unless the backlog would then hold
 * more than `limit` bytes. 0, or -1 when it does not fit. */
static int Keep(const uint8_t* msg, uint32_t n, size_t limit) {
  if (g_backlog_tail - g_backlog_head + sizeof(n) + n > limit) return -1;
  if (g_backlog_tail + sizeof(n) + n > sizeof(g_backlog) && g_backlog_head > 0) {
    memmove(g_backlog, g_backlog + g_backlog_head, g_backlog_tail - g_backlog_head);
    g_backlog_tail -= g_backlog_head;
    g_backlog_head = 0;
  }
  if (g_backlog_tail + sizeof(n) + n > sizeof(g_backlog)) return -1;
  memcpy(g_backlog + g_backlog_tail, &n, sizeof(n));
  memcpy(g_backlog + g_backlog_tail + sizeof(n), msg, n);
  g_backlog_tail += sizeof(n) + n;
  return 0;
}

/* Caller holds g_mu. Sends a message that wants no answer now, or keeps it for later (see Keep);
 * never waits. A dead connection is replaced once (reprod may have restarted; if not, the outage
 * is warned about). 0 when sent or kept; -1 when dropped. */
static int Post(const uint8_t* msg, uint32_t n, size_t keep_limit) {
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (EnsureLink() != 0) break;
    if (!g_hello_answered) Drain(NULL);
    FlushBacklog();
    if (g_fd < 0) continue;                         /* lost while flushing */
    if (g_backlog_head != g_backlog_tail) break;    /* still full: stay behind, in order */
    if (SendMessage(msg, n) == 0) return 0;
    if (errno == EAGAIN) break;
    CloseLink();
  }
  return Keep(msg, n, keep_limit);
}

/* Caller holds g_mu. Publishes a report in the report ring and rings the doorbell when reprod
 * sleeps; a doorbell that finds the socket full waits in the backlog, which goes first at the next
 * report or at exit. 0 when published; -1 when there is no ring, no room, or older reports still
 * wait in the backlog (they go first, in order). */
static int Publish(const uint8_t* msg, uint32_t n) {
  if (g_ring == NULL || g_fd < 0 || g_backlog_head != g_backlog_tail) return -1;
  const int64_t now = NowNs();
  if (now - g_ring_probed_ns > kRingProbeNs) { /* is reprod still there? (a reprod that died */
    g_ring_probed_ns = now;                    /* while awake never asks for a doorbell) */
    Drain(NULL);
    if (g_fd < 0) return -1; /* lost: CloseLink kept what it had not read */
  }
  if (!g_ring_populated) { /* at the first report: one call instead of a fault per page */
    g_ring_populated = 1;
    int saved = errno;
    madvise(g_ring, REPRO_SHIM_RING_SIZE, MADV_POPULATE_WRITE);
    errno = saved;
  }
  int put = repro_shim_ring_put(g_ring, msg, n);
  if (put <= 0) return put;
  uint8_t bell[REPRO_SHIM_HEADER_SIZE];
  struct repro_shim_writer w;
  repro_shim_writer_init(&w, bell, sizeof(bell), REPRO_SHIM_DOORBELL, 0);
  uint32_t size = repro_shim_finish(&w);
  if (SendMessage(bell, size) == 0) return 0;
  if (errno == EAGAIN) {
    (void)Keep(bell, size, kBacklogBytes); /* and reprod reads the ring when the connection ends */
  } else {
    LoseLink(errno, RetryDelay()); /* keeps the report, with what else reprod had not read */
  }
  return 0;
}

/* Caller holds g_mu. Sends the backlog, waiting for room up to the timeout. */
static void FlushBacklogBounded(void) {
  const int64_t deadline = NowNs() + (int64_t)g_cfg.timeout_ms * kNsPerMs;
  atomic_store(&g_retry_at_ns, 0);
  while (g_backlog_head < g_backlog_tail && EnsureLink() == 0) {
    FlushBacklog();
    if (g_backlog_head == g_backlog_tail) break;
    int64_t left = deadline - NowNs();
    struct pollfd p = {.fd = g_fd, .events = POLLOUT};
    if (g_fd < 0 || left <= 0 || poll(&p, 1, (int)(left / kNsPerMs) + 1) <= 0) break;
  }
}

/* Caller holds g_mu. Backpressure for a report that found the ring, the socket and the backlog
 * all full: reprod is behind, so the process waits (bounded by the shim's timeout, as a verdict
 * would) until reprod has read enough of the backlog, then posts; -1 (dropped, counted) only when
 * reprod made no room in time. A process that outruns reprod is slowed, not made incomplete. */
static int PostAfterRoom(const uint8_t* msg, uint32_t n) {
  const int64_t timeout_ns = (int64_t)g_cfg.timeout_ms * kNsPerMs;
  if (NowNs() - g_room_refused_ns < timeout_ns) return -1; /* a stuck reprod stalls us once per
                                                            * timeout, not at every report */
  FlushBacklogBounded();
  if (Post(msg, n, kBacklogBytes) == 0) return 0;
  g_room_refused_ns = NowNs();
  return -1;
}

/* Caller holds g_mu. Enforce mode: sends the report and waits for the verdict until the
 * deadline; a dead connection is replaced once (reprod may have restarted). */
static enum shim_answer Ask(const struct shim_report* r, char* reason, size_t cap) {
  const int64_t deadline = NowNs() + (int64_t)g_cfg.timeout_ms * kNsPerMs;
  const uint32_t id = NextId();
  for (int attempt = 0; attempt < 2; ++attempt) {
    if (EnsureLink() != 0) return SHIM_ANSWER_NONE;
    FlushBacklog();
    /* after EnsureLink: HELLO uses g_out, and tells reprod this report's number is still to come */
    uint32_t n = EncodeOpen(r, id, g_report_seq, g_out, sizeof(g_out));
    if (n == 0 || g_fd < 0) return SHIM_ANSWER_NONE;
    int sent;
    while ((sent = SendMessage(g_out, n)) != 0 && errno == EAGAIN) {
      int64_t left = deadline - NowNs();
      struct pollfd p = {.fd = g_fd, .events = POLLOUT};
      if (left <= 0 || poll(&p, 1, (int)(left / kNsPerMs) + 1) < 0) break;
    }
    if (sent == 0) {
      struct answer a = {.want_id = id, .result = SHIM_ANSWER_NONE, .reason = reason, .cap = cap};
      Await(&a, deadline);
      if (!a.done && g_fd >= 0) LoseLink(ETIMEDOUT, RetryDelay());
      return a.result;
    }
    if (errno == EAGAIN) return SHIM_ANSWER_NONE;
    CloseLink(); /* reconnect at once; EnsureLink warns if reprod is really gone */
  }
  return SHIM_ANSWER_NONE;
}

enum shim_answer shim_link_report(const struct shim_report* r, int wait, char* reason,
                                  size_t cap) {
  if (reason != NULL && cap > 0) reason[0] = '\0';
  if (!shim_link_in_owner()) {
    atomic_fetch_add_explicit(&g_dropped, 1, memory_order_relaxed);
    return SHIM_ANSWER_NONE;
  }
  pthread_mutex_lock(&g_mu);
  enum shim_answer result = SHIM_ANSWER_NONE;
  if (wait) {
    result = Ask(r, reason, cap);
  } else {
    uint32_t n = EncodeOpen(r, 0, g_report_seq, g_post, sizeof(g_post));
    if (n != 0 && (Publish(g_post, n) == 0 || Post(g_post, n, kBacklogBytes) == 0 ||
                   PostAfterRoom(g_post, n) == 0)) {
      result = SHIM_ANSWER_SENT;
    }
  }
  ++g_report_seq; /* sent, kept or lost: a later number tells reprod */
  PublishMade();
  if (result == SHIM_ANSWER_NONE) atomic_fetch_add_explicit(&g_dropped, 1, memory_order_relaxed);
  pthread_mutex_unlock(&g_mu);
  return result;
}

int shim_link_report_vouched(const struct shim_report* r) {
  if (!shim_link_in_owner()) return 0;
  pthread_mutex_lock(&g_mu);
  uint32_t n = EncodeOpen(r, 0, g_report_seq, g_post, sizeof(g_post));
  int published = n != 0 && Publish(g_post, n) == 0;
  if (published) {
    ++g_report_seq;
    PublishMade();
  } /* else the verdict request takes this number */
  pthread_mutex_unlock(&g_mu);
  return published;
}

int shim_link_post(const uint8_t* msg, uint32_t n) {
  if (n == 0 || !shim_link_in_owner()) return -1;
  pthread_mutex_lock(&g_mu);
  /* reprod needs our HELLO first; half the backlog stays for dataset opens */
  int result = shim_pin_current() != NULL ? Post(msg, n, kBacklogBytes / 2) : -1;
  pthread_mutex_unlock(&g_mu);
  return result;
}

void shim_link_after_fork_child(void) {
  pthread_mutex_init(&g_mu, NULL);
  DetachRing();               /* the parent's ring: the child gets its own at its HELLO */
  if (g_fd >= 0) close(g_fd); /* the child's copy: the parent keeps its own */
  g_fd = -1;
  g_hello_id = 0;
  g_hello_answered = 0;
  g_backlog_head = g_backlog_tail = 0; /* the parent's reports are the parent's to send */
  atomic_store(&g_owner_pid, (int)getpid());
  g_nonce = NewNonce();
  g_report_seq = 0; /* a new process (new nonce) numbers its own reports and links */
  g_link = 0;
  g_finished = 0;
  atomic_store(&g_retry_at_ns, 0);
  atomic_store(&g_dropped, 0);
  g_room_refused_ns = INT64_MIN / 2;
}

/* Caller holds g_mu. The process image ends: sends what waits in the backlog, then how many
 * reports there were (0 too), so reprod counts the last ones it lacks and knows none is still to
 * come. The count only when reprod may know this process (a HELLO was sent). Waits for room up to
 * the timeout. */
static void SendCountLocked(void) {
  if (g_backlog_head < g_backlog_tail) FlushBacklogBounded(); /* last chance for waiting reports */
  if (g_link > 0 && shim_pin_current() != NULL) {
    uint8_t last[REPRO_SHIM_HEADER_SIZE + REPRO_SHIM_FIELD_HEADER_SIZE + 8];
    struct repro_shim_writer w;
    repro_shim_writer_init(&w, last, sizeof(last), REPRO_SHIM_LOADED, 0);
    repro_shim_put_u64(&w, REPRO_SHIM_F_REPORT_SEQ, g_report_seq);
    if (Keep(last, repro_shim_finish(&w), kBacklogBytes) == 0) FlushBacklogBounded();
  }
}

void shim_link_before_exec(void) {
  if (!shim_link_in_owner()) return;
  pthread_mutex_lock(&g_mu);
  SendCountLocked(); /* if exec fails, later reports and the exit count simply follow */
  pthread_mutex_unlock(&g_mu);
}

/* Caller holds g_mu. The process ends: SendCountLocked, once; what still waits is dropped. */
static void FinishLocked(void) {
  if (g_finished) return;
  g_finished = 1;
  SendCountLocked();
  for (size_t at = g_backlog_head; at < g_backlog_tail;) {
    uint32_t n;
    memcpy(&n, g_backlog + at, sizeof(n));
    struct repro_shim_header h;
    if (repro_shim_read_header(g_backlog + at + sizeof(n), n, &h) == REPRO_SHIM_HEADER_OK &&
        h.type == REPRO_SHIM_OPEN) {
      atomic_fetch_add_explicit(&g_dropped, 1, memory_order_relaxed);
    }
    at += sizeof(n) + n;
  }
  g_backlog_head = g_backlog_tail = 0;
}

/* One line on stderr when reports were dropped. */
static void WarnDropped(void) {
  unsigned long dropped = atomic_load(&g_dropped);
  if (dropped == 0) return;
  struct shim_text t;
  shim_text_init(&t);
  shim_text_add(&t, "repro: job ");
  shim_text_add(&t, g_cfg.job);
  shim_text_add(&t, ": ");
  shim_text_add_u64(&t, dropped);
  shim_text_add(&t, " dataset open(s) of this process could not be reported to reprod");
  shim_text_line_to_stderr(&t);
}

void shim_link_at_exit(void) {
  if (!shim_link_in_owner()) return;
  pthread_mutex_lock(&g_mu);
  FinishLocked();
  pthread_mutex_unlock(&g_mu);
  WarnDropped();
}

void shim_link_at_exit_now(void) {
  if (!shim_link_in_owner() || pthread_mutex_trylock(&g_mu) != 0) return;
  FinishLocked();
  pthread_mutex_unlock(&g_mu);
  WarnDropped();
}
