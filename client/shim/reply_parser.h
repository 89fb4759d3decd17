/* What an answer from reprod says, read without trusting it (proto/shim/shim_protocol.h): the
 * header, and for VERDICT and ERROR the ALLOW and REASON fields. A PIN's fields are read by
 * shim_pin_from_message (pin_table.h). Pure: no state, no allocation; the fuzz target
 * tests/fuzz/shim_reply_fuzz.cc runs it on arbitrary bytes.
 *
 *   struct shim_reply r;
 *   if (shim_reply_parse(msg, n, &r) != 0) return;   // not a message of ours: ignored
 *   if (r.header.type == REPRO_SHIM_VERDICT && r.has_allow) ... r.allow ...
 */
#ifndef REPRO_CLIENT_SHIM_REPLY_PARSER_H_
#define REPRO_CLIENT_SHIM_REPLY_PARSER_H_

#include <stddef.h>
#include <stdint.h>

#include "proto/shim/shim_protocol.h"

struct shim_reply {
  struct repro_shim_header header;
  int has_allow;         /* an 8-byte ALLOW field was present */
  uint64_t allow;        /* its value (any non-zero allows) */
  const uint8_t* reason; /* a REASON that is a valid string (inside msg), or NULL */
  uint32_t reason_size;
};

/* 0 with *out filled when `msg` (n bytes) has a valid header; -1 otherwise. Fields after a
 * malformed one, and the fields of a PIN, are not read; of repeated fields the last one counts. */
int shim_reply_parse(const uint8_t* msg, size_t n, struct shim_reply* out);

#endif /* REPRO_CLIENT_SHIM_REPLY_PARSER_H_ */
