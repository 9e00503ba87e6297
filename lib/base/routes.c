/* routes.c -- tenant routing (bok/routes.h): which model and job service
 * addresses serve a tenant (routes.tenants.*, else routes.default). Built
 * once from the config, read-only afterwards. */
#include "bok/routes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "bok/util.h"

#define MAX_ROUTES 256

struct bok_routes {
  bok_route_t r[MAX_ROUTES];
  size_t n;
};

typedef struct {
  bok_routes_t *rt;
  char *err;
  size_t errlen;
} collect_t;

static bok_route_t *find_or_add(bok_routes_t *rt, const char *tenant, size_t tlen) {
  for (size_t i = 1; i < rt->n; i++)
    if (strlen(rt->r[i].tenant) == tlen && strncmp(rt->r[i].tenant, tenant, tlen) == 0) return &rt->r[i];
  if (rt->n == MAX_ROUTES) return NULL;
  bok_route_t *r = &rt->r[rt->n++];
  r->tenant = strndup(tenant, tlen);
  return r;
}

/* subkey is "<tenant>.model" or "<tenant>.job". */
static int collect(void *ud, const char *subkey, const char *value) {
  collect_t *c = ud;
  const char *dot = strrchr(subkey, '.');
  if (!dot) return 0;
  size_t tlen = (size_t)(dot - subkey);
  if (!bok_tenant_valid(subkey, tlen)) {
    snprintf(c->err, c->errlen, "routes.tenants: invalid tenant id '%.*s'", (int)tlen, subkey);
    return 1;
  }
  bok_route_t *r = find_or_add(c->rt, subkey, tlen);
  if (!r) {
    snprintf(c->err, c->errlen, "routes.tenants: too many routes");
    return 1;
  }
  if (strcmp(dot + 1, "model") == 0) {
    free((char *)r->model_addr);
    r->model_addr = strdup(value);
  } else if (strcmp(dot + 1, "job") == 0) {
    free((char *)r->job_addr);
    r->job_addr = strdup(value);
  } else {
    snprintf(c->err, c->errlen, "routes.tenants.%s: unknown key (use model or job)", subkey);
    return 1;
  }
  return 0;
}

bok_routes_t *bok_routes_from_config(const bok_config_t *cfg, const char *def_model,
                                     const char *def_job, char *err, size_t errlen) {
  bok_routes_t *rt = calloc(1, sizeof *rt);
  if (!rt) return NULL;
  rt->n = 1;
  rt->r[0].model_addr = strdup(bok_config_get(cfg, "routes.default.model", def_model));
  rt->r[0].job_addr = strdup(bok_config_get(cfg, "routes.default.job", def_job));
  collect_t c = {rt, err, errlen};
  if (bok_config_each(cfg, "routes.tenants.", collect, &c) != 0) {
    bok_routes_destroy(rt);
    return NULL;
  }
  for (size_t i = 1; i < rt->n; i++) {
    if (!rt->r[i].model_addr) rt->r[i].model_addr = strdup(rt->r[0].model_addr);
    if (!rt->r[i].job_addr) rt->r[i].job_addr = strdup(rt->r[0].job_addr);
  }
  return rt;
}

void bok_routes_destroy(bok_routes_t *rt) {
  if (!rt) return;
  for (size_t i = 0; i < rt->n; i++) {
    free((char *)rt->r[i].tenant);
    free((char *)rt->r[i].model_addr);
    free((char *)rt->r[i].job_addr);
  }
  free(rt);
}

const bok_route_t *bok_routes_lookup(const bok_routes_t *rt, const char *tenant) {
  if (tenant)
    for (size_t i = 1; i < rt->n; i++)
      if (strcmp(rt->r[i].tenant, tenant) == 0) return &rt->r[i];
  return &rt->r[0];
}

size_t bok_routes_count(const bok_routes_t *rt) { return rt->n; }
const bok_route_t *bok_routes_at(const bok_routes_t *rt, size_t i) { return i < rt->n ? &rt->r[i] : NULL; }
