/* multipart.h -- a multipart/form-data parser over a fully buffered body.
 *
 * Parts point into the body (no copies): they are valid as long as the body.
 * Pure function, no allocation, any thread. */
#ifndef GW_MULTIPART_H
#define GW_MULTIPART_H

#include <stddef.h>

#include "bok/buf.h"

#define GW_MAX_PARTS 16

typedef struct {
  bok_slice_t name;         /* form field name */
  bok_slice_t filename;     /* empty when not a file */
  bok_slice_t content_type; /* empty when not given */
  bok_slice_t content_encoding; /* the part's Content-Encoding header; empty when not given */
  bok_slice_t data;
} gw_part_t;

/* Parses `body` according to the Content-Type header value `ctype`
 * ("multipart/form-data; boundary=..."). Returns the number of parts (>= 0)
 * or -1 with a message in err (not multipart, no boundary, truncated body,
 * malformed part headers, more than max_parts parts). */
int gw_multipart_parse(const char *ctype, size_t ctype_len, const char *body, size_t len, gw_part_t *parts,
                       size_t max_parts, char *err, size_t errlen);

/* The first part named `name`, or NULL. */
const gw_part_t *gw_multipart_find(const gw_part_t *parts, size_t n, const char *name);

/* The same, but for a body in a shared file mapping (h2o's > 32 MiB
 * bodies) the pages scanned are dropped from the process as it goes. */
int gw_multipart_parse_release(const char *ctype, size_t ctype_len, const char *body, size_t len, gw_part_t *parts,
                               size_t max_parts, char *err, size_t errlen);

#endif
