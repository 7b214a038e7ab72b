/* libFuzzer target for torch.save checkpoints, which come from users: open the bytes, walk every
 * tensor (find by name gives the same tensor, its storage lies inside the input, every element
 * its view addresses lies inside its storage), read the small ones as f32 and refuse a wrong
 * expected shape. Each input runs twice: as it is, and with every central-directory CRC-32
 * rewritten to match its entry's bytes, so that mutations of the pickle and the storages reach
 * the pickle machine and the view checks instead of all stopping at the CRC. Any crash, leak,
 * sanitizer report or trap below is a bug. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "nn/ptfile.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Elements converted per tensor at most. */
#define MAX_READ 4096

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

static void check_view(const sg_pt_tensor *t, const uint8_t *buf, size_t size)
{
    const uint8_t *s = t->storage;
    if (s < buf || s > buf + size || t->storage_bytes > (size_t)(buf + size - s))
        __builtin_trap();
    size_t es = sg_dtype_size(t->dtype);
    if (!es || t->storage_bytes % es || t->offset < 0)
        __builtin_trap();
    int64_t numel = sg_pt_numel(t);
    if (numel == 0)
        return;
    unsigned __int128 hi = (unsigned __int128)t->offset;
    for (int d = 0; d < t->ndim; d++) {
        if (t->shape[d] < 0 || t->stride[d] < 0)
            __builtin_trap();
        hi += (unsigned __int128)(t->shape[d] - 1) * (unsigned __int128)t->stride[d];
    }
    if (hi >= t->storage_bytes / es)
        __builtin_trap();
}

static void run(const uint8_t *data, size_t size)
{
    sg_error err;
    uint8_t *buf = fuzz_exact_copy(data, size);
    if (!buf)
        return;
    sg_pt_file *f = sg_pt_open_memory(buf, size, &err);
    if (!f) {
        if (err.code == SG_OK || !err.msg[0])
            __builtin_trap(); /* a refusal must say why */
        free(buf);
        return;
    }
    static float out[MAX_READ];
    volatile float sink = 0;
    for (size_t i = 0; i < sg_pt_count(f); i++) {
        const sg_pt_tensor *t = sg_pt_at(f, i);
        if (sg_pt_find(f, t->name) != t)
            __builtin_trap();
        check_view(t, buf, size);
        int64_t n = sg_pt_numel(t);
        if (n <= MAX_READ) {
            if (sg_pt_read_f32(f, t->name, t->ndim, t->shape, out, &err) != SG_OK)
                __builtin_trap();
            for (int64_t j = 0; j < n; j++)
                sink += out[j];
        }
        int64_t wrong[SG_PT_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++)
            wrong[d] = t->shape[d] + 1;
        if (t->ndim > 0 && sg_pt_read_f32(f, t->name, t->ndim, wrong, out, &err) == SG_OK)
            __builtin_trap();
    }
    (void)sg_pt_find(f, "embed.weight");
    sg_pt_close(f);
    free(buf);
    (void)sink;
}

/* Rewrites the CRC-32 of every central-directory entry found (32-bit sizes and offsets only) to
 * that of the bytes its local header points at; returns whether anything changed. */
static int fix_crcs(uint8_t *b, size_t size)
{
    int changed = 0;
    for (size_t p = 0; p + 46 <= size; p++) {
        if (rd32(b + p) != 0x02014b50u)
            continue;
        uint32_t usize = rd32(b + p + 24), local = rd32(b + p + 42);
        if (local > size || size - local < 30 || rd32(b + local) != 0x04034b50u)
            continue;
        size_t start = (size_t)local + 30 + (b[local + 26] | b[local + 27] << 8) +
                       (b[local + 28] | b[local + 29] << 8);
        if (start > size || usize > size - start)
            continue;
        uint32_t crc = (uint32_t)crc32(0, b + start, usize);
        if (rd32(b + p + 16) != crc) {
            for (int i = 0; i < 4; i++)
                b[p + 16 + i] = (uint8_t)(crc >> (8 * i));
            changed = 1;
        }
    }
    return changed;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size);
    uint8_t *fixed = malloc(size ? size : 1);
    if (!fixed)
        return 0;
    if (size)
        memcpy(fixed, data, size);
    if (fix_crcs(fixed, size))
        run(fixed, size);
    free(fixed);
    return 0;
}
