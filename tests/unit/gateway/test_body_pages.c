/* body_pages: the sweeper pages out h2o's temp-file body mappings (and only
 * those) without changing their content. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>
#include <cmocka.h>

#include <h2o/memory.h>
#include <h2o/socket.h>

#include "body_pages.h"

#define SIZE (64u << 20)

/* Rss of the mapping that starts at p, in kB (from /proc/self/smaps). */
static long mapping_rss_kb(const void *p) {
  FILE *f = fopen("/proc/self/smaps", "r");
  assert_non_null(f);
  char line[4096];
  int in = 0;
  long rss = -1;
  while (fgets(line, sizeof line, f)) {
    unsigned long lo, hi;
    if (sscanf(line, "%lx-%lx ", &lo, &hi) == 2) { /* a mapping's header line */
      in = lo == (uintptr_t)p;
      continue;
    }
    if (in && strncmp(line, "Rss:", 4) == 0) {
      rss = strtol(line + 4, NULL, 10);
      break;
    }
  }
  fclose(f);
  return rss;
}

/* A shared mapping of an unlinked temp file, as h2o makes for a big body. */
static unsigned char *map_temp(const char *tmpl) {
  char fn[256];
  snprintf(fn, sizeof fn, "%s", tmpl);
  int fd = mkstemp(fn);
  assert_true(fd >= 0);
  unlink(fn);
  assert_int_equal(ftruncate(fd, SIZE), 0);
  unsigned char *p = mmap(NULL, SIZE, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
  close(fd);
  assert_true(p != MAP_FAILED);
  for (size_t i = 0; i < SIZE; i += 4096) p[i] = (unsigned char)(i / 4096 * 7);
  return p;
}

static void test_sweep_pages_out_h2o_bodies_only(void **s) {
  (void)s;
  unsigned char *body = map_temp(h2o_socket_buffer_mmap_settings.fn_template);
  unsigned char *other = map_temp("/tmp/not-h2o.XXXXXX");
  assert_true(mapping_rss_kb(body) > 60 * 1024);
  assert_true(mapping_rss_kb(other) > 60 * 1024);
  assert_true(gw_body_sweep() >= 1);
  long after = mapping_rss_kb(body);
  assert_true(after >= 0 && after < 16 * 1024); /* paged out of this process */
  assert_true(mapping_rss_kb(other) > 60 * 1024); /* not an h2o body: left alone */
  for (size_t i = 0; i < SIZE; i += 4096) /* the content is intact */
    assert_int_equal(body[i], (unsigned char)(i / 4096 * 7));
  munmap(body, SIZE);
  munmap(other, SIZE);
}

static void test_sweeper_thread_starts_and_stops(void **s) {
  (void)s;
  unsigned char *body = map_temp(h2o_socket_buffer_mmap_settings.fn_template);
  assert_int_equal(gw_body_sweeper_start(), 0);
  assert_int_equal(gw_body_sweeper_start(), 0); /* idempotent */
  long rss = 0;
  for (int i = 0; i < 40; i++) { /* within ~2 s */
    usleep(50000);
    if ((rss = mapping_rss_kb(body)) < 16 * 1024) break;
  }
  gw_body_sweeper_stop();
  gw_body_sweeper_stop();
  assert_true(rss < 16 * 1024);
  munmap(body, SIZE);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_sweep_pages_out_h2o_bodies_only),
                                     cmocka_unit_test(test_sweeper_thread_starts_and_stops)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
