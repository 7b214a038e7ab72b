/* libFuzzer target for the Silero VAD loader (models/silero_vad.h), whose files come from users:
 * every input is loaded twice.
 *  1. As it is: a file of those bytes.
 *  2. As edits to the real model (../shared/models/silero-vad-v6.2.0-ggml.bin, or $SG_SILERO_MODEL;
 *     skipped when it cannot be read): 6-byte operations (u16 target, u8 op, 3 value bytes). The
 *     target picks a place near the header or a tensor record's start (so most edits land on
 *     the fields being validated, not deep inside the weights): op 0 writes the value bytes, op 1
 *     writes a small int32, op 2 truncates there, op 3 drops the record. A valid model can only
 *     come out of small, value-only edits, so the forward pass runs too.
 * A refusal must carry a message; a model that loads must give probabilities in [0, 1] or a
 * refusal of the audio; any crash, leak or sanitizer report is a bug. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "fuzz_records.h"
#include "models/silero_vad.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MAX_RECORDS 32

static uint8_t *model;      /* the real file, or NULL */
static size_t model_len;
static size_t rec[MAX_RECORDS + 1]; /* record offsets; rec[0] = 0 (the header), last = end */
static size_t nrec;

static void exercise(const uint8_t *buf, size_t len)
{
    sg_error err = {0};
    uint8_t *copy = fuzz_exact_copy(buf, len);
    if (!copy)
        return;
    sg_silero *m = sg_silero_load_memory(copy, len, &err);
    free(copy);
    if (!m) {
        if (err.code == SG_OK || !err.msg[0])
            __builtin_trap(); /* a refusal must say why */
        return;
    }
    static float pcm[1100];
    for (int i = 0; i < 1100; i++)
        pcm[i] = (float)((i * 37) % 200 - 100) / 400.0f;
    float *p = NULL;
    size_t np = 0;
    sg_status st = sg_silero_probs(m, pcm, 1100, &p, &np, &err);
    if (st == SG_OK) {
        if (np != 3)
            __builtin_trap();
        for (size_t i = 0; i < np; i++)
            if (!(p[i] >= 0.0f && p[i] <= 1.0f))
                __builtin_trap();
        sg_vad_segment *s = NULL;
        size_t ns = 0;
        if (sg_vad_segments(p, np, 1100, NULL, &s, &ns, &err) != SG_OK)
            __builtin_trap();
        free(s);
    } else if (p || np || !err.msg[0]) {
        __builtin_trap();
    }
    free(p);
    sg_silero_free(m);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    const char *path = getenv("SG_SILERO_MODEL");
    char *bytes = NULL;
    if (sg_file_read(path ? path : "../shared/models/silero-vad-v6.2.0-ggml.bin", (size_t)64 << 20,
                     &bytes, &model_len, NULL) != SG_OK)
        return 0;
    model = (uint8_t *)bytes;
    if (model_len < 8) {
        free(model);
        model = NULL;
        model_len = 0;
        return 0;
    }
    /* walk the records (header: magic, type string, 3 + 3 + 12 + 4 int32) */
    int32_t v;
    memcpy(&v, model + 4, 4);
    size_t o = 8 + (size_t)v + 4 * 22;
    rec[nrec++] = 0;
    while (o + 12 <= model_len && nrec < MAX_RECORDS) {
        int32_t nd, nl, ty, ne;
        memcpy(&nd, model + o, 4);
        memcpy(&nl, model + o + 4, 4);
        memcpy(&ty, model + o + 8, 4);
        rec[nrec++] = o;
        size_t count = 1, p = o + 12;
        for (int i = 0; i < nd && i < 4; i++, p += 4) {
            memcpy(&ne, model + p, 4);
            count *= (size_t)ne;
        }
        o = p + (size_t)nl + count * (ty == 1 ? 2 : 4);
    }
    rec[nrec] = model_len;
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    exercise(data, size);
    fuzz_exercise_edited(model, model_len, rec, nrec, data, size, exercise);
    return 0;
}
