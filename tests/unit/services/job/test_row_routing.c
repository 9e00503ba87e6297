/* Where the rows producer puts an upload's messages (row_producer.c,
 * docs/FAIRNESS.md), against librdkafka's mock cluster: an upload of at
 * most kafka.express_max_rows rows goes to one express partition; a bigger
 * one goes round-robin over the other partitions, never an express one;
 * with kafka.express_partitions 0 the key partitioner may use any; with
 * kafka.tenant_stripes a tenant's big jobs stay on its stripe, and a tenant
 * whose big job starts while another tenant's is outstanding gets another
 * stripe (row_stripe_choose, and the pool's use of it). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <librdkafka/rdkafka.h>
#include <librdkafka/rdkafka_mock.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "row_producer.h"

#define PARTS 8

static rd_kafka_t *g_mock_rk;
static rd_kafka_mock_cluster_t *g_mock;

static bok_config_t *config(const char *bootstrap, int express, int stripes) {
  char path[] = "/tmp/bok-routing-XXXXXX";
  int fd = mkstemp(path);
  assert_true(fd >= 0);
  FILE *f = fdopen(fd, "w");
  fprintf(f,
          "kafka:\n  brokers: %s\n  rows_topic: rows\n  rows_partitions: %d\n  express_partitions: %d\n"
          "  express_max_rows: 1000\n  batch_rows: 100\n  tenant_stripes: %d\n  transactional_id_prefix: t%d-%d\n",
          bootstrap, PARTS, express, stripes, express, stripes);
  fclose(f);
  char err[256];
  bok_config_t *cfg = bok_config_load(path, err, sizeof err);
  unlink(path);
  assert_non_null(cfg);
  return cfg;
}

static int setup(void **state) {
  (void)state;
  char err[256];
  rd_kafka_conf_t *c = rd_kafka_conf_new();
  rd_kafka_conf_set(c, "log_level", "0", NULL, 0);
  g_mock_rk = rd_kafka_new(RD_KAFKA_PRODUCER, c, err, sizeof err);
  assert_non_null(g_mock_rk);
  g_mock = rd_kafka_mock_cluster_new(g_mock_rk, 1);
  assert_non_null(g_mock);
  assert_int_equal(rd_kafka_mock_topic_create(g_mock, "rows", PARTS, 1), 0);
  return 0;
}

static int teardown(void **state) {
  (void)state;
  rd_kafka_mock_cluster_destroy(g_mock);
  rd_kafka_destroy(g_mock_rk);
  return 0;
}

/* Uploads n rows as one job and returns its messages' partitions (count in *nm). */
static int32_t *upload(row_pool_t *p, const char *tenant, const char *job_id, int n, size_t *nm) {
  char err[256];
  row_batch_writer_t *w = row_producer_begin(p, tenant, job_id, "model", 1, err, sizeof err);
  if (!w) fail_msg("row_producer_begin: %s", err);
  for (int i = 1; i <= n; i++) assert_int_equal(row_producer_add(w, i, "1,x", 3), 0);
  assert_int_equal(row_producer_flush(w, err, sizeof err), 0);
  const row_msg_t *m = row_producer_messages(w, nm);
  int32_t *parts = calloc(*nm ? *nm : 1, sizeof *parts);
  for (size_t i = 0; i < *nm; i++) parts[i] = m[i].partition;
  assert_int_equal(row_producer_commit(w, err, sizeof err), 0);
  row_producer_end(w);
  return parts;
}

static void test_small_uploads_go_express_big_ones_spread_over_the_rest(void **state) {
  (void)state;
  bok_config_t *cfg = config(rd_kafka_mock_cluster_bootstraps(g_mock), 1, 1);
  char err[256];
  row_pool_t *p = row_pool_new(cfg, NULL, NULL, err, sizeof err);
  assert_non_null(p);
  size_t nm;
  int32_t *parts = upload(p, "tenant", "small-1", 10, &nm);
  assert_int_equal(nm, 1);
  assert_int_equal(parts[0], 0);
  free(parts);
  parts = upload(p, "tenant", "small-2", 1000, &nm); /* exactly the threshold: still small */
  assert_int_equal(nm, 10);
  for (size_t i = 0; i < nm; i++) assert_int_equal(parts[i], 0);
  free(parts);
  parts = upload(p, "tenant", "big", 1401, &nm); /* 15 messages: twice over the 7 bulk partitions and one more */
  assert_int_equal(nm, 15);
  int seen[PARTS] = {0};
  for (size_t i = 0; i < nm; i++) {
    assert_true(parts[i] >= 1 && parts[i] < PARTS);
    if (i > 0) assert_int_equal(parts[i], 1 + (parts[i - 1] - 1 + 1) % (PARTS - 1)); /* round-robin */
    seen[parts[i]]++;
  }
  for (int k = 1; k < PARTS; k++) assert_true(seen[k] == 2 || seen[k] == 3);
  free(parts);
  row_pool_destroy(p);
  bok_config_destroy(cfg);
}

static void test_express_off_uses_every_partition(void **state) {
  (void)state;
  bok_config_t *cfg = config(rd_kafka_mock_cluster_bootstraps(g_mock), 0, 1);
  char err[256];
  row_pool_t *p = row_pool_new(cfg, NULL, NULL, err, sizeof err);
  assert_non_null(p);
  size_t nm;
  int32_t *parts = upload(p, "tenant", "keyed", 3000, &nm);
  assert_int_equal(nm, 30);
  int zero = 0;
  for (size_t i = 0; i < nm; i++) zero += parts[i] == 0;
  assert_true(zero > 0); /* the key partitioner puts some of 30 messages on partition 0 */
  free(parts);
  row_pool_destroy(p);
  bok_config_destroy(cfg);
}

/* Two stripes of the 7 bulk partitions: {1,3,5,7} and {2,4,6}. A tenant's
 * jobs stay in one stripe and use all of it; "tenant-b", arriving while
 * "tenant-a"'s jobs are outstanding (no store: every job is), gets the other
 * stripe. */
static void test_tenant_stripes_keep_a_tenant_on_its_partitions(void **state) {
  (void)state;
  bok_config_t *cfg = config(rd_kafka_mock_cluster_bootstraps(g_mock), 1, 2);
  char err[256];
  row_pool_t *p = row_pool_new(cfg, NULL, NULL, err, sizeof err);
  assert_non_null(p);
  int stripe_of[2] = {-1, -1};
  const char *tenants[2] = {"tenant-a", "tenant-b"};
  for (int t = 0; t < 2; t++) {
    for (int j = 0; j < 3; j++) {
      char id[32];
      snprintf(id, sizeof id, "%s-job-%d", tenants[t], j);
      size_t nm;
      int32_t *parts = upload(p, tenants[t], id, 1200, &nm); /* 12 messages */
      assert_int_equal(nm, 12);
      int seen[PARTS] = {0};
      for (size_t i = 0; i < nm; i++) {
        assert_true(parts[i] >= 1 && parts[i] < PARTS);
        int s = (parts[i] - 1) % 2;
        if (stripe_of[t] < 0) stripe_of[t] = s;
        assert_int_equal(s, stripe_of[t]);
        seen[parts[i]] = 1;
      }
      for (int k = 1 + stripe_of[t]; k < PARTS; k += 2) assert_true(seen[k]); /* the whole stripe */
      free(parts);
    }
  }
  assert_int_not_equal(stripe_of[0], stripe_of[1]);
  size_t nm;
  int32_t *parts = upload(p, "tenant-a", "small", 10, &nm); /* small jobs: express, whatever the stripe */
  assert_int_equal(parts[0], 0);
  free(parts);
  row_pool_destroy(p);
  bok_config_destroy(cfg);
}

/* The stripe of a job's messages (every message in one stripe), -1 if mixed. */
static int stripe_of_msgs(const int32_t *parts, size_t n) {
  int s = -1;
  for (size_t i = 0; i < n; i++) {
    if (parts[i] < 1) return -1;
    int k = (parts[i] - 1) % 2;
    if (s >= 0 && k != s) return -1;
    s = k;
  }
  return s;
}

static void test_stripe_choice_prefers_the_tenants_own_then_the_least_loaded(void **state) {
  (void)state;
  row_bulk_job_t jobs[4] = {{"j1", "a", 0, 5000}, {"j2", "b", 1, 100}, {"j3", "c", 1, 0}, {"j4", "d", 2, 200}};
  assert_int_equal(row_stripe_choose(jobs, 0, "x", 3), row_stripe_home("x", 3)); /* nothing known: its home */
  assert_int_equal(row_stripe_choose(jobs, 4, "a", 3), 0);      /* a tenant's own stripe, however loaded */
  assert_int_equal(row_stripe_choose(jobs, 4, "b", 3), 1);
  assert_int_equal(row_stripe_choose(jobs, 4, "c", 3), 1);      /* c's job is done: c is new, 1 is least loaded */
  assert_int_equal(row_stripe_choose(jobs, 4, "x", 3), 1);      /* 5000 / 100 / 200 */
  assert_int_equal(row_stripe_choose(jobs, 4, "x", 2), 1);      /* j4's stripe is not one of 2: ignored */
  assert_int_equal(row_stripe_choose(jobs, 2, "x", 1), 0);      /* one stripe */
  row_bulk_job_t tie[2] = {{"j1", "a", 0, 10}, {"j2", "b", 1, 10}};
  assert_int_equal(row_stripe_choose(tie, 2, "x", 2), row_stripe_home("x", 2)); /* a tie: its home */
  row_bulk_job_t three[2] = {{"j1", "a", 0, 10}, {"j2", "b", 1, 99}}; /* stripe 2 empty, 0 lighter than 1 */
  for (const char *t = "pqrstuvw"; *t; t++) {
    char name[2] = {*t, 0};
    assert_int_equal(row_stripe_choose(three, 2, name, 3), 2); /* the least loaded, whatever the home */
  }
}

/* Two job services (shards) know nothing of each other's jobs: the first
 * big job of each of their tenants starts from the tenant's home stripe, so
 * tenants whose names hash apart get different stripes (before: both got
 * stripe 0, and the second waited for the first's whole backlog). */
static void test_shards_that_know_nothing_of_each_other_spread_tenants(void **state) {
  (void)state;
  const char *names[] = {"tenant-a", "tenant-b", "acme", "globex", "initech", "umbrella", "hooli", "t1", "t2", "t3"};
  int seen[3] = {0}, n = (int)(sizeof names / sizeof *names);
  const char *apart[2] = {NULL, NULL};
  for (int i = 0; i < n; i++) {
    int h = row_stripe_home(names[i], 2);
    assert_true(h == 0 || h == 1);
    assert_int_equal(row_stripe_home(names[i], 2), h); /* the same name, the same stripe */
    assert_int_equal(row_stripe_choose(NULL, 0, names[i], 2), h);
    if (!apart[h]) apart[h] = names[i];
    seen[row_stripe_home(names[i], 3)]++;
  }
  assert_non_null(apart[0]); /* two tenants of two shards on different stripes */
  assert_non_null(apart[1]);
  assert_int_not_equal(row_stripe_choose(NULL, 0, apart[0], 2), row_stripe_choose(NULL, 0, apart[1], 2));
  assert_true(seen[0] && seen[1] && seen[2]); /* every stripe is somebody's home */
  assert_int_equal(row_stripe_home("x", 1), 0);
}

/* Outstanding rows the fake store reports for every job (the tests set it). */
static int64_t g_left = 1;
static int64_t left_fn(void *ud, const char *tenant, const char *job_id) {
  (void)ud, (void)tenant, (void)job_id;
  return g_left;
}

/* Two uploads running at once (both past the express threshold before
 * either commits) take different stripes; a job whose rows are all
 * processed no longer holds its stripe. */
static void test_concurrent_big_uploads_of_two_tenants_take_different_stripes(void **state) {
  (void)state;
  bok_config_t *cfg = config(rd_kafka_mock_cluster_bootstraps(g_mock), 1, 2);
  char err[256];
  row_pool_t *p = row_pool_new(cfg, NULL, NULL, err, sizeof err);
  assert_non_null(p);
  row_pool_set_outstanding(p, left_fn, NULL);
  g_left = 1;
  row_batch_writer_t *wa = row_producer_begin(p, "t1", "ja", "m", 1, err, sizeof err);
  row_batch_writer_t *wb = row_producer_begin(p, "t2", "jb", "m", 1, err, sizeof err);
  assert_non_null(wa);
  assert_non_null(wb);
  for (int i = 1; i <= 1200; i++) assert_int_equal(row_producer_add(wa, i, "1,x", 3), 0);
  for (int i = 1; i <= 1200; i++) assert_int_equal(row_producer_add(wb, i, "1,x", 3), 0);
  int stripe[2];
  row_batch_writer_t *ws[2] = {wa, wb};
  for (int k = 0; k < 2; k++) {
    assert_int_equal(row_producer_flush(ws[k], err, sizeof err), 0);
    size_t nm;
    const row_msg_t *m = row_producer_messages(ws[k], &nm);
    int32_t parts[16];
    for (size_t i = 0; i < nm && i < 16; i++) parts[i] = m[i].partition;
    stripe[k] = stripe_of_msgs(parts, nm < 16 ? nm : 16);
    assert_true(stripe[k] >= 0);
    assert_int_equal(row_producer_commit(ws[k], err, sizeof err), 0);
    row_producer_end(ws[k]);
  }
  assert_int_not_equal(stripe[0], stripe[1]);
  /* t1's job still has rows waiting: a third tenant gets the least loaded
   * stripe, t1 keeps its own */
  size_t nm;
  int32_t *parts = upload(p, "t1", "ja2", 1200, &nm);
  assert_int_equal(stripe_of_msgs(parts, nm), stripe[0]);
  free(parts);
  /* every job done: a new tenant gets stripe 0 */
  g_left = 0;
  parts = upload(p, "t3", "jc", 1200, &nm);
  assert_int_equal(stripe_of_msgs(parts, nm), 0);
  free(parts);
  /* an aborted big upload is forgotten at once, whatever the store says */
  g_left = 1;
  row_batch_writer_t *wx = row_producer_begin(p, "t4", "jx", "m", 1, err, sizeof err);
  assert_non_null(wx);
  for (int i = 1; i <= 1200; i++) assert_int_equal(row_producer_add(wx, i, "1,x", 3), 0);
  row_producer_abort(wx);
  /* t3's jc (stripe 0) is outstanding again; t4's job on stripe 1, if
   * remembered, would tie and send t5 to stripe 0 */
  parts = upload(p, "t5", "jy", 1200, &nm);
  assert_int_equal(stripe_of_msgs(parts, nm), 1);
  free(parts);
  row_pool_destroy(p);
  bok_config_destroy(cfg);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_small_uploads_go_express_big_ones_spread_over_the_rest),
      cmocka_unit_test(test_express_off_uses_every_partition),
      cmocka_unit_test(test_tenant_stripes_keep_a_tenant_on_its_partitions),
      cmocka_unit_test(test_stripe_choice_prefers_the_tenants_own_then_the_least_loaded),
      cmocka_unit_test(test_shards_that_know_nothing_of_each_other_spread_tenants),
      cmocka_unit_test(test_concurrent_big_uploads_of_two_tenants_take_different_stripes),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
