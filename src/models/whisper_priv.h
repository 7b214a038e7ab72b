/* Private to models/whisper*.c: the general decoder behind sg_whisper_transcribe. */
#ifndef SG_MODELS_WHISPER_PRIV_H
#define SG_MODELS_WHISPER_PRIV_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "models/whisper.h"
#include "models/whisper_transcribe.h"

/* One openai DecodingTask.run with beam 1 (GreedyDecoder, best_of 1) on the last encoded window.
 * The initial tokens are [<|startofprev|>, prompt[-(n_text_ctx / 2 - 1):]] when n_prompt > 0,
 * then the sot sequence (<|sot|> [<|lang|> <|task|>] on multilingual models), then
 * <|notimestamps|> only when without_timestamps. Logit filters in openai's order: SuppressBlanks
 * (begin_suppress_tokens at the first sampled step), SuppressTokens (suppress_tokens and the
 * task/special tokens), ApplyTimestampRules unless without_timestamps (max_initial_timestamp > 0:
 * index round(max_initial_timestamp / 0.02)). temperature 0: argmax (first maximum); > 0: one
 * draw of sg_whisper_sample. res->tokens: sampled tokens up to <|endoftext|> (timestamps kept);
 * res->avg_logprob = sum of the sampled log-probs (of the filtered logits, before <|endoftext|>
 * included) / (n + 1); no_speech_prob at the <|startoftranscript|> position. */
typedef struct sg_whisper_decode_req {
    const int32_t *prompt;
    size_t n_prompt;
    int32_t language; /* multilingual: a language token, or -1 without a prompt: detected from the
                         <|startoftranscript|> step (detect_language); ignored by .en models */
    bool translate, without_timestamps;
    float temperature;
    sg_whisper_rng *rng; /* used when temperature > 0 */
    int sample_len;      /* 0: n_text_ctx / 2 */
    float max_initial_timestamp;
} sg_whisper_decode_req;

sg_status sg_whisper_decode_ex(sg_whisper *m, const sg_whisper_decode_req *q,
                               sg_whisper_result *res, sg_error *err);

/* The sampling procedure shared with py/whisper_reference.py: the Gumbel-max trick, an exact
 * draw from softmax(logits / T). Each draw takes n outputs of the generator, one per id in order
 * (masked ids too): u_i = sg_whisper_rng_uniform53, x_i = logits_i / T in float32, the token is
 * the first i maximising x_i - log(-log(u_i)) (in double) over the ids with finite x_i and
 * u_i > 0. (An inverse-CDF draw over a near-uniform 51865-token distribution flips on the
 * 1e-6 differences between our logits and PyTorch's; Gumbel-max flips only when the top two
 * perturbed scores are that close.) */
int32_t sg_whisper_sample(const float *logits, int n, float temperature, sg_whisper_rng *rng);
/* The next generator output as a double in [0, 1) from its top 53 bits. */
double sg_whisper_rng_uniform53(sg_whisper_rng *r);

/* The UTF-8 bytes openai's tokenizer.decode gives for one special id in [eot, timestamp_begin)
 * ("<|endoftext|>", "<|de|>", "<|notimestamps|>", ...): static, NULL for other ids. */
const char *sg_whisper_special_text(const sg_whisper *m, int32_t id, char *buf, size_t cap);

/* Text -> ids (tiktoken's encode_ordinary) with the model's vocabulary: a Hugging Face
 * directory's tokenizer, or a ggml file's token texts as ranks (its U+FFFD entries unknown, so
 * text made of whole-character tokens encodes as with the real .tiktoken; made on first use).
 * SG_EUNSUPPORTED without a vocabulary. */
sg_status sg_whisper_encode_text(sg_whisper *m, const char *text, int32_t **ids, size_t *n,
                                 sg_error *err);

#endif
