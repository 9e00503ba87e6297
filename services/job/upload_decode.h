/* upload_decode.h -- the byte stream of an upload before it is split into
 * rows: gzip decompressed (zlib) and a non-UTF-8 encoding converted to UTF-8
 * (iconv), while streaming, chunk by chunk (upload_decode.c).
 *
 * One decoder belongs to one upload and one thread. What it hands the sink is
 * UTF-8 (for encoding "utf-8": the bytes as they came, checked per row later
 * by the splitter). A stream that cannot be decoded (corrupt or truncated
 * gzip, a byte that is not valid in the encoding, utf-16 without a byte order
 * mark) stops with a message for the job's error. */
#ifndef UPLOAD_DECODE_H
#define UPLOAD_DECODE_H

#include <stddef.h>

/* Receives decoded bytes; nonzero stops the decoder (upload_dec_feed -2). */
typedef int (*upload_sink_fn)(void *ud, const char *p, size_t n);

typedef struct upload_dec upload_dec_t;

/* The canonical name of an encoding the upload accepts ("utf-8", "latin-1",
 * "windows-1252", "utf-16", "utf-16le", "utf-16be"), from any of its usual
 * spellings (any case; "" = "utf-8"); NULL when it is not one of them. */
const char *upload_encoding_name(const char *s);

/* A decoder for `encoding` (a canonical name) behind an optional gzip layer.
 * NULL only when out of memory or iconv lacks the encoding. */
upload_dec_t *upload_dec_new(int gzip, const char *encoding, upload_sink_fn sink, void *ud);
/* 0 ok; -1 the stream cannot be decoded (upload_dec_error); -2 the sink
 * stopped. After a nonzero result the decoder takes no more input. */
int upload_dec_feed(upload_dec_t *d, const void *p, size_t n);
/* The end of the stream: the same results (a gzip stream that ends early or
 * a character cut by the end are -1). */
int upload_dec_finish(upload_dec_t *d);
/* Why the stream could not be decoded, e.g. "gzip: the data is corrupt
 * (invalid block type)"; "" while it could. */
const char *upload_dec_error(const upload_dec_t *d);
void upload_dec_free(upload_dec_t *d);

#endif
