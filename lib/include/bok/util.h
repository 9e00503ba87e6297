/* bok/util.h -- small helpers shared by every binary: time, ids, tenants.
 * All functions are thread-safe and never allocate unless stated. */
#ifndef BOK_UTIL_H
#define BOK_UTIL_H

#include <stddef.h>
#include <stdint.h>

/* Wall clock, Unix epoch milliseconds. */
int64_t bok_now_ms(void);
/* Monotonic clock, milliseconds. */
int64_t bok_mono_ms(void);
/* Formats epoch ms as "2023-03-15T12:01:40.000Z" into out (>= 25 bytes). */
void bok_iso8601_ms(int64_t ms, char out[32]);

/* Writes a new random (v4) UUID, lower case, into out (37 bytes with NUL). */
void bok_uuid_new(char out[37]);
/* 1 if s is a canonical UUID (8-4-4-4-12 hex digits), else 0. */
int bok_uuid_valid(const char *s);

/* SPEC 3: a tenant id is 1-64 characters of [A-Za-z0-9._-]. 1 valid, 0 not. */
int bok_tenant_valid(const char *s, size_t len);

/* Creates the parent directories of a file path (mkdir -p of its dirname).
 * 0 ok, -1 with errno set. */
int bok_mkdirs_for(const char *path);

#endif
