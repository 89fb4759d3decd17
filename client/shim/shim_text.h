/* Bounded text building without stdio or allocation, for the shim's messages and environment
 * values: a fixed buffer that truncates instead of overflowing.
 *
 *   struct shim_text t;
 *   shim_text_init(&t);
 *   shim_text_add(&t, "repro: job ");
 *   shim_text_add(&t, job);
 *   shim_text_add_u64(&t, 42);
 *   shim_text_line_to_stderr(&t);   // appends '\n', one write(2)
 *
 * Not thread-safe (use one per call, on the stack); async-signal-safe.
 */
#ifndef REPRO_CLIENT_SHIM_SHIM_TEXT_H_
#define REPRO_CLIENT_SHIM_SHIM_TEXT_H_

#include <stddef.h>
#include <stdint.h>

#define SHIM_TEXT_CAP 1024

struct shim_text {
  size_t len;
  char buf[SHIM_TEXT_CAP];
};

void shim_text_init(struct shim_text* t);
void shim_text_add(struct shim_text* t, const char* s);
void shim_text_add_n(struct shim_text* t, const char* s, size_t n);
void shim_text_add_u64(struct shim_text* t, uint64_t v);
void shim_text_add_i64(struct shim_text* t, int64_t v);
/* NUL-terminated content. */
const char* shim_text_str(struct shim_text* t);
/* Writes the content and a newline to stderr in one write(2); errno is preserved. */
void shim_text_line_to_stderr(struct shim_text* t);

/* Parses a decimal integer that fills all of `s` (optional leading '-' when `allow_sign`).
 * 1 on success. */
int shim_parse_i64(const char* s, int allow_sign, int64_t* out);

#endif /* REPRO_CLIENT_SHIM_SHIM_TEXT_H_ */
