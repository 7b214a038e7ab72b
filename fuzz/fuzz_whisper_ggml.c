/* libFuzzer target for the whisper.cpp ggml loader (models/whisper_ggml.h), whose files come from
 * users: every input is used twice.
 *  1. As it is: parsed header-only, parsed whole, and loaded as a model.
 *  2. As edits to a small valid model built at start-up (real .en vocabulary size 51864, d_model
 *     4, one layer each, 2 mels, audio context 2, text context 4, F16 matrices and F32 vectors as
 *     whisper.cpp writes them): 6-byte operations (u16 target, u8 op, 3 value bytes). The target
 *     picks the header or a tensor record and an offset into its first 128 bytes (so most edits
 *     land on the fields being validated): op 0 writes the value bytes, op 1 writes a small
 *     int32, op 2 truncates there, op 3 drops the record. A model that loads is run: encode 4
 *     frames, detect nothing (.en), decode 2 tokens, detokenize.
 * A refusal must carry a message; any crash, leak or sanitizer report is a bug. */
#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz_records.h"
#include "models/whisper.h"
#include "models/whisper_ggml.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerInitialize(int *argc, char ***argv);

#define MAX_RECORDS 64
#define D 4
#define N_VOCAB 51864
#define N_MELS 2
#define AUDIO_CTX 2
#define TEXT_CTX 4

static uint8_t *model; /* the base model */
static size_t model_len, model_cap;
static size_t rec[MAX_RECORDS + 1]; /* record offsets; rec[0] = 0 (the header), last = end */
static size_t nrec;

static void emit(const void *p, size_t n)
{
    if (model_len + n > model_cap) {
        size_t cap = model_cap ? 2 * model_cap : 1 << 16;
        while (cap < model_len + n)
            cap *= 2;
        uint8_t *m = realloc(model, cap);
        if (!m)
            abort();
        model = m;
        model_cap = cap;
    }
    memcpy(model + model_len, p, n);
    model_len += n;
}

static void emit_i32(int32_t v) { emit(&v, 4); }

/* a record of the given row-major shape; F16 (a fixed small value) or F32 (ones) */
static void tensor(const char *name, int nd, int a, int b, int c, int f16)
{
    if (nrec < MAX_RECORDS)
        rec[nrec++] = model_len;
    const int shape[3] = {a, b, c};
    emit_i32(nd);
    emit_i32((int32_t)strlen(name));
    emit_i32(f16);
    size_t n = 1;
    for (int i = nd - 1; i >= 0; i--) {
        emit_i32(shape[i]);
        n *= (size_t)shape[i];
    }
    emit(name, strlen(name));
    for (size_t i = 0; i < n; i++) {
        if (f16) {
            uint16_t h = (uint16_t)(0x2E66 + (i * 7) % 64); /* about 0.1 .. 0.2 */
            emit(&h, 2);
        } else {
            float v = 1.0f;
            emit(&v, 4);
        }
    }
}

static void attn(const char *p, int f16)
{
    char n[128];
    const char *parts[4] = {"query", "key", "value", "out"};
    for (int i = 0; i < 4; i++) {
        snprintf(n, sizeof n, "%s.%s.weight", p, parts[i]);
        tensor(n, 2, D, D, 1, f16);
        if (i != 1) {
            snprintf(n, sizeof n, "%s.%s.bias", p, parts[i]);
            tensor(n, 1, D, 1, 1, 0);
        }
    }
}

static void block(const char *p, int cross)
{
    char n[128];
    snprintf(n, sizeof n, "%s.attn", p);
    attn(n, 1);
    const char *lns[3] = {"attn_ln", "mlp_ln", "cross_attn_ln"};
    for (int i = 0; i < (cross ? 3 : 2); i++) {
        snprintf(n, sizeof n, "%s.%s.weight", p, lns[i]);
        tensor(n, 1, D, 1, 1, 0);
        snprintf(n, sizeof n, "%s.%s.bias", p, lns[i]);
        tensor(n, 1, D, 1, 1, 0);
    }
    if (cross) {
        snprintf(n, sizeof n, "%s.cross_attn", p);
        attn(n, 1);
    }
    snprintf(n, sizeof n, "%s.mlp.0.weight", p);
    tensor(n, 2, 4 * D, D, 1, 1);
    snprintf(n, sizeof n, "%s.mlp.0.bias", p);
    tensor(n, 1, 4 * D, 1, 1, 0);
    snprintf(n, sizeof n, "%s.mlp.2.weight", p);
    tensor(n, 2, D, 4 * D, 1, 1);
    snprintf(n, sizeof n, "%s.mlp.2.bias", p);
    tensor(n, 1, D, 1, 1, 0);
}

static void build_model(void)
{
    rec[nrec++] = 0;
    emit_i32((int32_t)SG_WGGML_MAGIC);
    const int32_t hp[11] = {N_VOCAB, AUDIO_CTX, D, 1, 1, TEXT_CTX, D, 1, 1, N_MELS, 1};
    emit(hp, sizeof hp);
    emit_i32(N_MELS);
    emit_i32(3);
    for (int i = 0; i < N_MELS * 3; i++) {
        float v = 0.5f;
        emit(&v, 4);
    }
    emit_i32(300); /* the 256 single bytes and a few more */
    for (int i = 0; i < 300; i++) {
        uint8_t t[2] = {(uint8_t)i, (uint8_t)(i >> 8)};
        emit_i32(i < 256 ? 1 : 2);
        emit(t, i < 256 ? 1 : 2);
    }
    tensor("encoder.positional_embedding", 2, AUDIO_CTX, D, 1, 0);
    tensor("encoder.conv1.weight", 3, D, N_MELS, 3, 1);
    tensor("encoder.conv1.bias", 2, D, 1, 1, 0);
    tensor("encoder.conv2.weight", 3, D, D, 3, 1);
    tensor("encoder.conv2.bias", 2, D, 1, 1, 0);
    block("encoder.blocks.0", 0);
    tensor("encoder.ln_post.weight", 1, D, 1, 1, 0);
    tensor("encoder.ln_post.bias", 1, D, 1, 1, 0);
    tensor("decoder.positional_embedding", 2, TEXT_CTX, D, 1, 0);
    tensor("decoder.token_embedding.weight", 2, N_VOCAB, D, 1, 1);
    block("decoder.blocks.0", 1);
    tensor("decoder.ln.weight", 1, D, 1, 1, 0);
    tensor("decoder.ln.bias", 1, D, 1, 1, 0);
    rec[nrec] = model_len;
}

static void exercise(const uint8_t *buf, size_t len)
{
    sg_error err = {0};
    uint8_t *copy = fuzz_exact_copy(buf, len);
    if (!copy)
        return;
    sg_wggml g;
    if (sg_wggml_parse(copy, len, true, &g, &err) == SG_OK)
        sg_wggml_free(&g);
    else if (!err.msg[0])
        __builtin_trap();
    sg_whisper *m = sg_whisper_load_ggml_memory(copy, len, SG_PREC_F32, NULL, &err);
    if (!m) {
        if (err.code == SG_OK || !err.msg[0])
            __builtin_trap(); /* a refusal must say why */
        free(copy);
        return;
    }
    const sg_whisper_info *I = sg_whisper_get_info(m);
    const int frames = 4 <= 2 * I->n_audio_ctx ? 4 : 2;
    float *mel = calloc((size_t)I->n_mels * (size_t)frames, sizeof(float));
    if (mel && sg_whisper_encode(m, mel, frames, NULL, &err) == SG_OK) {
        sg_whisper_decode_opts o = {-1, false, 2};
        sg_whisper_result r;
        if (sg_whisper_decode(m, &o, &r, &err) == SG_OK) {
            if (r.n > 2 || r.n_logprobs > 2)
                __builtin_trap();
            free(sg_whisper_detokenize(m, r.tokens, r.n));
            sg_whisper_result_free(&r);
        } else if (!err.msg[0]) {
            __builtin_trap();
        }
        int32_t tok;
        float p;
        if (sg_whisper_detect_language(m, &tok, &p, &err) == SG_OK && !sg_whisper_language_code(m, tok))
            __builtin_trap();
    }
    free(mel);
    sg_whisper_free(m);
    free(copy);
}

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    build_model();
    return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    exercise(data, size);
    fuzz_exercise_edited(model, model_len, rec, nrec, data, size, exercise);
    return 0;
}
