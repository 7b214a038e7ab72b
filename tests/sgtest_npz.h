/* A tiny .npz reader for tests: zip local headers (stored or deflated, zip64 sizes as numpy
 * writes them) holding little-endian float32 C-order 2-D .npy arrays. Header-only so each test
 * file stays standalone (the same reader as tests/test_mel.c's). */
#ifndef SG_TESTS_NPZ_H
#define SG_TESTS_NPZ_H

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "check.h"

static inline uint32_t npz_rd16(const uint8_t *p) { return (uint32_t)(p[0] | p[1] << 8); }
static inline uint32_t npz_rd32(const uint8_t *p) { return npz_rd16(p) | npz_rd16(p + 2) << 16; }

/* The raw bytes of member `name` (malloc'ed), or NULL. */
static inline uint8_t *npz_zip_member(const uint8_t *zip, size_t len, const char *name,
                                      size_t *out_len)
{
    size_t off = 0;
    while (off + 30 <= len && npz_rd32(zip + off) == 0x04034b50) {
        const uint8_t *h = zip + off;
        uint32_t method = npz_rd16(h + 8), csize = npz_rd32(h + 18), usize = npz_rd32(h + 22);
        uint32_t name_len = npz_rd16(h + 26), extra_len = npz_rd16(h + 28);
        if (off + 30 + (size_t)name_len + extra_len > len)
            return NULL;
        const uint8_t *extra = h + 30 + name_len, *data = extra + extra_len;
        for (uint32_t e = 0; e + 4 <= extra_len;) { /* zip64: sizes in extra field 0x0001 */
            uint32_t id = npz_rd16(extra + e), sz = npz_rd16(extra + e + 2);
            if (id == 1 && sz >= 16 && e + 4 + sz <= extra_len) {
                if (usize == 0xFFFFFFFFu)
                    usize = npz_rd32(extra + e + 4);
                if (csize == 0xFFFFFFFFu)
                    csize = npz_rd32(extra + e + 12);
            }
            e += 4 + sz;
        }
        if ((size_t)(data - zip) + csize > len)
            return NULL;
        if (name_len == strlen(name) && memcmp(h + 30, name, name_len) == 0) {
            uint8_t *buf = malloc(usize ? usize : 1);
            if (!buf)
                return NULL;
            int ok = 0;
            if (method == 0 && csize == usize) {
                memcpy(buf, data, usize);
                ok = 1;
            } else if (method == 8) {
                z_stream zs;
                memset(&zs, 0, sizeof zs);
                zs.next_in = (Bytef *)data;
                zs.avail_in = csize;
                zs.next_out = buf;
                zs.avail_out = usize;
                ok = inflateInit2(&zs, -MAX_WBITS) == Z_OK;
                ok = ok && inflate(&zs, Z_FINISH) == Z_STREAM_END && zs.total_out == usize;
                inflateEnd(&zs);
            }
            if (!ok) {
                free(buf);
                return NULL;
            }
            *out_len = usize;
            return buf;
        }
        off = (size_t)(data - zip) + csize;
    }
    return NULL;
}

/* Member `member` of the .npz at path as a float32 matrix (malloc'ed), or NULL. */
static inline float *npz_matrix(const char *path, const char *member, int *rows, int *cols)
{
    size_t zlen = 0, nlen = 0;
    uint8_t *zip = check_read_file(path, &zlen);
    uint8_t *npy = zip ? npz_zip_member(zip, zlen, member, &nlen) : NULL;
    float *out = NULL;
    if (npy && nlen >= 10 && memcmp(npy, "\x93NUMPY", 6) == 0) {
        size_t hlen = npy[6] == 1 ? npz_rd16(npy + 8) : npz_rd32(npy + 8);
        size_t hoff = npy[6] == 1 ? 10 : 12;
        char header[512];
        if (hoff + hlen <= nlen && hlen < sizeof header) {
            memcpy(header, npy + hoff, hlen);
            header[hlen] = 0;
            const char *shape = strstr(header, "'shape': (");
            if (strstr(header, "'descr': '<f4'") && strstr(header, "'fortran_order': False") &&
                shape && sscanf(shape, "'shape': (%d, %d)", rows, cols) == 2) {
                size_t n = (size_t)*rows * (size_t)*cols;
                if (hoff + hlen + n * 4 == nlen && (out = malloc(n * sizeof *out)))
                    memcpy(out, npy + hoff + hlen, n * 4); /* little-endian hosts */
            }
        }
    }
    free(npy);
    free(zip);
    return out;
}

#endif
