/* The report ring: a shared-memory queue of record-mode reports from one shimmed process to
 * reprod, so that a report costs the process a copy instead of a datagram.
 *
 * Plain C (C99 and C++17), shared by the shim (writer) and reprod (reader).
 *
 *   reprod: creates a memfd of REPRO_SHIM_RING_SIZE bytes, seals its size, and passes it with
 *           SCM_RIGHTS in the PIN answer to the process's HELLO (asleep = 1).
 *   shim:   maps it; per report: repro_shim_ring_put(...), then, when it returns 1 (reprod is
 *           asleep and must be woken), sends a DOORBELL datagram.
 *   reprod: on a DOORBELL, on a timer while reports keep coming, and when the connection ends,
 *           copies out what was published, then goes asleep again (repro_shim_ring_sleep).
 *
 * Nothing waits in the process's private memory: a report is in memory reprod also maps once
 * repro_shim_ring_put returns, so it survives the process exiting, exec'ing or being killed
 * right after, and a process that goes quiet has already rung the doorbell for its last report
 * unless reprod was awake (then reprod's own timer finds it). No timer runs in the process.
 *
 * Layout (integers in the host's byte order: both ends are on the same machine):
 *
 *   offset  size  field
 *        0     8  tail    bytes ever published by the shim (written by the shim only)
 *       64     8  head    bytes ever consumed by reprod (written by reprod only)
 *      128     4  asleep  1: reprod looks again only after a DOORBELL; the shim that swaps it to
 *                         0 sends one
 *      192     8  made    reports the process has numbered so far: the REPORT_SEQ its next report
 *                         gets (written by the shim only, after each report, whatever path the
 *                         report took). reprod reads it when the connection ends without the
 *                         process's count of reports (LOADED REPORT_SEQ), e.g. because the process
 *                         was killed: the count it would have sent (issue 13: gaps). reprod
 *                         creates the ring with REPRO_SHIM_RING_UNTAKEN here; the shim that maps
 *                         it writes its count at once.
 *      256  cap   data    records, each at an 8-byte aligned offset: u32 size, then `size` bytes
 *                         of one message (OPEN with request_id 0); a size of
 *                         REPRO_SHIM_RING_WRAP means the rest of the data area is unused and the
 *                         next record is at offset 0.
 *
 * The protocol of asleep/tail is Dekker's: the shim stores tail then swaps asleep; reprod stores
 * asleep then loads tail, both sequentially consistent, so at least one of them sees the other
 * and no published report is left unread. reprod trusts nothing it reads from the ring: sizes,
 * tail and messages are checked like datagrams.
 */
#ifndef REPRO_PROTO_SHIM_SHIM_RING_H_
#define REPRO_PROTO_SHIM_SHIM_RING_H_

#include <stdint.h>
#include <string.h>

#include "proto/shim/shim_protocol.h"

#ifdef __cplusplus
extern "C" {
#endif

#define REPRO_SHIM_RING_DATA_OFFSET 256u
#define REPRO_SHIM_RING_CAPACITY (128u * 1024u)
#define REPRO_SHIM_RING_SIZE (REPRO_SHIM_RING_DATA_OFFSET + REPRO_SHIM_RING_CAPACITY)
#define REPRO_SHIM_RING_WRAP 0xffffffffu
/* `made` of a ring no shim has mapped (its PIN answer never reached the process). */
#define REPRO_SHIM_RING_UNTAKEN 0xffffffffffffffffull

static inline uint64_t* repro_shim_ring_tail(uint8_t* ring) { return (uint64_t*)ring; }
static inline uint64_t* repro_shim_ring_head(uint8_t* ring) { return (uint64_t*)(ring + 64); }
static inline uint32_t* repro_shim_ring_asleep(uint8_t* ring) { return (uint32_t*)(ring + 128); }
static inline uint64_t* repro_shim_ring_made(uint8_t* ring) { return (uint64_t*)(ring + 192); }
static inline uint8_t* repro_shim_ring_data(uint8_t* ring) {
  return ring + REPRO_SHIM_RING_DATA_OFFSET;
}

/* Bytes a record of an n-byte message takes. */
static inline uint64_t repro_shim_ring_record_size(uint32_t n) { return (4u + (uint64_t)n + 7u) & ~7ull; }

/* Writer (the shim; one thread at a time). Publishes the n-byte message `msg`. Returns 1 when it
 * was published and reprod must be woken (send a DOORBELL), 0 when published, -1 when there is
 * no room (or the ring is damaged): nothing was written. */
static inline int repro_shim_ring_put(uint8_t* ring, const uint8_t* msg, uint32_t n) {
  const uint64_t cap = REPRO_SHIM_RING_CAPACITY;
  const uint64_t tail = __atomic_load_n(repro_shim_ring_tail(ring), __ATOMIC_RELAXED);
  const uint64_t head = __atomic_load_n(repro_shim_ring_head(ring), __ATOMIC_ACQUIRE);
  const uint64_t need = repro_shim_ring_record_size(n);
  if (tail < head || tail - head > cap || need > cap) return -1;
  uint64_t at = tail % cap;
  uint64_t skip = cap - at < need ? cap - at : 0; /* the record does not fit before the end */
  if (cap - (tail - head) < skip + need) return -1;
  uint8_t* data = repro_shim_ring_data(ring);
  if (skip > 0) {
    const uint32_t wrap = REPRO_SHIM_RING_WRAP;
    memcpy(data + at, &wrap, sizeof(wrap)); /* records are 8-aligned: 4 bytes always fit */
    at = 0;
  }
  memcpy(data + at, &n, sizeof(n));
  memcpy(data + at + 4, msg, n);
  __atomic_store_n(repro_shim_ring_tail(ring), tail + skip + need, __ATOMIC_SEQ_CST);
  return __atomic_exchange_n(repro_shim_ring_asleep(ring), 0u, __ATOMIC_SEQ_CST) == 1u ? 1 : 0;
}

/* Reader (reprod; the shim too, to resend what reprod never read when the connection is lost).
 * Finds the record at byte position *pos, which must lie in [head, tail) of a ring whose
 * head <= tail <= head + capacity. Returns 1 with the message at *msg (n bytes, in the ring: copy
 * it before trusting it) and *pos moved past it; 0 when *pos == tail; -1 when the records are
 * damaged. */
static inline int repro_shim_ring_next(const uint8_t* ring, uint64_t* pos, uint64_t tail,
                                       const uint8_t** msg, uint32_t* n) {
  const uint64_t cap = REPRO_SHIM_RING_CAPACITY;
  const uint8_t* data = ring + REPRO_SHIM_RING_DATA_OFFSET;
  for (;;) {
    if (*pos == tail) return 0;
    const uint64_t at = *pos % cap;
    uint32_t size;
    memcpy(&size, data + at, sizeof(size));
    if (size == REPRO_SHIM_RING_WRAP) {
      if (cap - at > tail - *pos) return -1;
      *pos += cap - at;
      continue;
    }
    const uint64_t record = repro_shim_ring_record_size(size);
    if (size > REPRO_SHIM_MAX_MESSAGE || record > cap - at || record > tail - *pos) return -1;
    *msg = data + at + 4;
    *n = size;
    *pos += record;
    return 1;
  }
}

#ifdef __cplusplus
}  /* extern "C" */
#endif

#endif /* REPRO_PROTO_SHIM_SHIM_RING_H_ */
