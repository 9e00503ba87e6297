/* auth.h -- per-tenant API keys of the gateway (issue 12), as an immutable,
 * refcounted table built from the config, so a reload (SIGHUP) can swap it
 * while loop threads read the old one. No h2o; any thread.
 *
 * Config (deploy/config/gateway.yaml):
 *   auth:
 *     required: false            # true: every API request needs a key
 *     api_keys:                  # the keys' SHA-256, never the keys
 *       - {tenant: t1, sha256: <64 hex digits>}
 * A tenant may have several keys (rotation: add the new one, reload, remove
 * the old one, reload). */
#ifndef GW_AUTH_H
#define GW_AUTH_H

#include <stddef.h>

#include "bok/config.h"

typedef struct gw_keys gw_keys_t;

/* Builds the table from cfg's auth.* keys. NULL with a message in err when an
 * entry lacks its tenant or sha256, a tenant id is invalid, a hash is not 64
 * hex digits, a hash appears twice, an entry has another field, or
 * auth.required is true with no key. */
gw_keys_t *gw_keys_from_config(const bok_config_t *cfg, char *err, size_t errlen);
/* References: a new table has one; the last unref frees it (any thread). */
void gw_keys_ref(gw_keys_t *k);
void gw_keys_unref(gw_keys_t *k);
/* 1 if every API request needs a key (auth.required). */
int gw_keys_required(const gw_keys_t *k);
/* Number of keys; 0 means the Authorization header is not looked at. */
size_t gw_keys_count(const gw_keys_t *k);
/* 1 and the key's tenant in out when `key` (len bytes, as sent) hashes to a
 * known key; 0 otherwise. Compares every entry in constant time. */
int gw_keys_lookup(const gw_keys_t *k, const char *key, size_t len, char tenant[65]);

/* The token of an "Authorization: Bearer <token>" value (scheme any case,
 * spaces around the token ignored; the token is 1-512 bytes of RFC 6750
 * b64token characters). 0 with *tok and *toklen set, -1 otherwise. */
int gw_auth_bearer(const char *v, size_t len, const char **tok, size_t *toklen);

#endif
