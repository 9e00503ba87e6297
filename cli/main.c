/* batchcli: the command line client of the REST API. main reads the
 * environment and the global options, then hands over to cli_main. */
#include <curl/curl.h>
#include <locale.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <unistd.h>

#include "cli.h"

/* The width of the terminal stdout is, or 0 when it is none (a pipe, a
 * file: tables are never cut there). COLUMNS overrides the terminal's. */
static int terminal_columns(void) {
  if (!isatty(STDOUT_FILENO)) return 0;
  const char *e = getenv("COLUMNS");
  int n = e ? atoi(e) : 0;
  if (n > 0) return n;
  struct winsize ws;
  if (ioctl(STDOUT_FILENO, TIOCGWINSZ, &ws) == 0 && ws.ws_col > 0) return ws.ws_col;
  return 80;
}

int main(int argc, char **argv) {
  /* display widths (wcwidth) need a UTF-8 character type, whatever LANG is */
  if (!setlocale(LC_CTYPE, "C.UTF-8")) setlocale(LC_CTYPE, "");
  cli_t c = {getenv("BATCH_API_URL"), getenv("BATCH_TENANT"), getenv("TENANT_HEADER"), 0, stdout, stderr};
  if (!c.api_url || !*c.api_url) c.api_url = "http://localhost:8000";
  /* "http://host:8000/" and "http://host:8000" are the same API */
  char *url = strdup(c.api_url);
  size_t ul = strlen(url);
  while (ul > 0 && url[ul - 1] == '/') url[--ul] = '\0';
  c.api_url = url;
  if (!c.tenant_header || !*c.tenant_header) c.tenant_header = "X-Tenant-ID";
  c.api_key = getenv("BATCH_API_KEY");
  c.columns = terminal_columns();
  c.progress = isatty(STDERR_FILENO);
  /* global options may come anywhere */
  char **args = calloc((size_t)argc + 1, sizeof *args);
  int n = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) {
      c.json = 1;
    } else if (!strcmp(argv[i], "--wide")) {
      c.wide = 1;
    } else if (!strcmp(argv[i], "--version") || !strcmp(argv[i], "-V")) {
      printf("%s\n", cli_version());
      free(args);
      free(url);
      return 0;
    } else if (!strcmp(argv[i], "--tenant") && i + 1 < argc) {
      c.tenant = argv[++i];
    } else if (!strncmp(argv[i], "--tenant=", 9)) {
      c.tenant = argv[i] + 9;
    } else {
      args[n++] = argv[i];
    }
  }
  curl_global_init(CURL_GLOBAL_DEFAULT);
  int rc = cli_main(&c, n, args);
  curl_global_cleanup();
  free(args);
  free(url);
  return rc;
}
