/* bok/config.h -- YAML configuration with environment overrides.
 *
 * A YAML file of nested mappings is flattened to dotted keys
 * ("kafka.brokers"); sequences get index keys ("list.0"). Every key can be
 * overridden by the environment: BOK_ + the key upper-cased with '.' and '-'
 * turned into '_' (BOK_KAFKA_BROKERS overrides kafka.brokers); an override
 * also works for keys absent from the file.
 *
 * Ownership: the config owns every string it returns; they live until
 * bok_config_destroy(). Read-only after load, so any thread may read.
 */
#ifndef BOK_CONFIG_H
#define BOK_CONFIG_H

#include <stddef.h>
#include <stdint.h>

typedef struct bok_config bok_config_t;

/* Loads `path` (NULL = no file, defaults and environment only). Returns NULL
 * with a message "<file>:<line>: <problem>" in err on failure. */
bok_config_t *bok_config_load(const char *path, char *err, size_t errlen);
void bok_config_destroy(bok_config_t *cfg);

/* The value of `key` (environment first, then file), or `def`. */
const char *bok_config_get(const bok_config_t *cfg, const char *key, const char *def);
/* Integer value; `def` when absent or not an integer. */
int64_t bok_config_get_int(const bok_config_t *cfg, const char *key, int64_t def);
/* true/yes/on/1 -> 1, false/no/off/0 -> 0, otherwise def. */
int bok_config_get_bool(const bok_config_t *cfg, const char *key, int def);

/* Calls fn for every file key that starts with `prefix` (e.g.
 * "kafka.producer."), passing the key without the prefix and the value
 * (with its environment override applied). Stops when fn returns non-zero. */
typedef int (*bok_config_each_fn)(void *ud, const char *subkey, const char *value);
int bok_config_each(const bok_config_t *cfg, const char *prefix, bok_config_each_fn fn, void *ud);

/* The start of every binary's main(): parses `[--config FILE]`, loads the
 * config and applies its log_level. Returns the config, or NULL after
 * printing a usage or load error to stderr (*exit_code set to 2 or 1). */
bok_config_t *bok_config_from_args(int argc, char **argv, const char *prog, int *exit_code);

/* Refuses a configuration a binary does not understand. `known` is a
 * NULL-terminated list of the binary's keys: "name", "name:int",
 * "name:bool", "name:level" (debug|info|warn|error), "name:format"
 * (logfmt|json), or "prefix.*" for a
 * pass-through map (kafka.producer.*). A file key not in the list fails with
 * "<file>:<line>: unknown key 'x'"; a typed key whose value in effect does not
 * parse fails with "<file>:<line>: key: expected ..., got 'v'" (or
 * "BOK_KEY: ..." when the environment set it). 0 ok, -1 with err set. */
int bok_config_check(const bok_config_t *cfg, const char *const *known, char *err, size_t errlen);

/* bok_config_from_args + bok_config_check: on a refused key prints
 * "<prog>: <error>" to stderr, sets *exit_code = 2 and returns NULL. */
bok_config_t *bok_config_from_args_checked(int argc, char **argv, const char *prog, const char *const *known,
                                           int *exit_code);

#endif
