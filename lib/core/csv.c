#include "bok/csv.h"

#include <stdlib.h>
#include <string.h>

struct bok_csv {
  char sep;
  int ndjson;
  size_t max_record;
  bok_csv_record_fn fn;
  void *ud;
  bok_buf_t rec;     /* the current partial record */
  int in_quotes;     /* scanning state carried across chunks */
  int too_long;      /* current record overflowed */
  int bom_checked;
  char bom[3];
  int bom_len;
  int64_t records;
};

const char *bok_csv_status_text(bok_csv_status_t st) {
  switch (st) {
    case BOK_CSV_OK: return "ok";
    case BOK_CSV_UNTERMINATED_QUOTE: return "unterminated quoted field";
    case BOK_CSV_INVALID_UTF8: return "invalid UTF-8";
    case BOK_CSV_TOO_LONG: return "row too long";
  }
  return "?";
}

int bok_utf8_valid(const char *s, size_t len) {
  if (len == 0) return 1; /* s may be NULL (protobuf-c's empty bytes): NULL + 0 is UB (fuzz_proto) */
  const unsigned char *p = (const unsigned char *)s, *e = p + len;
  while (p < e) {
    /* fast path: 8 ASCII bytes at a time */
    while (e - p >= 8) {
      uint64_t w;
      memcpy(&w, p, 8);
      if (w & 0x8080808080808080ULL) break;
      p += 8;
    }
    if (p >= e) break;
    unsigned c = *p;
    if (c < 0x80) {
      p++;
      continue;
    }
    int n;
    unsigned min;
    if ((c & 0xE0) == 0xC0) {
      n = 1;
      min = 0x80;
      c &= 0x1F;
    } else if ((c & 0xF0) == 0xE0) {
      n = 2;
      min = 0x800;
      c &= 0x0F;
    } else if ((c & 0xF8) == 0xF0) {
      n = 3;
      min = 0x10000;
      c &= 0x07;
    } else {
      return 0;
    }
    if (e - p <= n) return 0;
    for (int i = 1; i <= n; i++) {
      if ((p[i] & 0xC0) != 0x80) return 0;
      c = (c << 6) | (p[i] & 0x3F);
    }
    if (c < min || c > 0x10FFFF || (c >= 0xD800 && c <= 0xDFFF)) return 0;
    p += n + 1;
  }
  return 1;
}

static bok_csv_t *make(char sep, int ndjson, size_t max_record, bok_csv_record_fn fn, void *ud) {
  bok_csv_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->sep = sep;
  c->ndjson = ndjson;
  c->max_record = max_record ? max_record : (1u << 20);
  c->fn = fn;
  c->ud = ud;
  bok_buf_init(&c->rec, 0);
  return c;
}

bok_csv_t *bok_csv_new(char sep, size_t max_record, bok_csv_record_fn fn, void *ud) {
  return make(sep, 0, max_record, fn, ud);
}
bok_csv_t *bok_ndjson_new(size_t max_record, bok_csv_record_fn fn, void *ud) {
  return make(0, 1, max_record, fn, ud);
}

void bok_csv_destroy(bok_csv_t *c) {
  if (!c) return;
  bok_buf_free(&c->rec);
  free(c);
}

int64_t bok_csv_records(const bok_csv_t *c) { return c->records; }

/* Delivers one record of `len` bytes at p (line ending excluded). */
static int emit(bok_csv_t *c, const char *p, size_t len, bok_csv_status_t st) {
  if (len && p[len - 1] == '\r' && st != BOK_CSV_TOO_LONG) len--;
  if (len == 0 && st == BOK_CSV_OK) return 0; /* blank line */
  if (st == BOK_CSV_OK && !bok_utf8_valid(p, len)) st = BOK_CSV_INVALID_UTF8;
  int64_t row = c->ndjson ? c->records + 1 : c->records;
  c->records++;
  return c->fn(c->ud, row, p, len, st);
}

/* Appends to the partial record, switching to "too long" past the limit. */
static void keep(bok_csv_t *c, const char *p, size_t n) {
  if (c->too_long) return;
  if (c->rec.len + n > c->max_record) {
    size_t room = c->max_record - c->rec.len;
    bok_buf_append(&c->rec, p, room);
    c->too_long = 1;
    return;
  }
  bok_buf_append(&c->rec, p, n);
}

int bok_csv_feed(bok_csv_t *c, const char *data, size_t len) {
  const char *p = data, *end = data + len;
  /* A BOM may itself straddle chunks. */
  while (!c->bom_checked && p < end) {
    static const char BOM[3] = {(char)0xEF, (char)0xBB, (char)0xBF};
    if (*p == BOM[c->bom_len]) {
      c->bom[c->bom_len++] = *p++;
      if (c->bom_len == 3) c->bom_checked = 1;
    } else {
      c->bom_checked = 1;
      keep(c, c->bom, (size_t)c->bom_len); /* not a BOM after all */
    }
  }
  const char *start = p; /* start of the unsaved part of the current record */
  while (p < end) {
    if (c->ndjson) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      if (!nl) {
        p = end;
        break;
      }
      p = nl;
    } else if (c->in_quotes) {
      const char *q = memchr(p, '"', (size_t)(end - p));
      if (!q) {
        p = end;
        break;
      }
      p = q + 1;
      c->in_quotes = 0; /* a "" escape re-enters quotes at the next '"' */
      continue;
    } else {
      /* next quote or newline */
      const char *q = p;
      while (q < end && *q != '"' && *q != '\n') q++;
      if (q == end) {
        p = end;
        break;
      }
      if (*q == '"') {
        c->in_quotes = 1;
        p = q + 1;
        continue;
      }
      p = q;
    }
    /* p at '\n' ending a record */
    int rc;
    if (c->rec.len == 0 && !c->too_long) {
      rc = emit(c, start, (size_t)(p - start), BOK_CSV_OK);
    } else {
      keep(c, start, (size_t)(p - start));
      rc = emit(c, c->rec.data, c->rec.len, c->too_long ? BOK_CSV_TOO_LONG : BOK_CSV_OK);
      bok_buf_reset(&c->rec);
      c->too_long = 0;
    }
    p++;
    start = p;
    if (rc) return rc;
  }
  if (start < end) keep(c, start, (size_t)(end - start));
  return 0;
}

int bok_csv_finish(bok_csv_t *c) {
  if (!c->bom_checked && c->bom_len) {
    c->bom_checked = 1;
    keep(c, c->bom, (size_t)c->bom_len);
  }
  int rc = 0;
  if (c->rec.len || c->too_long) {
    bok_csv_status_t st = c->too_long ? BOK_CSV_TOO_LONG : c->in_quotes ? BOK_CSV_UNTERMINATED_QUOTE : BOK_CSV_OK;
    rc = emit(c, c->rec.data ? c->rec.data : "", c->rec.len, st);
  }
  bok_buf_reset(&c->rec);
  c->too_long = 0;
  c->in_quotes = 0;
  return rc;
}

int bok_csv_parse_record(const char *raw, size_t len, char sep, bok_slice_t *fields, size_t max, bok_buf_t *scratch) {
  size_t n = 0;
  const char *p = raw, *end = raw + len;
  bok_buf_reset(scratch);
  if (bok_buf_reserve(scratch, len) != 0) return -1;
  for (;;) {
    bok_slice_t f;
    if (p < end && *p == '"') {
      /* quoted: unescape into scratch */
      p++;
      char *out = scratch->data + scratch->len;
      size_t o = 0;
      int closed = 0;
      while (p < end) {
        if (*p == '"') {
          if (p + 1 < end && p[1] == '"') {
            out[o++] = '"';
            p += 2;
            continue;
          }
          p++;
          closed = 1;
          break;
        }
        out[o++] = *p++;
      }
      if (!closed) return -1;
      /* text after the closing quote up to the separator is kept as is */
      while (p < end && *p != sep) out[o++] = *p++;
      f.base = out;
      f.len = o;
      scratch->len += o;
    } else {
      const char *s = p;
      while (p < end && *p != sep) p++;
      f.base = s;
      f.len = (size_t)(p - s);
    }
    if (n < max) fields[n] = f;
    n++;
    if (p >= end) break;
    p++; /* separator */
    if (p == end) {
      /* trailing separator: one more empty field */
      if (n < max) {
        fields[n].base = end;
        fields[n].len = 0;
      }
      n++;
      break;
    }
  }
  return (int)n;
}
