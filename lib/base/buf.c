/* buf.c -- growable byte buffer (bok/buf.h) with printf-style appends; the
 * buffer owns its bytes; not thread-safe. */
#include "bok/buf.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static size_t eff_cap(const bok_buf_t *b) { return b->cap ? b->cap : (SIZE_MAX / 2); }

void bok_buf_init(bok_buf_t *b, size_t cap) {
  b->data = NULL;
  b->len = 0;
  b->alloc = 0;
  b->cap = cap;
}

void bok_buf_free(bok_buf_t *b) {
  free(b->data);
  b->data = NULL;
  b->len = b->alloc = 0;
}

int bok_buf_reserve(bok_buf_t *b, size_t extra) {
  if (extra > eff_cap(b) - b->len) return -1;
  size_t need = b->len + extra + 1;
  if (need <= b->alloc) return 0;
  size_t n = b->alloc ? b->alloc : 64;
  while (n < need) n = n * 2;
  if (n > eff_cap(b) + 1) n = eff_cap(b) + 1;
  char *p = realloc(b->data, n);
  if (!p) return -1;
  b->data = p;
  b->alloc = n;
  return 0;
}

int bok_buf_append_slow(bok_buf_t *b, const void *p, size_t n) {
  if (bok_buf_reserve(b, n) != 0) return -1;
  if (n) memcpy(b->data + b->len, p, n);
  b->len += n;
  b->data[b->len] = '\0';
  return 0;
}

int bok_buf_appends(bok_buf_t *b, const char *s) { return bok_buf_append(b, s, strlen(s)); }

int bok_buf_append_i64(bok_buf_t *b, int64_t v) {
  char tmp[24];
  char *e = tmp + sizeof tmp, *p = e;
  uint64_t u = v < 0 ? 0 - (uint64_t)v : (uint64_t)v;
  do {
    *--p = (char)('0' + u % 10);
    u /= 10;
  } while (u);
  if (v < 0) *--p = '-';
  return bok_buf_append(b, p, (size_t)(e - p));
}

int bok_buf_printf(bok_buf_t *b, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  char tmp[256];
  int n = vsnprintf(tmp, sizeof tmp, fmt, ap);
  va_end(ap);
  if (n < 0) return -1;
  if ((size_t)n < sizeof tmp) return bok_buf_append(b, tmp, (size_t)n);
  if (bok_buf_reserve(b, (size_t)n) != 0) return -1;
  va_start(ap, fmt);
  vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
  va_end(ap);
  b->len += (size_t)n;
  return 0;
}

void bok_buf_consume(bok_buf_t *b, size_t n) {
  if (n >= b->len) {
    bok_buf_reset(b);
    return;
  }
  memmove(b->data, b->data + n, b->len - n);
  b->len -= n;
  b->data[b->len] = '\0';
}

char *bok_buf_steal(bok_buf_t *b, size_t *len_out) {
  char *p = b->data;
  if (len_out) *len_out = b->len;
  if (!p) {
    p = calloc(1, 1);
  }
  b->data = NULL;
  b->len = b->alloc = 0;
  return p;
}
