/* bok/buf.h -- a capped growable byte buffer (redis sds / curl dynbuf style).
 *
 * A bok_buf_t owns its memory; bok_buf_free releases it. Appends fail with -1
 * (leaving the content unchanged) when they would grow past `cap`, so a hostile
 * input can never make a buffer grow without bound. The content is always
 * NUL-terminated (the NUL is not counted in len). Not thread-safe.
 */
#ifndef BOK_BUF_H
#define BOK_BUF_H

#include <stddef.h>
#include <stdint.h>

typedef struct {
  char *data;   /* NULL until the first append; always NUL-terminated after. */
  size_t len;   /* bytes in use, excluding the NUL */
  size_t alloc; /* bytes allocated */
  size_t cap;   /* maximum len; 0 = SIZE_MAX/2 */
} bok_buf_t;

/* A non-owning slice of bytes (h2o_iovec_t style). */
typedef struct {
  const char *base;
  size_t len;
} bok_slice_t;

#define BOK_BUF_INIT(capacity) {NULL, 0, 0, (capacity)}

void bok_buf_init(bok_buf_t *b, size_t cap);
void bok_buf_free(bok_buf_t *b);
/* Empties the buffer, keeping its allocation. */
static inline void bok_buf_reset(bok_buf_t *b) {
  b->len = 0;
  if (b->data) b->data[0] = '\0';
}
/* Ensures room for `extra` more bytes. 0 ok, -1 over cap or out of memory. */
int bok_buf_reserve(bok_buf_t *b, size_t extra);
int bok_buf_append_slow(bok_buf_t *b, const void *p, size_t n);
/* Inline fast paths: hot loops (event encoding) append byte by byte. */
static inline int bok_buf_append(bok_buf_t *b, const void *p, size_t n) {
  if (b->len + n + 1 <= b->alloc) { /* alloc <= cap + 1, so this is within the cap */
    if (n) __builtin_memcpy(b->data + b->len, p, n);
    b->len += n;
    b->data[b->len] = '\0';
    return 0;
  }
  return bok_buf_append_slow(b, p, n);
}
static inline int bok_buf_appendc(bok_buf_t *b, char c) {
  if (b->len + 2 <= b->alloc) {
    b->data[b->len++] = c;
    b->data[b->len] = '\0';
    return 0;
  }
  return bok_buf_append_slow(b, &c, 1);
}
int bok_buf_appends(bok_buf_t *b, const char *s);
/* Appends a decimal integer (no printf). */
int bok_buf_append_i64(bok_buf_t *b, int64_t v);
int bok_buf_printf(bok_buf_t *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Drops the first n bytes (n <= len). */
void bok_buf_consume(bok_buf_t *b, size_t n);
/* Hands the content to the caller (free() it); the buffer becomes empty. */
char *bok_buf_steal(bok_buf_t *b, size_t *len_out);

#endif
