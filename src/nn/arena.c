/* Bump allocator for per-pass scratch: one 64-byte aligned block, carved up by sg_arena_alloc and
 * reset between forward passes, so kernels never call malloc in the hot loop. */
#include "nn/arena.h"

#include <stdint.h>
#include <stdlib.h>

#include "base/error.h"

#define ARENA_ALIGN 64

static unsigned char *arena_block(size_t cap)
{
    if (cap > SIZE_MAX - ARENA_ALIGN)
        return NULL;
    size_t rounded = (cap + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    return aligned_alloc(ARENA_ALIGN, rounded);
}

int sg_arena_init(sg_arena *a, size_t cap)
{
    a->base = NULL;
    a->cap = a->used = a->high_water = 0;
    if (cap == 0)
        return SG_OK;
    a->base = arena_block(cap);
    if (!a->base)
        return SG_ENOMEM;
    a->cap = cap;
    return SG_OK;
}

void sg_arena_free(sg_arena *a)
{
    free(a->base);
    a->base = NULL;
    a->cap = a->used = 0;
}

int sg_arena_reserve(sg_arena *a, size_t cap)
{
    if (cap <= a->cap)
        return SG_OK;
    unsigned char *block = arena_block(cap);
    if (!block)
        return SG_ENOMEM;
    free(a->base);
    a->base = block;
    a->cap = cap;
    a->used = 0;
    return SG_OK;
}

void *sg_arena_alloc(sg_arena *a, size_t bytes)
{
    size_t start = (a->used + ARENA_ALIGN - 1) / ARENA_ALIGN * ARENA_ALIGN;
    if (!a->base || start > a->cap || bytes > a->cap - start)
        return NULL;
    a->used = start + bytes;
    if (a->used > a->high_water)
        a->high_water = a->used;
    return a->base + start;
}
