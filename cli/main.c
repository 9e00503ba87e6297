/* batchcli: the command line client of the REST API. */
#include <curl/curl.h>
#include <stdlib.h>
#include <string.h>

#include "cli.h"

int main(int argc, char **argv) {
  cli_t c = {getenv("BATCH_API_URL"), getenv("BATCH_TENANT"), getenv("TENANT_HEADER"), 0, stdout, stderr};
  if (!c.api_url || !*c.api_url) c.api_url = "http://localhost:8000";
  if (!c.tenant_header || !*c.tenant_header) c.tenant_header = "X-Tenant-ID";
  c.api_key = getenv("BATCH_API_KEY");
  /* global options may come anywhere */
  char **args = calloc((size_t)argc + 1, sizeof *args);
  int n = 0;
  for (int i = 1; i < argc; i++) {
    if (!strcmp(argv[i], "--json")) {
      c.json = 1;
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
  return rc;
}
