/* The wire protocol between libreproshim.so (in training processes) and reprod's shim socket.
 *
 * Plain C (C99 and C++17): the shim, which links nothing but libc, and reprod share these
 * definitions, the encoder and the field reader below, so both sides agree byte for byte.
 *
 *   uint8_t buf[REPRO_SHIM_MAX_MESSAGE];
 *   struct repro_shim_writer w;
 *   repro_shim_writer_init(&w, buf, sizeof(buf), REPRO_SHIM_HELLO, 7);
 *   repro_shim_put_str(&w, REPRO_SHIM_F_JOB, "train-42", 8);
 *   repro_shim_put_u64(&w, REPRO_SHIM_F_RANK, 0);
 *   uint32_t n = repro_shim_finish(&w);   // 0: did not fit
 *   send(fd, buf, n, MSG_DONTWAIT);
 *
 * Transport: a Unix SOCK_SEQPACKET socket (reprod --shim_socket, default /run/reprod/shim/shim.sock).
 * One datagram is one message; reprod attributes every message of a connection to the process
 * that connected (SO_PEERCRED), never to what the message claims.
 *
 * Message layout, every integer little-endian:
 *
 *   offset  size  header
 *        0     4  magic       REPRO_SHIM_MAGIC ("RPSH" as bytes 'R' 'P' 'S' 'H')
 *        4     2  version     REPRO_SHIM_VERSION; anything else is rejected
 *        6     2  type        enum repro_shim_type
 *        8     4  length      whole message, header included; must equal the datagram size
 *       12     4  request_id  chosen by the shim; a reply carries the id of its request;
 *                             an OPEN with request_id 0 wants no reply (record mode)
 *       16     .  fields, back to back, no padding, until `length`:
 *
 *   offset  size  field
 *        0     2  tag         enum repro_shim_tag; which tags a type allows is listed below
 *        2     2  reserved    must be 0
 *        4     4  size        bytes of value
 *        8  size  value       integers: exactly 8 bytes (u64/i64); strings: UTF-8 bytes without
 *                             NUL and without a terminator; DATASET: nested fields
 *
 * Messages (R = required, * = repeatable; every other tag at most once, unknown tags rejected):
 *
 *   HELLO   shim -> reprod   JOB R, RANK R, PID R (claimed, informational), PARENT_PID (after
 *                            fork), NONCE R (random per process: a reconnecting process is
 *                            journaled once), MODE R, EXE, ARG*, LAUNCHER_VAR* (issue 12:
 *                            "NAME=VALUE" of each REPRO_SHIM_LAUNCHER_VARS variable set in the
 *                            process's environment at start, each name at most once),
 *                            REPORT_SEQ (issue 13: the number of the oldest report the process
 *                            still holds and will send on this connection, or of its next report
 *                            when it holds none: every lower-numbered report was sent earlier or
 *                            dropped, so reprod can count what never reached its journal),
 *                            LINK (issue 13: this connection's number in the process, 0, 1, 2, ...:
 *                            reprod serves connections side by side, so it tells which one is the
 *                            process's latest when one ends without the count of reports)
 *   PIN     reprod -> shim   answers HELLO: SEED R, RANK_SEED R, MODE R, DATASET*; each DATASET
 *                            holds NAME R, ROOT R (absolute, symlink-free), PINNED_DIR R (directory
 *                            name of the pinned version inside ROOT), VERSION R (its version name),
 *                            OTHER_DIR* (directory names of the dataset's other registered
 *                            versions; any other name under ROOT is an alias of the pinned one)
 *   OPEN    shim -> reprod   the first open of a dataset file by this process: DATASET_NAME R,
 *                            OPEN_FLAGS R (REPRO_SHIM_OPEN_*), REQUESTED_PATH R, OPENED_PATH R
 *                            (absolute, after alias rewriting), DEVICE, INODE, SIZE, MTIME_NS,
 *                            CTIME_NS (fstat of the opened file; absent when it was refused
 *                            before being opened), VIEW_USE (the path was not opened for its
 *                            data but listed, stat-ed, resolved, entered or executed: reprod
 *                            journals a violation only, never a read), REPORT_SEQ (issue 13: the
 *                            process's report number, 0, 1, 2, ... per process (a fork child
 *                            starts again at 0 with its own NONCE); a number skipped tells reprod
 *                            reports were lost)
 *   VERDICT reprod -> shim   answers an OPEN with request_id != 0: VERDICT R (repro.v1.Verdict
 *                            number), ALLOW R (0 or 1), REASON (one line, for refusals)
 *   ERROR   reprod -> shim   answers a HELLO or OPEN that cannot be served: REASON R
 *   LOADED  shim -> reprod   what the process runs with, never answered (request_id 0): sent at
 *                            its first dataset open, then at exit for what was loaded or imported
 *                            since (several messages when one does not hold it all): LIBRARY*
 *                            (path of a loaded shared object as the dynamic loader names it),
 *                            LIBC_VERSION (gnu_get_libc_version() of the process's libc),
 *                            PACKAGE_DIR* (<site dir>/<top-level name> of a Python package or
 *                            module the process opened under a site-packages or dist-packages
 *                            directory, e.g. /usr/lib/python3/dist-packages/numpy), REPORT_SEQ
 *                            (issue 13: at exit, how many dataset-open reports the process
 *                            numbered, sent or dropped; a LOADED may carry only this)
 *   DOORBELL shim -> reprod  no fields, request_id 0: reports wait in the process's report ring
 *                            (proto/shim/shim_ring.h); a shim without a ring sends its reports as
 *                            OPEN datagrams
 *
 * Descriptors: the PIN answer carries SCM_RIGHTS data: the report ring (a memfd of
 * REPRO_SHIM_RING_SIZE bytes) and, in enforce mode, the verdict index (a sealed memfd starting
 * with REPRO_SHIM_INDEX_MAGIC, proto/shim/shim_index.h). An enforce-mode OPEN with request_id 0
 * (and no REFUSED or WRITE flag) is one the shim allowed itself from the index.
 *
 * Limits: a message is at most REPRO_SHIM_MAX_MESSAGE bytes; a string at most
 * REPRO_SHIM_MAX_STRING; a HELLO carries at most REPRO_SHIM_MAX_ARGS ARG fields.
 */
#ifndef REPRO_PROTO_SHIM_SHIM_PROTOCOL_H_
#define REPRO_PROTO_SHIM_SHIM_PROTOCOL_H_

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#ifdef __cplusplus
extern "C" {
#endif

#define REPRO_SHIM_MAGIC 0x48535052u /* 'R' 'P' 'S' 'H' read as a little-endian u32 */
#define REPRO_SHIM_VERSION 1
#define REPRO_SHIM_HEADER_SIZE 16
#define REPRO_SHIM_FIELD_HEADER_SIZE 8
#define REPRO_SHIM_MAX_MESSAGE 65536
#define REPRO_SHIM_MAX_STRING 8192
#define REPRO_SHIM_MAX_ARGS 256

enum repro_shim_type {
  REPRO_SHIM_HELLO = 1,
  REPRO_SHIM_PIN = 2,
  REPRO_SHIM_OPEN = 3,
  REPRO_SHIM_VERDICT = 4,
  REPRO_SHIM_ERROR = 5,
  REPRO_SHIM_LOADED = 6,
  REPRO_SHIM_DOORBELL = 50,
};

enum repro_shim_tag {
  /* HELLO */
  REPRO_SHIM_F_JOB = 1,
  REPRO_SHIM_F_RANK = 2,
  REPRO_SHIM_F_PID = 3,
  REPRO_SHIM_F_PARENT_PID = 4,
  REPRO_SHIM_F_NONCE = 5,
  REPRO_SHIM_F_MODE = 6, /* also in PIN */
  REPRO_SHIM_F_EXE = 7,
  REPRO_SHIM_F_ARG = 8,
  /* PIN */
  REPRO_SHIM_F_SEED = 20,
  REPRO_SHIM_F_RANK_SEED = 21,
  REPRO_SHIM_F_DATASET = 22,
  REPRO_SHIM_F_NAME = 23,       /* inside DATASET */
  REPRO_SHIM_F_ROOT = 24,       /* inside DATASET */
  REPRO_SHIM_F_PINNED_DIR = 25, /* inside DATASET */
  REPRO_SHIM_F_VERSION = 26,    /* inside DATASET */
  REPRO_SHIM_F_OTHER_DIR = 27,  /* inside DATASET */
  /* OPEN */
  REPRO_SHIM_F_DATASET_NAME = 30,
  REPRO_SHIM_F_OPEN_FLAGS = 31,
  REPRO_SHIM_F_REQUESTED_PATH = 32,
  REPRO_SHIM_F_OPENED_PATH = 33,
  REPRO_SHIM_F_DEVICE = 34,
  REPRO_SHIM_F_INODE = 35,
  REPRO_SHIM_F_SIZE = 36,
  REPRO_SHIM_F_MTIME_NS = 37,
  REPRO_SHIM_F_CTIME_NS = 38,
  /* VERDICT, ERROR */
  REPRO_SHIM_F_VERDICT = 40,
  REPRO_SHIM_F_ALLOW = 41,
  REPRO_SHIM_F_REASON = 42,
  /* LOADED */
  REPRO_SHIM_F_LIBRARY = 50,
  REPRO_SHIM_F_LIBC_VERSION = 51,
  REPRO_SHIM_F_PACKAGE_DIR = 52,
  /* OPEN (issue 9): REPRO_SHIM_VIEW_* */
  REPRO_SHIM_F_VIEW_USE = 70,
  /* HELLO, added for issue 12 (launcher identity) */
  REPRO_SHIM_F_LAUNCHER_VAR = 28,
  /* OPEN and HELLO, added for issue 13 (gap detection): see REPORT_SEQ above */
  REPRO_SHIM_F_REPORT_SEQ = 39,
  /* HELLO, added for issue 13 (a process that ends without its count): see LINK above */
  REPRO_SHIM_F_LINK = 29,
};

/* The launcher variables a HELLO may report (issue 12): torchrun's, Slurm's, and the Pod's
 * downward-API values that the webhook injects. X-macro: X(name) for each. */
#define REPRO_SHIM_LAUNCHER_VARS(X)                                                        \
  X("TORCHELASTIC_RUN_ID") X("TORCHELASTIC_RESTART_COUNT") X("LOCAL_RANK") X("WORLD_SIZE") \
  X("GROUP_RANK") X("SLURM_JOB_ID") X("SLURM_STEP_ID") X("REPRO_POD_NAME")                 \
  X("REPRO_POD_NAMESPACE") X("REPRO_POD_UID")
#define REPRO_SHIM_MAX_LAUNCHER_VARS 10
#define REPRO_SHIM_MAX_LAUNCHER_VAR 256 /* bytes of one "NAME=VALUE"; longer ones are not sent */

/* MODE values. */
#define REPRO_SHIM_MODE_RECORD 1
#define REPRO_SHIM_MODE_ENFORCE 2

/* OPEN_FLAGS bits. Unknown bits are rejected. */
#define REPRO_SHIM_OPEN_REDIRECTED 1u    /* an alias was rewritten to the pinned version */
#define REPRO_SHIM_OPEN_WRITE 2u         /* opened for writing (or creating, truncating) */
#define REPRO_SHIM_OPEN_REFUSED 4u       /* the shim refused it itself (enforce mode) */
#define REPRO_SHIM_OPEN_OTHER_VERSION 8u /* the path is in another registered version */
#define REPRO_SHIM_OPEN_ALL_FLAGS 15u

/* VIEW_USE values: what was done with a path of another version without opening it. */
#define REPRO_SHIM_VIEW_STAT 1u     /* stat family, access */
#define REPRO_SHIM_VIEW_LIST 2u     /* opendir, scandir, a directory opened to be read */
#define REPRO_SHIM_VIEW_RESOLVE 3u  /* readlink, realpath */
#define REPRO_SHIM_VIEW_CHDIR 4u    /* chdir */
#define REPRO_SHIM_VIEW_EXEC 5u     /* execve family */
#define REPRO_SHIM_VIEW_LAST 5u

/* ---- Encoding ---------------------------------------------------------------------------- */

static inline void repro_shim_store_u16(uint8_t* p, uint16_t v) {
  p[0] = (uint8_t)v;
  p[1] = (uint8_t)(v >> 8);
}
static inline void repro_shim_store_u32(uint8_t* p, uint32_t v) {
  for (int i = 0; i < 4; ++i) p[i] = (uint8_t)(v >> (8 * i));
}
static inline void repro_shim_store_u64(uint8_t* p, uint64_t v) {
  for (int i = 0; i < 8; ++i) p[i] = (uint8_t)(v >> (8 * i));
}
static inline uint16_t repro_shim_load_u16(const uint8_t* p) {
  return (uint16_t)(p[0] | (p[1] << 8));
}
static inline uint32_t repro_shim_load_u32(const uint8_t* p) {
  uint32_t v = 0;
  for (int i = 3; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}
static inline uint64_t repro_shim_load_u64(const uint8_t* p) {
  uint64_t v = 0;
  for (int i = 7; i >= 0; --i) v = (v << 8) | p[i];
  return v;
}

/* Builds one message in a caller-owned buffer. Once a field does not fit, `overflow` is set and
 * every later call does nothing; repro_shim_finish then returns 0. */
struct repro_shim_writer {
  uint8_t* buf;
  uint32_t cap;
  uint32_t len;
  int overflow;
};

static inline void repro_shim_writer_init(struct repro_shim_writer* w, uint8_t* buf, uint32_t cap,
                                          uint16_t type, uint32_t request_id) {
  w->buf = buf;
  w->cap = cap < REPRO_SHIM_MAX_MESSAGE ? cap : REPRO_SHIM_MAX_MESSAGE;
  w->len = REPRO_SHIM_HEADER_SIZE;
  w->overflow = w->cap < REPRO_SHIM_HEADER_SIZE;
  if (w->overflow) return;
  repro_shim_store_u32(buf, REPRO_SHIM_MAGIC);
  repro_shim_store_u16(buf + 4, REPRO_SHIM_VERSION);
  repro_shim_store_u16(buf + 6, type);
  repro_shim_store_u32(buf + 8, 0);
  repro_shim_store_u32(buf + 12, request_id);
}

/* Appends a field with `size` bytes of `value`. */
static inline void repro_shim_put_bytes(struct repro_shim_writer* w, uint16_t tag,
                                        const void* value, uint32_t size) {
  if (w->overflow || size > w->cap - w->len || w->cap - w->len - size < REPRO_SHIM_FIELD_HEADER_SIZE) {
    w->overflow = 1;
    return;
  }
  uint8_t* p = w->buf + w->len;
  repro_shim_store_u16(p, tag);
  repro_shim_store_u16(p + 2, 0);
  repro_shim_store_u32(p + 4, size);
  if (size > 0) memcpy(p + REPRO_SHIM_FIELD_HEADER_SIZE, value, size);
  w->len += REPRO_SHIM_FIELD_HEADER_SIZE + size;
}

static inline void repro_shim_put_str(struct repro_shim_writer* w, uint16_t tag, const char* s,
                                      size_t size) {
  if (size > REPRO_SHIM_MAX_STRING) {
    w->overflow = 1;
    return;
  }
  repro_shim_put_bytes(w, tag, s, (uint32_t)size);
}

static inline void repro_shim_put_u64(struct repro_shim_writer* w, uint16_t tag, uint64_t v) {
  uint8_t bytes[8];
  repro_shim_store_u64(bytes, v);
  repro_shim_put_bytes(w, tag, bytes, 8);
}

/* Opens a nested field (DATASET); returns the offset to pass to repro_shim_end_nested. */
static inline uint32_t repro_shim_begin_nested(struct repro_shim_writer* w, uint16_t tag) {
  uint32_t at = w->len;
  repro_shim_put_bytes(w, tag, NULL, 0);
  return at;
}

static inline void repro_shim_end_nested(struct repro_shim_writer* w, uint32_t at) {
  if (w->overflow) return;
  repro_shim_store_u32(w->buf + at + 4, w->len - at - REPRO_SHIM_FIELD_HEADER_SIZE);
}

/* Writes the length into the header. Returns the message size, or 0 when it did not fit. */
static inline uint32_t repro_shim_finish(struct repro_shim_writer* w) {
  if (w->overflow) return 0;
  repro_shim_store_u32(w->buf + 8, w->len);
  return w->len;
}

/* ---- Decoding ---------------------------------------------------------------------------- */

struct repro_shim_header {
  uint32_t magic;
  uint16_t version;
  uint16_t type;
  uint32_t length;
  uint32_t request_id;
};

/* Header check results. */
enum repro_shim_header_check {
  REPRO_SHIM_HEADER_OK = 0,
  REPRO_SHIM_HEADER_TRUNCATED = 1,   /* shorter than a header */
  REPRO_SHIM_HEADER_BAD_MAGIC = 2,
  REPRO_SHIM_HEADER_BAD_VERSION = 3,
  REPRO_SHIM_HEADER_BAD_LENGTH = 4,  /* length field differs from the datagram size */
};

static inline int repro_shim_read_header(const uint8_t* p, size_t size,
                                         struct repro_shim_header* h) {
  if (size < REPRO_SHIM_HEADER_SIZE) return REPRO_SHIM_HEADER_TRUNCATED;
  h->magic = repro_shim_load_u32(p);
  h->version = repro_shim_load_u16(p + 4);
  h->type = repro_shim_load_u16(p + 6);
  h->length = repro_shim_load_u32(p + 8);
  h->request_id = repro_shim_load_u32(p + 12);
  if (h->magic != REPRO_SHIM_MAGIC) return REPRO_SHIM_HEADER_BAD_MAGIC;
  if (h->version != REPRO_SHIM_VERSION) return REPRO_SHIM_HEADER_BAD_VERSION;
  if (h->length != size) return REPRO_SHIM_HEADER_BAD_LENGTH;
  return REPRO_SHIM_HEADER_OK;
}

struct repro_shim_field {
  uint16_t tag;
  uint32_t size;
  const uint8_t* value;
};

/* Reads the field at *offset of the `size` bytes at `p` and advances *offset. Returns 1 for a
 * field, 0 at the end, -1 when the bytes are not a well-formed field (truncated header or value,
 * reserved bits set). */
static inline int repro_shim_next_field(const uint8_t* p, size_t size, size_t* offset,
                                        struct repro_shim_field* f) {
  if (*offset == size) return 0;
  if (*offset > size || size - *offset < REPRO_SHIM_FIELD_HEADER_SIZE) return -1;
  const uint8_t* h = p + *offset;
  f->tag = repro_shim_load_u16(h);
  f->size = repro_shim_load_u32(h + 4);
  if (repro_shim_load_u16(h + 2) != 0) return -1;
  if (f->size > size - *offset - REPRO_SHIM_FIELD_HEADER_SIZE) return -1;
  f->value = h + REPRO_SHIM_FIELD_HEADER_SIZE;
  *offset += REPRO_SHIM_FIELD_HEADER_SIZE + f->size;
  return 1;
}

/* 1 when the field is a valid 8-byte integer, storing it in *v. */
static inline int repro_shim_field_u64(const struct repro_shim_field* f, uint64_t* v) {
  if (f->size != 8) return 0;
  *v = repro_shim_load_u64(f->value);
  return 1;
}

/* 1 when the field is a valid string (no NUL byte, at most REPRO_SHIM_MAX_STRING bytes). */
static inline int repro_shim_field_is_str(const struct repro_shim_field* f) {
  return f->size <= REPRO_SHIM_MAX_STRING && memchr(f->value, 0, f->size) == NULL;
}

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* REPRO_PROTO_SHIM_SHIM_PROTOCOL_H_ */
