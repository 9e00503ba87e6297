/* bok/rows.h -- the rows library (lib/rows) in one include: CSV/NDJSON reading, schema
 * compiling, row validation + event encoding, schema detection. No network
 * code; see each header for ownership and thread rules. Rejected rows as
 * batch.v1 messages (the one builder both services use) are in bok/reject.h,
 * included on its own: it brings the generated protobuf-c headers. */
#ifndef BOK_ROWS_H
#define BOK_ROWS_H

#include "bok/csv.h"
#include "bok/detect.h"
#include "bok/schema.h"
#include "bok/validate.h"

#endif
