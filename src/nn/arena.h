/* Scratch memory for one forward pass: a bump allocator over one block, reset between calls, so
 * the hot loop never calls malloc. Allocations are 64-byte aligned. */
#ifndef SG_NN_ARENA_H
#define SG_NN_ARENA_H

#include <stddef.h>

typedef struct sg_arena {
    unsigned char *base;
    size_t cap, used, high_water;
} sg_arena;

/* Reserves cap bytes up front (0 = grow on demand only at sg_arena_reserve). */
int sg_arena_init(sg_arena *a, size_t cap);
void sg_arena_free(sg_arena *a);
/* Ensures capacity for at least cap bytes; only call between passes (invalidates pointers). */
int sg_arena_reserve(sg_arena *a, size_t cap);
/* NULL when the arena is full (callers size it up front from the model's shapes). */
void *sg_arena_alloc(sg_arena *a, size_t bytes);
static inline void sg_arena_reset(sg_arena *a) { a->used = 0; }

#endif
