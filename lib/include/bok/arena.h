/* bok/arena.h -- a bump allocator for short-lived, many-small-object data.
 *
 * The worker decodes each rows-topic message (≈500 rows, two allocations per
 * row with malloc) into an arena instead, and drops it whole with
 * bok_arena_reset(): one pointer move per object, no free() per object.
 *
 * Ownership: the arena owns every block it hands out; they stay valid until
 * bok_arena_reset() or bok_arena_free(). reset keeps the largest block so a
 * steady workload stops calling malloc at all. Not thread-safe: one arena per
 * thread.
 */
#ifndef BOK_ARENA_H
#define BOK_ARENA_H

#include <stddef.h>

typedef struct bok_arena_block bok_arena_block_t;

typedef struct {
  bok_arena_block_t *head; /* current block (newest) */
  size_t block_size;       /* size of the next block to allocate */
} bok_arena_t;

#define BOK_ARENA_INIT {NULL, 64 * 1024}

/* 16-byte aligned memory for `n` bytes, or NULL when out of memory. */
void *bok_arena_alloc(bok_arena_t *a, size_t n);
/* Forgets every allocation; keeps the largest block for reuse. */
void bok_arena_reset(bok_arena_t *a);
/* Releases every block; the arena can be used again afterwards. */
void bok_arena_free(bok_arena_t *a);

#endif
