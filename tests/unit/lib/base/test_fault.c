/* Fault points (lib/base/fault.c): inert without BOK_FAULT; delay, exit
 * and kill fire where and when (@N) they are told. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <signal.h>
#include <stdlib.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "bok/fault.h"

static long ms_since(const struct timespec *t0) {
  struct timespec t;
  clock_gettime(CLOCK_MONOTONIC, &t);
  return (t.tv_sec - t0->tv_sec) * 1000 + (t.tv_nsec - t0->tv_nsec) / 1000000;
}

static void test_inert_without_the_variable(void **state) {
  (void)state;
  unsetenv("BOK_FAULT");
  bok_fault_reload();
  bok_fault("worker.after_report"); /* returns */
}

static void test_delay_and_unknown_entries(void **state) {
  (void)state;
  setenv("BOK_FAULT", "bogus,a.b:delay=60,c:frobnicate", 1);
  bok_fault_reload();
  struct timespec t0;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  bok_fault("a.b");
  assert_true(ms_since(&t0) >= 60);
  clock_gettime(CLOCK_MONOTONIC, &t0);
  bok_fault("c"); /* unknown action: ignored */
  bok_fault("a.bc");
  assert_true(ms_since(&t0) < 50);
}

/* Runs point `hits` times in a child; returns its wait status. */
static int child_status(const char *spec, const char *point, int hits) {
  pid_t pid = fork();
  if (pid == 0) {
    setenv("BOK_FAULT", spec, 1);
    bok_fault_reload();
    for (int i = 0; i < hits; i++) bok_fault(point);
    _exit(0);
  }
  int status = 0;
  waitpid(pid, &status, 0);
  return status;
}

static void test_exit_and_kill_on_the_nth_hit(void **state) {
  (void)state;
  int s = child_status("p:exit@2", "p", 1);
  assert_true(WIFEXITED(s) && WEXITSTATUS(s) == 0); /* first hit: not yet */
  s = child_status("p:exit@2", "p", 2);
  assert_true(WIFEXITED(s) && WEXITSTATUS(s) == 3);
  s = child_status("q:kill", "q", 1);
  assert_true(WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL);
  s = child_status("q:kill", "other", 3);
  assert_true(WIFEXITED(s) && WEXITSTATUS(s) == 0);
}

static void test_killafter_lands_later(void **state) {
  (void)state;
  pid_t pid = fork();
  if (pid == 0) {
    setenv("BOK_FAULT", "k:killafter=50", 1);
    bok_fault_reload();
    bok_fault("k");
    usleep(2000 * 1000); /* the timer kills us meanwhile */
    _exit(0);
  }
  int s = 0;
  waitpid(pid, &s, 0);
  assert_true(WIFSIGNALED(s) && WTERMSIG(s) == SIGKILL);
}

static void test_fail_answers_every_hit_and_nothing_else(void **state) {
  (void)state;
  setenv("BOK_FAULT", "x.q:fail,y:delay=1", 1);
  bok_fault_reload();
  assert_int_equal(bok_fault_fails("x.q"), 1);
  assert_int_equal(bok_fault_fails("x.q"), 1);
  bok_fault("x.q"); /* a fail point never kills or waits */
  assert_int_equal(bok_fault_fails("y"), 0);
  assert_int_equal(bok_fault_fails("x"), 0);
  unsetenv("BOK_FAULT");
  bok_fault_reload();
  assert_int_equal(bok_fault_fails("x.q"), 0);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_inert_without_the_variable),
      cmocka_unit_test(test_delay_and_unknown_entries),
      cmocka_unit_test(test_exit_and_kill_on_the_nth_hit),
      cmocka_unit_test(test_killafter_lands_later),
      cmocka_unit_test(test_fail_answers_every_hit_and_nothing_else),
  };
  return cmocka_run_group_tests(tests, NULL, NULL);
}
