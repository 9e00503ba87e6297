/* body_pages.h -- keeps the gateway's memory bounded for large uploads.
 *
 * h2o buffers a request body whole; past 32 MiB it puts it in an mmapped,
 * unlinked temp file. Those pages count in the process's RSS once touched,
 * so a 1 GB upload would cost 1 GB of RSS. For a body that lives in a
 * shared FILE mapping, pages already read can be dropped from this process
 * (MADV_DONTNEED): the data stays in the file and comes back on the next
 * access. Anonymous memory is never touched (DONTNEED would zero it).
 * Thread-safe; neither function dereferences the body. */
#ifndef GW_BODY_PAGES_H
#define GW_BODY_PAGES_H

#include <stddef.h>

/* 1 if [p, p+len) lies inside one shared file mapping (checked in
 * /proc/self/maps), else 0. Bodies under 32 MiB answer 0 without a look. */
int gw_body_file_backed(const void *p, size_t len);

/* Drops the whole pages inside [base+from, base+to) from this process. */
void gw_body_release(const void *base, size_t from, size_t to);

/* The receive phase: h2o 2.2 writes a body whole into its temp-file mapping
 * before any handler runs, so the pages written so far pile up in RSS. A
 * sweeper thread checks every 50 ms (resident file-backed pages grown by
 * 8 MiB since its last walk, from /proc/self/statm) and then asks the
 * kernel to page out every h2o body
 * mapping (files named after h2o_socket_buffer_mmap_settings.fn_template,
 * >= 32 MiB) with MADV_PAGEOUT: a hint that never changes content, so a
 * mapping h2o unmaps (or replaces) meanwhile cannot be harmed; pages written
 * later fault back in from the page cache. The body lives in its file, and
 * the gateway's RSS stays bounded during the upload.
 * start: 0 ok, -1 no thread. stop: joins it (idempotent). Call both from
 * the thread that owns the server. */
int gw_body_sweeper_start(void);
void gw_body_sweeper_stop(void);

/* One sweep now (what the thread does); returns the mappings advised. */
int gw_body_sweep(void);

#endif
