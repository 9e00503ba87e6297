/* gRPC server reflection (grpc.reflection.v1 and v1alpha): answers from a
 * serialized google.protobuf.FileDescriptorSet that protoc wrote at build
 * time (proto/CMakeLists.txt, bok_proto_descriptor_set[]).
 *
 * The set is indexed once, without descriptor.proto's generated code: a small
 * protobuf wire reader walks FileDescriptorProto for the file names, imports
 * and every fully qualified symbol (messages, fields, oneofs, enums, enum
 * values, services, methods, extensions). Answers point into the set (no
 * copies), so the set must outlive the index.
 *
 * Threading: the index is read-only once built; answer() may run on any
 * number of threads at once. Nothing here prints or touches gRPC: the stream
 * itself is served by rpc_server.c.
 */
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "rpc_internal.h"

typedef struct {
  const uint8_t *p, *end;
} rd_t;

typedef struct {
  ProtobufCBinaryData raw; /* the serialized FileDescriptorProto, in the set */
  char *name;
  char **deps;
  size_t ndeps;
} refl_file_t;

typedef struct {
  char *name; /* fully qualified, no leading dot */
  size_t file;
} refl_sym_t;

struct bok_rpc_reflection {
  refl_file_t *files;
  size_t nfiles;
  refl_sym_t *syms;
  size_t nsyms, capsyms;
};

/* ---- wire reader ---------------------------------------------------------- */

static int rd_varint(rd_t *r, uint64_t *v) {
  uint64_t x = 0;
  for (int shift = 0; shift < 64; shift += 7) {
    if (r->p >= r->end) return -1;
    uint8_t b = *r->p++;
    x |= (uint64_t)(b & 0x7f) << shift;
    if (!(b & 0x80)) {
      *v = x;
      return 0;
    }
  }
  return -1;
}

/* The next field of r: its number in *num and, when length-delimited, its
 * bytes in *sub (otherwise sub->p is NULL). 1 = a field, 0 = end, -1 =
 * malformed (truncated, or a group). */
static int rd_field(rd_t *r, uint32_t *num, rd_t *sub) {
  if (r->p >= r->end) return 0;
  uint64_t key, v;
  if (rd_varint(r, &key) != 0 || (key >> 3) == 0 || (key >> 3) > 0x1fffffff) return -1;
  *num = (uint32_t)(key >> 3);
  sub->p = sub->end = NULL;
  switch (key & 7) {
  case 0:
    return rd_varint(r, &v) == 0 ? 1 : -1;
  case 1:
    if (r->end - r->p < 8) return -1;
    r->p += 8;
    return 1;
  case 5:
    if (r->end - r->p < 4) return -1;
    r->p += 4;
    return 1;
  case 2:
    if (rd_varint(r, &v) != 0 || v > (uint64_t)(r->end - r->p)) return -1;
    sub->p = r->p;
    sub->end = r->p + v;
    r->p += v;
    return 1;
  default:
    return -1;
  }
}

/* The first length-delimited field `num` of msg, as a new string ("" when
 * absent). NULL: out of memory. */
static char *rd_string(rd_t msg, uint32_t num) {
  uint32_t n;
  rd_t sub;
  while (rd_field(&msg, &n, &sub) == 1)
    if (n == num && sub.p) return strndup((const char *)sub.p, (size_t)(sub.end - sub.p));
  return strdup("");
}

/* ---- index ---------------------------------------------------------------- */

/* "scope.name" (or "name" at the root) as a new string; NULL: out of memory. */
static char *qualify(const char *scope, rd_t msg) {
  char *name = rd_string(msg, 1);
  if (!name || !*scope) return name;
  size_t n = strlen(scope) + 1 + strlen(name) + 1;
  char *full = malloc(n);
  if (full) snprintf(full, n, "%s.%s", scope, name);
  free(name);
  return full;
}

/* Adds a symbol; takes `name` (freed on failure). 0 ok, -1 out of memory. */
static int add_sym(bok_rpc_reflection_t *r, char *name, size_t file) {
  if (!name) return -1;
  if (r->nsyms == r->capsyms) {
    size_t cap = r->capsyms ? r->capsyms * 2 : 64;
    refl_sym_t *s = realloc(r->syms, cap * sizeof *s);
    if (!s) {
      free(name);
      return -1;
    }
    r->syms = s;
    r->capsyms = cap;
  }
  r->syms[r->nsyms].name = name;
  r->syms[r->nsyms].file = file;
  r->nsyms++;
  return 0;
}

/* Adds the symbol named by field 1 of msg in scope; *full (if not NULL) gets
 * a pointer to the stored name, valid as long as the index. */
static int add_named(bok_rpc_reflection_t *r, const char *scope, rd_t msg, size_t file, const char **full) {
  if (add_sym(r, qualify(scope, msg), file) != 0) return -1;
  if (full) *full = r->syms[r->nsyms - 1].name;
  return 0;
}

/* EnumDescriptorProto: the enum, and its values, which protobuf scopes
 * beside the enum (batch.v1.JOB_STATE_PENDING), not inside it. */
static int index_enum(bok_rpc_reflection_t *r, const char *scope, rd_t e, size_t file) {
  if (add_named(r, scope, e, file, NULL) != 0) return -1;
  uint32_t n;
  rd_t sub;
  int k;
  while ((k = rd_field(&e, &n, &sub)) == 1)
    if (n == 2 && sub.p && add_named(r, scope, sub, file, NULL) != 0) return -1;
  return k;
}

/* DescriptorProto: the message, its fields (2), nested types (3), enums (4),
 * extensions (6) and oneofs (8). */
static int index_message(bok_rpc_reflection_t *r, const char *scope, rd_t m, size_t file) {
  const char *full;
  if (add_named(r, scope, m, file, &full) != 0) return -1;
  char *self = strdup(full); /* syms may move while children are added */
  if (!self) return -1;
  uint32_t n;
  rd_t sub;
  int k, rc = 0;
  while (rc == 0 && (k = rd_field(&m, &n, &sub)) == 1) {
    if (!sub.p) continue;
    if (n == 2 || n == 6 || n == 8) rc = add_named(r, self, sub, file, NULL);
    else if (n == 3) rc = index_message(r, self, sub, file);
    else if (n == 4) rc = index_enum(r, self, sub, file);
  }
  if (rc == 0 && k < 0) rc = -1;
  free(self);
  return rc;
}

/* ServiceDescriptorProto: the service and its methods (2). */
static int index_service(bok_rpc_reflection_t *r, const char *scope, rd_t s, size_t file) {
  const char *full;
  if (add_named(r, scope, s, file, &full) != 0) return -1;
  char *self = strdup(full);
  if (!self) return -1;
  uint32_t n;
  rd_t sub;
  int k, rc = 0;
  while (rc == 0 && (k = rd_field(&s, &n, &sub)) == 1)
    if (n == 2 && sub.p) rc = add_named(r, self, sub, file, NULL);
  if (rc == 0 && k < 0) rc = -1;
  free(self);
  return rc;
}

/* FileDescriptorProto: name (1), package (2), imports (3), then messages (4),
 * enums (5), services (6) and extensions (7) under the package. */
static int index_file(bok_rpc_reflection_t *r, rd_t f, size_t file) {
  refl_file_t *rf = &r->files[file];
  rf->raw.data = (uint8_t *)f.p;
  rf->raw.len = (size_t)(f.end - f.p);
  rf->name = rd_string(f, 1);
  char *pkg = rd_string(f, 2);
  if (!rf->name || !pkg) goto fail;
  uint32_t n;
  rd_t sub, it = f;
  int k, rc = 0;
  while (rc == 0 && (k = rd_field(&it, &n, &sub)) == 1) {
    if (!sub.p) continue;
    if (n == 3) {
      char **d = realloc(rf->deps, (rf->ndeps + 1) * sizeof *d);
      if (!d) goto fail;
      rf->deps = d;
      d[rf->ndeps] = strndup((const char *)sub.p, (size_t)(sub.end - sub.p));
      if (!d[rf->ndeps++]) goto fail;
    } else if (n == 4) {
      rc = index_message(r, pkg, sub, file);
    } else if (n == 5) {
      rc = index_enum(r, pkg, sub, file);
    } else if (n == 6) {
      rc = index_service(r, pkg, sub, file);
    } else if (n == 7) {
      rc = add_named(r, pkg, sub, file, NULL);
    }
  }
  if (rc != 0 || k < 0) goto fail;
  free(pkg);
  return 0;
fail:
  free(pkg);
  return -1;
}

bok_rpc_reflection_t *bok_rpc_reflection_new(const uint8_t *set, size_t len) {
  bok_rpc_reflection_t *r = calloc(1, sizeof *r);
  if (!r) return NULL;
  rd_t all = {set, set ? set + len : set}, f;
  uint32_t n;
  int k;
  while ((k = rd_field(&all, &n, &f)) == 1) {
    if (n != 1 || !f.p) continue; /* FileDescriptorSet.file */
    refl_file_t *files = realloc(r->files, (r->nfiles + 1) * sizeof *files);
    if (!files) goto fail;
    r->files = files;
    memset(&files[r->nfiles], 0, sizeof *files);
    r->nfiles++;
    if (index_file(r, f, r->nfiles - 1) != 0) goto fail;
  }
  if (k < 0) goto fail;
  return r;
fail:
  bok_rpc_reflection_free(r);
  return NULL;
}

void bok_rpc_reflection_free(bok_rpc_reflection_t *r) {
  if (!r) return;
  for (size_t i = 0; i < r->nfiles; i++) {
    for (size_t j = 0; j < r->files[i].ndeps; j++) free(r->files[i].deps[j]);
    free(r->files[i].deps);
    free(r->files[i].name);
  }
  for (size_t i = 0; i < r->nsyms; i++) free(r->syms[i].name);
  free(r->files);
  free(r->syms);
  free(r);
}

/* ---- answers -------------------------------------------------------------- */

static long find_file(const bok_rpc_reflection_t *r, const char *name) {
  for (size_t i = 0; i < r->nfiles; i++)
    if (strcmp(r->files[i].name, name) == 0) return (long)i;
  return -1;
}

static long find_symbol(const bok_rpc_reflection_t *r, const char *name) {
  if (name[0] == '.') name++; /* ".batch.v1.Job" as in type references */
  for (size_t i = 0; i < r->nsyms; i++)
    if (strcmp(r->syms[i].name, name) == 0) return (long)r->syms[i].file;
  return -1;
}

/* Appends file i, then (depth first) the files it imports, each once. */
static void add_with_deps(const bok_rpc_reflection_t *r, size_t i, unsigned char *seen,
                          bok_rpc_reflection_answer_t *a) {
  if (seen[i]) return;
  seen[i] = 1;
  a->blobs[a->files.n_file_descriptor_proto++] = r->files[i].raw;
  for (size_t j = 0; j < r->files[i].ndeps; j++) {
    long d = find_file(r, r->files[i].deps[j]);
    if (d >= 0) add_with_deps(r, (size_t)d, seen, a);
  }
}

static void answer_error(bok_rpc_reflection_answer_t *a, bok_err_code_t code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void answer_error(bok_rpc_reflection_answer_t *a, bok_err_code_t code, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  vsnprintf(a->errmsg, sizeof a->errmsg, fmt, ap);
  va_end(ap);
  a->error.error_code = (int32_t)code;
  a->error.error_message = a->errmsg;
  a->msg.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ERROR_RESPONSE;
  a->msg.error_response = &a->error;
}

static void answer_file(const bok_rpc_reflection_t *r, long i, const char *what, const char *name,
                        bok_rpc_reflection_answer_t *a) {
  if (i < 0) {
    answer_error(a, BOK_ERR_NOT_FOUND, "%s not found: %.200s", what, name);
    return;
  }
  unsigned char *seen = calloc(r->nfiles, 1);
  a->blobs = calloc(r->nfiles, sizeof *a->blobs);
  if (!seen || !a->blobs) {
    free(seen);
    answer_error(a, BOK_ERR_INTERNAL, "out of memory");
    return;
  }
  add_with_deps(r, (size_t)i, seen, a);
  free(seen);
  a->files.file_descriptor_proto = a->blobs;
  a->msg.message_response_case =
      GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_FILE_DESCRIPTOR_RESPONSE;
  a->msg.file_descriptor_response = &a->files;
}

static void answer_list(const char *const *services, size_t n, bok_rpc_reflection_answer_t *a) {
  a->svcs = calloc(n ? n : 1, sizeof *a->svcs);
  a->svcp = calloc(n ? n : 1, sizeof *a->svcp);
  if (!a->svcs || !a->svcp) {
    answer_error(a, BOK_ERR_INTERNAL, "out of memory");
    return;
  }
  for (size_t i = 0; i < n; i++) {
    grpc__reflection__v1__service_response__init(&a->svcs[i]);
    a->svcs[i].name = (char *)services[i];
    a->svcp[i] = &a->svcs[i];
  }
  a->list.n_service = n;
  a->list.service = a->svcp;
  a->msg.message_response_case = GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_LIST_SERVICES_RESPONSE;
  a->msg.list_services_response = &a->list;
}

void bok_rpc_reflection_answer(const bok_rpc_reflection_t *r, const char *const *services, size_t nservices,
                               const Grpc__Reflection__V1__ServerReflectionRequest *req,
                               bok_rpc_reflection_answer_t *a) {
  memset(a, 0, sizeof *a);
  grpc__reflection__v1__server_reflection_response__init(&a->msg);
  grpc__reflection__v1__file_descriptor_response__init(&a->files);
  grpc__reflection__v1__list_service_response__init(&a->list);
  grpc__reflection__v1__error_response__init(&a->error);
  grpc__reflection__v1__extension_number_response__init(&a->ext);
  a->msg.valid_host = req->host ? req->host : (char *)"";
  a->msg.original_request = (Grpc__Reflection__V1__ServerReflectionRequest *)req;
  switch (req->message_request_case) {
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_BY_FILENAME:
    answer_file(r, find_file(r, req->file_by_filename), "file", req->file_by_filename, a);
    break;
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_SYMBOL:
    answer_file(r, find_symbol(r, req->file_containing_symbol), "symbol", req->file_containing_symbol, a);
    break;
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_FILE_CONTAINING_EXTENSION:
    /* The API declares no extensions. */
    answer_error(a, BOK_ERR_NOT_FOUND, "no extensions: the API declares none");
    break;
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_ALL_EXTENSION_NUMBERS_OF_TYPE:
    if (find_symbol(r, req->all_extension_numbers_of_type) < 0) {
      answer_error(a, BOK_ERR_NOT_FOUND, "type not found: %.200s", req->all_extension_numbers_of_type);
      break;
    }
    a->ext.base_type_name = req->all_extension_numbers_of_type; /* no extension numbers */
    a->msg.message_response_case =
        GRPC__REFLECTION__V1__SERVER_REFLECTION_RESPONSE__MESSAGE_RESPONSE_ALL_EXTENSION_NUMBERS_RESPONSE;
    a->msg.all_extension_numbers_response = &a->ext;
    break;
  case GRPC__REFLECTION__V1__SERVER_REFLECTION_REQUEST__MESSAGE_REQUEST_LIST_SERVICES:
    answer_list(services, nservices, a);
    break;
  default:
    answer_error(a, BOK_ERR_INVALID, "the request asks nothing (no message_request set)");
    break;
  }
}

void bok_rpc_reflection_answer_done(bok_rpc_reflection_answer_t *a) {
  free(a->blobs);
  free(a->svcs);
  free(a->svcp);
  a->blobs = NULL;
  a->svcs = NULL;
  a->svcp = NULL;
}
