/* libFuzzer: the gateway's request parsers (multipart bodies, routes, query
 * strings, tenant ids, content types). Input: first line = the
 * Content-Type header value, the rest = the body. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "multipart.h"
#include "route.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  const char *d = (const char *)data;
  const char *nl = memchr(d, '\n', size);
  size_t cl = nl ? (size_t)(nl - d) : size;
  size_t bl = nl ? size - cl - 1 : 0;
  char *body = malloc(bl + 1); /* exact size: ASan sees any overread */
  if (!body) return 0;
  memcpy(body, nl ? nl + 1 : "", bl);
  gw_part_t parts[GW_MAX_PARTS];
  char err[200];
  int n = gw_multipart_parse(d, cl, body, bl, parts, GW_MAX_PARTS, err, sizeof err);
  for (int i = 0; i < n; i++) {
    const gw_part_t *p = &parts[i];
    /* every part lies inside the body */
    if (p->data.base < body || p->data.base + p->data.len > body + bl) abort();
    (void)gw_upload_format(p->filename.base, p->filename.len, p->content_type.base, p->content_type.len);
  }
  gw_route_t r;
  gw_route_parse(d, size, &r);
  if (r.kind != GW_R_NOT_FOUND && r.id[0] && strlen(r.id) != 36) abort();
  char v[64];
  gw_query_param(d, size, "limit", v, sizeof v);
  char t[65];
  gw_tenant_resolve(d, size > 80 ? 80 : size, t);
  (void)gw_is_json_content_type(d, size);
  free(body);
  return 0;
}
