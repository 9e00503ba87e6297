/* arena.c -- bump allocator (bok/arena.h): blocks freed all at once by
 * bok_arena_reset/free; one owner thread per arena. */
#include "bok/arena.h"

#include <stdint.h>
#include <stdlib.h>

struct bok_arena_block {
  bok_arena_block_t *next; /* older block */
  size_t size, used;       /* bytes of data[] */
  _Alignas(16) unsigned char data[];
};

#define ALIGN16(n) (((n) + 15) & ~(size_t)15)

void *bok_arena_alloc(bok_arena_t *a, size_t n) {
  n = ALIGN16(n ? n : 1);
  bok_arena_block_t *b = a->head;
  if (!b || b->size - b->used < n) {
    size_t sz = a->block_size ? a->block_size : 64 * 1024;
    while (sz < n) sz *= 2;
    b = malloc(sizeof *b + sz);
    if (!b) return NULL;
    b->next = a->head;
    b->size = sz;
    b->used = 0;
    a->head = b;
    if (a->block_size < sz * 2 && sz * 2 <= 64u * 1024 * 1024) a->block_size = sz * 2;
  }
  void *p = b->data + b->used;
  b->used += n;
  return p;
}

void bok_arena_reset(bok_arena_t *a) {
  bok_arena_block_t *keep = NULL;
  for (bok_arena_block_t *b = a->head, *next; b; b = next) {
    next = b->next;
    if (!keep || b->size > keep->size) {
      if (keep) free(keep);
      keep = b;
    } else {
      free(b);
    }
  }
  if (keep) {
    keep->next = NULL;
    keep->used = 0;
  }
  a->head = keep;
}

void bok_arena_free(bok_arena_t *a) {
  for (bok_arena_block_t *b = a->head, *next; b; b = next) {
    next = b->next;
    free(b);
  }
  a->head = NULL;
}
