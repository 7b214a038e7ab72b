/* Shared by the fuzz targets that parse a buffer: an exactly sized private copy of the input.
 * Header-only: each target stays one file. */
#ifndef SG_FUZZ_UTIL_H
#define SG_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A private, exactly sized copy of buf (malloc'ed; NULL when out of memory), so that ASan flags
 * any read past the end. */
static uint8_t *fuzz_exact_copy(const uint8_t *buf, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (copy && len)
        memcpy(copy, buf, len);
    return copy;
}

#endif
