/* bok/util.h -- small helpers shared by every binary: time, ids, tenants.
 * All functions are thread-safe and never allocate unless stated. */
#ifndef BOK_UTIL_H
#define BOK_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <time.h>

/* Wall clock, Unix epoch milliseconds. */
int64_t bok_now_ms(void);
/* Monotonic clock, milliseconds. */
int64_t bok_mono_ms(void);
/* Deadline for pthread_cond_timedwait: clock_gettime(clock) plus ms, with
 * tv_nsec normalised to [0, 1e9). The caller passes the clock its condvar
 * waits on: CLOCK_REALTIME for a default condvar (pthread_cond_init(cv, NULL),
 * PTHREAD_COND_INITIALIZER), CLOCK_MONOTONIC for one set up with
 * pthread_condattr_setclock(CLOCK_MONOTONIC). A negative ms gives a time in
 * the past (the wait times out at once). */
struct timespec bok_time_deadline(clockid_t clock, int64_t ms);
/* t plus ms (may be negative), tv_nsec normalised to [0, 1e9). Pure; the
 * arithmetic of bok_time_deadline. */
struct timespec bok_timespec_add_ms(struct timespec t, int64_t ms);
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
