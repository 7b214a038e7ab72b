/* Shared by the model-loader fuzz targets (fuzz_silero_loader.c, fuzz_whisper_ggml.c): the input
 * read as edits to a valid model file made of records (the header, then one record per tensor). Header-only: each target stays one file. */
#ifndef SG_FUZZ_RECORDS_H
#define SG_FUZZ_RECORDS_H

#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_util.h"

/* Applies data as 6-byte operations (u16 target, u8 op, 3 value bytes) to buf[0..len), a copy of
 * a model whose records start at rec[0] = 0 (the header) .. rec[nrec - 1] and end at
 * rec[nrec] = len. The target picks record (target >> 7) % nrec and an offset into its first 128
 * bytes (so most edits land on the fields being validated): op 0 writes the value bytes, op 1
 * writes a small int32, op 2 truncates there, op 3 drops the record (the last operation applied,
 * as later targets would be off). Returns the new length. */
static size_t fuzz_edit_records(uint8_t *buf, size_t len, const size_t *rec, size_t nrec,
                                const uint8_t *data, size_t size)
{
    int stop = 0;
    for (size_t i = 0; i + 6 <= size && !stop; i += 6) {
        const unsigned target = (unsigned)data[i] | (unsigned)data[i + 1] << 8;
        const uint8_t op = data[i + 2] & 3, *val = data + i + 3;
        const size_t r = (target >> 7) % nrec;
        size_t at = rec[r] + (target & 127);
        if (at >= len)
            continue;
        switch (op) {
        case 0:
            for (int k = 0; k < 3 && at + k < len; k++)
                buf[at + k] = val[k];
            break;
        case 1: {
            at &= ~(size_t)3;
            int32_t x = (int32_t)(int8_t)val[0] * (val[1] & 1 ? 256 : 1);
            if (at + 4 <= len)
                memcpy(buf + at, &x, 4);
            break;
        }
        case 2:
            len = at;
            break;
        default:
            if (r > 0 && rec[r + 1] <= len) { /* drop record r */
                memmove(buf + rec[r], buf + rec[r + 1], len - rec[r + 1]);
                len -= rec[r + 1] - rec[r];
                stop = 1;
            }
            break;
        }
    }
    return len;
}

/* The edited model: a copy of model[0..model_len) (NULL: none) with data applied as edits by
 * fuzz_edit_records, handed to exercise. Only inputs of 6 to 6 * 64 bytes are used this way. */
static void fuzz_exercise_edited(const uint8_t *model, size_t model_len, const size_t *rec,
                                 size_t nrec, const uint8_t *data, size_t size,
                                 void (*exercise)(const uint8_t *buf, size_t len))
{
    if (!model || size < 6 || size > 6 * 64)
        return;
    uint8_t *buf = fuzz_exact_copy(model, model_len);
    if (!buf)
        return;
    exercise(buf, fuzz_edit_records(buf, model_len, rec, nrec, data, size));
    free(buf);
}

#endif
