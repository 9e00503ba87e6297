/* rpc_run.c -- how a binary runs: the process's stop and reload signals
 * (SIGINT/SIGTERM stop, SIGHUP reload), handled here and nowhere else, and
 * the server-run helper the gRPC services' mains share (security set-up,
 * build the server from the config, register, start, serve until a stop
 * signal, stop gracefully). Contract: bok/rpc.h "Running a binary". */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

#include "bok/config.h"
#include "bok/log.h"
#include "bok/rpc.h"

/* The self-pipe: made by the first wait and kept for the process's life,
 * so a handler running late on another thread never writes into a closed
 * (or reused) descriptor. g_sig_fd is its write end while a wait runs, -1
 * otherwise (the handlers then do nothing). */
static int g_sig_pipe[2] = {-1, -1};
static volatile sig_atomic_t g_sig_fd = -1;

static void on_signal(int sig) {
  int fd = g_sig_fd;
  if (fd >= 0) {
    char c = sig == SIGHUP ? 'h' : 's';
    ssize_t w = write(fd, &c, 1);
    (void)w;
  }
}

void bok_signals_block(sigset_t *old) {
  sigset_t block;
  sigemptyset(&block);
  sigaddset(&block, SIGINT);
  sigaddset(&block, SIGTERM);
  sigaddset(&block, SIGHUP);
  pthread_sigmask(SIG_BLOCK, &block, old);
}

/* Polls wake_fd and (sig_fd >= 0) the self-pipe until a stop: 1 = a stop
 * signal, 0 = wake_fd readable or poll failed. SIGHUP runs on_hup. */
static int wait_loop(int wake_fd, int sig_fd, bok_hup_fn on_hup, void *ud) {
  struct pollfd pfd[2] = {{wake_fd, POLLIN, 0}, {sig_fd, POLLIN, 0}};
  for (;;) {
    int r = poll(pfd, sig_fd >= 0 ? 2 : 1, -1);
    if (r < 0 && errno == EINTR) continue;
    if (r < 0 || (pfd[0].revents & (POLLIN | POLLHUP | POLLERR))) return 0;
    if (!(pfd[1].revents & POLLIN)) continue;
    char c = 's';
    if (read(sig_fd, &c, 1) < 0) continue;
    if (c != 'h') return 1;
    if (on_hup) on_hup(ud);
  }
}

/* The self-pipe, emptied of bytes an earlier wait left. 0 ok, -1 no pipe. */
static int sig_pipe_ready(void) {
  if (g_sig_pipe[0] < 0 && pipe2(g_sig_pipe, O_CLOEXEC | O_NONBLOCK) != 0) return -1;
  char buf[64];
  while (read(g_sig_pipe[0], buf, sizeof buf) > 0) {
  }
  return 0;
}

int bok_signals_wait(int wake_fd, int handle_signals, bok_hup_fn on_hup, void *ud) {
  if (!handle_signals || sig_pipe_ready() != 0) return wait_loop(wake_fd, -1, NULL, NULL);
  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_signal;
  sa.sa_flags = SA_RESTART;
  sigemptyset(&sa.sa_mask);
  g_sig_fd = g_sig_pipe[1];
  /* Process-wide handlers (any thread may take a signal); this thread
   * accepts them even if the caller blocked them everywhere. */
  sigaction(SIGINT, &sa, NULL);
  sigaction(SIGTERM, &sa, NULL);
  if (on_hup) sigaction(SIGHUP, &sa, NULL);
  sigset_t sigs, old_mask;
  sigemptyset(&sigs);
  sigaddset(&sigs, SIGINT);
  sigaddset(&sigs, SIGTERM);
  if (on_hup) sigaddset(&sigs, SIGHUP);
  pthread_sigmask(SIG_UNBLOCK, &sigs, &old_mask);
  int got = wait_loop(wake_fd, g_sig_pipe[0], on_hup, ud);
  pthread_sigmask(SIG_SETMASK, &old_mask, NULL);
  g_sig_fd = -1; /* the handlers stay: later signals are ignored while the process stops */
  return got;
}

int bok_rpc_security_init(const bok_config_t *cfg, bok_rpc_role_t role, bok_log_fn log, void *comp,
                          const char *fail_prefix) {
  bok_err_t err;
  if (bok_rpc_security_from_config(cfg, role, &err) != 0) {
    bok_logf(log, comp, BOK_LOG_ERROR, "%s%s", fail_prefix ? fail_prefix : "", err.msg);
    return -1;
  }
  char msg[512];
  bok_rpc_security_describe(msg, sizeof msg);
  bok_logf(log, comp, BOK_LOG_INFO, "gRPC security: %s", msg);
  return 0;
}

int bok_rpc_main_end(bok_config_t *cfg, int rc) {
  bok_rpc_security_reset();
  bok_config_destroy(cfg);
  bok_metrics_default_free();
  return rc;
}

int bok_rpc_run(const bok_config_t *cfg, const bok_rpc_run_opts_t *o) {
  bok_rpc_server_opts_t opts = {.addr = bok_config_get(cfg, "listen", o->default_listen),
                                .threads = (int)bok_config_get_int(cfg, "threads", 8),
                                .max_message = o->max_message,
                                .stream_window = o->stream_window,
                                .log = o->log,
                                .log_opaque = o->log_opaque,
                                .ready = o->ready,
                                .ready_ud = o->ready_ud};
  bok_err_t err = {0};
  bok_rpc_server_t *srv = bok_rpc_server_new(&opts, &err);
  if (!srv || o->add_methods(srv, o->ud) != 0 || bok_rpc_server_start(srv, &err) < 0) {
    bok_logf(o->log, o->log_opaque, BOK_LOG_ERROR, "cannot start: %s", err.msg);
    bok_rpc_server_destroy(srv);
    return 1;
  }
  bok_rpc_server_wait(srv, 1);
  bok_rpc_server_destroy(srv);
  return 0;
}

int bok_rpc_service_main(int argc, char **argv, const bok_rpc_service_t *svc) {
  int rc = 1;
  bok_config_t *cfg = bok_config_from_args_checked(argc, argv, svc->prog, svc->known_keys, &rc);
  if (!cfg) return rc;
  rc = 1;
  bok_rpc_run_opts_t run = {0};
  if (bok_rpc_security_init(cfg, svc->role, bok_log_stderr, svc->comp, NULL) == 0 &&
      svc->build(cfg, svc->app, &run) == 0) {
    run.log = bok_log_stderr; /* the binary's component on the server's lines */
    run.log_opaque = svc->comp;
    rc = bok_rpc_run(cfg, &run);
  }
  svc->teardown(svc->app);
  return bok_rpc_main_end(cfg, rc);
}
