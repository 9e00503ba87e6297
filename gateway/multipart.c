/* multipart.c -- the multipart/form-data parser of POST /jobs (contract:
 * multipart.h): pure, parts point into the body. */
#include "multipart.h"

#include <stdio.h>
#include <string.h>
#include <strings.h>

#include "body_pages.h"

/* Set for one parse of a file-backed body: scan in windows and drop the
 * pages behind (see body_pages.h), so parsing 1 GB does not cost 1 GB RSS. */
static __thread const char *t_release_base;

static const char *find(const char *hay, size_t hlen, const char *needle, size_t nlen) {
  if (nlen == 0 || hlen < nlen) return NULL;
  if (!t_release_base) return memmem(hay, hlen, needle, nlen);
  const size_t W = 8u << 20;
  for (size_t off = 0; off < hlen;) {
    size_t n = hlen - off < W + nlen ? hlen - off : W + nlen; /* windows overlap by nlen */
    const char *q = memmem(hay + off, n, needle, nlen);
    if (q) return q;
    if (off + n >= hlen) break;
    gw_body_release(t_release_base, 0, (size_t)(hay + off + W - t_release_base));
    off += W;
  }
  return NULL;
}

/* Extracts param `key` (e.g. "boundary", "name") from a header value such as
 * `form-data; name="file"; filename="a.csv"`. Quotes are stripped. */
static bok_slice_t header_param(const char *v, size_t len, const char *key) {
  bok_slice_t out = {NULL, 0};
  size_t klen = strlen(key);
  size_t i = 0;
  while (i < len) {
    /* move to the start of the next parameter */
    while (i < len && v[i] != ';') {
      if (v[i] == '"') { /* skip quoted text */
        i++;
        while (i < len && v[i] != '"') i++;
      }
      i++;
    }
    i++;
    while (i < len && (v[i] == ' ' || v[i] == '\t')) i++;
    if (i + klen < len && strncasecmp(v + i, key, klen) == 0 && v[i + klen] == '=') {
      i += klen + 1;
      if (i < len && v[i] == '"') {
        size_t s = ++i;
        while (i < len && v[i] != '"') i++;
        out.base = v + s;
        out.len = i - s;
      } else {
        size_t s = i;
        while (i < len && v[i] != ';' && v[i] != ' ') i++;
        out.base = v + s;
        out.len = i - s;
      }
      return out;
    }
  }
  return out;
}

static int fail(char *err, size_t errlen, const char *msg) {
  snprintf(err, errlen, "%s", msg);
  return -1;
}

/* After "--boundary" at `p`: a closing "--", or optional blanks then CRLF.
 * 1 and *after (first byte after the delimiter line) / *closing, else 0. */
static int delim_tail(const char *p, const char *end, const char **after, int *closing) {
  if (end - p >= 2 && p[0] == '-' && p[1] == '-') {
    *closing = 1;
    *after = p + 2;
    return 1;
  }
  while (p < end && (*p == ' ' || *p == '\t')) p++;
  if (end - p >= 2 && p[0] == '\r' && p[1] == '\n') {
    *closing = 0;
    *after = p + 2;
    return 1;
  }
  return 0;
}

/* The next delimiter "\r\n--boundary" (+ tail) at or after p; returns the
 * position of its CRLF (= end of the preceding data) or NULL. A
 * "\r\n--boundary" followed by anything else is data. */
static const char *next_delim(const char *p, const char *end, const char *delim, const char **after,
                              int *closing) {
  char pat[214];
  size_t pl = (size_t)snprintf(pat, sizeof pat, "\r\n%s", delim);
  while (p < end) {
    const char *q = find(p, (size_t)(end - p), pat, pl);
    if (!q) return NULL;
    if (delim_tail(q + pl, end, after, closing)) return q;
    p = q + 1;
  }
  return NULL;
}

int gw_multipart_parse_release(const char *ctype, size_t ctype_len, const char *body, size_t len, gw_part_t *parts,
                               size_t max_parts, char *err, size_t errlen) {
  t_release_base = gw_body_file_backed(body, len) ? body : NULL;
  int n = gw_multipart_parse(ctype, ctype_len, body, len, parts, max_parts, err, errlen);
  t_release_base = NULL;
  return n;
}

int gw_multipart_parse(const char *ctype, size_t ctype_len, const char *body, size_t len, gw_part_t *parts,
                       size_t max_parts, char *err, size_t errlen) {
  static const char MP[] = "multipart/form-data";
  if (!ctype || ctype_len < sizeof MP - 1 || strncasecmp(ctype, MP, sizeof MP - 1) != 0 ||
      (ctype_len > sizeof MP - 1 && ctype[sizeof MP - 1] != ';' && ctype[sizeof MP - 1] != ' '))
    return fail(err, errlen, "expected a multipart/form-data body");
  bok_slice_t b = header_param(ctype, ctype_len, "boundary");
  if (b.len == 0 || b.len > 200) return fail(err, errlen, "multipart body without a boundary");
  char delim[210];
  size_t dlen = (size_t)snprintf(delim, sizeof delim, "--%.*s", (int)b.len, b.base);
  if (!body) body = "";
  const char *end = body + len;
  const char *after = NULL;
  int closing = 0;

  /* The first delimiter starts the body or follows a CRLF of the preamble. */
  const char *q = NULL;
  if (len >= dlen && memcmp(body, delim, dlen) == 0 && delim_tail(body + dlen, end, &after, &closing))
    q = body;
  else
    q = next_delim(body, end, delim, &after, &closing);
  if (!q) return fail(err, errlen, "truncated multipart body: no boundary found");
  size_t n = 0;
  while (!closing) {
    const char *p = after;
    if (n == max_parts) return fail(err, errlen, "too many multipart parts");
    gw_part_t *part = &parts[n];
    memset(part, 0, sizeof *part);
    /* part headers, up to an empty line */
    int has_disp = 0;
    for (;;) {
      const char *eol = find(p, (size_t)(end - p), "\r\n", 2);
      if (!eol) return fail(err, errlen, "truncated multipart body");
      if (eol == p) {
        p += 2;
        break;
      }
      const char *colon = memchr(p, ':', (size_t)(eol - p));
      if (!colon) return fail(err, errlen, "malformed multipart part header");
      const char *v = colon + 1;
      while (v < eol && (*v == ' ' || *v == '\t')) v++;
      size_t nlen = (size_t)(colon - p);
      if (nlen == 19 && strncasecmp(p, "Content-Disposition", 19) == 0) {
        has_disp = 1;
        part->name = header_param(v, (size_t)(eol - v), "name");
        part->filename = header_param(v, (size_t)(eol - v), "filename");
      } else if (nlen == 12 && strncasecmp(p, "Content-Type", 12) == 0) {
        part->content_type.base = v;
        part->content_type.len = (size_t)(eol - v);
      } else if (nlen == 16 && strncasecmp(p, "Content-Encoding", 16) == 0) {
        part->content_encoding.base = v;
        part->content_encoding.len = (size_t)(eol - v);
        while (part->content_encoding.len && (v[part->content_encoding.len - 1] == ' ' ||
                                              v[part->content_encoding.len - 1] == '\t'))
          part->content_encoding.len--;
      }
      p = eol + 2;
    }
    if (!has_disp || part->name.len == 0) return fail(err, errlen, "multipart part without a name");
    /* the data runs up to the next delimiter */
    q = next_delim(p, end, delim, &after, &closing);
    if (!q) return fail(err, errlen, "truncated multipart body");
    part->data.base = p;
    part->data.len = (size_t)(q - p);
    n++;
  }
  return (int)n;
}

const gw_part_t *gw_multipart_find(const gw_part_t *parts, size_t n, const char *name) {
  size_t l = strlen(name);
  for (size_t i = 0; i < n; i++)
    if (parts[i].name.len == l && memcmp(parts[i].name.base, name, l) == 0) return &parts[i];
  return NULL;
}
