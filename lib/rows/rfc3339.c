/* RFC 3339 date-times (SPEC 12 "Event times in ISO-8601"): parsing to Unix
 * milliseconds and formatting back as UTC with milliseconds.
 *
 * Pure functions on caller buffers: any thread may call them. No locale, no
 * time zone database, no libc time functions (timegm is not portable and
 * mktime depends on TZ). */
#include <stdint.h>
#include <string.h>

#include "bok/validate.h"

/* Years outside 0000..9999 cannot be written as RFC 3339. */
#define MIN_MS (-62167219200000LL) /* 0000-01-01T00:00:00.000Z */
#define MAX_MS (253402300799999LL) /* 9999-12-31T23:59:59.999Z */

static int is_leap(int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }

static int days_in_month(int64_t y, int m) {
  static const int d[12] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
  return m == 2 && is_leap(y) ? 29 : d[m - 1];
}

/* Days since 1970-01-01 of a proleptic Gregorian date (H. Hinnant's
 * days_from_civil; valid for any year in int64 range we use). */
static int64_t days_from_civil(int64_t y, int m, int d) {
  y -= m <= 2;
  int64_t era = (y >= 0 ? y : y - 399) / 400;
  int64_t yoe = y - era * 400;
  int64_t doy = (153 * (m > 2 ? m - 3 : m + 9) + 2) / 5 + d - 1;
  int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
  return era * 146097 + doe - 719468;
}

static void civil_from_days(int64_t z, int64_t *y, int *m, int *d) {
  z += 719468;
  int64_t era = (z >= 0 ? z : z - 146096) / 146097;
  int64_t doe = z - era * 146097;
  int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
  int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
  int64_t mp = (5 * doy + 2) / 153;
  *d = (int)(doy - (153 * mp + 2) / 5 + 1);
  *m = (int)(mp < 10 ? mp + 3 : mp - 9);
  *y = yoe + era * 400 + (*m <= 2);
}

/* n decimal digits at s into *out; -1 if any is not a digit. */
static int digits(const char *s, int n, int *out) {
  int v = 0;
  for (int i = 0; i < n; i++) {
    if (s[i] < '0' || s[i] > '9') return -1;
    v = v * 10 + (s[i] - '0');
  }
  *out = v;
  return 0;
}

int bok_rfc3339_parse(const char *s, size_t len, int64_t *ms) {
  /* YYYY-MM-DDThh:mm:ss is 19 bytes; the shortest offset is "Z". */
  if (len < 20) return -1;
  int y, mo, d, h, mi, se;
  if (digits(s, 4, &y) || s[4] != '-' || digits(s + 5, 2, &mo) || s[7] != '-' || digits(s + 8, 2, &d)) return -1;
  if (s[10] != 'T' && s[10] != 't' && s[10] != ' ') return -1;
  if (digits(s + 11, 2, &h) || s[13] != ':' || digits(s + 14, 2, &mi) || s[16] != ':' || digits(s + 17, 2, &se))
    return -1;
  if (mo < 1 || mo > 12 || d < 1 || d > days_in_month(y, mo) || h > 23 || mi > 59 || se > 59) return -1;
  size_t i = 19;
  int frac_ms = 0;
  if (s[i] == '.') {
    size_t st = ++i;
    while (i < len && s[i] >= '0' && s[i] <= '9') {
      if (i - st < 3) frac_ms = frac_ms * 10 + (s[i] - '0');
      i++;
    }
    size_t nd = i - st;
    if (nd < 1 || nd > 9) return -1;
    for (size_t k = nd; k < 3; k++) frac_ms *= 10;
  }
  if (i >= len) return -1;
  int off_min = 0;
  if (s[i] == 'Z' || s[i] == 'z') {
    i++;
  } else if (s[i] == '+' || s[i] == '-') {
    int oh, om;
    if (len - i < 6 || digits(s + i + 1, 2, &oh) || s[i + 3] != ':' || digits(s + i + 4, 2, &om)) return -1;
    if (oh > 23 || om > 59) return -1;
    off_min = (oh * 60 + om) * (s[i] == '-' ? -1 : 1);
    i += 6;
  } else {
    return -1;
  }
  if (i != len) return -1;
  int64_t secs = days_from_civil(y, mo, d) * 86400 + h * 3600 + mi * 60 + se - (int64_t)off_min * 60;
  int64_t v = secs * 1000 + frac_ms;
  if (v < MIN_MS || v > MAX_MS) return -1;
  *ms = v;
  return 0;
}

static void put2(char *p, int v) {
  p[0] = (char)('0' + v / 10);
  p[1] = (char)('0' + v % 10);
}

int bok_rfc3339_format_ms(int64_t ms, char out[BOK_RFC3339_LEN + 1]) {
  if (ms < MIN_MS || ms > MAX_MS) return -1;
  int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
  int64_t rem = ms - days * 86400000; /* 0 .. 86399999 */
  int64_t y;
  int m, d;
  civil_from_days(days, &y, &m, &d);
  int yy = (int)y;
  out[0] = (char)('0' + yy / 1000);
  out[1] = (char)('0' + yy / 100 % 10);
  out[2] = (char)('0' + yy / 10 % 10);
  out[3] = (char)('0' + yy % 10);
  out[4] = '-';
  put2(out + 5, m);
  out[7] = '-';
  put2(out + 8, d);
  out[10] = 'T';
  put2(out + 11, (int)(rem / 3600000));
  out[13] = ':';
  put2(out + 14, (int)(rem / 60000 % 60));
  out[16] = ':';
  put2(out + 17, (int)(rem / 1000 % 60));
  out[19] = '.';
  int f = (int)(rem % 1000);
  out[20] = (char)('0' + f / 100);
  put2(out + 21, f % 100);
  out[23] = 'Z';
  out[24] = '\0';
  return BOK_RFC3339_LEN;
}
