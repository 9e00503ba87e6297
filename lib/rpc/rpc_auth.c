/* Service identity for the gRPC glue: TLS credentials (mTLS) for servers and
 * channels, and the worker credential that BOK_RPC_WORKER_ONLY methods
 * require (a worker certificate name, or the token x-worker-token).
 *
 * State: one process-wide settings block, written by
 * bok_rpc_security_set()/reset() (main() at start, tests between cases: no
 * server or channel in use) and read by any thread afterwards. The one part
 * that changes later is a worker's token, read lazily from its file until
 * the file exists (the job service creates it): under g_token_mu.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "bok/config.h"
#include "rpc_internal.h"

#define TOKEN_MIN 32
#define TOKEN_MAX 512
#define TOKEN_RANDOM_BYTES 32
#define MAX_NAMES 32

typedef struct {
  char *ca_pem, *cert_pem, *key_pem; /* all or none */
  bok_rpc_role_t role;
  char *token;      /* JOB_SERVICE: accepted token; WORKER: sent token once read */
  size_t token_len;
  char *token_path; /* WORKER: where the token is read from while token is NULL */
  char *names[MAX_NAMES]; /* JOB_SERVICE: certificate names accepted as workers */
  int nnames;
} security_t;

static security_t g_sec;
static pthread_mutex_t g_token_mu = PTHREAD_MUTEX_INITIALIZER;

/* ---- files ---------------------------------------------------------------- */

/* Reads a whole (small) file into a new NUL-terminated string. */
static char *read_file(const char *path, size_t max, bok_err_t *err) {
  char *buf = NULL;
  FILE *f = fopen(path, "rb");
  if (!f) {
    bok_err_set(err, BOK_ERR_INVALID, "%s: %s", path, strerror(errno));
    return NULL;
  }
  buf = malloc(max + 1);
  if (!buf) {
    bok_err_set(err, BOK_ERR_INTERNAL, "out of memory");
    goto out;
  }
  size_t n = fread(buf, 1, max + 1, f);
  if (ferror(f) || n > max) {
    bok_err_set(err, BOK_ERR_INVALID, "%s: %s", path, ferror(f) ? "read error" : "file too large");
    free(buf);
    buf = NULL;
    goto out;
  }
  buf[n] = '\0';
out:
  fclose(f);
  return buf;
}

/* Checks and trims a token read from `path`: printable ASCII without
 * spaces (a legal metadata value), TOKEN_MIN..TOKEN_MAX characters. */
static int token_check(const char *path, char *tok, size_t *len, bok_err_t *err) {
  size_t n = strlen(tok);
  while (n > 0 && isspace((unsigned char)tok[n - 1])) tok[--n] = '\0';
  if (n < TOKEN_MIN || n > TOKEN_MAX)
    return bok_err_set(err, BOK_ERR_INVALID, "%s: the worker token must have %d to %d characters, it has %zu", path,
                       TOKEN_MIN, TOKEN_MAX, n);
  for (size_t i = 0; i < n; i++)
    if (tok[i] < 0x21 || tok[i] > 0x7e)
      return bok_err_set(err, BOK_ERR_INVALID, "%s: the worker token must be printable ASCII without spaces", path);
  *len = n;
  return 0;
}

/* Reads the token file; refuses one that other users may read. 1 read,
 * 0 absent (ENOENT), -1 error. */
static int token_read(const char *path, char **tok, size_t *len, bok_err_t *err) {
  struct stat st;
  if (stat(path, &st) != 0) {
    if (errno == ENOENT) return 0;
    return bok_err_set(err, BOK_ERR_INVALID, "%s: %s", path, strerror(errno));
  }
  if (!S_ISREG(st.st_mode)) return bok_err_set(err, BOK_ERR_INVALID, "%s: not a regular file", path);
  if (st.st_mode & (S_IROTH | S_IWOTH))
    return bok_err_set(err, BOK_ERR_INVALID, "%s: readable or writable by other users (chmod 600 it)", path);
  char *t = read_file(path, TOKEN_MAX + 64, err);
  if (!t) return -1;
  if (token_check(path, t, len, err) != 0) {
    free(t);
    return -1;
  }
  *tok = t;
  return 1;
}

/* mkdir -p of the directory part of path (new directories 0700). */
static int make_parents(const char *path, bok_err_t *err) {
  char dir[4096];
  if (snprintf(dir, sizeof dir, "%s", path) >= (int)sizeof dir)
    return bok_err_set(err, BOK_ERR_INVALID, "%s: path too long", path);
  for (char *p = dir + 1; *p; p++) {
    if (*p != '/') continue;
    *p = '\0';
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
      return bok_err_set(err, BOK_ERR_INVALID, "cannot create %s: %s", dir, strerror(errno));
    *p = '/';
  }
  return 0;
}

/* Creates the token file with a new random token unless it exists: written
 * to a private temporary file, then linked into place, so a concurrent
 * creator never sees a half-written token and exactly one token wins. */
static int token_create(const char *path, bok_err_t *err) {
  unsigned char rnd[TOKEN_RANDOM_BYTES];
  char hex[2 * TOKEN_RANDOM_BYTES + 2];
  char tmp[4200];
  int rc = -1, fd = -1;
  if (make_parents(path, err) != 0) return -1;
  int ur = open("/dev/urandom", O_RDONLY | O_CLOEXEC);
  if (ur < 0) return bok_err_set(err, BOK_ERR_INTERNAL, "/dev/urandom: %s", strerror(errno));
  ssize_t got = read(ur, rnd, sizeof rnd);
  close(ur);
  if (got != (ssize_t)sizeof rnd) return bok_err_set(err, BOK_ERR_INTERNAL, "/dev/urandom: short read");
  for (size_t i = 0; i < sizeof rnd; i++) snprintf(hex + 2 * i, 3, "%02x", rnd[i]);
  hex[2 * sizeof rnd] = '\n';
  hex[2 * sizeof rnd + 1] = '\0';
  snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
  fd = open(tmp, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
  if (fd < 0) {
    bok_err_set(err, BOK_ERR_INVALID, "cannot create %s: %s", tmp, strerror(errno));
    goto out;
  }
  size_t n = strlen(hex);
  if (write(fd, hex, n) != (ssize_t)n || fsync(fd) != 0) {
    bok_err_set(err, BOK_ERR_INVALID, "cannot write %s: %s", tmp, strerror(errno));
    goto out;
  }
  if (link(tmp, path) != 0 && errno != EEXIST) {
    bok_err_set(err, BOK_ERR_INVALID, "cannot create %s: %s", path, strerror(errno));
    goto out;
  }
  rc = 0;
out:
  if (fd >= 0) {
    close(fd);
    unlink(tmp);
  }
  memset(rnd, 0, sizeof rnd);
  memset(hex, 0, sizeof hex);
  return rc;
}

/* ---- settings ------------------------------------------------------------- */

static void free_secret(char *s) {
  if (s) {
    memset(s, 0, strlen(s));
    free(s);
  }
}

void bok_rpc_security_reset(void) {
  free(g_sec.ca_pem);
  free(g_sec.cert_pem);
  free_secret(g_sec.key_pem);
  pthread_mutex_lock(&g_token_mu);
  free_secret(g_sec.token);
  free(g_sec.token_path);
  for (int i = 0; i < g_sec.nnames; i++) free(g_sec.names[i]);
  memset(&g_sec, 0, sizeof g_sec);
  pthread_mutex_unlock(&g_token_mu);
}

static int set_names(security_t *s, const char *list, bok_err_t *err) {
  const char *p = list ? list : "";
  while (*p) {
    size_t n = strcspn(p, ", \t");
    if (n > 0) {
      if (s->nnames >= MAX_NAMES) return bok_err_set(err, BOK_ERR_INVALID, "rpc.worker_names: more than %d names", MAX_NAMES);
      s->names[s->nnames] = strndup(p, n);
      if (!s->names[s->nnames]) return bok_err_set(err, BOK_ERR_INTERNAL, "out of memory");
      s->nnames++;
    }
    p += n;
    if (*p) p++;
  }
  return 0;
}

static int load_tls(security_t *s, const bok_rpc_security_t *in, bok_err_t *err) {
  int have = (in->tls_ca && *in->tls_ca) + (in->tls_cert && *in->tls_cert) + (in->tls_key && *in->tls_key);
  if (have == 0) return 0;
  if (have != 3)
    return bok_err_set(err, BOK_ERR_INVALID, "rpc.tls: set all of ca, cert and key, or none");
  if (!(s->ca_pem = read_file(in->tls_ca, 1 << 20, err))) return -1;
  if (!(s->cert_pem = read_file(in->tls_cert, 1 << 20, err))) return -1;
  if (!(s->key_pem = read_file(in->tls_key, 1 << 20, err))) return -1;
  if (!strstr(s->ca_pem, "-----BEGIN CERTIFICATE-----") || !strstr(s->cert_pem, "-----BEGIN CERTIFICATE-----"))
    return bok_err_set(err, BOK_ERR_INVALID, "rpc.tls: %s or %s holds no PEM certificate", in->tls_ca, in->tls_cert);
  if (!strstr(s->key_pem, "PRIVATE KEY-----"))
    return bok_err_set(err, BOK_ERR_INVALID, "rpc.tls: %s holds no PEM private key", in->tls_key);
  return 0;
}

static int load_token(security_t *s, const bok_rpc_security_t *in, bok_err_t *err) {
  const char *path = in->worker_token_file;
  if (!path || !*path || in->role == BOK_RPC_ROLE_SERVICE) return 0;
  if (in->role == BOK_RPC_ROLE_WORKER) {
    if (!(s->token_path = strdup(path))) return bok_err_set(err, BOK_ERR_INTERNAL, "out of memory");
    return token_read(path, &s->token, &s->token_len, err) < 0 ? -1 : 0; /* absent: read later */
  }
  int r = token_read(path, &s->token, &s->token_len, err);
  if (r == 0) {
    if (token_create(path, err) != 0) return -1;
    r = token_read(path, &s->token, &s->token_len, err);
    if (r == 0) return bok_err_set(err, BOK_ERR_INVALID, "%s: vanished after creation", path);
  }
  return r < 0 ? -1 : 0;
}

int bok_rpc_security_set(const bok_rpc_security_t *in, bok_err_t *err) {
  security_t s;
  memset(&s, 0, sizeof s);
  s.role = in->role;
  if (load_tls(&s, in, err) != 0 || load_token(&s, in, err) != 0 ||
      (in->role == BOK_RPC_ROLE_JOB_SERVICE && set_names(&s, in->worker_names, err) != 0)) {
    free(s.ca_pem);
    free(s.cert_pem);
    free_secret(s.key_pem);
    free_secret(s.token);
    free(s.token_path);
    for (int i = 0; i < s.nnames; i++) free(s.names[i]);
    return -1;
  }
  bok_rpc_security_reset();
  pthread_mutex_lock(&g_token_mu);
  g_sec = s;
  pthread_mutex_unlock(&g_token_mu);
  return 0;
}

int bok_rpc_security_from_config(const struct bok_config *cfg, bok_rpc_role_t role, bok_err_t *err) {
  bok_rpc_security_t s = {.tls_ca = bok_config_get(cfg, "rpc.tls.ca", NULL),
                          .tls_cert = bok_config_get(cfg, "rpc.tls.cert", NULL),
                          .tls_key = bok_config_get(cfg, "rpc.tls.key", NULL),
                          .role = role,
                          .worker_token_file = bok_config_get(cfg, "rpc.worker_token_file", NULL),
                          .worker_names = bok_config_get(cfg, "rpc.worker_names", NULL)};
  return bok_rpc_security_set(&s, err);
}

void bok_rpc_security_describe(char *out, size_t cap) {
  const char *auth = "none";
  if (g_sec.role == BOK_RPC_ROLE_JOB_SERVICE) {
    auth = g_sec.token && g_sec.nnames ? "token+cert_names"
           : g_sec.token               ? "token"
           : g_sec.nnames              ? "cert_names"
                                       : "none (worker-only methods refuse every call)";
  } else if (g_sec.role == BOK_RPC_ROLE_WORKER) {
    auth = g_sec.token_path ? "sends_token" : g_sec.cert_pem ? "certificate" : "none";
  }
  snprintf(out, cap, "tls=%s worker_auth=%s", g_sec.cert_pem ? "mtls" : "off", auth);
}

/* ---- credentials ---------------------------------------------------------- */

grpc_server_credentials *bok_rpc_server_creds(void) {
  if (!g_sec.cert_pem) return grpc_insecure_server_credentials_create();
  grpc_ssl_pem_key_cert_pair pair = {g_sec.key_pem, g_sec.cert_pem};
  return grpc_ssl_server_credentials_create_ex(g_sec.ca_pem, &pair, 1,
                                               GRPC_SSL_REQUEST_AND_REQUIRE_CLIENT_CERTIFICATE_AND_VERIFY, NULL);
}

grpc_channel_credentials *bok_rpc_channel_creds(void) {
  if (!g_sec.cert_pem) return grpc_insecure_credentials_create();
  grpc_ssl_pem_key_cert_pair pair = {g_sec.key_pem, g_sec.cert_pem};
  return grpc_ssl_credentials_create(g_sec.ca_pem, &pair, NULL, NULL);
}

int bok_rpc_client_token(grpc_slice *out) {
  if (g_sec.role != BOK_RPC_ROLE_WORKER) return 0;
  int have = 0;
  pthread_mutex_lock(&g_token_mu);
  if (!g_sec.token && g_sec.token_path) {
    bok_err_t ignored; /* absent or bad: no token yet; the server says UNAUTHENTICATED */
    token_read(g_sec.token_path, &g_sec.token, &g_sec.token_len, &ignored);
  }
  if (g_sec.token) {
    *out = grpc_slice_from_copied_buffer(g_sec.token, g_sec.token_len);
    have = 1;
  }
  pthread_mutex_unlock(&g_token_mu);
  return have;
}

/* ---- the worker-only check ------------------------------------------------ */

/* What one server accepts, copied from the settings when it starts. */
struct bok_rpc_worker_auth {
  int accepts; /* this server was started by a JOB_SERVICE process */
  char *token;
  size_t token_len;
  char *names[MAX_NAMES];
  int nnames;
};

bok_rpc_worker_auth_t *bok_rpc_worker_auth_snapshot(void) {
  bok_rpc_worker_auth_t *a = calloc(1, sizeof *a);
  if (!a) return NULL;
  a->accepts = g_sec.role == BOK_RPC_ROLE_JOB_SERVICE;
  if (!a->accepts) return a;
  if (g_sec.token && !(a->token = strndup(g_sec.token, g_sec.token_len))) goto oom;
  a->token_len = g_sec.token_len;
  for (int i = 0; i < g_sec.nnames; i++) {
    if (!(a->names[i] = strdup(g_sec.names[i]))) goto oom;
    a->nnames++;
  }
  return a;
oom:
  bok_rpc_worker_auth_free(a);
  return NULL;
}

void bok_rpc_worker_auth_free(bok_rpc_worker_auth_t *a) {
  if (!a) return;
  free_secret(a->token);
  for (int i = 0; i < a->nnames; i++) free(a->names[i]);
  free(a);
}

int bok_rpc_token_equal(const char *a, size_t alen, const char *b, size_t blen) {
  /* Every byte of the longer one is visited whatever the contents. */
  size_t n = alen > blen ? alen : blen;
  unsigned char diff = (unsigned char)(alen != blen);
  for (size_t i = 0; i < n; i++) {
    unsigned char x = i < alen ? (unsigned char)a[i] : 0;
    unsigned char y = i < blen ? (unsigned char)b[i] : 0;
    diff |= (unsigned char)(x ^ y);
  }
  return diff == 0;
}

static int name_is_worker(const bok_rpc_worker_auth_t *a, const grpc_auth_property *p) {
  for (int i = 0; i < a->nnames; i++)
    if (strlen(a->names[i]) == p->value_length && memcmp(a->names[i], p->value, p->value_length) == 0) return 1;
  return 0;
}

/* 1: the peer's verified certificate names a worker; 0: it names none;
 * -1: no verified certificate. */
static int peer_is_worker(const bok_rpc_worker_auth_t *a, grpc_call *call) {
  grpc_auth_context *ctx = grpc_call_auth_context(call);
  if (!ctx) return -1;
  int r = -1;
  if (grpc_auth_context_peer_is_authenticated(ctx)) {
    r = 0;
    static const char *const props[] = {GRPC_X509_CN_PROPERTY_NAME, GRPC_X509_SAN_PROPERTY_NAME,
                                        GRPC_PEER_DNS_PROPERTY_NAME};
    for (size_t k = 0; k < sizeof props / sizeof props[0] && r == 0; k++) {
      grpc_auth_property_iterator it = grpc_auth_context_find_properties_by_name(ctx, props[k]);
      const grpc_auth_property *p;
      while ((p = grpc_auth_property_iterator_next(&it)) != NULL)
        if (name_is_worker(a, p)) {
          r = 1;
          break;
        }
    }
  }
  grpc_auth_context_release(ctx);
  return r;
}

bok_err_code_t bok_rpc_worker_check(const bok_rpc_worker_auth_t *a, grpc_call *call, const grpc_metadata_array *md,
                                    char *why, size_t cap) {
  const grpc_slice *tok = NULL;
  for (size_t i = 0; i < md->count; i++)
    if (grpc_slice_str_cmp(md->metadata[i].key, BOK_WORKER_TOKEN_MD) == 0) tok = &md->metadata[i].value;
  if (!a || !a->accepts || (!a->token && a->nnames == 0)) {
    snprintf(why, cap, "worker-only method: this server accepts no worker credential "
                       "(set rpc.worker_token_file or rpc.worker_names)");
    return BOK_ERR_PERMISSION;
  }
  int cert = a->nnames ? peer_is_worker(a, call) : -1;
  if (cert == 1) return BOK_OK;
  if (tok && a->token) {
    if (bok_rpc_token_equal((const char *)GRPC_SLICE_START_PTR(*tok), GRPC_SLICE_LENGTH(*tok), a->token,
                            a->token_len))
      return BOK_OK;
    snprintf(why, cap, "worker-only method: invalid worker token");
    return BOK_ERR_UNAUTHENTICATED;
  }
  if (cert == 0) {
    snprintf(why, cap, "worker-only method: the client certificate names no worker (rpc.worker_names)");
    return BOK_ERR_PERMISSION;
  }
  snprintf(why, cap, "worker-only method: worker credential required (certificate or %s metadata)",
           BOK_WORKER_TOKEN_MD);
  return BOK_ERR_UNAUTHENTICATED;
}
