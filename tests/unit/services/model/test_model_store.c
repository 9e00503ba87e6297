/* Model store: CRUD per tenant, versions, deleted models, names, schema text
 * kept exactly, restart durability, concurrent writers. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "model_store.h"

static char g_path[64];
#define SCHEMA "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"},\"v\":{\"type\":\"number\",\"minimum\":0.1}}}"
#define SCHEMA2 "{\"type\":\"object\",\"properties\":{\"id\":{\"type\":\"string\"}},\"required\":[\"id\"]}"

static model_store_t *open_store(void) {
  bok_err_t err;
  model_store_t *st = model_store_open(g_path, &err);
  assert_non_null(st);
  return st;
}

static void test_crud_versions_tenants(void **s) {
  (void)s;
  model_store_t *st = open_store();
  model_rec_t m, g;
  bok_err_t err;
  assert_int_equal(model_store_create(st, "t1", "  Fraud  ", SCHEMA, "bok.events", &m, &err), 0);
  assert_string_equal(m.name, "Fraud"); /* trimmed */
  assert_string_equal(m.schema_json, SCHEMA); /* exactly as given: 0.1 stays 0.1 */
  assert_int_equal(m.version, 1);
  char topic[128];
  snprintf(topic, sizeof topic, "bok.events.t1.%s", m.model_id);
  assert_string_equal(m.topic, topic);
  assert_int_equal(model_store_get(st, "t2", m.model_id, 0, &g, &err), -1); /* other tenant */
  assert_int_equal(err.code, BOK_ERR_NOT_FOUND);
  assert_int_equal(model_store_update(st, "t1", m.model_id, NULL, SCHEMA2, &g, &err), 0);
  assert_int_equal(g.version, 2);
  assert_string_equal(g.name, "Fraud");
  model_rec_free(&g);
  assert_int_equal(model_store_update(st, "t1", m.model_id, NULL, SCHEMA2, &g, &err), 0);
  assert_int_equal(g.version, 2); /* same schema: no new version */
  model_rec_free(&g);
  assert_int_equal(model_store_update(st, "t2", m.model_id, "x", NULL, &g, &err), -1);
  assert_int_equal(err.code, BOK_ERR_NOT_FOUND);
  assert_int_equal(model_store_delete(st, "t2", m.model_id, &err), -1);
  assert_int_equal(model_store_delete(st, "t1", m.model_id, &err), 0);
  assert_int_equal(model_store_get(st, "t1", m.model_id, 0, &g, &err), -1);
  /* running jobs keep reading the version they started with */
  assert_int_equal(model_store_get(st, "t1", m.model_id, 1, &g, &err), 0);
  assert_string_equal(g.schema_json, SCHEMA);
  model_rec_free(&g);
  assert_int_equal(model_store_get(st, "t1", m.model_id, -1, &g, &err), -1);
  model_rec_t *list;
  size_t n;
  assert_int_equal(model_store_list(st, "t1", &list, &n, &err), 0);
  assert_int_equal(n, 0);
  model_rec_list_free(list, n);
  model_rec_free(&m);
  model_store_close(st);
}

static void test_refusals(void **s) {
  (void)s;
  model_store_t *st = open_store();
  model_rec_t m;
  bok_err_t err;
  assert_int_equal(model_store_create(st, "t1", " \r\n ", SCHEMA, "p", &m, &err), -1);
  assert_string_equal(err.msg, "name: required");
  assert_int_equal(model_store_create(st, "t1", "a\x01" "b", SCHEMA, "p", &m, &err), -1);
  char long_name[512] = "";
  for (int i = 0; i < 201; i++) strcat(long_name, "\xc3\xa9"); /* 201 characters, 402 bytes */
  assert_int_equal(model_store_create(st, "t1", long_name, SCHEMA, "p", &m, &err), -1);
  assert_string_equal(err.msg, "name: longer than 200 characters");
  long_name[400] = '\0'; /* 200 characters: fine */
  assert_int_equal(model_store_create(st, "t1", long_name, SCHEMA, "p", &m, &err), 0);
  model_rec_free(&m);
  assert_int_equal(model_store_create(st, "t1", "x", "{\"type\":\"object\",\"properties\":{\"a\":{\"type\":\"money\"}}}",
                                      "p", &m, &err), -1);
  assert_int_equal(err.code, BOK_ERR_INVALID);
  assert_string_equal(err.msg, "properties.a.type: unsupported type 'money'");
  model_store_close(st);
}

typedef struct {
  model_store_t *st;
  int ok;
} par_t;

static void *creator(void *arg) {
  par_t *p = arg;
  for (int i = 0; i < 25; i++) {
    model_rec_t m;
    bok_err_t err;
    if (model_store_create(p->st, "t1", "c", SCHEMA, "p", &m, &err) == 0) {
      p->ok++;
      model_rec_free(&m);
    }
  }
  return NULL;
}

static void test_concurrent_writers_and_restart(void **s) {
  (void)s;
  model_store_t *st = open_store();
  pthread_t th[4];
  par_t p[4];
  for (int i = 0; i < 4; i++) {
    p[i].st = st;
    p[i].ok = 0;
    pthread_create(&th[i], NULL, creator, &p[i]);
  }
  for (int i = 0; i < 4; i++) {
    pthread_join(th[i], NULL);
    assert_int_equal(p[i].ok, 25);
  }
  model_store_close(st);
  st = open_store(); /* restart */
  model_rec_t *list;
  size_t n;
  bok_err_t err;
  assert_int_equal(model_store_list(st, "t1", &list, &n, &err), 0);
  assert_int_equal(n, 100);
  model_rec_list_free(list, n);
  model_store_close(st);
}

static int setup(void **s) {
  (void)s;
  snprintf(g_path, sizeof g_path, "/tmp/bok_models_%d/m.db", (int)getpid());
  return 0;
}

static int teardown(void **s) {
  (void)s;
  char cmd[128];
  snprintf(cmd, sizeof cmd, "rm -rf /tmp/bok_models_%d", (int)getpid());
  return system(cmd) == 0 ? 0 : -1;
}

int main(void) {
  const struct CMUnitTest t[] = {cmocka_unit_test_setup_teardown(test_crud_versions_tenants, setup, teardown),
                                 cmocka_unit_test_setup_teardown(test_refusals, setup, teardown),
                                 cmocka_unit_test_setup_teardown(test_concurrent_writers_and_restart, setup, teardown)};
  return cmocka_run_group_tests(t, NULL, NULL);
}
