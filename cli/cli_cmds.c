/* batchcli commands: argument parsing, id resolution, output. */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <unistd.h>

#include "bok/buf.h"
#include "bok/detect.h"
#include "bok/util.h"
#include "cli.h"
#include "cli_format.h"

static const char *USAGE =
    "usage: batchcli [--json] [--tenant ID] <command> [args]\n"
    "\n"
    "models:\n"
    "  model list                          list models\n"
    "  model describe <model>              show a model and its schema\n"
    "  model create <name> <schema.json>   create a model\n"
    "  model update <model> <schema.json>  new schema version (same id)\n"
    "  model delete <model>                delete a model\n"
    "jobs:\n"
    "  job list [--state S] [--model M] [--limit N]\n"
    "                                      list jobs, newest first\n"
    "  job status <job>                    one job's state and counters\n"
    "  job create <model> <file|-> [--format F] [--separator C] [--encoding E] [--quote C]\n"
    "             [--no-header] [--dry-run] [--max-errors N] [--max-error-rate R] [--wait]\n"
    "                                      upload a CSV/NDJSON file (- = stdin) as a job; waits\n"
    "                                      up to 2 s (--wait: to the end), fails if the job fails\n"
    "  job watch <job>                     follow a job until it finishes\n"
    "  job cancel <job>                    cancel a job\n"
    "  job rejected <job> [--download FILE [--annotate]]\n"
    "                                      rejected rows with reasons, or as a file to fix\n"
    "  job errors <job>                    error summary: counts per code and column\n"
    "  job reprocess <job>                 reprocess the rejected rows (also: reprocess <job>)\n"
    "other:\n"
    "  schema [--rows N] [--confidence P] [--explain] <data file>\n"
    "                                      suggest a schema from a CSV/NDJSON sample (offline):\n"
    "                                      N rows read (10000), a type must fit P of the values\n"
    "                                      (0.95); --explain: why, per column (on stderr)\n"
    "  completion bash                     a bash completion script\n"
    "\n"
    "Options: --json (JSON output), --tenant ID, --wide (table cells never cut), --version.\n"
    "batchcli <command> --help: the command's options and examples.\n"
    "Ids accept any unique prefix of 4+ characters (any case); models also their exact name.\n"
    "Environment: BATCH_API_URL (default http://localhost:8000), BATCH_TENANT,\n"
    "TENANT_HEADER (default X-Tenant-ID), BATCH_API_KEY (sent as Authorization: Bearer).\n"
    "Exit codes: 0 ok, 1 error; job watch and job create --wait: 0 SUCCESS, 2 PARTIAL_SUCCESS,\n"
    "3 FAILED, 4 CANCELLED; job create: 3 when the job failed.\n";

static int fail(cli_t *c, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static int fail(cli_t *c, const char *fmt, ...) {
  va_list ap;
  va_start(ap, fmt);
  fputs("batchcli: ", c->err);
  vfprintf(c->err, fmt, ap);
  fputc('\n', c->err);
  va_end(ap);
  return 1;
}

static const char *jstr(json_t *o, const char *k) {
  json_t *v = json_object_get(o, k);
  return json_is_string(v) ? json_string_value(v) : "";
}

static int64_t jint(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

static void print_json(cli_t *c, json_t *j) {
  char *t = json_dumps(j, JSON_INDENT(2) | JSON_PRESERVE_ORDER | JSON_ENCODE_ANY);
  fprintf(c->out, "%s\n", t ? t : "null");
  free(t);
}

/* Reports a non-2xx answer; returns 1. `what` names the resource ("job abcd"). */
static int http_error(cli_t *c, int st, json_t *resp, const char *what) {
  if (st < 0) return 1;
  const char *msg = jstr(resp, "error");
  if (st == 404) return fail(c, "%s not found", what);
  return fail(c, "%s (HTTP %d)", msg[0] ? msg : "request failed", st);
}

/* Resolves a job or model reference to a full id: a full UUID as is; else a
 * unique prefix (4+ chars) or, for models, an exact name. */
static int resolve(cli_t *c, int model, const char *ref, char out[40]) {
  if (bok_uuid_valid(ref)) {
    snprintf(out, 40, "%s", ref);
    for (char *p = out; *p; p++) *p = (char)(*p >= 'A' && *p <= 'F' ? *p + 32 : *p);
    return 0;
  }
  const char *kind = model ? "model" : "job";
  const char *key = model ? "model_id" : "job_id";
  json_t *list = NULL;
  int st = cli_http(c, "GET", model ? "/models" : "/jobs", NULL, 0, NULL, &list);
  if (st != 200) {
    int r = http_error(c, st, list, kind);
    json_decref(list);
    return r;
  }
  size_t rl = strlen(ref), i;
  json_t *it, *match = NULL;
  int n = 0;
  bok_buf_t cands = BOK_BUF_INIT(0);
  json_array_foreach(list, i, it) {
    const char *id = jstr(it, key);
    int hit = (rl >= 4 && strncasecmp(id, ref, rl) == 0) || (model && strcmp(jstr(it, "name"), ref) == 0);
    if (hit) {
      match = it;
      n++;
      bok_buf_printf(&cands, "\n  %s %s", id, model ? jstr(it, "name") : jstr(it, "state"));
    }
  }
  int rc = 0;
  if (n == 1) {
    snprintf(out, 40, "%s", jstr(match, key));
  } else if (n == 0) {
    rc = rl < 4 && !model ? fail(c, "%s id prefix '%s' is too short: give at least 4 characters", kind, ref)
                          : fail(c, "%s %s not found", kind, ref);
  } else {
    rc = fail(c, "%s '%s' is ambiguous; candidates:%s", kind, ref, cands.data);
  }
  bok_buf_free(&cands);
  json_decref(list);
  return rc;
}

/* ---- jobs ----------------------------------------------------------------------- */

static cli_job_row_t job_row(json_t *j) {
  cli_job_row_t r = {jstr(j, "job_id"), jstr(j, "model_name"), jstr(j, "state"), jint(j, "total"),
                     jint(j, "success"), jint(j, "errors"), jint(j, "waiting_ms"), jint(j, "processing_ms")};
  return r;
}

static int print_jobs(cli_t *c, json_t *arr) {
  size_t n = json_array_size(arr);
  cli_job_row_t *rows = calloc(n ? n : 1, sizeof *rows);
  for (size_t i = 0; i < n; i++) rows[i] = job_row(json_array_get(arr, i));
  bok_buf_t b = BOK_BUF_INIT(0);
  cli_fmt_job_table(&b, rows, n);
  fputs(b.data, c->out);
  bok_buf_free(&b);
  free(rows);
  return 0;
}

/* Reports a failed call about the job or model `ref` ("job {ref} not found"
 * on 404); returns 1. */
static int ref_error(cli_t *c, int st, json_t *resp, int model, const char *ref) {
  char what[128];
  snprintf(what, sizeof what, "%s %s", model ? "model" : "job", ref);
  return http_error(c, st, resp, what);
}

/* GET /jobs/{id}{suffix} (model: /models/...) for the reference `ref`: 0
 * with *out (the caller's to json_decref), or 1 (reported, *out NULL). */
static int get_ref(cli_t *c, int model, const char *ref, const char *suffix, json_t **out) {
  char id[40], path[160];
  *out = NULL;
  if (resolve(c, model, ref, id)) return 1;
  snprintf(path, sizeof path, "/%s/%s%s", model ? "models" : "jobs", id, suffix);
  int st = cli_http(c, "GET", path, NULL, 0, NULL, out);
  if (st == 200) return 0;
  ref_error(c, st, *out, model, ref);
  json_decref(*out);
  *out = NULL;
  return 1;
}

static int get_job(cli_t *c, const char *ref, json_t **job) { return get_ref(c, 0, ref, "", job); }

/* The lines under a job table: dry run, the job-level error and (when
 * `warnings`) the upload's warnings, each after `prefix`. */
static void print_job_notes(cli_t *c, json_t *j, const char *prefix, int warnings) {
  if (json_is_true(json_object_get(j, "dry_run")))
    fprintf(c->out, "%sdry run: rows validated and counted, no event published\n", prefix);
  const char *e = jstr(j, "error");
  if (*e) fprintf(c->out, "%serror: %s\n", prefix, e);
  if (!warnings) return;
  size_t i;
  json_t *w;
  json_array_foreach(json_object_get(j, "warnings"), i, w) fprintf(c->out, "%swarning: %s\n", prefix, jstr(w, "message"));
}

#define LIST_USAGE "job list [--state S] [--model M] [--limit N]"

/* The value of option `name` at argv[*i] ("--name V" or "--name=V"); NULL
 * when argv[*i] is another option. *missing when the value is. */
static const char *opt_value(int argc, char **argv, int *i, const char *name, int *missing) {
  size_t l = strlen(name);
  const char *a = argv[*i];
  if (strncmp(a, name, l) != 0) return NULL;
  if (a[l] == '=') return a + l + 1;
  if (a[l] != '\0') return NULL;
  if (*i + 1 >= argc) {
    *missing = 1;
    return NULL;
  }
  return argv[++*i];
}

/* Keeps the jobs of model `mid` (all when NULL), at most `limit` (0 = all). */
static void filter_jobs(json_t *arr, const char *mid, long limit) {
  for (size_t i = json_array_size(arr); i-- > 0;)
    if (mid && strcmp(jstr(json_array_get(arr, i), "model_id"), mid) != 0) json_array_remove(arr, i);
  while (limit > 0 && json_array_size(arr) > (size_t)limit) json_array_remove(arr, json_array_size(arr) - 1);
}

static int cmd_job_list(cli_t *c, int argc, char **argv) {
  const char *state = NULL, *model = NULL;
  long limit = 0;
  for (int i = 0; i < argc; i++) {
    int missing = 0;
    const char *v;
    if ((v = opt_value(argc, argv, &i, "--state", &missing))) {
      state = v;
    } else if ((v = opt_value(argc, argv, &i, "--model", &missing))) {
      model = v;
    } else if ((v = opt_value(argc, argv, &i, "--limit", &missing))) {
      char *end;
      errno = 0;
      limit = strtol(v, &end, 10);
      if (errno || *end || end == v || limit < 1 || limit > 1000000)
        return fail(c, "--limit: a whole number from 1 to 1000000, not '%s'", v);
    } else {
      return fail(c, missing ? "%s needs a value (usage: batchcli %s)" : "job list: unknown argument %s (usage: "
                  "batchcli %s)", argv[i], LIST_USAGE);
    }
  }
  char mid[40], path[160], st_up[32];
  if (model && resolve(c, 1, model, mid)) return 1;
  snprintf(st_up, sizeof st_up, "%s", state ? state : "");
  for (char *p = st_up; *p; p++) *p = (char)(*p >= 'a' && *p <= 'z' ? *p - 32 : *p);
  int n = snprintf(path, sizeof path, "/jobs");
  char sepc = '?';
  if (state) n += snprintf(path + n, sizeof path - (size_t)n, "%cstate=%s", sepc, st_up), sepc = '&';
  if (limit && !model) snprintf(path + n, sizeof path - (size_t)n, "%climit=%ld", sepc, limit);
  json_t *arr = NULL;
  int st = cli_http(c, "GET", path, NULL, 0, NULL, &arr);
  if (st == 200) filter_jobs(arr, model ? mid : NULL, limit);
  int rc = st == 200 ? (c->json ? (print_json(c, arr), 0) : print_jobs(c, arr)) : http_error(c, st, arr, "jobs");
  if (st == 200 && !c->json) {
    size_t i;
    json_t *j;
    json_array_foreach(arr, i, j) {
      char prefix[16];
      snprintf(prefix, sizeof prefix, "%.8s ", jstr(j, "job_id"));
      print_job_notes(c, j, prefix, 0);
    }
  }
  json_decref(arr);
  return rc;
}

static int cmd_job_status(cli_t *c, const char *ref) {
  json_t *j;
  if (get_job(c, ref, &j)) return 1;
  if (c->json) {
    print_json(c, j);
  } else {
    json_t *arr = json_array();
    json_array_append(arr, j);
    print_jobs(c, arr);
    json_decref(arr);
    print_job_notes(c, j, "", 1);
  }
  json_decref(j);
  return 0;
}

static int is_final(const char *state) { return strcmp(state, "PENDING") != 0 && strcmp(state, "RUNNING") != 0; }

static int state_code(const char *state) {
  return !strcmp(state, "SUCCESS") ? 0 : !strcmp(state, "PARTIAL_SUCCESS") ? 2 : !strcmp(state, "FAILED") ? 3 : 4;
}

/* After an upload: follows the job for up to 2 s (or to its end with
 * `wait_all`) so that a job failing at once says so. Takes j; returns the
 * exit code. A FAILED job is reported on stderr with its error (3). */
static int create_outcome(cli_t *c, json_t *j, int wait_all) {
  char id[40];
  snprintf(id, sizeof id, "%s", jstr(j, "job_id"));
  int64_t deadline = bok_mono_ms() + 2000;
  while (!is_final(jstr(j, "state")) && (wait_all || bok_mono_ms() < deadline)) {
    usleep(200 * 1000);
    json_t *n = NULL;
    if (get_job(c, id, &n)) {
      json_decref(j);
      return 1;
    }
    json_decref(j);
    j = n;
  }
  const char *state = jstr(j, "state");
  int rc = 0;
  if (c->json) {
    print_json(c, j);
  } else if (wait_all && is_final(state)) {
    json_t *arr = json_array();
    json_array_append(arr, j);
    print_jobs(c, arr);
    json_decref(arr);
    print_job_notes(c, j, "", 0);
  }
  if (!strcmp(state, "FAILED")) {
    const char *e = jstr(j, "error");
    char n[32];
    cli_fmt_thousands(jint(j, "errors"), n);
    if (*e)
      fprintf(c->err, "batchcli: job %.8s FAILED: %s\n", id, e);
    else
      fprintf(c->err, "batchcli: job %.8s FAILED: no row is valid (%s rejected; see: batchcli job errors %.8s)\n", id,
              n, id);
    rc = 3;
  } else if (wait_all && is_final(state)) {
    rc = state_code(state);
  }
  json_decref(j);
  return rc;
}

#define CREATE_USAGE                                                                                  \
  "job create <model> <file|-> [--format F] [--separator C] [--encoding E] [--quote C] [--no-header] " \
  "[--dry-run] [--max-errors N] [--max-error-rate R] [--wait]"

/* Options of job create with a value, and their form fields (SPEC 12). */
static const struct {
  const char *opt, *field;
} CREATE_OPTS[] = {{"--max-errors", "max_errors"}, {"--max-error-rate", "max_error_rate"}, {"--format", "format"},
                   {"--separator", "separator"},   {"--encoding", "encoding"},             {"--quote", "quote"}};
#define N_CREATE_OPTS (sizeof CREATE_OPTS / sizeof CREATE_OPTS[0])

/* job create: positional model and file ("-" = stdin), then options (any
 * order). */
static int cmd_job_create(cli_t *c, int argc, char **argv) {
  const char *pos[2] = {NULL, NULL}, *fields[2 * (N_CREATE_OPTS + 2)];
  size_t npos = 0, nf = 0;
  int wait_all = 0;
  for (int i = 0; i < argc; i++) {
    const char *a = argv[i];
    const char *val = NULL;
    int missing = 0;
    size_t k;
    for (k = 0; k < N_CREATE_OPTS && !val && !missing; k++) val = opt_value(argc, argv, &i, CREATE_OPTS[k].opt, &missing);
    if (missing) return fail(c, "%s needs a value (usage: batchcli %s)", a, CREATE_USAGE);
    if (val) {
      const char *name = CREATE_OPTS[k - 1].field;
      size_t f;
      for (f = 0; f < nf && strcmp(fields[2 * f], name) != 0; f++) {
      }
      fields[2 * f] = name, fields[2 * f + 1] = val; /* the last one given wins */
      if (f == nf) nf++;
    } else if (!strcmp(a, "--dry-run") || !strcmp(a, "--no-header") || !strcmp(a, "--header")) {
      const char *name = a[2] == 'd' ? "dry_run" : "header";
      size_t f;
      for (f = 0; f < nf && strcmp(fields[2 * f], name) != 0; f++) {
      }
      fields[2 * f] = name, fields[2 * f + 1] = !strcmp(a, "--no-header") ? "false" : "true";
      if (f == nf) nf++;
    } else if (!strcmp(a, "--wait")) {
      wait_all = 1;
    } else if (a[0] == '-' && a[1] == '-') {
      return fail(c, "job create: unknown option %s (usage: batchcli %s)", a, CREATE_USAGE);
    } else if (npos < 2) {
      pos[npos++] = a;
    } else {
      return fail(c, "usage: batchcli %s", CREATE_USAGE);
    }
  }
  if (npos != 2) return fail(c, "usage: batchcli %s", CREATE_USAGE);
  const char *model_ref = pos[0], *file = pos[1];
  char mid[40];
  if (strcmp(file, "-") != 0 && access(file, R_OK) != 0) return fail(c, "cannot read %s: %s", file, strerror(errno));
  if (resolve(c, 1, model_ref, mid)) return 1;
  json_t *j = NULL;
  int st = cli_http_upload(c, mid, file, fields, nf, &j);
  if (st != 202) {
    int rc = ref_error(c, st, j, 1, model_ref);
    json_decref(j);
    return rc;
  }
  if (!c->json) {
    int dry = json_is_true(json_object_get(j, "dry_run"));
    fprintf(c->out, "job %.8s created%s.\n", jstr(j, "job_id"), dry ? " (dry run: no event will be published)" : "");
    size_t i;
    json_t *w;
    json_array_foreach(json_object_get(j, "warnings"), i, w) fprintf(c->out, "warning: %s\n", jstr(w, "message"));
    fflush(c->out);
  }
  return create_outcome(c, j, wait_all);
}


/* Resolves `ref` (a job, or a model when `model`), sends `method` to
 * /jobs|/models/<id><suffix> and expects `want`. On success prints the
 * server's JSON (--json) or `done_fmt` with a short id: the resolved one, or
 * the answer's job_id when `answer_id` (reprocess makes a new job). */
static int id_action(cli_t *c, int model, const char *ref, const char *method, const char *suffix, int want,
                     const char *done_fmt, int answer_id) {
  char id[40], path[160];
  if (resolve(c, model, ref, id)) return 1;
  snprintf(path, sizeof path, "/%s/%s%s", model ? "models" : "jobs", id, suffix);
  json_t *r = NULL;
  int st = cli_http(c, method, path, strcmp(method, "POST") == 0 ? "" : NULL, 0, "application/json", &r);
  int rc = 0;
  if (st != want) {
    rc = ref_error(c, st, r, model, ref);
  } else if (c->json) {
    print_json(c, r);
  } else {
    fprintf(c->out, done_fmt, answer_id ? jstr(r, "job_id") : id);
  }
  json_decref(r);
  return rc;
}

static int cmd_job_cancel(cli_t *c, const char *ref) {
  return id_action(c, 0, ref, "DELETE", "", 200, "job %.8s cancelled\n", 0);
}

/* As in the guide: the line names the job given (the parent); the new job's
 * short id follows on a second line (--json: the new job). */
static int cmd_job_reprocess(cli_t *c, const char *ref) {
  char id[40], path[160];
  if (resolve(c, 0, ref, id)) return 1;
  snprintf(path, sizeof path, "/jobs/%s/reprocess", id);
  json_t *r = NULL;
  int st = cli_http(c, "POST", path, "", 0, "application/json", &r);
  int rc = 0;
  if (st != 202) {
    rc = ref_error(c, st, r, 0, ref);
  } else if (c->json) {
    print_json(c, r);
  } else {
    fprintf(c->out, "Reprocessing job %.8s created\nnew job: %.8s\n", id, jstr(r, "job_id"));
  }
  json_decref(r);
  return rc;
}

static int cmd_job_errors(cli_t *c, const char *ref) {
  json_t *arr = NULL;
  if (get_ref(c, 0, ref, "/errors", &arr)) return 1;
  if (c->json) {
    print_json(c, arr);
  } else {
    size_t n = json_array_size(arr);
    cli_error_row_t *rows = calloc(n ? n : 1, sizeof *rows);
    char **ex = calloc(n ? n : 1, sizeof *ex);
    for (size_t i = 0; i < n; i++) {
      json_t *x = json_array_get(arr, i);
      json_t *e = json_object_get(x, "example");
      ex[i] = e && !json_is_null(e) ? json_dumps(e, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15)) : NULL;
      cli_error_row_t r = {jstr(x, "code"), jstr(x, "column"), jstr(x, "type"), ex[i], jint(x, "count"),
                           jint(x, "first_row")};
      rows[i] = r;
    }
    bok_buf_t b = BOK_BUF_INIT(0);
    cli_fmt_errors_table(&b, rows, n);
    fputs(b.data, c->out);
    bok_buf_free(&b);
    for (size_t i = 0; i < n; i++) free(ex[i]);
    free(ex);
    free(rows);
  }
  json_decref(arr);
  return 0;
}

/* job rejected <job> --download FILE [--annotate]: the rejected rows as a
 * file, streamed to disk ("-" = stdout). A failed download leaves no file. */
static int cmd_job_download(cli_t *c, const char *ref, const char *file, int annotate) {
  char id[40], path[200];
  if (resolve(c, 0, ref, id)) return 1;
  snprintf(path, sizeof path, "/jobs/%s/rejected/download%s", id, annotate ? "?annotate=true" : "");
  int to_stdout = strcmp(file, "-") == 0;
  FILE *f = to_stdout ? c->out : fopen(file, "wb");
  if (!f) return fail(c, "cannot write %s: %s", file, strerror(errno));
  json_t *r = NULL;
  int st = cli_http_download(c, path, f, &r);
  int rc = 0;
  if (!to_stdout && fclose(f) != 0 && st == 200) rc = fail(c, "cannot write %s: %s", file, strerror(errno));
  if (st != 200) rc = ref_error(c, st, r, 0, ref);
  if (rc && !to_stdout) unlink(file);
  if (!rc && !to_stdout) fprintf(c->out, "rejected rows of job %.8s written to %s\n", id, file);
  json_decref(r);
  return rc;
}

static int cmd_model_delete(cli_t *c, const char *ref) {
  return id_action(c, 1, ref, "DELETE", "", 200, "model %.8s deleted\n", 0);
}

static int cmd_job_rejected(cli_t *c, const char *ref) {
  char id[40], path[160];
  if (resolve(c, 0, ref, id)) return 1;
  json_t *all = json_array();
  int64_t after = 0;
  const int limit = 1000;
  for (;;) {
    snprintf(path, sizeof path, "/jobs/%s/rejected?limit=%d&after_row=%lld", id, limit, (long long)after);
    json_t *page = NULL;
    int st = cli_http(c, "GET", path, NULL, 0, NULL, &page);
    if (st != 200) {
      ref_error(c, st, page, 0, ref);
      json_decref(page);
      json_decref(all);
      return 1;
    }
    size_t n = json_array_size(page);
    json_array_extend(all, page);
    /* the limit counts rows; a page with fewer rows is the last */
    int64_t rows = 0, last = -1;
    for (size_t i = 0; i < n; i++) {
      int64_t r = jint(json_array_get(page, i), "row");
      if (r != last) rows++;
      last = r;
    }
    json_decref(page);
    if (rows < limit) break;
    after = last;
  }
  if (c->json) {
    print_json(c, all);
  } else {
    size_t n = json_array_size(all);
    cli_rejected_row_t *rows = calloc(n ? n : 1, sizeof *rows);
    char **obs = calloc(n ? n : 1, sizeof *obs);
    for (size_t i = 0; i < n; i++) {
      json_t *x = json_array_get(all, i);
      json_t *o = json_object_get(x, "observed");
      obs[i] = o ? json_dumps(o, JSON_ENCODE_ANY | JSON_REAL_PRECISION(15)) : NULL;
      cli_rejected_row_t r = {jint(x, "row"), jstr(x, "event_id"), jstr(x, "column"), jstr(x, "type"),
                              jstr(x, "error"), obs[i], jstr(x, "message")};
      rows[i] = r;
    }
    bok_buf_t b = BOK_BUF_INIT(0);
    cli_fmt_rejected_table_w(&b, rows, n, c->wide ? 0 : (size_t)c->columns);
    fputs(b.data, c->out);
    bok_buf_free(&b);
    for (size_t i = 0; i < n; i++) free(obs[i]);
    free(obs);
    free(rows);
  }
  json_decref(all);
  return 0;
}


/* Prints one state of a watched job; 1 when it is final (*code: the exit
 * code). */
static int print_watched(cli_t *c, json_t *j, int tty, int *code) {
  const char *state = jstr(j, "state");
  int done = strcmp(state, "PENDING") != 0 && strcmp(state, "RUNNING") != 0;
  if (c->json) {
    char *t = json_dumps(j, JSON_COMPACT | JSON_PRESERVE_ORDER);
    fprintf(c->out, "%s\n", t);
    free(t);
  } else {
    cli_job_row_t row = job_row(j);
    bok_buf_t b = BOK_BUF_INIT(0);
    cli_fmt_job_line(&b, &row);
    if (tty) {
      b.data[b.len - 1] = '\0'; /* redraw in place */
      fprintf(c->out, "\r\033[K%s%s", b.data, done ? "\n" : "");
    } else {
      fputs(b.data, c->out);
    }
    bok_buf_free(&b);
  }
  if (done && !c->json && *jstr(j, "error")) fprintf(c->out, "error: %s\n", jstr(j, "error"));
  fflush(c->out);
  *code = state_code(state);
  return done;
}

typedef struct {
  cli_t *c;
  int tty, done, code, events;
} watch_ctx_t;

static int on_job_event(void *ud, const char *event, const char *data) {
  watch_ctx_t *w = ud;
  if (strcmp(event, "job") != 0) return 0;
  json_t *j = json_loads(data, JSON_DECODE_ANY, NULL);
  if (!json_is_object(j)) {
    json_decref(j);
    return 1; /* not what we expect: poll instead */
  }
  /* the order of keys as GET /jobs/{id} gives them (--json prints them as is) */
  w->events++;
  w->done = print_watched(w->c, j, w->tty, &w->code);
  json_decref(j);
  return w->done;
}

/* Follows a job: GET /jobs/{id}/events (server-sent events, a line per
 * change); polling GET /jobs/{id} every `interval` seconds when the gateway
 * has no event stream (404: an older gateway) or the stream breaks off. */
static int cmd_job_watch(cli_t *c, const char *ref, double interval) {
  char id[40];
  if (resolve(c, 0, ref, id)) return 1;
  int tty = isatty(fileno(c->out));
  watch_ctx_t w = {c, tty, 0, 0, 0};
  char path[128];
  snprintf(path, sizeof path, "/jobs/%s/events", id);
  json_t *err = NULL;
  cli_http_events(c, path, on_job_event, &w, &err);
  json_decref(err);
  if (w.done) return w.code;
  for (;;) {
    json_t *j = NULL;
    if (get_job(c, id, &j)) return 1;
    int code;
    int done = print_watched(c, j, tty, &code);
    json_decref(j);
    if (done) return code;
    usleep((useconds_t)(interval * 1e6));
  }
}

/* ---- models ------------------------------------------------------------------------ */

static int count_columns(json_t *m) {
  return (int)json_object_size(json_object_get(json_object_get(m, "schema"), "properties"));
}

static int cmd_model_list(cli_t *c) {
  json_t *arr = NULL;
  int st = cli_http(c, "GET", "/models", NULL, 0, NULL, &arr);
  if (st != 200) {
    int r = http_error(c, st, arr, "models");
    json_decref(arr);
    return r;
  }
  if (c->json) {
    print_json(c, arr);
  } else {
    size_t i, wn = 11;
    json_t *m;
    bok_buf_t e = BOK_BUF_INIT(0);
    json_array_foreach(arr, i, m) {
      e.len = 0;
      cli_fmt_escape(&e, jstr(m, "name"));
      if (cli_display_width(e.data) > wn) wn = cli_display_width(e.data);
    }
    fprintf(c->out, "MODEL    %-*s VERSION COLUMNS CREATED\n", (int)wn, "NAME");
    fprintf(c->out, "-------- ");
    for (size_t k = 0; k < wn; k++) fputc('-', c->out);
    fprintf(c->out, " ------- ------- ------------------------\n");
    json_array_foreach(arr, i, m) {
      e.len = 0;
      cli_fmt_escape(&e, jstr(m, "name"));
      fprintf(c->out, "%.8s %s%*s %7lld %7d %s\n", jstr(m, "model_id"), e.data,
              (int)(wn - cli_display_width(e.data)), "", (long long)jint(m, "version"), count_columns(m),
              jstr(m, "created_at"));
    }
    bok_buf_free(&e);
  }
  json_decref(arr);
  return 0;
}

static int cmd_model_describe(cli_t *c, const char *ref) {
  json_t *m = NULL;
  if (get_ref(c, 1, ref, "", &m)) return 1;
  if (c->json) {
    print_json(c, m);
  } else {
    fprintf(c->out, "MODEL    %s\nNAME     %s\nTENANT   %s\nVERSION  %lld\nTOPIC    %s\nCREATED  %s\nUPDATED  %s\nSCHEMA\n",
            jstr(m, "model_id"), jstr(m, "name"), jstr(m, "tenant_id"), (long long)jint(m, "version"),
            jstr(m, "topic"), jstr(m, "created_at"), jstr(m, "updated_at"));
    print_json(c, json_object_get(m, "schema"));
  }
  json_decref(m);
  return 0;
}

static json_t *load_schema(cli_t *c, const char *path) {
  json_error_t je;
  json_t *s = json_load_file(path, 0, &je);
  if (!s) fail(c, "%s:%d: %s", path, je.line, je.text);
  return s;
}

static int model_write(cli_t *c, const char *method, const char *path, json_t *body, int want, const char *verb,
                       const char *what) {
  char *text = json_dumps(body, JSON_COMPACT | JSON_PRESERVE_ORDER);
  json_t *m = NULL;
  int st = cli_http(c, method, path, text, strlen(text), "application/json", &m);
  free(text);
  int rc = 0;
  if (st != want) {
    rc = http_error(c, st, m, what);
  } else if (c->json) {
    print_json(c, m);
  } else {
    fprintf(c->out, "model %.8s %s (version %lld).\n", jstr(m, "model_id"), verb, (long long)jint(m, "version"));
  }
  json_decref(m);
  return rc;
}

static int cmd_model_create(cli_t *c, const char *name, const char *file) {
  json_t *s = load_schema(c, file);
  if (!s) return 1;
  json_t *body = json_object();
  json_object_set_new(body, "name", json_string(name));
  json_object_set_new(body, "schema", s);
  int rc = model_write(c, "POST", "/models", body, 201, "created", "models");
  json_decref(body);
  return rc;
}

static int cmd_model_update(cli_t *c, const char *ref, const char *file) {
  char id[40], path[128];
  if (resolve(c, 1, ref, id)) return 1;
  json_t *s = load_schema(c, file);
  if (!s) return 1;
  json_t *body = json_object();
  json_object_set_new(body, "schema", s);
  snprintf(path, sizeof path, "/models/%s", id);
  char what[128];
  snprintf(what, sizeof what, "model %s", ref);
  int rc = model_write(c, "PUT", path, body, 200, "updated", what);
  json_decref(body);
  return rc;
}


/* At most this much of a sample is read: enough for 10,000 rows of 6 KiB. */
#define SCHEMA_SAMPLE_MAX (64u << 20)

/* Reads the start of a sample file, cut after its last complete line when
 * the file is longer than the cap. */
static char *read_sample(cli_t *c, const char *path, size_t *len) {
  FILE *f = fopen(path, "rb");
  if (!f) {
    fail(c, "cannot read %s: %s", path, strerror(errno));
    return NULL;
  }
  bok_buf_t b = BOK_BUF_INIT(SCHEMA_SAMPLE_MAX + 1);
  char tmp[65536];
  size_t n;
  while (b.len < SCHEMA_SAMPLE_MAX && (n = fread(tmp, 1, sizeof tmp, f)) > 0) bok_buf_append(&b, tmp, n);
  int more = fgetc(f) != EOF;
  fclose(f);
  if (more || b.len > SCHEMA_SAMPLE_MAX) {
    char *nl = b.len ? memrchr(b.data, '\n', b.len) : NULL;
    if (nl) b.len = (size_t)(nl - b.data) + 1;
  }
  return bok_buf_steal(&b, len);
}

/* batchcli schema [--rows N] [--confidence P] [--explain] <file>: detection
 * offline (lib/rows/detect.c, as POST /schema). --explain writes the report
 * to stderr so that stdout stays the schema; with --json both go to stdout
 * as {"schema":..., "explain":...}. */
static int cmd_schema(cli_t *c, int argc, char **argv) {
  bok_detect_opts_t o;
  bok_detect_opts_init(&o);
  int explain = 0;
  const char *file = NULL;
  for (int i = 1; i < argc; i++) {
    const char *a = argv[i], *val = NULL;
    if (!strcmp(a, "--explain")) {
      explain = 1;
      continue;
    }
    if (!strcmp(a, "--rows") || !strcmp(a, "--confidence")) {
      if (i + 1 >= argc) return fail(c, "%s needs a value", a);
      val = argv[++i];
    } else if (!strncmp(a, "--rows=", 7) || !strncmp(a, "--confidence=", 13)) {
      val = strchr(a, '=') + 1;
    } else if (a[0] == '-' && a[1]) {
      return fail(c, "schema: unknown option '%s' (usage: batchcli schema [--rows N] [--confidence P] [--explain] <file>)", a);
    } else if (file) {
      return fail(c, "usage: batchcli schema [--rows N] [--confidence P] [--explain] <file>");
    } else {
      file = a;
      continue;
    }
    char *end;
    errno = 0;
    if (a[2] == 'r') {
      long long n = strtoll(val, &end, 10);
      if (errno || *end || end == val || n < 1 || n > 100000000)
        return fail(c, "--rows: a whole number of rows from 1 to 100000000, not '%s'", val);
      o.max_rows = (size_t)n;
    } else {
      double p = strtod(val, &end);
      if (*end == '%') end++, p /= 100;
      else if (p > 1 && p <= 100) p /= 100;
      if (errno || *end || end == val || !(p > 0 && p <= 1))
        return fail(c, "--confidence: a share in (0, 1] or a percentage (95, 95%%), not '%s'", val);
      o.confidence = p;
    }
  }
  if (!file) return fail(c, "usage: batchcli schema [--rows N] [--confidence P] [--explain] <file>");
  size_t len;
  char *data = read_sample(c, file, &len);
  if (!data) return 1;
  char err[200], *report = NULL;
  char *s = bok_detect(data, len, &o, explain ? &report : NULL, err, sizeof err);
  free(data);
  if (!s) return fail(c, "%s: %s", file, err);
  if (explain && c->json) {
    fprintf(c->out, "{\"schema\": %s, \"explain\": %s}\n", s, report);
  } else {
    fprintf(c->out, "%s\n", s);
    char *text = report ? bok_detect_explain_text(report) : NULL;
    if (text) fputs(text, c->err);
    free(text);
  }
  free(report);
  free(s);
  return 0;
}

/* ---- dispatch ------------------------------------------------------------------------ */

static int wants_help(int argc, char **argv) {
  for (int i = 0; i < argc; i++)
    if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) return 1;
  return 0;
}

#define NEED(n, usage)                                       \
  do {                                                       \
    if (argc != (n)) return fail(c, "usage: batchcli %s", usage); \
  } while (0)

int cli_main(cli_t *c, int argc, char **argv) {
  if (argc > 0 && wants_help(argc, argv) && cli_help(c, argc, argv) == 0) return 0;
  if (argc == 0 || wants_help(argc, argv)) {
    fputs(USAGE, argc == 0 ? c->err : c->out);
    return argc == 0 ? 1 : 0;
  }
  const char *g = argv[0];
  const char *v = argc > 1 ? argv[1] : "";
  if (!strcmp(g, "schema")) return cmd_schema(c, argc, argv);
  if (!strcmp(g, "completion")) return cli_completion(c, argc, argv);
  if (!strcmp(g, "help")) {
    if (argc > 1 && cli_help(c, argc - 1, argv + 1) == 0) return 0;
    fputs(USAGE, c->out);
    return 0;
  }
  if (!strcmp(g, "reprocess")) {
    NEED(2, "reprocess <job>");
    return cmd_job_reprocess(c, argv[1]);
  }
  if (!strcmp(g, "job")) {
    if (!strcmp(v, "list")) return cmd_job_list(c, argc - 2, argv + 2);
    if (!strcmp(v, "status")) {
      NEED(3, "job status <job>");
      return cmd_job_status(c, argv[2]);
    }
    if (!strcmp(v, "create")) return cmd_job_create(c, argc - 2, argv + 2);
    if (!strcmp(v, "errors")) {
      NEED(3, "job errors <job>");
      return cmd_job_errors(c, argv[2]);
    }
    if (!strcmp(v, "cancel")) {
      NEED(3, "job cancel <job>");
      return cmd_job_cancel(c, argv[2]);
    }
    if (!strcmp(v, "rejected")) {
      if (argc == 3) return cmd_job_rejected(c, argv[2]);
      int annotate = argc == 6 && !strcmp(argv[5], "--annotate");
      if ((argc == 5 || annotate) && !strcmp(argv[3], "--download")) return cmd_job_download(c, argv[2], argv[4], annotate);
      return fail(c, "usage: batchcli job rejected <job> [--download FILE [--annotate]]");
    }
    if (!strcmp(v, "reprocess")) {
      NEED(3, "job reprocess <job>");
      return cmd_job_reprocess(c, argv[2]);
    }
    if (!strcmp(v, "watch")) {
      NEED(3, "job watch <job>");
      const char *iv = getenv("BATCH_WATCH_INTERVAL");
      return cmd_job_watch(c, argv[2], iv ? atof(iv) : 1.0);
    }
    return fail(c, "unknown job command '%s' (see batchcli --help)", v);
  }
  if (!strcmp(g, "model")) {
    if (!strcmp(v, "list")) {
      NEED(2, "model list");
      return cmd_model_list(c);
    }
    if (!strcmp(v, "describe")) {
      NEED(3, "model describe <model>");
      return cmd_model_describe(c, argv[2]);
    }
    if (!strcmp(v, "create")) {
      NEED(4, "model create <name> <schema.json>");
      return cmd_model_create(c, argv[2], argv[3]);
    }
    if (!strcmp(v, "update")) {
      NEED(4, "model update <model> <schema.json>");
      return cmd_model_update(c, argv[2], argv[3]);
    }
    if (!strcmp(v, "delete")) {
      NEED(3, "model delete <model>");
      return cmd_model_delete(c, argv[2]);
    }
    return fail(c, "unknown model command '%s' (see batchcli --help)", v);
  }
  return fail(c, "unknown command '%s' (see batchcli --help)", g);
}
