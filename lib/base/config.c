/* config.c -- YAML configuration (bok/config.h): the file named by --config,
 * then BOK_* environment overrides, checked against each binary's known keys.
 * Read-only after load: any thread may read it. */
#include "bok/config.h"

#include "bok/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <yaml.h>

typedef struct {
  char *key;
  char *value;
  size_t line; /* 1-based line of the value in the file */
} kv_t;

struct bok_config {
  kv_t *kv;
  size_t n, cap;
  char *path; /* the file, NULL when none */
};

static int add_kv(bok_config_t *c, const char *key, const char *value, size_t line) {
  for (size_t i = 0; i < c->n; i++) {
    if (strcmp(c->kv[i].key, key) == 0) {
      char *v = strdup(value);
      if (!v) return -1;
      free(c->kv[i].value);
      c->kv[i].value = v;
      c->kv[i].line = line;
      return 0;
    }
  }
  if (c->n == c->cap) {
    size_t nc = c->cap ? c->cap * 2 : 32;
    kv_t *p = realloc(c->kv, nc * sizeof *p);
    if (!p) return -1;
    c->kv = p;
    c->cap = nc;
  }
  c->kv[c->n].key = strdup(key);
  c->kv[c->n].value = strdup(value);
  c->kv[c->n].line = line;
  if (!c->kv[c->n].key || !c->kv[c->n].value) return -1;
  c->n++;
  return 0;
}

/* Walks a node of a parsed document, adding leaves under `prefix`. */
static int walk(bok_config_t *c, yaml_document_t *doc, yaml_node_t *node, const char *prefix,
                char *err, size_t errlen, const char *path) {
  char key[512];
  switch (node->type) {
    case YAML_SCALAR_NODE:
      if (!prefix[0]) {
        snprintf(err, errlen, "%s:%zu: the top level must be a mapping", path,
                 node->start_mark.line + 1);
        return -1;
      }
      return add_kv(c, prefix, (const char *)node->data.scalar.value, node->start_mark.line + 1);
    case YAML_MAPPING_NODE:
      for (yaml_node_pair_t *p = node->data.mapping.pairs.start; p < node->data.mapping.pairs.top; p++) {
        yaml_node_t *k = yaml_document_get_node(doc, p->key);
        yaml_node_t *v = yaml_document_get_node(doc, p->value);
        if (!k || k->type != YAML_SCALAR_NODE || !v) {
          snprintf(err, errlen, "%s:%zu: mapping keys must be scalars", path,
                   (k ? k->start_mark.line : 0) + 1);
          return -1;
        }
        snprintf(key, sizeof key, "%s%s%s", prefix, prefix[0] ? "." : "",
                 (const char *)k->data.scalar.value);
        if (walk(c, doc, v, key, err, errlen, path) != 0) return -1;
      }
      return 0;
    case YAML_SEQUENCE_NODE: {
      int i = 0;
      for (yaml_node_item_t *it = node->data.sequence.items.start; it < node->data.sequence.items.top; it++, i++) {
        snprintf(key, sizeof key, "%s.%d", prefix, i);
        yaml_node_t *v = yaml_document_get_node(doc, *it);
        if (v && walk(c, doc, v, key, err, errlen, path) != 0) return -1;
      }
      return 0;
    }
    default:
      return 0;
  }
}

bok_config_t *bok_config_load(const char *path, char *err, size_t errlen) {
  bok_config_t *c = calloc(1, sizeof *c);
  if (!c) {
    snprintf(err, errlen, "out of memory");
    return NULL;
  }
  if (!path) return c;
  c->path = strdup(path);
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
    free(c->path);
    free(c);
    return NULL;
  }
  yaml_parser_t parser;
  yaml_document_t doc;
  yaml_parser_initialize(&parser);
  yaml_parser_set_input_file(&parser, f);
  int rc = -1;
  if (!yaml_parser_load(&parser, &doc)) {
    snprintf(err, errlen, "%s:%zu: %s", path, parser.problem_mark.line + 1,
             parser.problem ? parser.problem : "invalid YAML");
  } else {
    yaml_node_t *root = yaml_document_get_root_node(&doc);
    rc = root ? walk(c, &doc, root, "", err, errlen, path) : 0;
    yaml_document_delete(&doc);
  }
  yaml_parser_delete(&parser);
  fclose(f);
  if (rc != 0) {
    bok_config_destroy(c);
    return NULL;
  }
  return c;
}

void bok_config_destroy(bok_config_t *c) {
  if (!c) return;
  for (size_t i = 0; i < c->n; i++) {
    free(c->kv[i].key);
    free(c->kv[i].value);
  }
  free(c->kv);
  free(c->path);
  free(c);
}

static const char *env_for(const char *key) {
  char name[600] = "BOK_";
  size_t j = 4;
  for (const char *p = key; *p && j < sizeof name - 1; p++) {
    char ch = *p;
    name[j++] = (ch == '.' || ch == '-') ? '_' : (char)toupper((unsigned char)ch);
  }
  name[j] = '\0';
  return getenv(name);
}

const char *bok_config_get(const bok_config_t *c, const char *key, const char *def) {
  const char *e = env_for(key);
  if (e) return e;
  if (c) {
    for (size_t i = 0; i < c->n; i++)
      if (strcmp(c->kv[i].key, key) == 0) return c->kv[i].value;
  }
  return def;
}

int64_t bok_config_get_int(const bok_config_t *c, const char *key, int64_t def) {
  const char *v = bok_config_get(c, key, NULL);
  if (!v || !*v) return def;
  char *end;
  errno = 0;
  long long x = strtoll(v, &end, 10);
  if (errno || *end) return def;
  return (int64_t)x;
}

int bok_config_get_bool(const bok_config_t *c, const char *key, int def) {
  const char *v = bok_config_get(c, key, NULL);
  if (!v) return def;
  if (!strcasecmp(v, "true") || !strcasecmp(v, "yes") || !strcasecmp(v, "on") || !strcmp(v, "1")) return 1;
  if (!strcasecmp(v, "false") || !strcasecmp(v, "no") || !strcasecmp(v, "off") || !strcmp(v, "0")) return 0;
  return def;
}

int bok_config_each(const bok_config_t *c, const char *prefix, bok_config_each_fn fn, void *ud) {
  if (!c) return 0;
  size_t pl = strlen(prefix);
  for (size_t i = 0; i < c->n; i++) {
    if (strncmp(c->kv[i].key, prefix, pl) == 0) {
      int r = fn(ud, c->kv[i].key + pl, bok_config_get(c, c->kv[i].key, c->kv[i].value));
      if (r) return r;
    }
  }
  return 0;
}

/* "kafka.producer.*" matches "kafka.producer.linger.ms". */
static const char *find_known(const char *const *known, const char *key) {
  for (size_t i = 0; known && known[i]; i++) {
    const char *spec = known[i];
    const char *colon = strchr(spec, ':');
    size_t n = colon ? (size_t)(colon - spec) : strlen(spec);
    if (n >= 2 && spec[n - 1] == '*' && spec[n - 2] == '.') {
      if (strncmp(key, spec, n - 1) == 0 && key[n - 1]) return spec;
    } else if (strlen(key) == n && strncmp(key, spec, n) == 0) {
      return spec;
    }
  }
  return NULL;
}

static int value_ok(const char *type, const char *v) {
  if (strcmp(type, "int") == 0) {
    char *end;
    errno = 0;
    long long x = strtoll(v, &end, 10);
    (void)x;
    return *v && !*end && errno == 0;
  }
  if (strcmp(type, "bool") == 0) {
    const char *ok[] = {"true", "false", "yes", "no", "on", "off", "1", "0"};
    for (size_t i = 0; i < sizeof ok / sizeof ok[0]; i++)
      if (strcasecmp(v, ok[i]) == 0) return 1;
    return 0;
  }
  if (strcmp(type, "level") == 0) {
    bok_log_level_t l;
    return bok_log_level_parse(v, &l) == 0;
  }
  if (strcmp(type, "format") == 0) {
    bok_log_format_t f;
    return bok_log_format_parse(v, &f) == 0;
  }
  return 1;
}

int bok_config_check(const bok_config_t *c, const char *const *known, char *err, size_t errlen) {
  for (size_t i = 0; i < c->n; i++) {
    const kv_t *kv = &c->kv[i];
    const char *spec = find_known(known, kv->key);
    if (!spec) {
      snprintf(err, errlen, "%s:%zu: unknown key '%s'", c->path ? c->path : "-", kv->line, kv->key);
      return -1;
    }
  }
  /* typed keys: the value in effect (environment first, then file) */
  for (size_t i = 0; known && known[i]; i++) {
    const char *colon = strchr(known[i], ':');
    if (!colon) continue;
    char key[256];
    snprintf(key, sizeof key, "%.*s", (int)(colon - known[i]), known[i]);
    const char *env = env_for(key);
    const char *v = env ? env : NULL;
    size_t line = 0;
    if (!v)
      for (size_t k = 0; k < c->n; k++)
        if (strcmp(c->kv[k].key, key) == 0) {
          v = c->kv[k].value;
          line = c->kv[k].line;
        }
    if (!v || value_ok(colon + 1, v)) continue;
    const char *what = strcmp(colon + 1, "int") == 0      ? "an integer"
                       : strcmp(colon + 1, "bool") == 0   ? "true or false"
                       : strcmp(colon + 1, "format") == 0 ? "logfmt or json"
                                                          : "debug, info, warn or error";
    if (env) {
      char var[300] = "BOK_";
      size_t n = 4;
      for (const char *p = key; *p && n < sizeof var - 1; p++)
        var[n++] = (*p == '.' || *p == '-') ? '_' : (char)toupper((unsigned char)*p);
      var[n] = '\0';
      snprintf(err, errlen, "%s: %s: expected %s, got '%s'", var, key, what, v);
    } else {
      snprintf(err, errlen, "%s:%zu: %s: expected %s, got '%s'", c->path ? c->path : "-", line, key, what, v);
    }
    return -1;
  }
  return 0;
}

bok_config_t *bok_config_from_args_checked(int argc, char **argv, const char *prog, const char *const *known,
                                           int *exit_code) {
  bok_config_t *cfg = bok_config_from_args(argc, argv, prog, exit_code);
  if (!cfg) return NULL;
  char err[512];
  if (known && bok_config_check(cfg, known, err, sizeof err) != 0) {
    fprintf(stderr, "%s: %s\n", prog, err);
    bok_config_destroy(cfg);
    *exit_code = 2;
    return NULL;
  }
  return cfg;
}

bok_config_t *bok_config_from_args(int argc, char **argv, const char *prog, int *exit_code) {
  const char *path = NULL;
  for (int i = 1; i < argc; i++) {
    if (strcmp(argv[i], "--config") == 0 && i + 1 < argc) {
      path = argv[++i];
    } else {
      fprintf(stderr, "usage: %s [--config FILE]\n", prog);
      *exit_code = 2;
      return NULL;
    }
  }
  char err[512];
  bok_config_t *cfg = bok_config_load(path, err, sizeof err);
  if (!cfg) {
    fprintf(stderr, "%s: %s\n", prog, err);
    *exit_code = 1;
    return NULL;
  }
  bok_log_level_t lvl;
  if (bok_log_level_parse(bok_config_get(cfg, "log_level", "info"), &lvl) == 0) bok_log_set_level(lvl);
  bok_log_format_t fmt;
  if (bok_log_format_parse(bok_config_get(cfg, "log_format", "logfmt"), &fmt) == 0) bok_log_set_format(fmt);
  return cfg;
}
