/* txn_hold.c -- bok-txn-hold: holds a Kafka transaction open, for tests.
 *
 *   bok-txn-hold BROKERS TOPIC PARTITIONS
 *
 * Begins a transaction, produces one record to each of partitions
 * 0..PARTITIONS-1 of TOPIC, flushes, prints "open" and waits on stdin: a line
 * "commit" commits, anything else (or EOF) aborts. While it waits, every one
 * of those partitions' last stable offset is held at its record: a
 * read_committed reader stops there, as behind any producer's open
 * transaction. Exit 0, or 1 with a message on stderr. */
#include <librdkafka/rdkafka.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static int fail(const char *what, rd_kafka_error_t *e) {
  fprintf(stderr, "bok-txn-hold: %s: %s\n", what, e ? rd_kafka_error_string(e) : "failed");
  if (e) rd_kafka_error_destroy(e);
  return 1;
}

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: bok-txn-hold BROKERS TOPIC PARTITIONS\n");
    return 2;
  }
  int nparts = atoi(argv[3]);
  char err[512], id[64];
  snprintf(id, sizeof id, "bok-txn-hold-%d", (int)getpid());
  rd_kafka_conf_t *conf = rd_kafka_conf_new();
  if (rd_kafka_conf_set(conf, "bootstrap.servers", argv[1], err, sizeof err) ||
      rd_kafka_conf_set(conf, "transactional.id", id, err, sizeof err) ||
      rd_kafka_conf_set(conf, "transaction.timeout.ms", "300000", err, sizeof err) ||
      rd_kafka_conf_set(conf, "compression.codec", "zstd", err, sizeof err)) {
    fprintf(stderr, "bok-txn-hold: %s\n", err);
    return 1;
  }
  rd_kafka_t *rk = rd_kafka_new(RD_KAFKA_PRODUCER, conf, err, sizeof err);
  if (!rk) {
    fprintf(stderr, "bok-txn-hold: %s\n", err);
    return 1;
  }
  rd_kafka_error_t *e;
  if ((e = rd_kafka_init_transactions(rk, 60000))) return fail("init_transactions", e);
  if ((e = rd_kafka_begin_transaction(rk))) return fail("begin_transaction", e);
  for (int p = 0; p < nparts; p++)
    if (rd_kafka_producev(rk, RD_KAFKA_V_TOPIC(argv[2]), RD_KAFKA_V_PARTITION(p), RD_KAFKA_V_VALUE("hold", 4),
                          RD_KAFKA_V_HEADER("job", "bok-txn-hold", -1), RD_KAFKA_V_END))
      return fail("produce", NULL);
  if (rd_kafka_flush(rk, 60000)) return fail("flush", NULL);
  printf("open\n");
  fflush(stdout);
  char line[64] = "";
  int commit = fgets(line, sizeof line, stdin) && strncmp(line, "commit", 6) == 0;
  e = commit ? rd_kafka_commit_transaction(rk, 60000) : rd_kafka_abort_transaction(rk, 60000);
  if (e) return fail(commit ? "commit_transaction" : "abort_transaction", e);
  printf("%s\n", commit ? "committed" : "aborted");
  rd_kafka_destroy(rk);
  return 0;
}
