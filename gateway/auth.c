/* auth.c -- the API key table (see auth.h): built once per (re)load from the
 * config, then read-only; SHA-256 of a presented key is looked up in it. */
#include "auth.h"

#include <ctype.h>
#include <errno.h>
#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "bok/util.h"

#define MAX_KEYS 100000
#define MAX_TOKEN 512

typedef struct {
  unsigned char sha[32];
  char tenant[65];
  int has_sha, has_tenant; /* while loading */
} gw_key_t;

struct gw_keys {
  atomic_int refs;
  int required;
  size_t n;
  gw_key_t *keys;
};

void gw_keys_ref(gw_keys_t *k) {
  if (k) atomic_fetch_add(&k->refs, 1);
}

void gw_keys_unref(gw_keys_t *k) {
  if (k && atomic_fetch_sub(&k->refs, 1) == 1) {
    free(k->keys);
    free(k);
  }
}

int gw_keys_required(const gw_keys_t *k) { return k->required; }
size_t gw_keys_count(const gw_keys_t *k) { return k->n; }

static int hexval(char c) {
  if (c >= '0' && c <= '9') return c - '0';
  c = (char)tolower((unsigned char)c);
  return c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* Loading state for bok_config_each. */
typedef struct {
  gw_key_t *keys;
  size_t cap; /* entries allocated (index + 1 at most) */
  char *err;
  size_t errlen;
} load_t;

static int load_entry(void *ud, const char *sub, const char *value) {
  load_t *l = ud;
  char *end = NULL;
  errno = 0;
  unsigned long idx = isdigit((unsigned char)sub[0]) ? strtoul(sub, &end, 10) : 0;
  if (!end || *end != '.' || errno || idx >= MAX_KEYS) {
    snprintf(l->err, l->errlen, "auth.api_keys: expected a list of {tenant, sha256} entries, got key '%s'", sub);
    return 1;
  }
  if (idx >= l->cap) {
    size_t cap = idx + 1;
    gw_key_t *k = realloc(l->keys, cap * sizeof *k);
    if (!k) {
      snprintf(l->err, l->errlen, "out of memory");
      return 1;
    }
    memset(k + l->cap, 0, (cap - l->cap) * sizeof *k);
    l->keys = k;
    l->cap = cap;
  }
  gw_key_t *k = &l->keys[idx];
  const char *field = end + 1;
  size_t vl = strlen(value);
  if (strcmp(field, "tenant") == 0) {
    if (!bok_tenant_valid(value, vl)) {
      snprintf(l->err, l->errlen, "auth.api_keys.%lu.tenant: expected 1-64 characters of A-Z a-z 0-9 . _ -", idx);
      return 1;
    }
    memcpy(k->tenant, value, vl + 1);
    k->has_tenant = 1;
  } else if (strcmp(field, "sha256") == 0) {
    int ok = vl == 64;
    for (size_t i = 0; ok && i < 32; i++) {
      int hi = hexval(value[2 * i]), lo = hexval(value[2 * i + 1]);
      ok = hi >= 0 && lo >= 0;
      if (ok) k->sha[i] = (unsigned char)(hi * 16 + lo);
    }
    if (!ok) {
      snprintf(l->err, l->errlen,
               "auth.api_keys.%lu.sha256: expected 64 hex digits (the SHA-256 of the key: printf %%s KEY | sha256sum)",
               idx);
      return 1;
    }
    k->has_sha = 1;
  } else {
    snprintf(l->err, l->errlen, "auth.api_keys.%lu.%s: unknown field (expected tenant, sha256)", idx, field);
    return 1;
  }
  return 0;
}

/* Every entry complete, no hash twice. */
static int check_entries(const load_t *l, char *err, size_t errlen) {
  for (size_t i = 0; i < l->cap; i++) {
    if (!l->keys[i].has_tenant || !l->keys[i].has_sha) {
      snprintf(err, errlen, "auth.api_keys.%zu: needs both tenant and sha256", i);
      return -1;
    }
    for (size_t j = 0; j < i; j++)
      if (memcmp(l->keys[i].sha, l->keys[j].sha, 32) == 0) {
        snprintf(err, errlen, "auth.api_keys.%zu: the same key as auth.api_keys.%zu", i, j);
        return -1;
      }
  }
  return 0;
}

gw_keys_t *gw_keys_from_config(const bok_config_t *cfg, char *err, size_t errlen) {
  load_t l = {NULL, 0, err, errlen};
  gw_keys_t *k = NULL;
  const char *req = bok_config_get(cfg, "auth.required", NULL);
  int required = req ? bok_config_get_bool(cfg, "auth.required", -1) : 0;
  if (required < 0) {
    snprintf(err, errlen, "auth.required: expected true or false, got '%s'", req);
    goto fail;
  }
  if (bok_config_each(cfg, "auth.api_keys.", load_entry, &l) != 0) goto fail;
  if (check_entries(&l, err, errlen) != 0) goto fail;
  if (required && l.cap == 0) {
    snprintf(err, errlen, "auth.required is true but auth.api_keys lists no key");
    goto fail;
  }
  k = calloc(1, sizeof *k);
  if (!k) {
    snprintf(err, errlen, "out of memory");
    goto fail;
  }
  atomic_init(&k->refs, 1);
  k->required = required;
  k->n = l.cap;
  k->keys = l.keys;
  return k;
fail:
  free(l.keys);
  return NULL;
}

int gw_keys_lookup(const gw_keys_t *k, const char *key, size_t len, char tenant[65]) {
  unsigned char md[EVP_MAX_MD_SIZE];
  unsigned int mdlen = 0;
  if (!k || k->n == 0 || EVP_Digest(key, len, md, &mdlen, EVP_sha256(), NULL) != 1 || mdlen != 32) return 0;
  const gw_key_t *hit = NULL;
  for (size_t i = 0; i < k->n; i++) /* no early exit: the time does not depend on the match */
    if (CRYPTO_memcmp(md, k->keys[i].sha, 32) == 0) hit = &k->keys[i];
  if (!hit) return 0;
  memcpy(tenant, hit->tenant, strlen(hit->tenant) + 1);
  return 1;
}

static int b64token_char(unsigned char c) {
  return isalnum(c) || c == '-' || c == '.' || c == '_' || c == '~' || c == '+' || c == '/' || c == '=';
}

int gw_auth_bearer(const char *v, size_t len, const char **tok, size_t *toklen) {
  while (len && (*v == ' ' || *v == '\t')) v++, len--;
  while (len && (v[len - 1] == ' ' || v[len - 1] == '\t')) len--;
  if (len < 7 || strncasecmp(v, "Bearer", 6) != 0 || (v[6] != ' ' && v[6] != '\t')) return -1;
  v += 7;
  len -= 7;
  while (len && (*v == ' ' || *v == '\t')) v++, len--;
  if (len == 0 || len > MAX_TOKEN) return -1;
  for (size_t i = 0; i < len; i++)
    if (!b64token_char((unsigned char)v[i])) return -1;
  *tok = v;
  *toklen = len;
  return 0;
}
