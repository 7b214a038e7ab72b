/* Shared by the fuzz targets that parse a buffer: an exactly sized private copy of the input, or
 * a NUL-terminated one for parsers of C strings. Header-only: each target stays one file. */
#ifndef SG_FUZZ_UTIL_H
#define SG_FUZZ_UTIL_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* A private, exactly sized copy of buf (malloc'ed; NULL when out of memory), so that ASan flags
 * any read past the end. */
__attribute__((unused)) static uint8_t *fuzz_exact_copy(const uint8_t *buf, size_t len)
{
    uint8_t *copy = malloc(len ? len : 1);
    if (copy && len)
        memcpy(copy, buf, len);
    return copy;
}

/* A NUL-terminated copy of buf (malloc'ed; NULL when out of memory), for parsers of C strings. */
__attribute__((unused)) static char *fuzz_cstring(const uint8_t *buf, size_t len)
{
    char *s = malloc(len + 1);
    if (s) {
        memcpy(s, buf, len);
        s[len] = 0;
    }
    return s;
}

#endif
