/* rpc_chancache.c -- one gRPC channel per backend address, created on first
 * lookup and kept until the cache is destroyed (bok/rpc.h "Channel cache").
 *
 * An open-addressing hash table (FNV-1a over the address) under a
 * read-write lock: lookups of known addresses share the read lock, a new
 * address takes the write lock, creates its channel and may double the
 * table. There is no fixed limit: the table grows with the addresses; only
 * running out of memory refuses (NULL), never a silent reuse of another
 * address's channel. Entries are also kept in creation order for
 * bok_rpc_chancache_at (probers walk them). */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "bok/rpc.h"

typedef struct {
  char *addr; /* owned */
  bok_rpc_channel_t *ch; /* owned */
} entry_t;

struct bok_rpc_chancache {
  int probe;           /* channels made with bok_rpc_channel_new_probe */
  pthread_rwlock_t lock;
  entry_t **slots;     /* cap slots, NULL = empty; points into `order` entries */
  size_t cap;          /* a power of two, kept >= 2 * n */
  entry_t **order;     /* n entries in creation order (owned) */
  size_t n, order_cap;
};

static uint64_t hash(const char *s) {
  uint64_t h = 1469598103934665603ULL;
  for (; *s; s++) h = (h ^ (unsigned char)*s) * 1099511628211ULL;
  return h;
}

/* The slot holding addr, or the empty slot where it would go. Lock held. */
static entry_t **find(entry_t **slots, size_t cap, const char *addr) {
  size_t i = (size_t)hash(addr) & (cap - 1);
  while (slots[i] && strcmp(slots[i]->addr, addr) != 0) i = (i + 1) & (cap - 1);
  return &slots[i];
}

bok_rpc_chancache_t *bok_rpc_chancache_new(int probe) {
  bok_rpc_chancache_t *c = calloc(1, sizeof *c);
  if (!c) return NULL;
  c->probe = probe;
  c->cap = 16;
  c->slots = calloc(c->cap, sizeof *c->slots);
  if (!c->slots || pthread_rwlock_init(&c->lock, NULL) != 0) {
    free(c->slots);
    free(c);
    return NULL;
  }
  return c;
}

static bok_rpc_channel_t *lookup(bok_rpc_chancache_t *c, const char *addr) {
  pthread_rwlock_rdlock(&c->lock);
  entry_t *e = *find(c->slots, c->cap, addr);
  pthread_rwlock_unlock(&c->lock);
  return e ? e->ch : NULL;
}

/* Doubles the table when it would pass half full. 0 ok, -1 out of memory
 * (the table is left as it was). Write lock held. */
static int grow(bok_rpc_chancache_t *c) {
  if (2 * (c->n + 1) <= c->cap) return 0;
  size_t cap = c->cap * 2;
  entry_t **slots = calloc(cap, sizeof *slots);
  if (!slots) return -1;
  for (size_t i = 0; i < c->n; i++) *find(slots, cap, c->order[i]->addr) = c->order[i];
  free(c->slots);
  c->slots = slots;
  c->cap = cap;
  return 0;
}

/* Adds addr's channel (write lock held). NULL out of memory. */
static entry_t *add(bok_rpc_chancache_t *c, const char *addr) {
  if (grow(c) != 0) return NULL;
  if (c->n == c->order_cap) {
    size_t oc = c->order_cap ? 2 * c->order_cap : 8;
    entry_t **o = realloc(c->order, oc * sizeof *o);
    if (!o) return NULL;
    c->order = o;
    c->order_cap = oc;
  }
  entry_t *e = calloc(1, sizeof *e);
  if (!e || !(e->addr = strdup(addr))) goto fail;
  e->ch = c->probe ? bok_rpc_channel_new_probe(addr) : bok_rpc_channel_new(addr);
  if (!e->ch) goto fail;
  *find(c->slots, c->cap, addr) = e;
  c->order[c->n++] = e;
  return e;
fail:
  if (e) free(e->addr);
  free(e);
  return NULL;
}

bok_rpc_channel_t *bok_rpc_chancache_get(bok_rpc_chancache_t *c, const char *addr) {
  if (!c || !addr) return NULL;
  bok_rpc_channel_t *ch = lookup(c, addr);
  if (ch) return ch;
  pthread_rwlock_wrlock(&c->lock);
  entry_t *e = *find(c->slots, c->cap, addr); /* another thread may have added it */
  if (!e) e = add(c, addr);
  pthread_rwlock_unlock(&c->lock);
  return e ? e->ch : NULL;
}

size_t bok_rpc_chancache_count(bok_rpc_chancache_t *c) {
  pthread_rwlock_rdlock(&c->lock);
  size_t n = c->n;
  pthread_rwlock_unlock(&c->lock);
  return n;
}

bok_rpc_channel_t *bok_rpc_chancache_at(bok_rpc_chancache_t *c, size_t i) {
  pthread_rwlock_rdlock(&c->lock);
  bok_rpc_channel_t *ch = i < c->n ? c->order[i]->ch : NULL;
  pthread_rwlock_unlock(&c->lock);
  return ch;
}

void bok_rpc_chancache_destroy(bok_rpc_chancache_t *c) {
  if (!c) return;
  for (size_t i = 0; i < c->n; i++) {
    bok_rpc_channel_destroy(c->order[i]->ch);
    free(c->order[i]->addr);
    free(c->order[i]);
  }
  free(c->order);
  free(c->slots);
  pthread_rwlock_destroy(&c->lock);
  free(c);
}
