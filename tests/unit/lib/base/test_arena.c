/* bok_arena: alignment, no overlap, growth past a block, reset reuse. */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <string.h>
#include <cmocka.h>

#include "bok/arena.h"

static void test_alloc_distinct_aligned(void **s) {
  (void)s;
  bok_arena_t a = BOK_ARENA_INIT;
  unsigned char *p[1000];
  for (int i = 0; i < 1000; i++) {
    size_t n = (size_t)(i % 37) + 1;
    p[i] = bok_arena_alloc(&a, n);
    assert_non_null(p[i]);
    assert_int_equal((uintptr_t)p[i] % 16, 0);
    memset(p[i], i & 0xff, n);
  }
  for (int i = 0; i < 1000; i++) /* nothing overwrote anything */
    for (size_t k = 0; k < (size_t)(i % 37) + 1; k++) assert_int_equal(p[i][k], i & 0xff);
  bok_arena_free(&a);
}

static void test_big_and_reset(void **s) {
  (void)s;
  bok_arena_t a = BOK_ARENA_INIT;
  char *big = bok_arena_alloc(&a, 1 << 20); /* larger than a block */
  assert_non_null(big);
  memset(big, 'x', 1 << 20);
  char *small = bok_arena_alloc(&a, 10);
  memcpy(small, "123456789", 10);
  assert_int_equal(big[(1 << 20) - 1], 'x');
  bok_arena_reset(&a);
  /* after a reset the largest block is reused: the first allocation is at its start */
  char *again = bok_arena_alloc(&a, 100);
  assert_non_null(again);
  char *q = bok_arena_alloc(&a, 1 << 19);
  assert_non_null(q);
  assert_true(q > again && q - again < (1 << 20));
  bok_arena_free(&a);
  assert_null(a.head);
  assert_non_null(bok_arena_alloc(&a, 1)); /* usable after free */
  bok_arena_free(&a);
}

int main(void) {
  const struct CMUnitTest tests[] = {cmocka_unit_test(test_alloc_distinct_aligned), cmocka_unit_test(test_big_and_reset)};
  return cmocka_run_group_tests(tests, NULL, NULL);
}
