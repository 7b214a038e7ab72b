/* libFuzzer target for safetensors files, which come from users and the network: open the bytes,
 * walk every tensor (find by name must give back the same tensor, its bytes must lie inside the
 * input), read the small ones as f32 (and refuse a wrong expected shape), and look up metadata.
 * Each input runs twice: as it is, and with the 8-byte length prefix rewritten to the length of
 * the JSON value that follows it, so that mutations inside the header keep reaching the entry
 * and tiling checks instead of all failing on the prefix. Any crash, leak, sanitizer report or
 * trap below is a bug. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "nn/safetensors.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Elements converted per tensor at most. */
#define MAX_READ 4096

static void run(const uint8_t *data, size_t size)
{
    sg_error err;
    uint8_t *buf = fuzz_exact_copy(data, size);
    if (!buf)
        return;
    sg_st_file *f = sg_st_open_memory(buf, size, &err);
    if (!f) {
        if (err.code == SG_OK || !err.msg[0])
            __builtin_trap(); /* a refusal must say why */
        free(buf);
        return;
    }
    static float out[MAX_READ];
    volatile float sink = 0;
    for (size_t i = 0; i < sg_st_count(f); i++) {
        const sg_st_tensor *t = sg_st_at(f, i);
        if (sg_st_find(f, t->name) != t)
            __builtin_trap();
        const uint8_t *p = t->data;
        if (p < buf || p > buf + size || t->nbytes > (size_t)(buf + size - p))
            __builtin_trap();
        int64_t n = sg_st_numel(t);
        if ((uint64_t)n * sg_dtype_size(t->dtype) != t->nbytes)
            __builtin_trap();
        if (n <= MAX_READ) {
            if (sg_st_read_f32(f, t->name, t->ndim, t->shape, out, &err) != SG_OK)
                __builtin_trap();
            for (int64_t j = 0; j < n; j++)
                sink += out[j];
        }
        int64_t wrong[SG_ST_MAX_DIMS];
        for (int d = 0; d < t->ndim; d++)
            wrong[d] = t->shape[d] + 1;
        if (t->ndim > 0 && sg_st_read_f32(f, t->name, t->ndim, wrong, out, &err) == SG_OK)
            __builtin_trap();
    }
    (void)sg_st_metadata(f, "format");
    (void)sg_st_find(f, "model.embed_tokens.weight");
    sg_st_close(f);
    free(buf);
    (void)sink;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    run(data, size);
    if (size <= 8)
        return 0;
    json_error_t jerr;
    json_t *j = json_loadb((const char *)data + 8, size - 8, JSON_DISABLE_EOF_CHECK, &jerr);
    if (!j)
        return 0;
    json_decref(j);
    uint64_t hlen = (uint64_t)jerr.position, claimed = 0;
    for (int i = 7; i >= 0; i--)
        claimed = claimed << 8 | data[i];
    if (hlen == claimed)
        return 0;
    uint8_t *fixed = malloc(size);
    if (!fixed)
        return 0;
    memcpy(fixed, data, size);
    for (int i = 0; i < 8; i++)
        fixed[i] = (uint8_t)(hlen >> (8 * i));
    run(fixed, size);
    free(fixed);
    return 0;
}
