/* Whisper speech recognition (openai/whisper's encoder-decoder) loaded from a Hugging Face model
 * directory (config.json + model.safetensors, F32/F16/BF16, tokenizer files) or a whisper.cpp
 * ggml-*.bin file (F32/F16; models/whisper_ggml.h), with greedy decoding that follows
 * openai/whisper's rules without timestamps (.en and multilingual prompts, language detection).
 * Linear layers (and the tied logits) run in F32 or Q8 (nn/linear.h); at Q8 the decoder's
 * cross-attention keys/values are stored as int8 too (nn/kv.h); convolutions, LayerNorm,
 * softmax, GELU, queries and the residual stream stay in F32.
 * Calls are serialised per model (each uses the whole thread pool). */
#ifndef SG_MODELS_WHISPER_H
#define SG_MODELS_WHISPER_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "nn/linear.h"
#include "nn/pool.h"

typedef struct sg_whisper sg_whisper;

typedef struct sg_whisper_info {
    int d_model, enc_layers, dec_layers, enc_heads, dec_heads, enc_ffn, dec_ffn;
    int n_mels, n_audio_ctx, n_text_ctx, vocab;
    /* special tokens: from config.json (decoder_start_token_id, eos_token_id,
     * no_timestamps_token_id); translate .. no_speech are the five ids before <|notimestamps|>,
     * as in every Whisper vocabulary */
    int32_t sot, eot, no_timestamps, translate, transcribe, sot_lm, sot_prev, no_speech;
    sg_precision precision;
    size_t weight_bytes;
    /* multilingual: vocab >= 51865 (openai's rule); its n_languages language tokens follow
     * <|startoftranscript|> in openai's LANGUAGES order (99, or 100 for large-v3's 51866) */
    bool multilingual;
    int n_languages;
    const char *format; /* "hf" or "ggml" */
} sg_whisper_info;

/* path is a Hugging Face directory (config.json, model.safetensors, optional tokenizer files:
 * vocab.json + merges.txt or a *.tiktoken) or a whisper.cpp ggml-*.bin file (magic "ggml"); the
 * format is chosen by what path is. pool may be NULL and must outlive the model. Errors name the
 * file and tensor: SG_EIO, SG_EINVAL (bad config or file, missing tensor, wrong shape),
 * SG_EUNSUPPORTED (quantized ggml files, other activations), SG_ENOMEM.
 * Word timestamps' alignment heads (models/whisper_timing.h): a Hugging Face directory's
 * generation_config.json "alignment_heads" when present (malformed: SG_EINVAL), otherwise every
 * head of the last half of the decoder layers (openai's default; always for ggml files). */
sg_whisper *sg_whisper_load(const char *path, sg_precision prec, sg_pool *pool, sg_error *err);
void sg_whisper_free(sg_whisper *m);
const sg_whisper_info *sg_whisper_get_info(const sg_whisper *m);

/* Encoder on mel [n_mels rows x frames] (row-major by mel, as sg_log_mel makes it); frames must
 * be even and at most 2 * n_audio_ctx (3000 for the real models, which were trained on exactly
 * that). out (may be NULL) receives [frames / 2, d_model]. The result is also kept as the
 * decoder's cross-attention keys/values for the next sg_whisper_decode_greedy. */
sg_status sg_whisper_encode(sg_whisper *m, const float *mel, int frames, float *out, sg_error *err);

typedef struct sg_whisper_result {
    int32_t *tokens;     /* sampled text tokens, without the prompt and <|endoftext|>; malloc'ed */
    float *logprobs;     /* log-prob of every sampled token (eot included when sampled); malloc'ed */
    size_t n, n_logprobs;
    float avg_logprob;   /* openai: sum of log-probs / (n + 1) */
    float no_speech_prob;
    int32_t language;    /* the language token of the prompt (-1 for .en models) */
} sg_whisper_result;

/* Language tokens (multilingual models only): "en" -> <|en|>'s id; -1 for an unknown code or an
 * .en model. */
int32_t sg_whisper_language_token(const sg_whisper *m, const char *code);
/* "en" for <|en|>'s id; NULL for any other id (and always for .en models). */
const char *sg_whisper_language_code(const sg_whisper *m, int32_t token);

/* openai/whisper's detect_language on the last encoded window: one decoder step on
 * <|startoftranscript|>, every non-language token masked, softmax; *token = the most probable
 * language token, *prob (may be NULL) its probability. SG_EINVAL for an .en model or when
 * nothing is encoded. */
sg_status sg_whisper_detect_language(sg_whisper *m, int32_t *token, float *prob, sg_error *err);

typedef struct sg_whisper_decode_opts {
    int32_t language; /* language token for multilingual models (-1: detect first); ignored by .en */
    bool translate;   /* <|translate|> instead of <|transcribe|> (multilingual only) */
    int max_tokens;   /* 0: n_text_ctx / 2 (224) */
} sg_whisper_decode_opts;

/* Greedy decoding on the last encoded window with openai/whisper's rules (decoding.py with
 * beam 1, temperature 0, without_timestamps): prompt <|sot|><|lang|><|task|><|notimestamps|>
 * (multilingual) or <|sot|><|notimestamps|> (.en); begin_suppress_tokens at the first sampled
 * step, suppress_tokens and the task/special tokens at every step; stop at <|endoftext|> or
 * after max_tokens. no_speech_prob is the softmax at the <|startoftranscript|> position.
 * opts NULL = defaults (detect the language, transcribe, 224 tokens). SG_EINVAL when nothing is
 * encoded or opts->language is not a language token of a multilingual model. */
sg_status sg_whisper_decode(sg_whisper *m, const sg_whisper_decode_opts *opts,
                            sg_whisper_result *res, sg_error *err);

/* sg_whisper_decode with the default options and max_tokens (> 0 lowers the n_text_ctx / 2
 * limit): the .en prompt for .en models; multilingual models detect the language first. */
sg_status sg_whisper_decode_greedy(sg_whisper *m, int max_tokens, sg_whisper_result *res,
                                   sg_error *err);
void sg_whisper_result_free(sg_whisper_result *res);

/* Vocabulary: true when the model has token texts (always for ggml files; for HF directories
 * when vocab.json + merges.txt or a *.tiktoken file is present). */
bool sg_whisper_has_vocab(const sg_whisper *m);
/* UTF-8 text of text tokens (ids >= eot are skipped, like openai's decode without timestamps);
 * bytes that are not valid UTF-8 become U+FFFD (Python's errors="replace"). malloc'ed; NULL with
 * no vocabulary or out of memory. ggml files lost the bytes of tokens that are pieces of
 * characters (whisper.cpp stored them as U+FFFD): the 256 single bytes are restored (fixed
 * ranks), longer pieces stay U+FFFD, as whisper.cpp prints them. */
char *sg_whisper_detokenize(const sg_whisper *m, const int32_t *tokens, size_t n);
/* openai's non-speech tokens (suppress_tokens="-1" without the special ids) of the .en or the
 * multilingual vocabulary; the ggml loader's suppress list. Static; *n entries. */
const int32_t *sg_whisper_non_speech_tokens(bool multilingual, int *n);
/* The mel filters of a ggml file (n_mels rows of 201 floats), NULL for HF directories (whose
 * filters are sg_mel_filters'). */
const float *sg_whisper_mel_filters(const sg_whisper *m);

/* The pool given at load (NULL: none), for work on the model's results between its calls. */
sg_pool *sg_whisper_pool(const sg_whisper *m);

/* Positions of the last encoded window (frames / 2), 0 when nothing is encoded. */
int sg_whisper_encoded_positions(const sg_whisper *m);

/* The logits of one row of a teacher-forced pass (vocab floats). */
typedef void (*sg_whisper_row_fn)(void *ctx, int row, const float *logits, int vocab);
/* The cross-attention scores of the asked heads of one decoder layer: qk[i] ([n][cols], writable,
 * valid during the call only) is the head heads[k[i]], i < count (in the order asked). */
typedef void (*sg_whisper_qk_fn)(void *ctx, int layer, const int *k, float *const *qk, int count,
                                 int n, int cols);

struct sg_whisper_head;

/* The decoder over a whole token sequence tok[0..n) (positions 0.., n <= n_text_ctx) on the last
 * encoded window, as openai's model(mel, tokens) with its cross-attention hooks (timing.py's
 * find_alignment). For the nheads distinct (layer, head) pairs, qk_fn gets after each layer the
 * cross-attention logits q.k / sqrt(head_dim) before the softmax (openai's
 * qk = (q * scale) @ (k * scale)^T, scale = head_dim^-0.25) of every token row at the source
 * positions j < cols (1..encoded positions): memory for one layer's asked heads, not all. row_fn
 * (may be NULL) then gets the logits of each row row0 <= i < row1 (clipped to n), in order,
 * computed a few rows at a time. Both run on the calling thread under the model's lock (they may
 * use sg_whisper_pool, not the model). At Q8 the scores are those of the int8 keys. The
 * self-attention cache is overwritten. Errors: SG_EINVAL (nothing encoded, bad tokens, sizes or
 * heads, a head named twice), SG_ENOMEM. */
sg_status sg_whisper_cross_qk(sg_whisper *m, const int32_t *tok, int n,
                              const struct sg_whisper_head *heads, int nheads, int cols,
                              sg_whisper_qk_fn qk_fn, int row0, int row1, sg_whisper_row_fn row_fn,
                              void *ctx, sg_error *err);

/* encode + decode_greedy; *tokens malloc'ed (the caller frees it). */
sg_status sg_whisper_transcribe_tokens(sg_whisper *m, const float *mel, int frames,
                                       int32_t **tokens, size_t *n, float *avg_logprob,
                                       sg_error *err);

#endif
