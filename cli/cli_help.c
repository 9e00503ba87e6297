/* cli_help.c -- batchcli's per-command help (`batchcli job create --help`),
 * its version and its bash completion script. Static texts, printed to
 * c->out; single-threaded like the rest of the CLI. */
#include <stdio.h>
#include <string.h>

#include "cli.h"

#ifndef BOK_VERSION
#define BOK_VERSION "0.0.0"
#endif

typedef struct {
  const char *words; /* "job create" */
  const char *text;  /* starts with "usage: batchcli ..." */
} help_t;

static const help_t HELP[] = {
    {"model list", "usage: batchcli model list\n\nList the tenant's models.\n\nExamples:\n"
                   "  batchcli model list\n  batchcli --json model list\n"},
    {"model describe", "usage: batchcli model describe <model>\n\nShow a model (id, id prefix or exact name) "
                       "and its schema.\n\nExamples:\n  batchcli model describe orders\n"
                       "  batchcli model describe 3f2a\n"},
    {"model create", "usage: batchcli model create <name> <schema.json>\n\nCreate a model from a JSON Schema "
                     "file.\n\nExamples:\n  batchcli schema orders.csv > orders.schema.json\n"
                     "  batchcli model create orders orders.schema.json\n"},
    {"model update", "usage: batchcli model update <model> <schema.json>\n\nA new schema version (same model "
                     "id).\n\nExamples:\n  batchcli model update orders orders.v2.schema.json\n"},
    {"model delete", "usage: batchcli model delete <model>\n\nDelete a model.\n\nExamples:\n"
                     "  batchcli model delete orders\n"},
    {"job list", "usage: batchcli job list [--state S] [--model M] [--limit N]\n\n"
                 "List jobs, newest first.\n"
                 "  --state S   only jobs in state S (PENDING, RUNNING, SUCCESS, PARTIAL_SUCCESS,\n"
                 "              FAILED, CANCELLED; any case)\n"
                 "  --model M   only jobs of model M (id, id prefix or exact name)\n"
                 "  --limit N   at most N jobs\n\nExamples:\n"
                 "  batchcli job list --state failed --limit 5\n  batchcli job list --model orders\n"},
    {"job status", "usage: batchcli job status <job>\n\nOne job's state and counters (id or a unique prefix of 4+ "
                   "characters, any case).\n\nExamples:\n  batchcli job status 8c1d\n"
                   "  batchcli --json job status 8c1d\n"},
    {"job create",
     "usage: batchcli job create <model> <file|-> [options]\n\n"
     "Upload a CSV or NDJSON file (- reads stdin) as a job; waits up to 2 s (--wait: to\n"
     "the end) and fails (exit 3) if the job fails. A bar shows the upload on a terminal.\n"
     "  --format csv|ndjson     default: from the file name, then the content\n"
     "  --separator C           CSV separator: one character, or \\t / tab (default ,)\n"
     "  --encoding E            utf-8 (default), latin-1, windows-1252, utf-16 (with a BOM),\n"
     "                          utf-16le, utf-16be; converted to UTF-8\n"
     "  --quote C               CSV quote character (default \"), e.g. \\'\n"
     "  --no-header, --header   the CSV file has no header row: columns in schema order\n"
     "  --dry-run               validate and count only; publish no event\n"
     "  --max-errors N          stop (FAILED) once more than N rows are rejected\n"
     "  --max-error-rate R      stop once more than this share (0..1) is rejected\n"
     "  --wait                  follow the job to its end (exit 0/2/3/4)\n"
     "A file named *.gz is gunzipped by the server.\n\nExamples:\n"
     "  batchcli job create orders orders.csv --wait\n"
     "  batchcli job create orders export.tsv --separator '\\t' --encoding latin-1\n"
     "  zcat big.csv.gz | batchcli job create orders - --dry-run\n"
     "  batchcli job create orders rows.txt --no-header --separator '|'\n"
     "  batchcli job create orders legacy.csv --separator ';' --quote \"'\"\n"},
    {"job watch", "usage: batchcli job watch <job>\n\nFollow a job until it finishes (exit 0 SUCCESS, 2 "
                  "PARTIAL_SUCCESS, 3 FAILED, 4 CANCELLED).\n\nExamples:\n  batchcli job watch 8c1d\n"},
    {"job cancel", "usage: batchcli job cancel <job>\n\nCancel a job.\n\nExamples:\n  batchcli job cancel 8c1d\n"},
    {"job rejected", "usage: batchcli job rejected <job> [--download FILE [--annotate]]\n\n"
                     "The rejected rows with their reasons; OBSERVED and MESSAGE are cut to the terminal\n"
                     "width (--wide or --json: in full). --download writes them as a file to fix\n"
                     "(- = stdout); --annotate adds the reasons as a column.\n\nExamples:\n"
                     "  batchcli job rejected 8c1d\n  batchcli --wide job rejected 8c1d\n"
                     "  batchcli job rejected 8c1d --download fix.csv --annotate\n"},
    {"job errors", "usage: batchcli job errors <job>\n\nError summary: counts per code and column.\n\n"
                   "Examples:\n  batchcli job errors 8c1d\n"},
    {"job reprocess", "usage: batchcli job reprocess <job>\n\nReprocess a job's rejected rows as a new job "
                      "(also: batchcli reprocess <job>).\n\nExamples:\n  batchcli job reprocess 8c1d\n"},
    {"reprocess", "usage: batchcli reprocess <job>\n\nSame as job reprocess.\n\nExamples:\n"
                  "  batchcli reprocess 8c1d\n"},
    {"schema", "usage: batchcli schema [--rows N] [--confidence P] [--explain] <data file>\n\n"
               "Suggest a schema from a CSV/NDJSON sample (offline): N rows read (10000), a type\n"
               "must fit P of the values (0.95); --explain: why, per column (on stderr).\n\nExamples:\n"
               "  batchcli schema orders.csv > orders.schema.json\n"
               "  batchcli schema --explain --confidence 90 orders.csv\n"},
    {"completion", "usage: batchcli completion bash\n\nPrint a bash completion script.\n\nExamples:\n"
                   "  source <(batchcli completion bash)\n"
                   "  batchcli completion bash > /etc/bash_completion.d/batchcli\n"},
};

static const char *GROUP_JOB =
    "usage: batchcli job <command> [args]  (batchcli job <command> --help for one)\n\n"
    "  list, status, create, watch, cancel, rejected, errors, reprocess\n";
static const char *GROUP_MODEL =
    "usage: batchcli model <command> [args]  (batchcli model <command> --help for one)\n\n"
    "  list, describe, create, update, delete\n";

const char *cli_version(void) { return "batchcli " BOK_VERSION; }

int cli_help(cli_t *c, int argc, char **argv) {
  char words[64] = "";
  const char *group = NULL;
  for (int i = 0, k = 0; i < argc && k < 2; i++) {
    if (argv[i][0] == '-') continue;
    if (k == 0) group = argv[i];
    size_t l = strlen(words);
    snprintf(words + l, sizeof words - l, "%s%s", k ? " " : "", argv[i]);
    k++;
    for (size_t h = 0; h < sizeof HELP / sizeof HELP[0]; h++)
      if (strcmp(HELP[h].words, words) == 0) {
        fputs(HELP[h].text, c->out);
        return 0;
      }
  }
  if (group && strcmp(group, "job") == 0) return fputs(GROUP_JOB, c->out), 0;
  if (group && strcmp(group, "model") == 0) return fputs(GROUP_MODEL, c->out), 0;
  return -1;
}

static const char *BASH =
    "# bash completion for batchcli (batchcli completion bash)\n"
    "_batchcli() {\n"
    "  local cur prev words cword\n"
    "  cur=\"${COMP_WORDS[COMP_CWORD]}\"; prev=\"${COMP_WORDS[COMP_CWORD-1]}\"\n"
    "  local i cmd='' sub=''\n"
    "  for ((i = 1; i < COMP_CWORD; i++)); do\n"
    "    case \"${COMP_WORDS[i]}\" in\n"
    "      --tenant) ((i++)) ;;\n"
    "      -*) ;;\n"
    "      *) if [[ -z $cmd ]]; then cmd=${COMP_WORDS[i]}; elif [[ -z $sub ]]; then sub=${COMP_WORDS[i]}; fi ;;\n"
    "    esac\n"
    "  done\n"
    "  case \"$prev\" in\n"
    "    --format) COMPREPLY=($(compgen -W 'csv ndjson' -- \"$cur\")); return ;;\n"
    "    --encoding) COMPREPLY=($(compgen -W 'utf-8 latin-1 windows-1252 utf-16 utf-16le utf-16be' -- \"$cur\")); "
    "return ;;\n"
    "    --state) COMPREPLY=($(compgen -W 'PENDING RUNNING SUCCESS PARTIAL_SUCCESS FAILED CANCELLED' -- \"$cur\")); "
    "return ;;\n"
    "    --separator|--quote|--limit|--max-errors|--max-error-rate|--tenant|--rows|--confidence|--model) return ;;\n"
    "    --download) COMPREPLY=($(compgen -f -- \"$cur\")); return ;;\n"
    "  esac\n"
    "  if [[ -z $cmd ]]; then\n"
    "    COMPREPLY=($(compgen -W 'model job schema reprocess completion --json --tenant --wide --help --version' -- "
    "\"$cur\")); return\n"
    "  fi\n"
    "  case \"$cmd\" in\n"
    "    model) [[ -z $sub ]] && { COMPREPLY=($(compgen -W 'list describe create update delete' -- \"$cur\")); "
    "return; } ;;\n"
    "    job) [[ -z $sub ]] && { COMPREPLY=($(compgen -W 'list status create watch cancel rejected errors "
    "reprocess' -- \"$cur\")); return; } ;;\n"
    "    completion) COMPREPLY=($(compgen -W 'bash' -- \"$cur\")); return ;;\n"
    "  esac\n"
    "  if [[ $cur == -* ]]; then\n"
    "    case \"$cmd $sub\" in\n"
    "      'job create') COMPREPLY=($(compgen -W '--format --separator --encoding --quote --header --no-header "
    "--dry-run --max-errors --max-error-rate --wait --help' -- \"$cur\")) ;;\n"
    "      'job list') COMPREPLY=($(compgen -W '--state --model --limit --help' -- \"$cur\")) ;;\n"
    "      'job rejected') COMPREPLY=($(compgen -W '--download --annotate --wide --help' -- \"$cur\")) ;;\n"
    "      schema*) COMPREPLY=($(compgen -W '--rows --confidence --explain --help' -- \"$cur\")) ;;\n"
    "      *) COMPREPLY=($(compgen -W '--help --json' -- \"$cur\")) ;;\n"
    "    esac\n"
    "    return\n"
    "  fi\n"
    "  COMPREPLY=($(compgen -f -- \"$cur\"))\n"
    "}\n"
    "complete -o filenames -F _batchcli batchcli batch.cli\n";

int cli_completion(cli_t *c, int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "bash") == 0) {
    fputs(BASH, c->out);
    return 0;
  }
  fprintf(c->err, "batchcli: usage: batchcli completion bash (only bash is supported)\n");
  return 1;
}
