/* libFuzzer differential target for base/json: sg_json_parse and jansson's json_loadb (with
 * JSON_DECODE_ANY | JSON_ALLOW_NUL) must agree on accepting the input and, when both accept, build
 * equal values. The one deliberate difference: nesting past SG_JSON_MAX_DEPTH, which we refuse. */
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/json.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    /* parse from an exact-size copy so ASan catches any read past the end */
    char *buf = malloc(size ? size : 1);
    if (!buf)
        return 0;
    memcpy(buf, data, size);

    sg_error err = {0};
    json_t *ours = sg_json_parse(buf, size, &err);
    json_error_t jerr;
    json_t *theirs = json_loadb(buf, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);

    /* a refusal is SG_EINVAL with an offset, or SG_ENOMEM */
    if (!ours && err.code != SG_ENOMEM &&
        (err.code != SG_EINVAL || strncmp(err.msg, "invalid JSON at offset ", 23) != 0))
        abort();
    bool too_deep = !ours && strstr(err.msg, "nesting too deep") != NULL;
    if (!too_deep) {
        if (!ours != !theirs) {
            fprintf(stderr, "disagreement: ours %s (%s), jansson %s (%s)\n",
                    ours ? "accepts" : "rejects", ours ? "-" : err.msg,
                    theirs ? "accepts" : "rejects", theirs ? "-" : jerr.text);
            abort();
        }
        if (ours && !json_equal(ours, theirs)) {
            fprintf(stderr, "both accept but the values differ\n");
            abort();
        }
    }
    json_decref(ours);
    json_decref(theirs);
    free(buf);
    return 0;
}
