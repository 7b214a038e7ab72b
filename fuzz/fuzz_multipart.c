/* libFuzzer target for multipart/form-data (server/multipart.c). The input is a Content-Type line,
 * "\n", then the body (the seeds in fuzz/seeds/fuzz_multipart are laid out so). Any bytes parse
 * or are refused with SG_EINVAL / SG_ETOOBIG and a reason; a parse that succeeds keeps its limits,
 * names are non-empty C strings, and every part's data lies inside the body, in order, not
 * overlapping. The body is an exact copy so ASan catches a read past its end. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"
#include "server/multipart.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    const uint8_t *nl = memchr(data, '\n', size < 256 ? size : 256);
    const size_t ct_len = nl ? (size_t)(nl - data) : 0;
    const size_t off = nl ? ct_len + 1 : 0;
    char *ct = fuzz_cstring(data, ct_len);
    uint8_t *body = fuzz_exact_copy(data + off, size - off);
    if (!ct || !body) {
        free(ct);
        free(body);
        return 0;
    }
    /* the defaults, and small limits so that they are reached too */
    sg_multipart_limits small = {3, 2, 96, 8};
    const sg_multipart_limits *lim = (size & 1) ? &small : NULL;
    sg_multipart_limits L;
    sg_multipart_limits_default(&L);
    if (lim)
        L = *lim;
    sg_multipart mp;
    sg_error err = {0};
    const size_t len = size - off;
    sg_status st = sg_multipart_parse(body, len, ct, lim, &mp, &err);
    if (st != SG_OK) {
        if ((st != SG_EINVAL && st != SG_ETOOBIG && st != SG_ENOMEM) || !err.msg[0] ||
            mp.parts || mp.n_parts)
            abort();
    } else {
        if (mp.n_parts > L.max_parts)
            abort();
        const uint8_t *prev_end = body;
        for (size_t i = 0; i < mp.n_parts; i++) {
            const sg_multipart_part *p = &mp.parts[i];
            if (!p->name || !p->name[0] || p->data < prev_end || p->len > len ||
                p->data + p->len > body + len)
                abort();
            if (!p->filename && p->len > L.max_field_bytes)
                abort();
            prev_end = p->data + p->len;
            if (sg_multipart_find(&mp, p->name) > p || sg_multipart_count(&mp, p->name) < 1)
                abort();
        }
        sg_multipart_free(&mp);
    }
    free(ct);
    free(body);
    return 0;
}
