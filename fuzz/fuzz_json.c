/* libFuzzer differential target for base/json: sg_json_parse and jansson's json_loadb (with
 * JSON_DECODE_ANY | JSON_ALLOW_NUL) must agree on accepting the input and, when both accept, build
 * equal values. Two differences are deliberate and excused here:
 *  - nesting deeper than SG_JSON_MAX_DEPTH, which we refuse (jansson allows 2048);
 *  - jansson drops a NUL byte that directly follows a number or a literal (its lexer "ungets" the
 *    byte that ended the token into a NUL-terminated buffer, where a NUL reads as empty), so it
 *    accepts "5\0" and "[1\0,2]". RFC 8259 allows no NUL outside strings; we refuse them. */
#include <ctype.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/json.h"
#include "fuzz_util.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The offset in an "invalid JSON at offset N: ..." message. */
static size_t error_offset(const sg_error *err)
{
    return (size_t)strtoull(err->msg + strlen("invalid JSON at offset "), NULL, 10);
}

/* Whether our refusal of buf is only jansson's dropped-NUL quirk: turning each NUL we trip over
 * that follows a token's last character into a space makes us accept, with jansson's value. */
static bool only_dropped_nuls(char *buf, size_t size, sg_error *err, const json_t *theirs)
{
    for (;;) {
        if (err->code != SG_EINVAL)
            return false;
        size_t at = error_offset(err);
        if (at == 0 || at >= size || buf[at] != '\0' ||
            !(isdigit((unsigned char)buf[at - 1]) || isalpha((unsigned char)buf[at - 1])))
            return false;
        buf[at] = ' ';
        json_t *again = sg_json_parse(buf, size, err);
        if (again) {
            bool same = json_equal(again, theirs);
            json_decref(again);
            return same;
        }
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    char *buf = (char *)fuzz_exact_copy(data, size);
    if (!buf)
        return 0;

    sg_error err = {0};
    json_t *ours = sg_json_parse(buf, size, &err);
    json_error_t jerr;
    json_t *theirs = json_loadb(buf, size, JSON_DECODE_ANY | JSON_ALLOW_NUL, &jerr);

    /* a refusal is SG_EINVAL with an offset, or SG_ENOMEM */
    if (!ours && err.code != SG_ENOMEM &&
        (err.code != SG_EINVAL || strncmp(err.msg, "invalid JSON at offset ", 23) != 0))
        abort();
    bool excused = !ours && strstr(err.msg, "nesting too deep") != NULL;
    if (!ours && theirs && !excused)
        excused = only_dropped_nuls(buf, size, &err, theirs);
    if (!excused) {
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
