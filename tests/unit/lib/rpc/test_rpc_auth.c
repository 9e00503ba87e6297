/* Service identity over loopback: worker-only methods refuse calls without
 * the worker token or with a wrong one, the token file is created once
 * (0600) and never defaulted, and with mTLS (certificates from
 * deploy/certs.sh) the worker's certificate name is the credential while a
 * client without a certificate cannot even connect. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "batch/v1/job.pb-c.h"
#include "bok/rpc.h"
#include "rpc_internal.h"

#define SPEC "/batch.v1.JobService/GetJobSpec"
#define OPEN "/batch.v1.JobService/GetJob"
#define MODEL "/batch.v1.ModelService/GetModel" /* not a job service method */

static char g_dir[256];   /* temp dir of this run */
static char g_certs[300]; /* deploy/certs.sh output, made once */

static void answer(void *ud, bok_rpc_call_t *call, const ProtobufCMessage *req) {
  (void)ud;
  const Batch__V1__GetJobRequest *r = (const void *)req;
  Batch__V1__Job j = BATCH__V1__JOB__INIT;
  j.job_id = r->job_id;
  bok_rpc_call_reply(call, &j.base);
}

/* A server with one worker-only and one open method, started under the
 * current security settings. */
static bok_rpc_server_t *start(char *target, size_t cap) {
  bok_rpc_server_opts_t o = {.addr = "127.0.0.1:0", .threads = 2};
  bok_err_t err;
  bok_rpc_server_t *s = bok_rpc_server_new(&o, &err);
  assert_non_null(s);
  bok_rpc_server_add_unary(s, SPEC, &batch__v1__get_job_request__descriptor, BOK_RPC_WORKER_ONLY, answer, NULL);
  bok_rpc_server_add_unary(s, OPEN, &batch__v1__get_job_request__descriptor, BOK_RPC_TENANT_REQUIRED, answer, NULL);
  /* worker-only too, to see that the worker keeps its token from other services */
  bok_rpc_server_add_unary(s, MODEL, &batch__v1__get_job_request__descriptor, BOK_RPC_WORKER_ONLY, answer, NULL);
  int port = bok_rpc_server_start(s, &err);
  assert_true(port > 0);
  snprintf(target, cap, "127.0.0.1:%d", port);
  return s;
}

static void stop(bok_rpc_server_t *s) {
  bok_rpc_server_shutdown(s);
  bok_rpc_server_wait(s, 0);
  bok_rpc_server_destroy(s);
}

/* Calls `method` through a new channel (made under the current settings);
 * returns the status code. */
static bok_err_code_t call(const char *target, const char *method, const char *tenant, bok_err_t *err) {
  bok_rpc_channel_t *ch = bok_rpc_channel_new(target);
  Batch__V1__GetJobRequest r = BATCH__V1__GET_JOB_REQUEST__INIT;
  r.job_id = "j1";
  Batch__V1__Job *j = NULL;
  int rc = bok_rpc_unary(ch, method, tenant, 5000, &r.base, &batch__v1__job__descriptor, (ProtobufCMessage **)&j, err);
  if (rc == 0) {
    assert_string_equal(j->job_id, "j1");
    protobuf_c_message_free_unpacked(&j->base, NULL);
  }
  bok_rpc_channel_destroy(ch);
  return rc == 0 ? BOK_OK : err->code;
}

static void set_role(bok_rpc_role_t role, const char *token_file, const char *names, const char *cert) {
  char ca[400], crt[400], key[400];
  snprintf(ca, sizeof ca, "%s/ca.pem", g_certs);
  snprintf(crt, sizeof crt, "%s/%s.pem", g_certs, cert ? cert : "");
  snprintf(key, sizeof key, "%s/%s.key", g_certs, cert ? cert : "");
  bok_rpc_security_t s = {.role = role, .worker_token_file = token_file, .worker_names = names};
  if (cert) {
    s.tls_ca = ca;
    s.tls_cert = crt;
    s.tls_key = key;
  }
  bok_err_t err;
  int rc = bok_rpc_security_set(&s, &err);
  if (rc != 0) fail_msg("security_set: %s", err.msg);
}

static void write_file(const char *path, const char *text, mode_t mode) {
  FILE *f = fopen(path, "w");
  assert_non_null(f);
  fputs(text, f);
  fclose(f);
  chmod(path, mode);
}

static void test_token_equal_is_exact(void **state) {
  (void)state;
  assert_true(bok_rpc_token_equal("abc", 3, "abc", 3));
  assert_false(bok_rpc_token_equal("abc", 3, "abd", 3));
  assert_false(bok_rpc_token_equal("abc", 3, "abcd", 4));
  assert_false(bok_rpc_token_equal("abcd", 4, "abc", 3));
  assert_false(bok_rpc_token_equal("", 0, "a", 1));
  assert_true(bok_rpc_token_equal("", 0, "", 0));
  assert_false(bok_rpc_token_equal("a\0b", 3, "a\0c", 3));
}

static void test_token_file_created_once_with_0600(void **state) {
  (void)state;
  char path[400];
  snprintf(path, sizeof path, "%s/secrets/sub/worker.token", g_dir);
  set_role(BOK_RPC_ROLE_JOB_SERVICE, path, NULL, NULL);
  struct stat st;
  assert_int_equal(stat(path, &st), 0);
  assert_int_equal(st.st_mode & 0777, 0600);
  char first[200] = "", again[200] = "";
  FILE *f = fopen(path, "r");
  assert_non_null(fgets(first, sizeof first, f));
  fclose(f);
  assert_int_equal(strlen(first), 65); /* 64 hex digits + newline */
  set_role(BOK_RPC_ROLE_JOB_SERVICE, path, NULL, NULL); /* second start: kept */
  f = fopen(path, "r");
  assert_non_null(fgets(again, sizeof again, f));
  fclose(f);
  assert_string_equal(first, again);
  char d[200];
  bok_rpc_security_describe(d, sizeof d);
  assert_string_equal(d, "tls=off worker_auth=token");
  bok_rpc_security_reset();
}

static void test_bad_token_files_are_refused(void **state) {
  (void)state;
  char path[400];
  bok_err_t err;
  snprintf(path, sizeof path, "%s/short.token", g_dir);
  write_file(path, "tooshort\n", 0600);
  bok_rpc_security_t s = {.role = BOK_RPC_ROLE_JOB_SERVICE, .worker_token_file = path};
  assert_int_equal(bok_rpc_security_set(&s, &err), -1);
  assert_non_null(strstr(err.msg, "32 to 512"));
  snprintf(path, sizeof path, "%s/open.token", g_dir);
  write_file(path, "0123456789abcdef0123456789abcdef0123\n", 0644);
  s.worker_token_file = path;
  assert_int_equal(bok_rpc_security_set(&s, &err), -1);
  assert_non_null(strstr(err.msg, "other users"));
  s.role = BOK_RPC_ROLE_WORKER; /* the worker refuses it too */
  assert_int_equal(bok_rpc_security_set(&s, &err), -1);
  bok_rpc_security_t t = {.tls_ca = path, .role = BOK_RPC_ROLE_SERVICE};
  assert_int_equal(bok_rpc_security_set(&t, &err), -1);
  assert_non_null(strstr(err.msg, "all of ca, cert and key"));
}

static void test_worker_only_needs_the_token(void **state) {
  (void)state;
  char tok[400], other[400], target[64];
  bok_err_t err;
  snprintf(tok, sizeof tok, "%s/w.token", g_dir);
  snprintf(other, sizeof other, "%s/other.token", g_dir);
  write_file(other, "ffffffffffffffffffffffffffffffffffffffff\n", 0600);
  set_role(BOK_RPC_ROLE_JOB_SERVICE, tok, NULL, NULL); /* creates tok */
  bok_rpc_server_t *s = start(target, sizeof target);
  /* the job service's own channels send no token */
  assert_int_equal(call(target, SPEC, NULL, &err), BOK_ERR_UNAUTHENTICATED);
  assert_non_null(strstr(err.msg, "worker credential required"));
  assert_int_equal(call(target, SPEC, "t1", &err), BOK_ERR_UNAUTHENTICATED); /* a tenant is no credential */
  assert_int_equal(call(target, OPEN, "t1", &err), BOK_OK);                  /* other methods unchanged */
  set_role(BOK_RPC_ROLE_WORKER, other, NULL, NULL);
  assert_int_equal(call(target, SPEC, NULL, &err), BOK_ERR_UNAUTHENTICATED);
  assert_non_null(strstr(err.msg, "invalid worker token"));
  set_role(BOK_RPC_ROLE_WORKER, tok, NULL, NULL);
  assert_int_equal(call(target, SPEC, NULL, &err), BOK_OK);
  assert_int_equal(call(target, SPEC, "t1", &err), BOK_OK);
  assert_int_equal(call(target, MODEL, "t1", &err), BOK_ERR_UNAUTHENTICATED); /* token only to the job service */
  stop(s);
  bok_rpc_security_reset();
}

static void test_worker_reads_the_token_once_it_exists(void **state) {
  (void)state;
  char tok[400], target[64];
  bok_err_t err;
  snprintf(tok, sizeof tok, "%s/later.token", g_dir);
  set_role(BOK_RPC_ROLE_WORKER, tok, NULL, NULL); /* file absent: start anyway */
  bok_rpc_channel_t *ch = bok_rpc_channel_new("127.0.0.1:1");
  grpc_slice sl;
  assert_int_equal(bok_rpc_client_token(&sl), 0);
  write_file(tok, "0123456789abcdef0123456789abcdef0123456789\n", 0600);
  assert_int_equal(bok_rpc_client_token(&sl), 1);
  assert_int_equal(GRPC_SLICE_LENGTH(sl), 42); /* trailing newline trimmed */
  grpc_slice_unref(sl);
  bok_rpc_channel_destroy(ch);
  /* a server with no credential configured refuses worker-only calls */
  bok_rpc_security_reset();
  bok_rpc_server_t *s = start(target, sizeof target);
  set_role(BOK_RPC_ROLE_WORKER, tok, NULL, NULL);
  assert_int_equal(call(target, SPEC, NULL, &err), BOK_ERR_PERMISSION);
  assert_non_null(strstr(err.msg, "accepts no worker credential"));
  stop(s);
  bok_rpc_security_reset();
}

static void test_mtls_worker_certificate_name(void **state) {
  (void)state;
  char target[64], tok[400];
  bok_err_t err;
  snprintf(tok, sizeof tok, "%s/tls.token", g_dir);
  set_role(BOK_RPC_ROLE_JOB_SERVICE, tok, "worker", "job");
  char d[200];
  bok_rpc_security_describe(d, sizeof d);
  assert_string_equal(d, "tls=mtls worker_auth=token+cert_names");
  bok_rpc_server_t *s = start(target, sizeof target);
  /* the worker's certificate is its credential (no token file) */
  set_role(BOK_RPC_ROLE_WORKER, NULL, NULL, "worker");
  assert_int_equal(call(target, SPEC, NULL, &err), BOK_OK);
  /* the gateway's certificate connects, but names no worker */
  set_role(BOK_RPC_ROLE_SERVICE, NULL, NULL, "gateway");
  assert_int_equal(call(target, OPEN, "t1", &err), BOK_OK);
  assert_int_equal(call(target, SPEC, NULL, &err), BOK_ERR_PERMISSION);
  /* ... unless it holds the token */
  set_role(BOK_RPC_ROLE_WORKER, tok, NULL, "gateway");
  assert_int_equal(call(target, SPEC, NULL, &err), BOK_OK);
  /* plaintext against the TLS port: no connection at all */
  bok_rpc_security_reset();
  assert_int_equal(call(target, OPEN, "t1", &err), BOK_ERR_UNAVAILABLE);
  stop(s);
  bok_rpc_security_reset();
}

static void test_mtls_client_without_certificate_or_from_another_ca(void **state) {
  (void)state;
  char target[64], other[400];
  bok_err_t err;
  set_role(BOK_RPC_ROLE_JOB_SERVICE, NULL, "worker", "job");
  bok_rpc_server_t *s = start(target, sizeof target);
  /* a "worker" certificate signed by another CA */
  snprintf(other, sizeof other, "bash %s/deploy/certs.sh %s/otherca worker >/dev/null", BOK_SOURCE_DIR, g_dir);
  assert_int_equal(system(other), 0);
  char ca[400], crt[400], key[400];
  snprintf(ca, sizeof ca, "%s/otherca/ca.pem", g_dir);
  snprintf(crt, sizeof crt, "%s/otherca/worker.pem", g_dir);
  snprintf(key, sizeof key, "%s/otherca/worker.key", g_dir);
  bok_rpc_security_t o = {.tls_ca = ca, .tls_cert = crt, .tls_key = key, .role = BOK_RPC_ROLE_WORKER};
  assert_int_equal(bok_rpc_security_set(&o, &err), 0);
  assert_int_equal(call(target, SPEC, NULL, &err), BOK_ERR_UNAVAILABLE);
  stop(s);
  bok_rpc_security_reset();
}

static int setup_all(void **state) {
  (void)state;
  snprintf(g_dir, sizeof g_dir, "/tmp/bok-rpc-auth-XXXXXX");
  if (!mkdtemp(g_dir)) return -1;
  snprintf(g_certs, sizeof g_certs, "%s/certs", g_dir);
  char cmd[700];
  snprintf(cmd, sizeof cmd, "bash %s/deploy/certs.sh %s job worker gateway >/dev/null", BOK_SOURCE_DIR, g_certs);
  return system(cmd) == 0 ? 0 : -1;
}

static int teardown_all(void **state) {
  (void)state;
  char cmd[300];
  snprintf(cmd, sizeof cmd, "rm -rf %s", g_dir);
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_token_equal_is_exact),
      cmocka_unit_test(test_token_file_created_once_with_0600),
      cmocka_unit_test(test_bad_token_files_are_refused),
      cmocka_unit_test(test_worker_only_needs_the_token),
      cmocka_unit_test(test_worker_reads_the_token_once_it_exists),
      cmocka_unit_test(test_mtls_worker_certificate_name),
      cmocka_unit_test(test_mtls_client_without_certificate_or_from_another_ca),
  };
  return cmocka_run_group_tests(tests, setup_all, teardown_all);
}
