/* console.h -- the web console (gateway/console/, issue 18): its static
 * files, compiled into the binary at build time (CMakeLists.txt generates
 * console_files.c), and serving them: GET/HEAD / (index.html) and
 * /console/<file>. Pure lookups here can be called from any thread. */
#ifndef GW_CONSOLE_H
#define GW_CONSOLE_H

#include <stddef.h>

typedef struct {
  const char *name;          /* "app.js" (a file of gateway/console/) */
  const unsigned char *data; /* its bytes (NUL after them, not counted) */
  const size_t *len;
  const char *sha256; /* 64 lower-case hex digits of the bytes */
} gw_console_file_t;

/* The embedded files, sorted by name; *n gets their number. (Generated.) */
const gw_console_file_t *gw_console_files(size_t *n);

/* The file named by `name` (len bytes, no '/'), or NULL. */
const gw_console_file_t *gw_console_find(const char *name, size_t len);

/* The Content-Type for a file name by its extension (.html, .js, .css,
 * .svg); "application/octet-stream" for anything else. Never NULL. */
const char *gw_console_content_type(const char *name);

/* The strong ETag of a file: '"' + the first 32 hex digits of its SHA-256
 * + '"' (35 characters and a NUL). */
#define GW_CONSOLE_ETAG_LEN 34
void gw_console_etag(const gw_console_file_t *f, char out[GW_CONSOLE_ETAG_LEN + 1]);

/* 1 if an If-None-Match value (len bytes: "*" or a comma-separated list of
 * entity tags, each maybe weak "W/...") matches `etag` (weak comparison, as
 * RFC 9110 says for If-None-Match); else 0. */
int gw_etag_matches(const char *inm, size_t len, const char *etag);

/* Serves a console file on the loop thread: 200 with Content-Type, ETag and
 * Cache-Control (no-cache: the browser revalidates and gets a 304 while the
 * binary is the same), 304 when If-None-Match matches, 404 JSON for an
 * unknown name. `name` is the path's last segment; "" means index.html.
 * Returns 0 (answered). */
struct st_h2o_req_t; /* h2o_req_t */
int gw_console_serve(struct st_h2o_req_t *req, const char *name, size_t len);

#endif
