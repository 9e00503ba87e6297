/* libFuzzer: the schema compiler and schema detection. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "bok/core.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  bok_schema_t *s = NULL;
  char err[256];
  if (bok_schema_compile((const char *)data, size, &s, err, sizeof err) == 0) bok_schema_destroy(s);
  char *d = bok_detect_schema((const char *)data, size, ',', 200, err, sizeof err);
  if (d) {
    /* a suggestion must always compile */
    if (bok_schema_compile(d, __builtin_strlen(d), &s, err, sizeof err) != 0) abort();
    bok_schema_destroy(s);
    free(d);
  }
  return 0;
}
