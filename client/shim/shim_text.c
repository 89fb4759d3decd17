#include "client/shim/shim_text.h"

#include <errno.h>
#include <string.h>
#include <unistd.h>

void shim_text_init(struct shim_text* t) {
  t->len = 0;
  t->buf[0] = '\0';
}

void shim_text_add_n(struct shim_text* t, const char* s, size_t n) {
  size_t room = SHIM_TEXT_CAP - 2 - t->len; /* keep space for '\n' and NUL */
  if (n > room) n = room;
  memcpy(t->buf + t->len, s, n);
  t->len += n;
  t->buf[t->len] = '\0';
}

void shim_text_add(struct shim_text* t, const char* s) {
  shim_text_add_n(t, s != NULL ? s : "(null)", s != NULL ? strlen(s) : 6);
}

void shim_text_add_u64(struct shim_text* t, uint64_t v) {
  char digits[24];
  size_t n = 0;
  do {
    digits[sizeof(digits) - 1 - n++] = (char)('0' + v % 10);
    v /= 10;
  } while (v != 0);
  shim_text_add_n(t, digits + sizeof(digits) - n, n);
}

void shim_text_add_i64(struct shim_text* t, int64_t v) {
  if (v < 0) {
    shim_text_add_n(t, "-", 1);
    shim_text_add_u64(t, (uint64_t)0 - (uint64_t)v);
  } else {
    shim_text_add_u64(t, (uint64_t)v);
  }
}

const char* shim_text_str(struct shim_text* t) { return t->buf; }

void shim_text_line_to_stderr(struct shim_text* t) {
  int saved = errno;
  t->buf[t->len] = '\n';
  size_t off = 0;
  while (off < t->len + 1) {
    ssize_t n = write(STDERR_FILENO, t->buf + off, t->len + 1 - off);
    if (n <= 0 && errno != EINTR) break;
    if (n > 0) off += (size_t)n;
  }
  t->buf[t->len] = '\0';
  errno = saved;
}

int shim_parse_i64(const char* s, int allow_sign, int64_t* out) {
  if (s == NULL) return 0;
  int negative = 0;
  if (allow_sign && *s == '-') {
    negative = 1;
    ++s;
  }
  if (*s == '\0') return 0;
  uint64_t v = 0;
  for (; *s != '\0'; ++s) {
    if (*s < '0' || *s > '9') return 0;
    uint64_t digit = (uint64_t)(*s - '0');
    if (v > ((uint64_t)INT64_MAX - digit) / 10) return 0;
    v = v * 10 + digit;
  }
  *out = negative ? -(int64_t)v : (int64_t)v;
  return 1;
}
