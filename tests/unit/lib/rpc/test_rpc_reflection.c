/* Server reflection's answers (lib/rpc/rpc_reflection.c) from the descriptor
 * set compiled into the build: services are listed as given, every kind of
 * symbol (service, method, message, nested enum, enum value, field) finds
 * its file with its imports, unknown names and empty questions get an
 * error_response, and a malformed set is refused. The stream itself is
 * tested end to end (tests/e2e/test_grpc_reflection.py). */
#include <stdarg.h>
#include <stddef.h>
#include <setjmp.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "rpc_internal.h"

typedef Grpc__Reflection__V1__ServerReflectionRequest req_t;

static bok_rpc_reflection_t *g_r;

static int setup(void **state) {
  (void)state;
  g_r = bok_rpc_reflection_new(bok_proto_descriptor_set, bok_proto_descriptor_set_len);
  return g_r ? 0 : -1;
}

static int teardown(void **state) {
  (void)state;
  bok_rpc_reflection_free(g_r);
  return 0;
}

/* The name of a serialized FileDescriptorProto: protoc writes field 1
 * (tag 0x0a, one length byte for our short names) first. */
static void file_name(const ProtobufCBinaryData *b, char *out, size_t cap) {
  assert_true(b->len > 2 && b->data[0] == 0x0a && b->data[1] < cap && b->data[1] + 2u <= b->len);
  memcpy(out, b->data + 2, b->data[1]);
  out[b->data[1]] = '\0';
}

/* Asks for the file holding `symbol`; checks the first file is `want` and
 * that it came with `nfiles` files in all. */
static void expect_symbol(const char *symbol, const char *want, size_t nfiles) {
  req_t q = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  q.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  q.file_containing_symbol = (char *)symbol;
  bok_rpc_reflection_answer_t a;
  bok_rpc_reflection_answer(g_r, NULL, 0, &q, &a);
  if (a.msg.message_response_case !=
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE)
    fail_msg("%s: no file (%s)", symbol, a.errmsg);
  assert_int_equal(a.files.n_file_descriptor_proto, nfiles);
  char name[200];
  file_name(&a.files.file_descriptor_proto[0], name, sizeof name);
  assert_string_equal(name, want);
  assert_ptr_equal(a.msg.original_request, &q);
  bok_rpc_reflection_answer_done(&a);
}

static void test_symbols_find_their_file(void **state) {
  (void)state;
  expect_symbol("batch.v1.JobService", "batch/v1/job.proto", 1);
  expect_symbol("batch.v1.JobService.Upload", "batch/v1/job.proto", 1);
  expect_symbol("batch.v1.ModelService", "batch/v1/model.proto", 1);
  expect_symbol(".batch.v1.Model", "batch/v1/model.proto", 1); /* type reference form */
  expect_symbol("batch.v1.UploadRequest.chunk", "batch/v1/job.proto", 1);
  expect_symbol("batch.v1.UploadRequest.kind", "batch/v1/job.proto", 1); /* a oneof */
  expect_symbol("batch.v1.JobState", "batch/v1/job.proto", 1);
  expect_symbol("batch.v1.JOB_STATE_RUNNING", "batch/v1/job.proto", 1); /* values sit beside their enum */
  expect_symbol("grpc.health.v1.Health", "grpc/health/v1/health.proto", 1);
  expect_symbol("grpc.health.v1.HealthCheckResponse.ServingStatus", "grpc/health/v1/health.proto", 1);
  expect_symbol("grpc.health.v1.HealthCheckResponse.SERVING", "grpc/health/v1/health.proto", 1);
  expect_symbol("grpc.reflection.v1.ServerReflection", "grpc/reflection/v1/reflection.proto", 1);
  expect_symbol("grpc.reflection.v1alpha.ServerReflection", "grpc/reflection/v1alpha/reflection.proto", 1);
}

static void expect_error(req_t *q, int code, const char *in_msg) {
  bok_rpc_reflection_answer_t a;
  bok_rpc_reflection_answer(g_r, NULL, 0, q, &a);
  assert_int_equal(a.msg.message_response_case,
                   GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE);
  assert_int_equal(a.error.error_code, code);
  assert_non_null(strstr(a.error.error_message, in_msg));
  bok_rpc_reflection_answer_done(&a);
}

static void test_unknown_names_and_empty_questions(void **state) {
  (void)state;
  req_t q = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  q.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL;
  q.file_containing_symbol = "batch.v1.NoSuchThing";
  expect_error(&q, 5, "batch.v1.NoSuchThing");
  q.file_containing_symbol = "batch.v1"; /* a package is not a symbol */
  expect_error(&q, 5, "symbol not found");
  q.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
  q.file_by_filename = "batch/v1/nope.proto";
  expect_error(&q, 5, "batch/v1/nope.proto");
  q.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
  q.all_extension_numbers_of_type = "batch.v1.Nope";
  expect_error(&q, 5, "batch.v1.Nope");
  Grpc__Reflection__V1__ExtensionRequest ext = GRPC__REFLECTION__V1__EXTENSION_REQUEST__INIT;
  ext.containing_type = "batch.v1.Job";
  ext.extension_number = 100;
  q.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION;
  q.file_containing_extension = &ext;
  expect_error(&q, 5, "extension");
  req_t empty = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  expect_error(&empty, 3, "asks nothing");
}

static void test_files_by_name_and_extension_numbers(void **state) {
  (void)state;
  req_t q = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  q.host = "localhost";
  q.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME;
  q.file_by_filename = "grpc/health/v1/health.proto";
  bok_rpc_reflection_answer_t a;
  bok_rpc_reflection_answer(g_r, NULL, 0, &q, &a);
  assert_int_equal(a.files.n_file_descriptor_proto, 1);
  assert_string_equal(a.msg.valid_host, "localhost");
  /* the answer packs and unpacks as the message a client reads */
  size_t n = protobuf_c_message_get_packed_size(&a.msg.base);
  uint8_t *buf = malloc(n);
  assert_non_null(buf);
  protobuf_c_message_pack(&a.msg.base, buf);
  Grpc__Reflection__V1__ServerReflectionResponse *back =
      grpc__reflection__v1__server_reflection_response__unpack(NULL, n, buf);
  assert_non_null(back);
  assert_int_equal(back->file_descriptor_response->n_file_descriptor_proto, 1);
  assert_memory_equal(back->file_descriptor_response->file_descriptor_proto[0].data,
                      a.files.file_descriptor_proto[0].data, a.files.file_descriptor_proto[0].len);
  assert_string_equal(back->original_request->file_by_filename, "grpc/health/v1/health.proto");
  grpc__reflection__v1__server_reflection_response__free_unpacked(back, NULL);
  free(buf);
  bok_rpc_reflection_answer_done(&a);

  q.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE;
  q.all_extension_numbers_of_type = "batch.v1.Job";
  bok_rpc_reflection_answer(g_r, NULL, 0, &q, &a);
  assert_int_equal(a.msg.message_response_case,
                   GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE);
  assert_string_equal(a.ext.base_type_name, "batch.v1.Job");
  assert_int_equal(a.ext.n_extension_number, 0);
  bok_rpc_reflection_answer_done(&a);
}

static void test_list_services_as_given(void **state) {
  (void)state;
  const char *svcs[] = {"grpc.health.v1.Health", "batch.v1.JobService"};
  req_t q = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__INIT;
  q.message_request_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES;
  q.list_services = "*";
  bok_rpc_reflection_answer_t a;
  bok_rpc_reflection_answer(g_r, svcs, 2, &q, &a);
  assert_int_equal(a.list.n_service, 2);
  assert_string_equal(a.list.service[0]->name, "grpc.health.v1.Health");
  assert_string_equal(a.list.service[1]->name, "batch.v1.JobService");
  bok_rpc_reflection_answer_done(&a);
}

static void test_malformed_sets_are_refused(void **state) {
  (void)state;
  /* cut at every length: either refused, or a shorter set still indexed */
  for (size_t n = 0; n < 64 && n < bok_proto_descriptor_set_len; n++) {
    bok_rpc_reflection_t *r = bok_rpc_reflection_new(bok_proto_descriptor_set, n);
    bok_rpc_reflection_free(r);
  }
  const uint8_t truncated[] = {0x0a, 0x10, 0x0a, 0x02}; /* file of 16 bytes, 2 present */
  assert_null(bok_rpc_reflection_new(truncated, sizeof truncated));
  const uint8_t group[] = {0x0a, 0x02, 0x0b, 0x0c}; /* wire type 3 (group) inside a file */
  assert_null(bok_rpc_reflection_new(group, sizeof group));
  const uint8_t varint[] = {0x08, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01};
  assert_null(bok_rpc_reflection_new(varint, sizeof varint));
  bok_rpc_reflection_t *empty = bok_rpc_reflection_new(NULL, 0);
  assert_non_null(empty); /* an empty set: nothing to describe */
  bok_rpc_reflection_free(empty);
}

int main(void) {
  const struct CMUnitTest tests[] = {
      cmocka_unit_test(test_symbols_find_their_file),
      cmocka_unit_test(test_unknown_names_and_empty_questions),
      cmocka_unit_test(test_files_by_name_and_extension_numbers),
      cmocka_unit_test(test_list_services_as_given),
      cmocka_unit_test(test_malformed_sets_are_refused),
  };
  return cmocka_run_group_tests(tests, setup, teardown);
}
