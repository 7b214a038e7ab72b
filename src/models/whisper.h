/* Whisper speech recognition (openai/whisper's encoder-decoder) loaded from a Hugging Face model
 * directory (config.json + model.safetensors, F32/F16/BF16), with greedy decoding that follows
 * openai/whisper's rules for the .en prompt without timestamps. Linear layers run in F32 or Q8
 * (nn/linear.h); convolutions, LayerNorm, softmax, GELU and the residual stream stay in F32.
 * Calls are serialised per model (each uses the whole thread pool). */
#ifndef SG_MODELS_WHISPER_H
#define SG_MODELS_WHISPER_H

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
} sg_whisper_info;

/* Loads dir. pool may be NULL and must outlive the model. Errors name the file and tensor:
 * SG_EIO, SG_EINVAL (bad config, missing tensor, wrong shape), SG_ENOMEM. */
sg_whisper *sg_whisper_load(const char *dir, sg_precision prec, sg_pool *pool, sg_error *err);
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
} sg_whisper_result;

/* Greedy decoding on the last encoded window with openai/whisper's rules: prompt
 * <|startoftranscript|><|notimestamps|>, begin_suppress_tokens at the first sampled step,
 * suppress_tokens and the task/special tokens at every step, stop at <|endoftext|> or after
 * n_text_ctx / 2 tokens (max_tokens > 0 lowers that). */
sg_status sg_whisper_decode_greedy(sg_whisper *m, int max_tokens, sg_whisper_result *res,
                                   sg_error *err);
void sg_whisper_result_free(sg_whisper_result *res);

/* encode + decode_greedy; *tokens malloc'ed (the caller frees it). */
sg_status sg_whisper_transcribe_tokens(sg_whisper *m, const float *mel, int frames,
                                       int32_t **tokens, size_t *n, float *avg_logprob,
                                       sg_error *err);

#endif
