#include "client/shim/reply_parser.h"

#include <string.h>

int shim_reply_parse(const uint8_t* msg, size_t n, struct shim_reply* out) {
  memset(out, 0, sizeof(*out));
  if (repro_shim_read_header(msg, n, &out->header) != REPRO_SHIM_HEADER_OK) return -1;
  if (out->header.type == REPRO_SHIM_PIN) return 0;
  struct repro_shim_field f;
  size_t off = REPRO_SHIM_HEADER_SIZE;
  while (repro_shim_next_field(msg, n, &off, &f) == 1) {
    if (f.tag == REPRO_SHIM_F_REASON && repro_shim_field_is_str(&f)) {
      out->reason = f.value;
      out->reason_size = f.size;
    } else if (f.tag == REPRO_SHIM_F_ALLOW && repro_shim_field_u64(&f, &out->allow)) {
      out->has_allow = 1;
    }
  }
  return 0;
}
