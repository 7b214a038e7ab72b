/* ZIP archives in memory (see zip.h). Every offset and size read from the archive is checked
 * against the bytes there are before it is used, so any byte string gives a directory or an
 * error; an entry's bytes are checked (local header, bounds, CRC-32) only when asked for. */
#include "nn/zip.h"

#include <inttypes.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "base/utf8.h"

/* Bytes of an entry name quoted in a message, so that messages fit sg_error.msg. */
#define NAME_CLIP 48
#define QUOTE(buf, s, len) sg_utf8_quote(buf, NAME_CLIP, (s), (len), false)

static uint16_t rd16(const unsigned char *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const unsigned char *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static uint64_t rd64(const unsigned char *p)
{
    return (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
}

static int bytes_cmp(const unsigned char *a, size_t al, const unsigned char *b, size_t bl)
{
    int c = memcmp(a, b, al < bl ? al : bl);
    return c ? c : (al < bl ? -1 : al > bl);
}

sg_status sg_zip_fail(const sg_zip *z, sg_error *err, sg_status code, const char *fmt, ...)
{
    char msg[224];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    return sg_error_set(err, code, "%s: %s", z->label, msg);
}

#define SIG_LOCAL 0x04034b50u
#define SIG_CENTRAL 0x02014b50u
#define SIG_END 0x06054b50u
#define SIG_END64 0x06064b50u
#define SIG_LOCATOR64 0x07064b50u
#define SAT16 0xFFFFu
#define SAT32 0xFFFFFFFFu

/* Reads the ZIP64 extended-information extra field: each saturated value of the central
 * record is replaced, in the order the format fixes. False when a needed value is missing. */
static bool zip64_extra(const unsigned char *x, size_t xlen, uint64_t *usize, uint64_t *csize,
                        uint64_t *local, uint32_t *disk)
{
    while (xlen >= 4) {
        size_t id = rd16(x), sz = rd16(x + 2);
        if (sz > xlen - 4)
            return false;
        if (id == 0x0001) {
            const unsigned char *q = x + 4;
            size_t left = sz;
            uint64_t *fields[3] = {usize, csize, local};
            for (int i = 0; i < 3; i++) {
                if (*fields[i] != SAT32)
                    continue;
                if (left < 8)
                    return false;
                *fields[i] = rd64(q);
                q += 8;
                left -= 8;
            }
            if (*disk == SAT16) {
                if (left < 4)
                    return false;
                *disk = rd32(q);
            }
            return true;
        }
        x += 4 + sz;
        xlen -= 4 + sz;
    }
    return *usize != SAT32 && *csize != SAT32 && *local != SAT32 && *disk != SAT16;
}

static int entry_cmp(const void *pa, const void *pb)
{
    const sg_zip_entry *a = pa, *b = pb;
    return bytes_cmp(a->name, a->name_len, b->name, b->name_len);
}

/* Compares name with dir + "/" + file, in the order of bytes_cmp. */
static int cmp_joined(const unsigned char *name, size_t len, const unsigned char *dir,
                      size_t dir_len, const char *file, size_t file_len)
{
    int c = memcmp(name, dir, len < dir_len ? len : dir_len);
    if (c || len < dir_len)
        return c ? c : -1;
    name += dir_len;
    len -= dir_len;
    if (len == 0)
        return -1;
    if (name[0] != '/')
        return name[0] < '/' ? -1 : 1;
    return bytes_cmp(name + 1, len - 1, (const unsigned char *)file, file_len);
}

sg_zip_entry *sg_zip_find(const sg_zip *z, const unsigned char *dir, size_t dir_len,
                          const char *name, size_t name_len)
{
    size_t lo = 0, hi = z->n;
    while (lo < hi) {
        size_t mid = lo + (hi - lo) / 2;
        const sg_zip_entry *e = &z->entries[mid];
        int c = cmp_joined(e->name, e->name_len, dir, dir_len, name, name_len);
        if (c == 0)
            return &z->entries[mid];
        if (c < 0)
            lo = mid + 1;
        else
            hi = mid;
    }
    return NULL;
}

sg_status sg_zip_open(sg_zip *z, const void *buf, size_t len, size_t max_entries,
                      const char *label, sg_error *err)
{
    *z = (sg_zip){buf, len, label, NULL, 0};
    const unsigned char *b = z->base;
    if (len < 22)
        return sg_zip_fail(z, err, SG_EINVAL, "file is %zu bytes, too short for a ZIP archive",
                           len);
    /* the end record is the last 22 bytes plus a comment of up to 65535 */
    size_t eocd = SIZE_MAX, lo = len - 22 > 65535 ? len - 22 - 65535 : 0;
    for (size_t p = len - 22 + 1; p-- > lo;)
        if (rd32(b + p) == SIG_END && p + 22 + rd16(b + p + 20) == len) {
            eocd = p;
            break;
        }
    if (eocd == SIZE_MAX)
        return sg_zip_fail(z, err, SG_EINVAL,
                           "no ZIP end-of-central-directory record: not a torch.save file, or "
                           "truncated");
    uint64_t disk = rd16(b + eocd + 4), cd_disk = rd16(b + eocd + 6);
    uint64_t n_disk = rd16(b + eocd + 8), n = rd16(b + eocd + 10);
    uint64_t cd_size = rd32(b + eocd + 12), cd_off = rd32(b + eocd + 16);
    uint64_t cd_limit = eocd; /* the directory ends before the end records */
    if (eocd >= 20 && rd32(b + eocd - 20) == SIG_LOCATOR64) {
        size_t loc = eocd - 20;
        uint64_t end64 = rd64(b + loc + 8);
        if (rd32(b + loc + 4) != 0 || rd32(b + loc + 16) > 1)
            return sg_zip_fail(z, err, SG_EUNSUPPORTED,
                               "multi-disk ZIP archives are not supported");
        if (end64 > loc || loc - end64 < 56 || rd32(b + end64) != SIG_END64)
            return sg_zip_fail(z, err, SG_EINVAL,
                               "ZIP64 end record missing or out of place (offset %" PRIu64 ")",
                               end64);
        disk = rd32(b + end64 + 16);
        cd_disk = rd32(b + end64 + 20);
        n_disk = rd64(b + end64 + 24);
        n = rd64(b + end64 + 32);
        cd_size = rd64(b + end64 + 40);
        cd_off = rd64(b + end64 + 48);
        cd_limit = end64;
    } else if (n == SAT16 || cd_size == SAT32 || cd_off == SAT32) {
        return sg_zip_fail(z, err, SG_EINVAL,
                           "ZIP end record needs a ZIP64 record, which is missing");
    }
    if (disk != 0 || cd_disk != 0 || n_disk != n)
        return sg_zip_fail(z, err, SG_EUNSUPPORTED, "multi-disk ZIP archives are not supported");
    if (cd_off > cd_limit || cd_size > cd_limit - cd_off)
        return sg_zip_fail(z, err, SG_EINVAL,
                           "central directory (offset %" PRIu64 ", %" PRIu64
                           " bytes) lies outside the file",
                           cd_off, cd_size);
    if (n == 0)
        return sg_zip_fail(z, err, SG_EINVAL, "ZIP archive holds no entries");
    if (n > max_entries)
        return sg_zip_fail(z, err, SG_ETOOBIG,
                           "ZIP archive holds %" PRIu64 " entries; the limit is %zu", n,
                           max_entries);
    if (n > cd_size / 46)
        return sg_zip_fail(z, err, SG_EINVAL,
                           "central directory of %" PRIu64 " bytes cannot hold %" PRIu64 " entries",
                           cd_size, n);
    z->entries = calloc((size_t)n, sizeof *z->entries);
    if (!z->entries)
        return sg_zip_fail(z, err, SG_ENOMEM, "out of memory for %" PRIu64 " ZIP entries", n);
    const unsigned char *p = b + cd_off, *end = p + cd_size;
    for (size_t i = 0; i < n; i++) {
        sg_zip_entry *e = &z->entries[i];
        if ((size_t)(end - p) < 46 || rd32(p) != SIG_CENTRAL)
            return sg_zip_fail(z, err, SG_EINVAL,
                               "central directory entry %zu: bad signature at offset %zu", i,
                               (size_t)(p - b));
        size_t nlen = rd16(p + 28), xlen = rd16(p + 30), clen = rd16(p + 32);
        if (46 + nlen + xlen + clen > (size_t)(end - p))
            return sg_zip_fail(z, err, SG_EINVAL,
                               "central directory entry %zu runs past the end of the directory", i);
        e->flags = rd16(p + 8);
        e->method = rd16(p + 10);
        e->crc = rd32(p + 16);
        e->csize = rd32(p + 20);
        e->usize = rd32(p + 24);
        e->local = rd32(p + 42);
        e->name = p + 46;
        e->name_len = nlen;
        uint32_t dstart = rd16(p + 34);
        if (!zip64_extra(p + 46 + nlen, xlen, &e->usize, &e->csize, &e->local, &dstart)) {
            char nb[NAME_CLIP + 4];
            return sg_zip_fail(z, err, SG_EINVAL, "entry '%s': ZIP64 extra field missing or short",
                               QUOTE(nb, e->name, nlen));
        }
        if (dstart != 0)
            return sg_zip_fail(z, err, SG_EUNSUPPORTED,
                               "multi-disk ZIP archives are not supported");
        p += 46 + nlen + xlen + clen;
    }
    if (p != end)
        return sg_zip_fail(z, err, SG_EINVAL, "central directory has %zu bytes after its %" PRIu64
                           " entries", (size_t)(end - p), n);
    z->n = (size_t)n;
    qsort(z->entries, z->n, sizeof *z->entries, entry_cmp);
    for (size_t i = 1; i < z->n; i++)
        if (entry_cmp(&z->entries[i - 1], &z->entries[i]) == 0) {
            char nb[NAME_CLIP + 4];
            return sg_zip_fail(z, err, SG_EINVAL, "duplicate ZIP entry '%s'",
                               QUOTE(nb, z->entries[i].name, z->entries[i].name_len));
        }
    return SG_OK;
}

sg_status sg_zip_entry_data(const sg_zip *z, sg_zip_entry *e, sg_error *err)
{
    if (e->data)
        return SG_OK;
    char nb[NAME_CLIP + 4];
    const char *N = QUOTE(nb, e->name, e->name_len);
    if (e->flags & 1)
        return sg_zip_fail(z, err, SG_EUNSUPPORTED, "entry '%s' is encrypted", N);
    if (e->method != 0)
        return sg_zip_fail(z, err, SG_EUNSUPPORTED,
                           "entry '%s' is compressed (ZIP method %u); torch.save stores entries "
                           "uncompressed, so the archive was repacked: re-save it with torch.save",
                           N, e->method);
    if (e->csize != e->usize)
        return sg_zip_fail(z, err, SG_EINVAL,
                           "stored entry '%s' has compressed size %" PRIu64 " but size %" PRIu64, N,
                           e->csize, e->usize);
    const unsigned char *b = z->base;
    if (e->local > z->len || z->len - e->local < 30 || rd32(b + e->local) != SIG_LOCAL)
        return sg_zip_fail(z, err, SG_EINVAL, "entry '%s': no local header at offset %" PRIu64, N,
                           e->local);
    const unsigned char *h = b + e->local;
    size_t nlen = rd16(h + 26), xlen = rd16(h + 28);
    if (rd16(h + 8) != e->method)
        return sg_zip_fail(z, err, SG_EINVAL,
                           "entry '%s': local and central headers disagree on the compression", N);
    uint64_t data = e->local + 30 + nlen + xlen;
    if (data > z->len || nlen != e->name_len || memcmp(h + 30, e->name, nlen) != 0)
        return sg_zip_fail(z, err, SG_EINVAL,
                           "entry '%s': local header at offset %" PRIu64 " names another file", N,
                           e->local);
    if (e->usize > z->len - data)
        return sg_zip_fail(z, err, SG_EINVAL,
                           "truncated: entry '%s' needs bytes [%" PRIu64 ", %" PRIu64
                           ") but the file has %zu",
                           N, data, data + e->usize, z->len);
    uLong crc = crc32(0L, Z_NULL, 0);
    for (uint64_t o = 0; o < e->usize;) {
        uInt chunk = e->usize - o > (1u << 30) ? (1u << 30) : (uInt)(e->usize - o);
        crc = crc32(crc, b + data + o, chunk);
        o += chunk;
    }
    if ((uint32_t)crc != e->crc)
        return sg_zip_fail(z, err, SG_EINVAL, "entry '%s' is corrupt: CRC-32 %08" PRIx32
                           ", the directory says %08" PRIx32, N, (uint32_t)crc, e->crc);
    e->data = b + data;
    return SG_OK;
}

void sg_zip_close(sg_zip *z)
{
    free(z->entries);
    z->entries = NULL;
    z->n = 0;
}
