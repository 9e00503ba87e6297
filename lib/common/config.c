#include "bok/config.h"

#include "bok/log.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

typedef struct {
  char *key;
  char *value;
} kv_t;

struct bok_config {
  kv_t *kv;
  size_t n, cap;
};

static int add_kv(bok_config_t *c, const char *key, const char *value) {
  for (size_t i = 0; i < c->n; i++) {
    if (strcmp(c->kv[i].key, key) == 0) {
      char *v = strdup(value);
      if (!v) return -1;
      free(c->kv[i].value);
      c->kv[i].value = v;
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
      return add_kv(c, prefix, (const char *)node->data.scalar.value);
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
  FILE *f = fopen(path, "rb");
  if (!f) {
    snprintf(err, errlen, "%s: %s", path, strerror(errno));
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
  return cfg;
}
