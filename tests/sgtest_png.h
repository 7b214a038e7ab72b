/* PNG files made in the tests, chunk by chunk with zlib: small valid frames, and hostile ones - an
 * IHDR that claims any size, image data that stops early, an image that inflates to far more than
 * the file - deflated a row at a time so a huge image never exists in the test's memory.
 * Header-only like sgtest_http.h. */
#ifndef SG_TESTS_PNG_H
#define SG_TESTS_PNG_H

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

typedef struct sgt_buf {
    uint8_t *p;
    size_t n, cap;
} sgt_buf;

static void sgt_buf_put(sgt_buf *b, const void *d, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 1024;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p)
            abort();
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void sgt_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void sgt_png_chunk(sgt_buf *b, const char type[4], const uint8_t *data, size_t n)
{
    uint8_t h[8];
    sgt_be32(h, (uint32_t)n);
    memcpy(h + 4, type, 4);
    sgt_buf_put(b, h, 8);
    if (n)
        sgt_buf_put(b, data, n);
    uLong crc = crc32(0, (const Bytef *)type, 4);
    if (n)
        crc = crc32(crc, data, (uInt)n);
    uint8_t c[4];
    sgt_be32(c, (uint32_t)crc);
    sgt_buf_put(b, c, 4);
}

/* An 8-bit RGB PNG whose IHDR says claim_w x claim_h and whose image data holds `rows` rows of
 * w pixels; pixel(x, y) gives each RGB (NULL: black). rows < claim_h makes the data stop early.
 * Returns the file (malloc'ed) and its length. */
__attribute__((unused)) static uint8_t *sgt_png(uint32_t claim_w, uint32_t claim_h, uint32_t w,
                                                uint32_t rows, void (*pixel)(uint32_t x, uint32_t y,
                                                                             uint8_t rgb[3]),
                                                size_t *len)
{
    static const uint8_t magic[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};
    sgt_buf b = {0};
    sgt_buf_put(&b, magic, 8);
    uint8_t ihdr[13] = {0};
    sgt_be32(ihdr, claim_w);
    sgt_be32(ihdr + 4, claim_h);
    ihdr[8] = 8; /* bit depth */
    ihdr[9] = 2; /* RGB */
    sgt_png_chunk(&b, "IHDR", ihdr, 13);
    z_stream z;
    memset(&z, 0, sizeof z);
    if (deflateInit(&z, 9) != Z_OK)
        abort();
    size_t rowlen = 1 + (size_t)w * 3;
    uint8_t *row = calloc(1, rowlen), out[65536];
    sgt_buf idat = {0};
    for (uint32_t y = 0; y <= rows; y++) {
        if (y < rows) {
            row[0] = 0; /* filter: none */
            for (uint32_t x = 0; pixel && x < w; x++)
                pixel(x, y, row + 1 + 3 * (size_t)x);
            z.next_in = row;
            z.avail_in = (uInt)rowlen;
        }
        int flush = y == rows ? Z_FINISH : Z_NO_FLUSH;
        do {
            z.next_out = out;
            z.avail_out = sizeof out;
            deflate(&z, flush);
            sgt_buf_put(&idat, out, sizeof out - z.avail_out);
        } while (z.avail_out == 0);
    }
    deflateEnd(&z);
    free(row);
    sgt_png_chunk(&b, "IDAT", idat.p, idat.n);
    free(idat.p);
    sgt_png_chunk(&b, "IEND", NULL, 0);
    *len = b.n;
    return b.p;
}

#endif
