/* upload_decode.c -- an upload's bytes before the row splitter: gzip
 * inflated with zlib, then a latin-1 / windows-1252 / utf-16 stream
 * converted to UTF-8 with iconv, chunk by chunk. A character (or a gzip
 * block) cut between two chunks is carried over to the next one. Used by the
 * upload handler's thread only (one decoder per upload). */
#include "upload_decode.h"

#include <errno.h>
#include <iconv.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <zlib.h>

#define OUT_CAP (64 * 1024)

struct upload_dec {
  upload_sink_fn sink;
  void *ud;
  const char *enc;  /* canonical name */
  iconv_t cd;       /* (iconv_t)-1 for utf-8: bytes pass through */
  int need_bom;     /* utf-16: the first two bytes must be a byte order mark */
  unsigned char bom[2];
  size_t nbom;
  char pend[8];     /* the start of a character cut by the chunk's end */
  size_t npend;
  uint64_t in_off;  /* encoded bytes converted so far (for messages) */
  int gzip, z_init, z_end;
  uint64_t z_in;    /* compressed bytes seen */
  z_stream z;
  int state;        /* 0 ok, -1 undecodable, -2 sink stopped */
  char err[200];
  char out[OUT_CAP];
  char zout[OUT_CAP];
};

static const struct {
  const char *name, *iconv;
  const char *alias[4];
} ENCODINGS[] = {
    {"utf-8", NULL, {"utf8", NULL}},
    {"latin-1", "ISO-8859-1", {"latin1", "iso-8859-1", "iso8859-1", NULL}},
    {"windows-1252", "WINDOWS-1252", {"cp1252", "windows1252", NULL}},
    {"utf-16", "UTF-16", {"utf16", NULL}},
    {"utf-16le", "UTF-16LE", {"utf16le", NULL}},
    {"utf-16be", "UTF-16BE", {"utf16be", NULL}},
};
#define N_ENC (sizeof ENCODINGS / sizeof ENCODINGS[0])

const char *upload_encoding_name(const char *s) {
  if (!s || !*s) return "utf-8";
  for (size_t i = 0; i < N_ENC; i++) {
    if (strcasecmp(s, ENCODINGS[i].name) == 0) return ENCODINGS[i].name;
    for (size_t a = 0; ENCODINGS[i].alias[a]; a++)
      if (strcasecmp(s, ENCODINGS[i].alias[a]) == 0) return ENCODINGS[i].name;
  }
  return NULL;
}

upload_dec_t *upload_dec_new(int gzip, const char *encoding, upload_sink_fn sink, void *ud) {
  upload_dec_t *d = calloc(1, sizeof *d);
  if (!d) return NULL;
  d->sink = sink;
  d->ud = ud;
  d->cd = (iconv_t)-1;
  d->enc = upload_encoding_name(encoding);
  if (!d->enc) goto fail;
  for (size_t i = 0; i < N_ENC; i++)
    if (ENCODINGS[i].name == d->enc && ENCODINGS[i].iconv) {
      d->cd = iconv_open("UTF-8", ENCODINGS[i].iconv);
      if (d->cd == (iconv_t)-1) goto fail;
    }
  d->need_bom = strcmp(d->enc, "utf-16") == 0;
  if (gzip) {
    if (inflateInit2(&d->z, 16 + MAX_WBITS) != Z_OK) goto fail;
    d->gzip = d->z_init = 1;
  }
  return d;
fail:
  upload_dec_free(d);
  return NULL;
}

void upload_dec_free(upload_dec_t *d) {
  if (!d) return;
  if (d->cd != (iconv_t)-1) iconv_close(d->cd);
  if (d->z_init) inflateEnd(&d->z);
  free(d);
}

const char *upload_dec_error(const upload_dec_t *d) { return d->state == -1 ? d->err : ""; }

/* Records why the stream cannot be decoded; returns -1. */
__attribute__((format(printf, 2, 3))) static int fail(upload_dec_t *d, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(d->err, sizeof d->err, fmt, ap);
  va_end(ap);
  return d->state = -1;
}

static int emit(upload_dec_t *d, const char *p, size_t n) {
  if (n && d->sink(d->ud, p, n) != 0) d->state = -2;
  return d->state;
}

/* One iconv call over *in; converted bytes go to the sink. Returns 0 when
 * all input is converted, 1 when its end holds an incomplete character,
 * else the (negative) state. */
static int iconv_run(upload_dec_t *d, char **in, size_t *il) {
  for (;;) {
    char *o = d->out;
    size_t ol = sizeof d->out;
    char *start = *in;
    size_t r = iconv(d->cd, in, il, &o, &ol);
    int e = errno;
    d->in_off += (uint64_t)(*in - start);
    if (emit(d, d->out, sizeof d->out - ol) != 0) return d->state;
    if (r != (size_t)-1) return 0;
    if (e == E2BIG) continue;
    if (e == EINVAL) return 1;
    return fail(d, "file is not valid %s: byte 0x%02X at offset %llu is not a character of this encoding", d->enc,
                (unsigned)(unsigned char)**in, (unsigned long long)d->in_off);
  }
}

/* The encoding stage: encoded bytes in, UTF-8 to the sink. */
static int convert(upload_dec_t *d, const char *p, size_t n) {
  if (d->cd == (iconv_t)-1) return emit(d, p, n);
  if (d->need_bom) {
    while (d->nbom < 2 && n) d->bom[d->nbom++] = (unsigned char)*p++, n--;
    if (d->nbom < 2) return 0;
    d->need_bom = 0;
    int le = d->bom[0] == 0xFF && d->bom[1] == 0xFE, be = d->bom[0] == 0xFE && d->bom[1] == 0xFF;
    if (!le && !be)
      return fail(d, "file is not valid %s: it does not start with a byte order mark (use utf-16le or utf-16be)",
                  d->enc);
    if (convert(d, (const char *)d->bom, 2) != 0) return d->state;
  }
  /* a character cut by the previous chunk: complete it byte by byte */
  while (d->npend && n) {
    d->pend[d->npend++] = *p++;
    n--;
    char *in = d->pend;
    size_t il = d->npend;
    int r = iconv_run(d, &in, &il);
    if (r < 0) return r;
    memmove(d->pend, in, il);
    d->npend = il;
    if (r == 1 && d->npend >= sizeof d->pend)
      return fail(d, "file is not valid %s: a character near offset %llu is cut", d->enc, (unsigned long long)d->in_off);
  }
  char *in = (char *)p;
  size_t il = n;
  int r = iconv_run(d, &in, &il);
  if (r < 0) return r;
  if (r == 1) {
    if (il >= sizeof d->pend)
      return fail(d, "file is not valid %s: a character near offset %llu is cut", d->enc, (unsigned long long)d->in_off);
    memcpy(d->pend, in, il);
    d->npend = il;
  }
  return 0;
}

/* The gzip stage: compressed bytes in, inflated bytes to convert(). A new
 * gzip member may follow the end of one (as `cat a.gz b.gz` makes). */
static int inflate_some(upload_dec_t *d, const char *p, size_t n) {
  d->z.next_in = (Bytef *)p;
  d->z.avail_in = (uInt)n;
  while (d->z.avail_in > 0) {
    if (d->z_end) {
      inflateReset(&d->z);
      d->z_end = 0;
    }
    d->z.next_out = (Bytef *)d->zout;
    d->z.avail_out = sizeof d->zout;
    int r = inflate(&d->z, Z_NO_FLUSH);
    size_t got = sizeof d->zout - d->z.avail_out;
    if (r != Z_OK && r != Z_STREAM_END && !(r == Z_BUF_ERROR && got))
      return fail(d, "file is not valid gzip: %s (near compressed byte %llu)", d->z.msg ? d->z.msg : "corrupt data",
                  (unsigned long long)(d->z_in + (n - d->z.avail_in)));
    if (convert(d, d->zout, got) != 0) return d->state;
    if (r == Z_STREAM_END) d->z_end = 1;
  }
  /* input used up; drain what inflate still holds */
  for (;;) {
    d->z.next_out = (Bytef *)d->zout;
    d->z.avail_out = sizeof d->zout;
    int r = inflate(&d->z, Z_NO_FLUSH);
    size_t got = sizeof d->zout - d->z.avail_out;
    if (got && convert(d, d->zout, got) != 0) return d->state;
    if (r == Z_STREAM_END) d->z_end = 1;
    if (!got) break;
  }
  d->z_in += n;
  return 0;
}

int upload_dec_feed(upload_dec_t *d, const void *p, size_t n) {
  if (d->state) return d->state;
  if (n == 0) return 0;
  return d->gzip ? inflate_some(d, p, n) : convert(d, p, n);
}

int upload_dec_finish(upload_dec_t *d) {
  if (d->state) return d->state;
  if (d->gzip && d->z_in > 0 && !d->z_end) return fail(d, "file is not valid gzip: the compressed data ends early");
  if (d->need_bom && d->nbom > 0)
    return fail(d, "file is not valid %s: it does not start with a byte order mark (use utf-16le or utf-16be)", d->enc);
  if (d->npend)
    return fail(d, "file is not valid %s: the file ends inside a character (offset %llu)", d->enc,
                (unsigned long long)d->in_off);
  return 0;
}
