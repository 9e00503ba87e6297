/* Streaming CSV (RFC 4180) and NDJSON record splitting, CSV field parsing
 * and UTF-8 checking. The splitter and bok_csv_parse_record() follow one
 * quoting rule: a '"' opens a quoted field only at the start of a field;
 * anywhere else it is an ordinary character. An unterminated quote is one
 * malformed record (the row where it opened); the lines after that row are
 * read again as rows when the input ends. */
#include "bok/csv.h"

#include <stdlib.h>
#include <string.h>

/* Where the scanner is inside a CSV record (carried across chunks). */
enum { Q_FIELD_START = 0, Q_UNQUOTED, Q_IN_QUOTES, Q_AFTER_QUOTE };

struct bok_csv {
  char sep;
  char quote;        /* '"' unless bok_csv_set_quote() */
  int ndjson;
  size_t max_record;
  bok_csv_record_fn fn;
  void *ud;
  bok_buf_t rec;     /* the current partial record (its first max_record bytes) */
  size_t rec_seen;   /* bytes of the current record saved or dropped so far */
  int q;             /* Q_* */
  size_t open_off;   /* offset in the record of the quote that opened the current quoted field */
  int64_t unterminated_row; /* first row with an unterminated quote, 0 none */
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
  c->quote = '"';
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

void bok_csv_set_quote(bok_csv_t *c, char quote) { c->quote = quote; }

void bok_csv_destroy(bok_csv_t *c) {
  if (!c) return;
  bok_buf_free(&c->rec);
  free(c);
}

int64_t bok_csv_records(const bok_csv_t *c) { return c->records; }
int64_t bok_csv_unterminated_row(const bok_csv_t *c) { return c->unterminated_row; }

/* Delivers one record of `len` bytes at p (line ending excluded). */
static int emit(bok_csv_t *c, const char *p, size_t len, bok_csv_status_t st) {
  if (len && p[len - 1] == '\r' && st != BOK_CSV_TOO_LONG) len--;
  if (len == 0 && st == BOK_CSV_OK) return 0; /* blank line */
  if (st == BOK_CSV_OK && !bok_utf8_valid(p, len)) st = BOK_CSV_INVALID_UTF8;
  int64_t row = c->ndjson ? c->records + 1 : c->records;
  c->records++;
  if (st == BOK_CSV_UNTERMINATED_QUOTE && !c->unterminated_row) c->unterminated_row = row;
  return c->fn(c->ud, row, p, len, st);
}

/* Appends to the partial record, switching to "too long" past the limit. */
static void keep(bok_csv_t *c, const char *p, size_t n) {
  c->rec_seen += n;
  if (c->too_long) return;
  if (c->rec.len + n > c->max_record) {
    size_t room = c->max_record - c->rec.len;
    bok_buf_append(&c->rec, p, room);
    c->too_long = 1;
    return;
  }
  bok_buf_append(&c->rec, p, n);
}

/* Skips a leading UTF-8 BOM, which may itself straddle chunks; returns
 * where the data goes on. */
static inline const char *skip_bom(bok_csv_t *c, const char *p, const char *end) {
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
  return p;
}

/* The record ends at nl (a '\n'): delivers it, from the chunk alone when
 * nothing of it was kept from earlier chunks. The callback's result. */
static inline int end_record(bok_csv_t *c, const char *start, const char *nl) {
  int rc;
  c->q = Q_FIELD_START;
  if (c->rec.len == 0 && !c->too_long) {
    rc = emit(c, start, (size_t)(nl - start), BOK_CSV_OK);
  } else {
    keep(c, start, (size_t)(nl - start));
    rc = emit(c, c->rec.data, c->rec.len, c->too_long ? BOK_CSV_TOO_LONG : BOK_CSV_OK);
    bok_buf_reset(&c->rec);
    c->too_long = 0;
  }
  c->rec_seen = 0;
  return rc;
}

int bok_csv_feed(bok_csv_t *c, const char *data, size_t len) {
  const char *end = data + len;
  const char *p = skip_bom(c, data, end);
  const char *start = p;     /* start of the unsaved part of the current record */
  const char *eol = NULL;    /* the next '\n' at or after p once looked up (end: none in this chunk) */
  while (p < end) {
    if (c->ndjson) {
      const char *nl = memchr(p, '\n', (size_t)(end - p));
      if (!nl) {
        p = end;
        break;
      }
      p = nl;
    } else if (c->q == Q_IN_QUOTES) {
      const char *q = memchr(p, c->quote, (size_t)(end - p));
      if (!q) {
        p = end;
        break;
      }
      p = q + 1;
      c->q = Q_AFTER_QUOTE; /* closed, unless the next byte is '"' ("" escape) */
      continue;
    } else {
      /* Outside quotes only a quote character or the line's end changes
       * anything: jump to the first of them (memchr, no byte loop). */
      if (!eol || eol < p) {
        eol = memchr(p, '\n', (size_t)(end - p));
        if (!eol) eol = end;
      }
      const char *q = memchr(p, c->quote, (size_t)(eol - p));
      if (q) {
        /* the state at q: the bytes before it are neither quotes nor line
         * breaks, so only the last one matters */
        int at = q == p ? c->q : q[-1] == c->sep ? Q_FIELD_START : Q_UNQUOTED;
        if (at == Q_FIELD_START) c->open_off = c->rec_seen + (size_t)(q - start);
        /* opens a quoted field at a field's start, and after a closing
         * quote ("" escape); elsewhere it is text (like bok_csv_parse_record) */
        c->q = at == Q_UNQUOTED ? Q_UNQUOTED : Q_IN_QUOTES;
        p = q + 1;
        continue;
      }
      if (eol == end) {
        c->q = end[-1] == c->sep ? Q_FIELD_START : Q_UNQUOTED;
        p = end;
        break;
      }
      p = eol;
    }
    int rc = end_record(c, start, p); /* p at '\n' ending a record */
    p++;
    start = p;
    if (rc) return rc;
  }
  if (start < end) keep(c, start, (size_t)(end - start));
  return 0;
}

static void reset_record(bok_csv_t *c) {
  bok_buf_reset(&c->rec);
  c->rec_seen = 0;
  c->too_long = 0;
  c->q = Q_FIELD_START;
}

/* The input ended inside a quoted field. The record ends with the line of
 * the quote that opened it and is delivered as UNTERMINATED_QUOTE; the lines
 * after it are fed again as records. They hold no '"' but "" pairs (the
 * field was open all along), so reading them again cannot end inside
 * quotes; the loop in bok_csv_finish() is a guard, and each turn consumes at
 * least one line. When the record was longer than max_record, the bytes
 * past the limit are gone: the opening row is still reported, the rows in
 * the lost bytes are not. */
static int replay_unterminated(bok_csv_t *c, int *done) {
  size_t kept = c->rec.len;
  *done = 0;
  if (c->open_off >= kept) return 0; /* opened past the limit: reported as too long */
  const char *nl = memchr(c->rec.data + c->open_off, '\n', kept - c->open_off);
  size_t cut = nl ? (size_t)(nl - c->rec.data) : kept;
  size_t rest_len = nl && !c->too_long ? kept - cut - 1 : 0;
  char *rest = rest_len ? malloc(rest_len) : NULL;
  if (rest_len && !rest) return 0; /* out of memory: delivered whole, as before */
  if (rest) memcpy(rest, nl + 1, rest_len);
  *done = 1;
  int rc = emit(c, c->rec.data, cut, BOK_CSV_UNTERMINATED_QUOTE);
  reset_record(c);
  if (rc == 0 && rest) rc = bok_csv_feed(c, rest, rest_len);
  free(rest);
  return rc;
}

int bok_csv_finish(bok_csv_t *c) {
  if (!c->bom_checked && c->bom_len) {
    c->bom_checked = 1;
    keep(c, c->bom, (size_t)c->bom_len);
  }
  int rc = 0;
  while (!c->ndjson && c->q == Q_IN_QUOTES) {
    int done;
    rc = replay_unterminated(c, &done);
    if (rc) return rc;
    if (!done) break;
  }
  if (c->rec.len || c->too_long) {
    bok_csv_status_t st = c->too_long               ? BOK_CSV_TOO_LONG
                          : c->q == Q_IN_QUOTES ? BOK_CSV_UNTERMINATED_QUOTE
                                                    : BOK_CSV_OK;
    rc = emit(c, c->rec.data ? c->rec.data : "", c->rec.len, st);
  }
  reset_record(c);
  return rc;
}

int bok_csv_parse_record(const char *raw, size_t len, char sep, bok_slice_t *fields, size_t max, bok_buf_t *scratch) {
  return bok_csv_parse_record_q(raw, len, sep, '"', fields, max, scratch);
}

int bok_csv_parse_record_q(const char *raw, size_t len, char sep, char quote, bok_slice_t *fields, size_t max,
                           bok_buf_t *scratch) {
  size_t n = 0;
  const char *p = raw, *end = raw + len;
  bok_buf_reset(scratch);
  if (bok_buf_reserve(scratch, len) != 0) return -1;
  for (;;) {
    bok_slice_t f;
    if (p < end && *p == quote) {
      /* quoted: unescape into scratch */
      p++;
      char *out = scratch->data + scratch->len;
      size_t o = 0;
      int closed = 0;
      while (p < end) {
        if (*p == quote) {
          if (p + 1 < end && p[1] == quote) {
            out[o++] = quote;
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
