/* batchcli tables against the user guide's sample output, byte for byte. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <locale.h>
#include <stdio.h>
#include <string.h>

#include "cli_format.h"

#define HDR                                                                                                   \
  "JOB      MODEL       STATE           TOTAL   OK      ERRORS  PROGRESS                 WAITING  PROCESSING\n" \
  "-------- ----------- --------------- ------- ------- ------- ------------------------ -------  -----------\n"

static void test_guide_job_list(void **s) {
  (void)s;
  /* The guide's sample rows (job ids and names as printed there). */
  cli_job_row_t rows[] = {
      {"a1b2c3d4e5", "Fraud Detect", "SUCCESS", 1000, 1000, 0, 1000, 2000},
      {"a3b4c5d6", "Payment Gateway", "RUNNING", 50000, 30500, 12, 3000, 40000},
      {"a4b5c6d7", "Anomaly Detection", "RUNNING", 5000, 2100, 0, 2000, 15000},
      {"a5b6c7d8", "model_123456", "PENDING", 100, 0, 0, 4000, 0},
      {"a6b7c8d9", "Alert Logger", "PENDING", 7500, 0, 0, 4000, 0},
      {"a7b8c9d0", "Sentimen Analysis", "FAILED", 800, 0, 800, 4000, 9000},
      {"a9b0c1d2", "Market Predictor", "SUCCESS", 3200, 3200, 0, 2000, 3000},
  };
  bok_buf_t b = BOK_BUF_INIT(0);
  cli_fmt_job_table(&b, rows, 7);
  assert_string_equal(b.data,
                      HDR "a1b2c3d4 Fraud Det.. SUCCESS           1,000   1,000       0 [#################] 100%   00:01        00:02\n"
                          "a3b4c5d6 Payment G.. RUNNING          50,000  30,500      12 [##########-------]  61%   00:03        00:40\n"
                          "a4b5c6d7 Anomaly D.. RUNNING           5,000   2,100       0 [#######----------]  42%   00:02        00:15\n"
                          "a5b6c7d8 model_123.. PENDING             100       0       0 [-----------------]   0%   00:04        00:00\n"
                          "a6b7c8d9 Alert Log.. PENDING           7,500       0       0 [-----------------]   0%   00:04        00:00\n"
                          "a7b8c9d0 Sentimen .. FAILED              800       0     800 [XXXXXXXXXXXXXXXXX]   0%   00:04        00:09\n"
                          "a9b0c1d2 Market Pr.. SUCCESS           3,200   3,200       0 [#################] 100%   00:02        00:03\n");
  bok_buf_free(&b);
}

static void test_partial_and_cancelled_bars(void **s) {
  (void)s;
  char out[64];
  cli_fmt_progress(20000, 19980, 20, 0, out);
  assert_string_equal(out, "[################X]  99%");
  cli_fmt_progress(2000, 853, 0, 1, out); /* cancelled: the rest is X */
  assert_string_equal(out, "[#######XXXXXXXXXX]  42%");
  cli_fmt_progress(0, 0, 0, 0, out); /* zero total */
  assert_string_equal(out, "[-----------------]   0%");
  cli_fmt_progress(3, 1, 2, 0, out);
  assert_string_equal(out, "[#####XXXXXXXXXXXX]  33%");
  cli_fmt_progress(10, 2, 3, 0, out); /* running: half processed */
  assert_string_equal(out, "[###XXXXX---------]  20%");
}

static void test_wide_values_keep_columns_aligned(void **s) {
  (void)s;
  cli_job_row_t rows[] = {
      {"0123456789abcdef", "x", "PARTIAL_SUCCESS", 1234567890, 1234567000, 890, 3 * 3600 * 1000 + 61000, 100 * 3600 * 1000LL},
      {"fedcba98", "short", "SUCCESS", 1, 1, 0, 0, 999},
  };
  bok_buf_t b = BOK_BUF_INIT(0);
  cli_fmt_job_table(&b, rows, 2);
  assert_string_equal(b.data,
                      "JOB      MODEL       STATE           TOTAL         OK            ERRORS  PROGRESS                 WAITING  PROCESSING\n"
                      "-------- ----------- --------------- ------------- ------------- ------- ------------------------ -------  -----------\n"
                      "01234567 x           PARTIAL_SUCCESS 1,234,567,890 1,234,567,000     890 [################X]  99% 3:01:01    100:00:00\n"
                      "fedcba98 short       SUCCESS                     1             1       0 [#################] 100%   00:00        00:00\n");
  bok_buf_free(&b);
}

static void test_small_formatters(void **s) {
  (void)s;
  char out[64];
  cli_fmt_thousands(0, out);
  assert_string_equal(out, "0");
  cli_fmt_thousands(1000000, out);
  assert_string_equal(out, "1,000,000");
  cli_fmt_thousands(999, out);
  assert_string_equal(out, "999");
  cli_fmt_duration(59999, out);
  assert_string_equal(out, "00:59");
  cli_fmt_duration(3600000, out);
  assert_string_equal(out, "1:00:00");
  cli_fmt_model_name("Exactly11ch", out);
  assert_string_equal(out, "Exactly11ch");
  cli_fmt_model_name("Twelve chars", out);
  assert_string_equal(out, "Twelve ch..");
  cli_fmt_model_name("éééééééééééé", out);
  assert_string_equal(out, "ééééééééé..");
}

static void test_guide_rejected_table(void **s) {
  (void)s;
  cli_rejected_row_t rows[] = {
      {1, "1001abcd", "timestamp", "TIMESTAMP", "MISSING_COLUMN", NULL,
       "The required column 'timestamp' is missing. Please include a valid timestamp column."},
      {3, "1003cdef", "timestamp", "TIMESTAMP", "INVALID_TIMESTAMP", "\"yesterday\"",
       "The 'timestamp' value is invalid. Please provide a 32-bit Unix timestamp (integer)."},
      {11, "1011ef01", "attr_vec", "VECTOR", "NOT_A_VECTOR", "[1, \"a\", 3]",
       "The value for 'attr_vec' is not a vector. Provide a list of numeric values."},
  };
  bok_buf_t b = BOK_BUF_INIT(0);
  cli_fmt_rejected_table(&b, rows, 3);
  assert_string_equal(
      b.data,
      "ROW  EVENT_ID COLUMN      TYPE        ERROR               OBSERVED         MESSAGE\n"
      "---- -------- ----------- ----------- ------------------- ---------------- ------------------------------------------------------------------------------------\n"
      "1    1001abcd timestamp   TIMESTAMP   MISSING_COLUMN                       The required column 'timestamp' is missing. Please include a valid timestamp column.\n"
      "3    1003cdef timestamp   TIMESTAMP   INVALID_TIMESTAMP   \"yesterday\"      The 'timestamp' value is invalid. Please provide a 32-bit Unix timestamp (integer).\n"
      "11   1011ef01 attr_vec    VECTOR      NOT_A_VECTOR        [1, \"a\", 3]      The value for 'attr_vec' is not a vector. Provide a list of numeric values.\n");
  bok_buf_free(&b);
}

/* Issue 15: double-width characters count 2 columns, so the next column
 * stays aligned; control characters are escaped; long cells are cut. */
static void test_display_width_escape_and_cut(void **s) {
  (void)s;
  assert_int_equal(cli_display_width("abc"), 3);
  assert_int_equal(cli_display_width("\xE6\xB3\xA8\xE6\x96\x87"), 4); /* 注文: 2 + 2 */
  assert_int_equal(cli_display_width("\xC3\xA9"), 1);                /* é */
  bok_buf_t b = BOK_BUF_INIT(0);
  cli_fmt_escape(&b, "a\nb\tc\r\x01\x7f\xC2\x85z");
  assert_string_equal(b.data, "a\\nb\\tc\\r\\x01\\x7f\\u0085z");
  b.len = 0;
  cli_fmt_cut(&b, "abcdefghij", 5);
  assert_string_equal(b.data, "abcd\xE2\x80\xA6");
  b.len = 0;
  cli_fmt_cut(&b, "\xE6\xB3\xA8\xE6\xB3\xA8\xE6\xB3\xA8", 4); /* 3 wide chars into 4 columns */
  assert_string_equal(b.data, "\xE6\xB3\xA8\xE2\x80\xA6");
  b.len = 0;
  cli_fmt_cut(&b, "abc", 0);
  assert_string_equal(b.data, "abc");
  bok_buf_free(&b);
  char out[64];
  cli_fmt_model_name("\xE6\xB3\xA8\xE6\x96\x87\xE6\xB3\xA8\xE6\x96\x87\xE6\xB3\xA8\xE6\x96\x87", out); /* 12 columns */
  assert_string_equal(out, "\xE6\xB3\xA8\xE6\x96\x87\xE6\xB3\xA8\xE6\x96\x87 ..");
  cli_job_row_t rows[] = {{"a1b2c3d4", "\xE6\xB3\xA8\xE6\x96\x87", "SUCCESS", 1, 1, 0, 0, 0},
                          {"b1b2c3d4", "ab", "SUCCESS", 1, 1, 0, 0, 0}};
  cli_fmt_job_table(&b, rows, 2);
  const char *l1 = strchr(strchr(b.data, '\n') + 1, '\n') + 1, *l2 = strchr(l1, '\n') + 1;
  assert_memory_equal(l1 + 9 + 6 + 7, " SUCCESS", 8); /* 注文: 6 bytes, 4 columns, 7 spaces of padding */
  assert_memory_equal(l2 + 9 + 2 + 9, " SUCCESS", 8);
  bok_buf_free(&b);
}

static void test_rejected_table_escapes_and_fits_the_terminal(void **s) {
  (void)s;
  char longobs[200], longmsg[300];
  memset(longobs, 'o', 120);
  longobs[120] = '\0';
  memset(longmsg, 'm', 250);
  longmsg[250] = '\0';
  cli_rejected_row_t rows[] = {{7, "id\nwith newline", "c", "STRING", "TOO_LONG", longobs, longmsg}};
  bok_buf_t b = BOK_BUF_INIT(0);
  cli_fmt_rejected_table_w(&b, rows, 1, 140);
  const char *row = strchr(strchr(b.data, '\n') + 1, '\n') + 1;
  assert_non_null(strstr(row, "id\\nwith newline "));
  assert_int_equal(strchr(row, '\n')[1], '\0'); /* one line */
  char line[512];
  snprintf(line, sizeof line, "%.*s", (int)(strchr(row, '\n') - row), row);
  assert_int_equal(cli_display_width(line), 140);
  assert_non_null(strstr(line, "o\xE2\x80\xA6 m"));
  assert_non_null(strstr(line, "m\xE2\x80\xA6"));
  b.len = 0;
  cli_fmt_rejected_table_w(&b, rows, 1, 0); /* --wide */
  assert_non_null(strstr(b.data, longobs));
  assert_non_null(strstr(b.data, longmsg));
  bok_buf_free(&b);
}

int main(void) {
  setlocale(LC_CTYPE, "C.UTF-8");
  const struct CMUnitTest t[] = {cmocka_unit_test(test_display_width_escape_and_cut),
                                 cmocka_unit_test(test_rejected_table_escapes_and_fits_the_terminal),cmocka_unit_test(test_guide_job_list), cmocka_unit_test(test_partial_and_cancelled_bars),
                                 cmocka_unit_test(test_wide_values_keep_columns_aligned),
                                 cmocka_unit_test(test_small_formatters), cmocka_unit_test(test_guide_rejected_table)};
  return cmocka_run_group_tests(t, NULL, NULL);
}
