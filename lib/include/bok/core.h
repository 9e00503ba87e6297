/* bok/core.h -- the data core in one include: CSV/NDJSON reading, schema
 * compiling, row validation + event encoding, schema detection. No network
 * code; see each header for ownership and thread rules. */
#ifndef BOK_CORE_H
#define BOK_CORE_H

#include "bok/csv.h"
#include "bok/detect.h"
#include "bok/schema.h"
#include "bok/validate.h"

#endif
