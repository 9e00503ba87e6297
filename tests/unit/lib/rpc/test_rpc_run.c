/* Signals, handled once for the process (bok/rpc.h "Running a binary"):
 * a byte on the wake fd ends the wait (0); SIGHUP runs the reload hook and
 * the wait goes on; SIGTERM ends it (1); afterwards the caller's mask is
 * back and a later SIGTERM is ignored (the process is stopping). The signals are blocked first, so none can kill the test
 * before the wait installs its handlers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "bok/rpc.h"

static void test_wake_fd_ends_the_wait(void **state) {
  (void)state;
  int p[2];
  assert_int_equal(pipe(p), 0);
  assert_int_equal(write(p[1], "x", 1), 1);
  assert_int_equal(bok_signals_wait(p[0], 1, NULL, NULL), 0);
  assert_int_equal(bok_signals_wait(p[0], 0, NULL, NULL), 0); /* without signals too */
  close(p[0]);
  close(p[1]);
}

static int g_hups;

/* The reload hook: counts, then asks for a stop (delivered while waiting). */
static void on_hup(void *ud) {
  (void)ud;
  g_hups++;
  kill(getpid(), SIGTERM);
}

static void test_hup_reloads_term_stops_then_ignored(void **state) {
  (void)state;
  sigset_t old;
  bok_signals_block(&old);
  kill(getpid(), SIGHUP); /* pending until the wait unblocks it */
  g_hups = 0;
  assert_int_equal(bok_signals_wait(-1, 1, on_hup, NULL), 1);
  assert_int_equal(g_hups, 1);
  sigset_t now;
  pthread_sigmask(SIG_SETMASK, &old, &now);
  assert_true(sigismember(&now, SIGTERM)); /* the caller's mask was back */
  /* Stopping: a second SIGTERM is ignored (the process is still here) and
   * does not end the next wait early. */
  kill(getpid(), SIGTERM);
  int p[2];
  assert_int_equal(pipe(p), 0);
  assert_int_equal(write(p[1], "x", 1), 1);
  assert_int_equal(bok_signals_wait(p[0], 1, NULL, NULL), 0);
  close(p[0]);
  close(p[1]);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_wake_fd_ends_the_wait),
      cmocka_unit_test(test_hup_reloads_term_stops_then_ignored),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
