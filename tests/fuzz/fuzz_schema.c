/* libFuzzer: the schema compiler (POST/PUT /models, CreateModel,
 * UpdateModel). A schema that compiles must be coherent: named columns that
 * bok_schema_find finds again, event columns inside the table, enum values
 * present; and a validator can be made from it for NDJSON and for a CSV
 * header naming its columns. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bok/rows.h"

static void check(const bok_schema_t *s) {
  size_t n = bok_schema_ncols(s);
  bok_buf_t header;
  bok_buf_init(&header, 0);
  for (size_t i = 0; i < n; i++) {
    const bok_column_t *c = bok_schema_col(s, i);
    if (!c || !c->name) abort();
    if (bok_schema_find(s, c->name, strlen(c->name)) != (int)i) abort();
    for (size_t k = 0; k < c->n_enum; k++)
      if (!c->enum_values[k]) abort();
    if (!bok_col_type_name(c->type)) abort();
    if (i) bok_buf_append(&header, ",", 1);
    bok_json_append_string(&header, c->name, strlen(c->name)); /* a quoted CSV field, "" -> \" is fine here */
  }
  int e = bok_schema_event_id_col(s), t = bok_schema_event_time_col(s);
  if (e < -1 || e >= (int)n || t < -1 || t >= (int)n) abort();
  char err[200];
  bok_validator_t *v = bok_validator_new(s, BOK_FMT_NDJSON, NULL, 0, 0, err, sizeof err);
  if (!v) abort();
  bok_validator_destroy(v);
  v = bok_validator_new(s, BOK_FMT_CSV, header.data, header.len, ',', err, sizeof err);
  bok_validator_destroy(v); /* may refuse a header it cannot read (escaped quotes) */
  bok_buf_free(&header);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  bok_schema_t *s = NULL;
  char err[256];
  if (bok_schema_compile((const char *)data, size, &s, err, sizeof err) == 0) {
    check(s);
    bok_schema_destroy(s);
  } else if (!err[0]) {
    abort(); /* a refusal always says why */
  }
  return 0;
}
