/* fault.h -- named fault points for crash and delay tests.
 *
 * Every binary carries its fault points (e.g. "worker.after_report"); they do
 * nothing unless the environment variable BOK_FAULT names them:
 *
 *   BOK_FAULT="point:action[@N][,point:action[@N]...]"
 *
 * actions:  kill          SIGKILL this process at the point
 *           exit          _exit(3) at the point
 *           delay=MS      sleep MS milliseconds at the point (every hit)
 *           killafter=MS  start a timer that SIGKILLs the process MS ms after
 *                         the point, and go on (lands inside the next call,
 *                         e.g. inside a Kafka commit)
 *           fail          bok_fault_fails(point) answers 1: the code at the
 *                         point acts as if its call failed (every hit)
 * @N fires kill/exit/killafter on the N-th hit of the point only (default: the
 * first). Unknown points or actions are ignored (the tests that set them check
 * that the process died).
 *
 * The points (docs/GUARANTEES.md, tests/e2e/test_crash_matrix.py):
 *   worker.after_produce, worker.after_report, worker.after_send_offsets,
 *   worker.commit (before each commit_transaction: killafter lands inside),
 *   worker.after_commit (before ConfirmResults), worker.txn_open (a batch
 *   ran and the transaction stays open for the next one);
 *   job.mid_upload (after each upload chunk), job.before_store,
 *   job.after_rows_commit, job.report, job.confirm;
 *   job.finalizer_query (fail: the finalizer's first Kafka clients never
 *   answer, as after the broker restart in issue 11's torture run);
 *   rpc.server (every gRPC call served), rpc.client (every blocking call).
 *
 * Thread-safety: any thread may call bok_fault(); the variable is read once. */
#ifndef BOK_FAULT_H
#define BOK_FAULT_H

/* Runs the action configured for `point`, if any. Cheap when BOK_FAULT is
 * unset (one relaxed load). */
void bok_fault(const char *point);

/* 1 when BOK_FAULT sets `point` to "fail", else 0 (cheap when unset). */
int bok_fault_fails(const char *point);

/* Re-reads BOK_FAULT (tests only; not thread-safe against bok_fault). */
void bok_fault_reload(void);

#endif
