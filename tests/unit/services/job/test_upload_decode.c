/* The upload decoder (issue 15 point 3): latin-1, windows-1252 and utf-16
 * converted to UTF-8 whatever the chunk boundaries (a multi-byte character
 * split across chunks included), gzip inflated (one or several members, cut
 * anywhere), and a stream that cannot be decoded (corrupt or truncated gzip,
 * a byte the encoding lacks, utf-16 without a byte order mark) stops with a
 * message instead of crashing. */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "bok/buf.h"
#include "upload_decode.h"

static int sink(void *ud, const char *p, size_t n) {
  bok_buf_append(ud, p, n);
  return 0;
}

static int stop_sink(void *ud, const char *p, size_t n) {
  (void)ud, (void)p, (void)n;
  return 1;
}

/* Decodes in in chunks of `step` bytes; returns the result code, out holds
 * what the sink got (NUL-terminated), err the message. */
static int decode(int gzip, const char *enc, const void *in, size_t len, size_t step, bok_buf_t *out, char *err) {
  bok_buf_init(out, 0);
  upload_dec_t *d = upload_dec_new(gzip, enc, sink, out);
  assert_non_null(d);
  int r = 0;
  for (size_t off = 0; off < len && r == 0; off += step)
    r = upload_dec_feed(d, (const char *)in + off, len - off < step ? len - off : step);
  if (r == 0) r = upload_dec_finish(d);
  snprintf(err, 200, "%s", upload_dec_error(d));
  upload_dec_free(d);
  bok_buf_append(out, "", 1);
  return r;
}

/* Every chunk size from 1 to len gives the same text. */
static void expect_text(int gzip, const char *enc, const void *in, size_t len, const char *want) {
  for (size_t step = 1; step <= len; step++) {
    bok_buf_t out;
    char err[200];
    assert_int_equal(decode(gzip, enc, in, len, step, &out, err), 0);
    assert_string_equal(out.data, want);
    bok_buf_free(&out);
  }
}

static void test_encoding_names(void **st) {
  (void)st;
  assert_string_equal(upload_encoding_name(""), "utf-8");
  assert_string_equal(upload_encoding_name("UTF8"), "utf-8");
  assert_string_equal(upload_encoding_name("ISO-8859-1"), "latin-1");
  assert_string_equal(upload_encoding_name("cp1252"), "windows-1252");
  assert_string_equal(upload_encoding_name("UTF-16"), "utf-16");
  assert_null(upload_encoding_name("ebcdic"));
  assert_null(upload_encoding_name("utf-8 "));
}

static void test_utf8_passes_through(void **st) {
  (void)st;
  const char in[] = "a,b\n\xC3\xA9,\xFF\n"; /* invalid bytes too: the splitter rejects that row later */
  expect_text(0, "utf-8", in, sizeof in - 1, in);
}

static void test_latin1(void **st) {
  (void)st;
  const char in[] = "name\nJos\xE9\nM\xFCller\n";
  expect_text(0, "latin-1", in, sizeof in - 1, "name\nJos\xC3\xA9\nM\xC3\xBCller\n");
}

static void test_windows1252_euro_and_undefined_byte(void **st) {
  (void)st;
  const char in[] = "p\n\x80 5\n\x93q\x94\n";
  expect_text(0, "windows-1252", in, sizeof in - 1, "p\n\xE2\x82\xAC 5\n\xE2\x80\x9Cq\xE2\x80\x9D\n");
  bok_buf_t out;
  char err[200];
  const char bad[] = "p\nab\x81\n";
  assert_int_equal(decode(0, "windows-1252", bad, sizeof bad - 1, 3, &out, err), -1);
  assert_string_equal(err, "file is not valid windows-1252: byte 0x81 at offset 4 is not a character of this encoding");
  assert_string_equal(out.data, "p\nab"); /* what came before is delivered */
  bok_buf_free(&out);
}

static void test_utf16_bom_le_be_and_surrogates_split(void **st) {
  (void)st;
  /* "a,é\n😀\n" in UTF-16LE with a BOM: the emoji is a surrogate pair (4 bytes) */
  const unsigned char le[] = {0xFF, 0xFE, 'a', 0, ',', 0, 0xE9, 0, '\n', 0, 0x3D, 0xD8, 0x00, 0xDE, '\n', 0};
  expect_text(0, "utf-16", le, sizeof le, "a,\xC3\xA9\n\xF0\x9F\x98\x80\n");
  const unsigned char be[] = {0xFE, 0xFF, 0, 'a', 0, ',', 0, 0xE9, 0, '\n', 0xD8, 0x3D, 0xDE, 0x00, 0, '\n'};
  expect_text(0, "utf-16", be, sizeof be, "a,\xC3\xA9\n\xF0\x9F\x98\x80\n");
  expect_text(0, "utf-16le", le + 2, sizeof le - 2, "a,\xC3\xA9\n\xF0\x9F\x98\x80\n");
}

static void test_utf16_without_bom_or_cut_at_the_end(void **st) {
  (void)st;
  bok_buf_t out;
  char err[200];
  const unsigned char nobom[] = {'a', 0, '\n', 0};
  assert_int_equal(decode(0, "utf-16", nobom, sizeof nobom, 1, &out, err), -1);
  assert_string_equal(err, "file is not valid utf-16: it does not start with a byte order mark (use utf-16le or utf-16be)");
  bok_buf_free(&out);
  const unsigned char cut[] = {0xFF, 0xFE, 'a', 0, '\n', 0, 0x3D, 0xD8}; /* a lone high surrogate at the end */
  assert_int_equal(decode(0, "utf-16", cut, sizeof cut, 2, &out, err), -1);
  assert_non_null(strstr(err, "file is not valid utf-16: the file ends inside a character"));
  assert_string_equal(out.data, "a\n");
  bok_buf_free(&out);
}

/* gzip-compresses `in` (one member). */
static size_t gz(const char *in, size_t len, unsigned char *out, size_t cap) {
  z_stream z;
  memset(&z, 0, sizeof z);
  assert_int_equal(deflateInit2(&z, 6, Z_DEFLATED, 16 + MAX_WBITS, 8, Z_DEFAULT_STRATEGY), Z_OK);
  z.next_in = (Bytef *)in;
  z.avail_in = (uInt)len;
  z.next_out = out;
  z.avail_out = (uInt)cap;
  assert_int_equal(deflate(&z, Z_FINISH), Z_STREAM_END);
  size_t n = cap - z.avail_out;
  deflateEnd(&z);
  return n;
}

static void test_gzip_members_and_latin1_inside(void **st) {
  (void)st;
  unsigned char buf[512];
  size_t n = gz("id,name\n1,Jos\xE9\n", 15, buf, sizeof buf);
  size_t m = gz("2,Z\xFCrich\n", 10, buf + n, sizeof buf - n);
  expect_text(1, "latin-1", buf, n + m, "id,name\n1,Jos\xC3\xA9\n2,Z\xC3\xBCrich\n");
}

static void test_gzip_large_output(void **st) {
  (void)st;
  size_t len = 1 << 20;
  char *in = malloc(len + 1);
  for (size_t i = 0; i < len; i++) in[i] = i % 61 == 60 ? '\n' : (char)('a' + i % 26);
  in[len] = '\0';
  unsigned char *buf = malloc(len);
  size_t n = gz(in, len, buf, len);
  bok_buf_t out;
  char err[200];
  assert_int_equal(decode(1, "utf-8", buf, n, 777, &out, err), 0);
  assert_int_equal(out.len, len + 1);
  assert_memory_equal(out.data, in, len);
  bok_buf_free(&out);
  free(in);
  free(buf);
}

static void test_gzip_corrupt_or_truncated(void **st) {
  (void)st;
  bok_buf_t out;
  char err[200];
  const char plain[] = "a,b\n1,2\n"; /* not gzip at all */
  assert_int_equal(decode(1, "utf-8", plain, sizeof plain - 1, 4, &out, err), -1);
  assert_string_equal(err, "file is not valid gzip: incorrect header check (near compressed byte 2)");
  bok_buf_free(&out);
  unsigned char buf[256];
  size_t n = gz("a,b\n1,2\n3,4\n", 12, buf, sizeof buf);
  assert_int_equal(decode(1, "utf-8", buf, n - 5, 3, &out, err), -1); /* cut inside the trailer */
  assert_string_equal(err, "file is not valid gzip: the compressed data ends early");
  bok_buf_free(&out);
  buf[n - 3] ^= 0x55; /* the length in the trailer is wrong */
  assert_int_equal(decode(1, "utf-8", buf, n, 5, &out, err), -1);
  assert_non_null(strstr(err, "file is not valid gzip: incorrect length check"));
  bok_buf_free(&out);
  for (size_t i = 12; i < n - 8; i++) buf[i] = 0xFF; /* a garbled body */
  assert_int_equal(decode(1, "utf-8", buf, n, 64, &out, err), -1);
  assert_non_null(strstr(err, "file is not valid gzip: "));
  bok_buf_free(&out);
}

static void test_sink_stop(void **st) {
  (void)st;
  upload_dec_t *d = upload_dec_new(0, "latin-1", stop_sink, NULL);
  assert_int_equal(upload_dec_feed(d, "abc", 3), -2);
  assert_int_equal(upload_dec_feed(d, "abc", 3), -2);
  assert_string_equal(upload_dec_error(d), "");
  upload_dec_free(d);
}

int main(void) {
  const struct CMUnitTest t[] = {
      cmocka_unit_test(test_encoding_names),
      cmocka_unit_test(test_utf8_passes_through),
      cmocka_unit_test(test_latin1),
      cmocka_unit_test(test_windows1252_euro_and_undefined_byte),
      cmocka_unit_test(test_utf16_bom_le_be_and_surrogates_split),
      cmocka_unit_test(test_utf16_without_bom_or_cut_at_the_end),
      cmocka_unit_test(test_gzip_members_and_latin1_inside),
      cmocka_unit_test(test_gzip_large_output),
      cmocka_unit_test(test_gzip_corrupt_or_truncated),
      cmocka_unit_test(test_sink_stop),
  };
  return cmocka_run_group_tests(t, NULL, NULL);
}
