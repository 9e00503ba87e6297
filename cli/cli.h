/* cli.h -- batchcli internals: REST client and commands.
 *
 * A cli_t holds the settings of one invocation (API URL, tenant, --json).
 * Commands print their output to stdout and errors to stderr and return the
 * process exit code. Single-threaded. */
#ifndef CLI_H
#define CLI_H

#include <jansson.h>
#include <stdio.h>

typedef struct {
  const char *api_url;       /* BATCH_API_URL, default http://localhost:8000 */
  const char *tenant;        /* --tenant / BATCH_TENANT; NULL = server default */
  const char *tenant_header; /* TENANT_HEADER, default X-Tenant-ID */
  int json;                  /* --json */
  FILE *out, *err;
  const char *api_key;       /* BATCH_API_KEY: sent as Authorization: Bearer; NULL/"" = none */
  int wide;                  /* --wide: table cells never cut */
  int columns;               /* terminal width for cutting cells; 0 = not a terminal (never cut) */
  int progress;              /* draw an upload progress bar on err (err is a terminal) */
} cli_t;

/* Performs a request. body/ctype may be NULL. Returns the HTTP status (>0)
 * with *resp the parsed JSON (or NULL), or -1 when the server cannot be
 * reached (message printed to cli->err). */
int cli_http(cli_t *c, const char *method, const char *path, const char *body, size_t len, const char *ctype,
             json_t **resp);
/* POST /jobs as multipart/form-data with model_id, the file ("-" = stdin)
 * and the extra form fields fields[0..nfields) (name, value pairs; may be
 * NULL). With c->progress a bar on c->err follows the upload. */
int cli_http_upload(cli_t *c, const char *model_id, const char *file_path, const char *const *fields,
                    size_t nfields, json_t **resp);
/* GET path streamed into `out` (a 2xx body is written as it arrives, never
 * held whole). Returns the HTTP status, with *resp the parsed JSON error of
 * a non-2xx answer (or NULL); -1 when the server cannot be reached. */
int cli_http_download(cli_t *c, const char *path, FILE *out, json_t **resp);

/* GET path as server-sent events: fn(ud, event, data) for each event as it
 * arrives (return nonzero to stop reading). Returns the HTTP status (0 when
 * the stream broke off, or fn stopped it, after a 2xx head), with *resp the
 * parsed JSON error of a non-2xx answer (or NULL); -1 when the server cannot
 * be reached (nothing printed). */
typedef int (*cli_event_fn)(void *ud, const char *event, const char *data);
int cli_http_events(cli_t *c, const char *path, cli_event_fn fn, void *ud, json_t **resp);

/* Runs `batchcli <argv...>` (argv[0] is the first command word). */
int cli_main(cli_t *c, int argc, char **argv);

/* cli_help.c: `batchcli <command...> --help` (argv without the --help): the
 * command's usage, options and examples on c->out; -1 when argv names no
 * command (the caller prints the global usage). */
int cli_help(cli_t *c, int argc, char **argv);
/* `batchcli completion bash`: a completion script on c->out. */
int cli_completion(cli_t *c, int argc, char **argv);
/* "batchcli 0.1.0" */
const char *cli_version(void);

#endif
