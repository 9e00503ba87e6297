/* json_map.h -- the REST JSON shapes of the user guide and SPEC 4, built from
 * the gRPC messages. Every function returns a new jansson reference (the
 * caller json_decref()s it). Pure; any thread. */
#ifndef GW_JSON_MAP_H
#define GW_JSON_MAP_H

#include <jansson.h>

#include "batch/v1/job.pb-c.h"
#include "batch/v1/model.pb-c.h"

json_t *gw_model_json(const Batch__V1__Model *m);
json_t *gw_job_json(const Batch__V1__Job *j);
json_t *gw_rejected_json(const Batch__V1__RejectedCell *c);
/* {code, column, type, count, first_row, example, message}; example is the
 * observed value (JSON) or null. */
json_t *gw_summary_entry_json(const Batch__V1__ErrorSummaryEntry *e);
/* "PENDING" ... ; NULL for UNSPECIFIED/unknown. */
const char *gw_job_state_name(Batch__V1__JobState s);
/* Parses "PENDING" etc., all upper or all lower case ("running"); -1 if
 * unknown, empty or mixed case ("Running"). */
int gw_job_state_parse(const char *s, size_t len);
/* The compact text of an answer (malloc'd; NULL when out of memory). Reals
 * are printed with 15 significant digits, so a value written as 0.1 or 3.14
 * reads back as 0.1 / 3.14 (jansson's default 17 prints
 * 0.10000000000000001). */
char *gw_json_text(const json_t *j);
/* A JSON string of s (NULL -> ""); invalid UTF-8 sequences become U+FFFD,
 * so a binary file's column names or values never drop a key. */
json_t *gw_json_str(const char *s);
/* ISO-8601 string for epoch ms, or JSON null when ms == 0. */
json_t *gw_time_json(int64_t ms);

#endif
