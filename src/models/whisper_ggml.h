/* whisper.cpp's model file (ggml-*.bin, the layout of its convert-pt-to-ggml.py and
 * whisper_model_load): all little-endian int32 unless said otherwise,
 *   magic 0x67676d6c ("ggml")
 *   hparams: n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx,
 *            n_text_state, n_text_head, n_text_layer, n_mels, ftype
 *   mel filters: n_mel, n_fft, then n_mel * n_fft float32
 *   vocabulary: n, then n times (uint32 length, bytes): the token bytes in rank order, except
 *            that whisper.cpp's converter stored tokens that are not valid UTF-8 (single bytes
 *            >= 0x80, pieces of characters) as U+FFFD (Python's errors="replace"), so those
 *            entries have lost their bytes (344 of the .en files', 1476 of the multilingual)
 *   tensors to the end of the file: n_dims, name_len, ttype, ne[n_dims] (fastest dimension
 *            first), name, then the data (no alignment), ttype 0 = F32, 1 = F16
 * Tensor names are openai's (encoder.blocks.N.attn.query, decoder.token_embedding, ...); the
 * special token ids are implied by n_vocab as in openai's tokenizer. Every count, size and name
 * is checked against the bytes there are: a truncated or garbled file is SG_EINVAL with a message
 * saying what and where, quantized files SG_EUNSUPPORTED. sg_whisper_load takes these files; this
 * header is the parser (and the header-only reading the loader tests use). */
#ifndef SG_MODELS_WHISPER_GGML_H
#define SG_MODELS_WHISPER_GGML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "base/file.h"
#include "nn/linear.h"
#include "nn/pool.h"

#define SG_WGGML_MAGIC 0x67676D6Cu
#define SG_WGGML_MAX_DIMS 4
#define SG_WGGML_MAX_NAME 255

typedef struct sg_wggml_hparams {
    int32_t n_vocab, n_audio_ctx, n_audio_state, n_audio_head, n_audio_layer, n_text_ctx,
        n_text_state, n_text_head, n_text_layer, n_mels, ftype;
} sg_wggml_hparams;

typedef struct sg_wggml_tensor {
    char name[SG_WGGML_MAX_NAME + 1];
    int ttype;                          /* 0 F32, 1 F16 */
    int ndim;
    int64_t shape[SG_WGGML_MAX_DIMS];   /* row-major (slowest first): ne reversed */
    const void *data;                   /* into the file's bytes; any alignment */
    size_t nbytes;
} sg_wggml_tensor;

typedef struct sg_wggml {
    sg_wggml_hparams hp;
    int n_mel, n_fft;        /* mel filter table: n_mel rows of n_fft floats */
    float *filters;          /* malloc'ed */
    int n_tokens;            /* vocabulary entries in the file (50257 for the real files) */
    uint32_t *tok_off, *tok_len; /* token i = tok_bytes[tok_off[i] .. + tok_len[i]) */
    char *tok_bytes;         /* all token bytes, each followed by a NUL */
    size_t n_tensors;
    sg_wggml_tensor *tensors;
    size_t *index, index_cap; /* open-addressing name hash: tensor i + 1, 0 = empty */
    const uint8_t *buf;      /* the file's bytes (mapped by sg_wggml_open, or borrowed) */
    size_t len;
    sg_file_map file;        /* the mapping sg_wggml_open made; empty for borrowed bytes */
} sg_wggml;

/* Parses buf[0..len) (borrowed: it must outlive g when tensors are read). header_only stops
 * after the vocabulary (n_tensors 0). Checks: magic, hparams in plausible ranges and n_vocab a
 * Whisper vocabulary (51864 .en, 51865 multilingual, 51866 large-v3), ftype 0/1 (else
 * SG_EUNSUPPORTED), the filter table and every token inside the file, every tensor record
 * complete, 1..4 positive dims, a NUL-free unique name, ttype F32/F16 (quantized types:
 * SG_EUNSUPPORTED). It does not check which tensors there are: the loader does. On error g is
 * left empty (sg_wggml_free is still safe). */
sg_status sg_wggml_parse(const uint8_t *buf, size_t len, bool header_only, sg_wggml *g,
                         sg_error *err);
/* Maps path read-only and parses it. SG_EIO when it cannot be read. */
sg_status sg_wggml_open(const char *path, bool header_only, sg_wggml *g, sg_error *err);
void sg_wggml_free(sg_wggml *g);
/* The tensor named name, or NULL. */
const sg_wggml_tensor *sg_wggml_find(const sg_wggml *g, const char *name);
/* Tells the kernel a mapped tensor's bytes will not be read again (no-op for borrowed bytes). */
void sg_wggml_release(const sg_wggml *g, const sg_wggml_tensor *t);
/* Token bytes of id (NULL past the vocabulary). */
const char *sg_wggml_token(const sg_wggml *g, int32_t id, size_t *len);
/* True when the file starts with the ggml magic. */
bool sg_wggml_is_ggml(const char *path);

/* Loads a whisper.cpp model from buf[0..len), which must outlive the model (the token
 * embedding rows are read from it). The same checks and errors as sg_whisper_load. */
struct sg_whisper *sg_whisper_load_ggml_memory(const uint8_t *buf, size_t len, sg_precision prec,
                                               sg_pool *pool, sg_error *err);

#endif
