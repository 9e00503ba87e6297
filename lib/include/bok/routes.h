/* bok/routes.h -- tenant routing: which model/job service serves a tenant.
 *
 * From the `routes:` section of a config:
 *   routes.default.model / routes.default.job        (required)
 *   routes.tenants.<tenant>.model / .job             (optional; a missing
 *                                                     one falls back to default)
 * The table owns its strings; read-only after creation (any thread). */
#ifndef BOK_ROUTES_H
#define BOK_ROUTES_H

#include <stddef.h>

#include "bok/config.h"

typedef struct {
  const char *tenant;     /* NULL for the default route */
  const char *model_addr; /* "host:port" */
  const char *job_addr;
} bok_route_t;

typedef struct bok_routes bok_routes_t;

/* `def_model`/`def_job` are used when the config has no default route. */
bok_routes_t *bok_routes_from_config(const bok_config_t *cfg, const char *def_model,
                                     const char *def_job, char *err, size_t errlen);
void bok_routes_destroy(bok_routes_t *r);
/* The route of `tenant`, or the default route. Never NULL. */
const bok_route_t *bok_routes_lookup(const bok_routes_t *r, const char *tenant);
/* All routes, default first. */
size_t bok_routes_count(const bok_routes_t *r);
const bok_route_t *bok_routes_at(const bok_routes_t *r, size_t i);

#endif
