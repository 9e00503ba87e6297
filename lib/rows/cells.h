/* cells.h -- private to lib/rows: how a CSV cell's text reads as an
 * integer, a float or a boolean. The validator (validate.c) and schema
 * detection (detect.c) share these so that a detected type is exactly what
 * validation accepts. Pure functions: any thread. */
#ifndef BOK_CORE_CELLS_H
#define BOK_CORE_CELLS_H

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* Blanks (spaces, tabs) around a cell are not part of its value. */
static inline void trim(const char **s, size_t *len) {
  while (*len && (**s == ' ' || **s == '\t')) (*s)++, (*len)--;
  while (*len && ((*s)[*len - 1] == ' ' || (*s)[*len - 1] == '\t')) (*len)--;
}

static inline int parse_int64(const char *s, size_t len, int64_t *out) {
  trim(&s, &len);
  if (len == 0 || len > 20) return -1;
  size_t i = 0;
  int neg = 0;
  if (s[0] == '-' || s[0] == '+') {
    neg = s[0] == '-';
    i = 1;
    if (len == 1) return -1;
  }
  uint64_t v = 0;
  for (; i < len; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    unsigned d = (unsigned)(s[i] - '0');
    if (v > (UINT64_MAX - d) / 10) return -1;
    v = v * 10 + d;
  }
  if (neg) {
    if (v > (uint64_t)INT64_MAX + 1) return -1;
    *out = (int64_t)(0 - v);
  } else {
    if (v > (uint64_t)INT64_MAX) return -1;
    *out = (int64_t)v;
  }
  return 0;
}

static inline int parse_double(const char *s, size_t len, double *out) {
  trim(&s, &len);
  if (len == 0 || len > 64) return -1;
  char tmp[72];
  memcpy(tmp, s, len);
  tmp[len] = '\0';
  for (size_t i = 0; i < len; i++)
    if (tmp[i] == 'x' || tmp[i] == 'X' || tmp[i] == 'n' || tmp[i] == 'N' || tmp[i] == 'i' || tmp[i] == 'I') return -1;
  char *end;
  errno = 0;
  double d = strtod(tmp, &end);
  if (*end || !isfinite(d)) return -1;
  *out = d;
  return 0;
}

static inline int parse_bool(const char *s, size_t len, int *out) {
  trim(&s, &len);
  if ((len == 4 && strncasecmp(s, "true", 4) == 0) || (len == 1 && s[0] == '1')) {
    *out = 1;
    return 0;
  }
  if ((len == 5 && strncasecmp(s, "false", 5) == 0) || (len == 1 && s[0] == '0')) {
    *out = 0;
    return 0;
  }
  return -1;
}

#endif
