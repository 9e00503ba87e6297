/* libFuzzer: the gateway's multipart/form-data parser (POST /jobs uploads).
 * Every part found must lie inside the body; the page-releasing variant the
 * gateway uses must answer the same; the upload format is then picked from
 * the file part as handlers.c does.
 * Input: first line = the Content-Type header value, the rest = the body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"
#include "route.h"

static void inside(const bok_slice_t *s, const char *body, size_t bl) {
  if (s->len && (s->base < body || s->base + s->len > body + bl)) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *d = (const char *)data;
  const char *nl = memchr(d, '\n', size);
  size_t cl = nl ? (size_t)(nl - d) : size;
  size_t bl = nl ? size - cl - 1 : 0;
  char *ctype = malloc(cl + 1); /* exact sizes: ASan sees any overread */
  char *body = malloc(bl + 1);
  if (!ctype || !body) abort();
  memcpy(ctype, d, cl);
  memcpy(body, nl ? nl + 1 : "", bl);
  gw_part_t parts[GW_MAX_PARTS], again[GW_MAX_PARTS];
  char err[200], err2[200];
  err[0] = '\0';
  int n = gw_multipart_parse(ctype, cl, body, bl, parts, GW_MAX_PARTS, err, sizeof err);
  int n2 = gw_multipart_parse_release(ctype, cl, body, bl, again, GW_MAX_PARTS, err2, sizeof err2);
  if (n != n2 || n > GW_MAX_PARTS) abort();
  if (n < 0 && !err[0]) abort(); /* a refusal always says why */
  for (int i = 0; i < n; i++) {
    const gw_part_t *p = &parts[i];
    inside(&p->name, body, bl);
    inside(&p->filename, body, bl);
    inside(&p->content_type, body, bl);
    inside(&p->data, body, bl);
    if (memcmp(p, &again[i], sizeof *p) != 0) abort();
  }
  if (n > 0) {
    const gw_part_t *f = gw_multipart_find(parts, (size_t)n, "file");
    if (f) (void)gw_upload_format(f->filename.base, f->filename.len, f->content_type.base, f->content_type.len);
  }
  free(ctype);
  free(body);
  return 0;
}
