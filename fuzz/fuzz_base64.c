/* libFuzzer target for base/base64: decode arbitrary bytes; whatever decodes must re-encode to
 * text that decodes to the same bytes, and encoding the raw input must round-trip too. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "base/base64.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void round_trip(const uint8_t *bytes, size_t len)
{
    size_t elen;
    char *enc = sg_base64_encode(bytes, len, &elen);
    if (!enc)
        abort();
    if (elen != (len + 2) / 3 * 4 || strlen(enc) != elen)
        abort();
    uint8_t *back = NULL;
    size_t back_len = 0;
    sg_error err;
    if (sg_base64_decode(enc, elen, &back, &back_len, &err) != SG_OK)
        abort();
    if (back_len != len || memcmp(back, bytes, len) != 0 || back[back_len] != 0)
        abort();
    free(back);
    free(enc);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    uint8_t *out = NULL;
    size_t out_len = 0;
    sg_error err;
    sg_status st = sg_base64_decode((const char *)data, size, &out, &out_len, &err);
    if (st == SG_OK) {
        if (out_len == 0 || out_len > size || out[out_len] != 0)
            abort();
        round_trip(out, out_len);
        free(out);
    } else if (out != NULL || out_len != 0 || st != SG_EINVAL) {
        abort();
    }
    if (size > 0)
        round_trip(data, size);
    return 0;
}
