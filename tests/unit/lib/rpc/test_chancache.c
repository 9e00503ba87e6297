/* The channel cache (bok/rpc.h "Channel cache"): one channel per address,
 * no limit by count (many more than the old fixed tables of 32/64), the
 * same channel for the same address from any thread, never another
 * address's channel. No backend is needed: channels connect lazily. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <string.h>

#include "bok/rpc.h"

#define NADDR 300 /* well past the old limits (32 probes, 64 loops) */
#define NTHREADS 8

static void addr_of(int i, char *out, size_t n) { snprintf(out, n, "127.0.0.%d:%d", 1 + i % 200, 40000 + i); }

static void test_many_addresses_each_its_own(void **state) {
  (void)state;
  bok_rpc_chancache_t *c = bok_rpc_chancache_new(0);
  assert_non_null(c);
  bok_rpc_channel_t *seen[NADDR];
  char a[64];
  for (int i = 0; i < NADDR; i++) {
    addr_of(i, a, sizeof a);
    seen[i] = bok_rpc_chancache_get(c, a);
    assert_non_null(seen[i]);
    assert_string_equal(bok_rpc_channel_target(seen[i]), a);
  }
  assert_int_equal(bok_rpc_chancache_count(c), NADDR);
  for (int i = NADDR - 1; i >= 0; i--) { /* again, backwards: the same channels */
    addr_of(i, a, sizeof a);
    assert_ptr_equal(bok_rpc_chancache_get(c, a), seen[i]);
    assert_ptr_equal(bok_rpc_chancache_at(c, (size_t)i), seen[i]); /* creation order */
  }
  assert_int_equal(bok_rpc_chancache_count(c), NADDR);
  assert_null(bok_rpc_chancache_at(c, NADDR));
  assert_null(bok_rpc_chancache_get(c, NULL));
  bok_rpc_chancache_destroy(c);
  bok_rpc_chancache_destroy(NULL);
}

typedef struct {
  bok_rpc_chancache_t *c;
  int id;
  bok_rpc_channel_t *got[NADDR];
  int bad; /* lookups answered with a channel to another address */
} worker_arg_t;

/* Each thread walks the addresses from its own starting point and stride,
 * so new addresses are added while others are being looked up. */
static void *lookup_all(void *p) {
  worker_arg_t *w = p;
  char a[64];
  for (int round = 0; round < 3; round++)
    for (int k = 0; k < NADDR; k++) {
      int i = (w->id * 37 + k * 7) % NADDR; /* 7 and 300 are coprime: every address */
      addr_of(i, a, sizeof a);
      bok_rpc_channel_t *ch = bok_rpc_chancache_get(w->c, a);
      if (!ch || strcmp(bok_rpc_channel_target(ch), a) != 0) w->bad++;
      if (w->got[i] && w->got[i] != ch) w->bad++;
      w->got[i] = ch;
    }
  return NULL;
}

static void test_concurrent_lookups_agree(void **state) {
  (void)state;
  bok_rpc_chancache_t *c = bok_rpc_chancache_new(1);
  assert_non_null(c);
  static worker_arg_t args[NTHREADS];
  pthread_t th[NTHREADS];
  for (int t = 0; t < NTHREADS; t++) {
    memset(&args[t], 0, sizeof args[t]);
    args[t].c = c;
    args[t].id = t;
    assert_int_equal(pthread_create(&th[t], NULL, lookup_all, &args[t]), 0);
  }
  for (int t = 0; t < NTHREADS; t++) pthread_join(th[t], NULL);
  assert_int_equal(bok_rpc_chancache_count(c), NADDR); /* each address once */
  for (int t = 0; t < NTHREADS; t++) {
    assert_int_equal(args[t].bad, 0);
    for (int i = 0; i < NADDR; i++) assert_ptr_equal(args[t].got[i], args[0].got[i]);
  }
  bok_rpc_chancache_destroy(c);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_many_addresses_each_its_own),
      cmocka_unit_test(test_concurrent_lookups_agree),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
