/* The SNN student language model (SmartGlass-AI-Agent's SpikingStudentLM, ../shared/MODELS.md
 * section 3): token embedding without positions, blocks of bidirectional multi-head attention,
 * post-norm, exact 0/1 spikes at the metadata threshold and a spiking feed-forward, then a
 * vocabulary-wide head. Loaded from the directory training writes (student.pt + metadata.json), the
 * same tensors as model.safetensors, or the int8 model.safetensors `sg quantize` writes; greedy
 * generation exactly as the reference (argmax at the last position, exactly max_tokens tokens unless
 * stopping at end-of-text is asked for). Calls on one model are serialised (each uses the whole
 * thread pool); the model is otherwise immutable after load.
 *
 * The int8 file (format "sg-snn-int8" in the safetensors __metadata__): every tensor keeps its
 * name; each weight matrix (embed.weight, in_proj_weight, out_proj.weight, ff.0.weight,
 * ff.3.weight, head.weight) is I8 [rows, cols] plus "<name>_scale" F32 [rows], weight = q * scale,
 * symmetric per row (scale = max|row| / 127, round to nearest even); biases and LayerNorms are F32.
 * It loads without re-quantising and holds exactly what int8 on the fly computes.
 *
 * The model is snn.c (forward, generation), snn_load.c and snn_quant.c over snn_model.h; its
 * feed-forward's spike layer is nn/spike.h. */
#ifndef SG_MODELS_SNN_H
#define SG_MODELS_SNN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "nn/linear.h"
#include "nn/pool.h"

/* GPT-2's <|endoftext|>, the end-of-text id when the tokenizer does not name one. */
#define SG_SNN_EOS 50256
/* Longest sequence (prompt + generated) one call may build: attention is quadratic in it and every
 * step re-runs the whole sequence. */
#define SG_SNN_MAX_CONTEXT 2048

typedef struct sg_snn sg_snn;

typedef struct sg_snn_options {
    sg_precision precision; /* SG_PREC_F32 or SG_PREC_Q8 */
    /* A tokenizer file (*.tiktoken, or vocab.json with merges.txt beside it) or directory; NULL:
     * the model directory's own (vocab.json + merges.txt, else the first *.tiktoken), none is not
     * an error (only sg_snn_generate needs one). */
    const char *tokenizer;
} sg_snn_options;

typedef struct sg_snn_info {
    int vocab, dim, depth, heads, hidden;
    float spike_threshold;
    sg_precision precision;
    bool prequantized;       /* loaded from an int8 file */
    const char *weights;     /* "student.pt" or "model.safetensors" */
    int32_t eos;             /* the tokenizer's <|endoftext|>, else SG_SNN_EOS */
    bool has_tokenizer;
    size_t weight_bytes;     /* memory held by weights (mapped rows read on demand not counted) */
} sg_snn_info;

/* Loads dir. opt may be NULL (int8, the directory's tokenizer). pool may be NULL and must outlive
 * the model. Errors name the file and tensor: SG_EIO (missing or unreadable file), SG_EINVAL
 * (metadata.json values, a missing tensor, a shape that disagrees with metadata.json),
 * SG_EUNSUPPORTED (a file format or dtype this loader does not take), SG_ENOMEM. */
sg_snn *sg_snn_load(const char *dir, const sg_snn_options *opt, sg_pool *pool, sg_error *err);
void sg_snn_free(sg_snn *m);
const sg_snn_info *sg_snn_get_info(const sg_snn *m);

/* Greedy generation from token ids: out gets up to max_tokens ids (*n_out of them; fewer only when
 * stop_at_eos and the model produced eos, which is not included). An empty prompt generates
 * nothing, as the reference. Errors: SG_EINVAL (an id outside the vocabulary, max_tokens < 0),
 * SG_ETOOBIG (n + max_tokens > SG_SNN_MAX_CONTEXT), SG_ENOMEM. Deterministic. */
sg_status sg_snn_generate_ids(sg_snn *m, const int32_t *prompt, int n, int max_tokens,
                              bool stop_at_eos, int32_t *out, int *n_out, sg_error *err);

/* Sampling instead of greedy decoding. temperature 0 is greedy: the same tokens as
 * sg_snn_generate_ids, bit for bit. temperature > 0 draws each token from softmax(logits / T)
 * over the whole head (computed densely), kept to the nucleus when 0 < top_p < 1 (as OpenAI: the
 * smallest set of most probable tokens whose probability reaches top_p; top_p 0 or 1 keeps every
 * token, so a zeroed struct with a temperature samples plainly). Draws come from splitmix64
 * seeded with seed (uniform doubles from its top 53 bits): the same seed, prompt and model give
 * the same tokens. Errors: SG_EINVAL for a negative or non-finite temperature or top_p outside
 * [0, 1]. */
typedef struct sg_snn_sampling {
    float temperature;
    float top_p;
    uint64_t seed;
} sg_snn_sampling;

/* sg_snn_generate_ids with sampling (NULL: greedy). */
sg_status sg_snn_generate_ids_ex(sg_snn *m, const int32_t *prompt, int n, int max_tokens,
                                 bool stop_at_eos, const sg_snn_sampling *sampling, int32_t *out,
                                 int *n_out, sg_error *err);

typedef struct sg_snn_result {
    char *text;              /* decoded new tokens, valid UTF-8 (invalid bytes become U+FFFD) */
    int32_t *tokens, *prompt_tokens;
    int n_tokens, n_prompt;
    double tokenize_ms, generate_ms;
    bool stopped;            /* the stream's callback stopped it (text is what was made so far) */
} sg_snn_result;

/* The reference's prompt: "{system}\n\n{prompt}" when system is not NULL, else prompt, encoded
 * without special tokens, then greedy generation and decoding. Needs a tokenizer
 * (SG_EUNSUPPORTED without). out is filled on success; free it with sg_snn_result_free. */
sg_status sg_snn_generate(sg_snn *m, const char *system, const char *prompt, int max_tokens,
                          bool stop_at_eos, sg_snn_result *out, sg_error *err);
void sg_snn_result_free(sg_snn_result *r);

/* Hears the text as it is generated: each call a piece of valid UTF-8 (a token's text, or more
 * when a character spans tokens); the pieces concatenated are the result's text. Return false
 * to stop generating (the result then holds what was made so far, with stopped set). */
typedef bool (*sg_snn_text_fn)(void *ud, const char *piece, size_t len);
/* sg_snn_generate, handing on the text as it is made (on_text NULL: as sg_snn_generate). */
sg_status sg_snn_generate_stream(sg_snn *m, const char *system, const char *prompt, int max_tokens,
                                 bool stop_at_eos, sg_snn_text_fn on_text, void *ud,
                                 sg_snn_result *out, sg_error *err);

/* sg_snn_generate_stream with sampling (NULL: greedy, exactly sg_snn_generate_stream). */
sg_status sg_snn_generate_ex(sg_snn *m, const char *system, const char *prompt, int max_tokens,
                             bool stop_at_eos, const sg_snn_sampling *sampling,
                             sg_snn_text_fn on_text, void *ud, sg_snn_result *out, sg_error *err);

/* Fraction of the spike sites evaluated in the last generation that fired (both spikes of every
 * block; rows the decoder reused are not re-counted). */
double sg_snn_last_firing(const sg_snn *m);

/* Logits of the last position for ids (logits: vocab floats), all of the head computed densely;
 * for tests and accuracy reports. */
sg_status sg_snn_last_logits(sg_snn *m, const int32_t *ids, int n, float *logits, sg_error *err);

/* For tests. The first block keeps each row's softmax sums shifted by the row's score with its own
 * key; a row with a key more than limit above that (default 60, where exp() would overflow) is
 * recomputed from scratch with its maximum at every step instead. A negative limit sends nearly
 * every row down that path, which must give the same tokens. */
void sg_snn_set_shift_limit(sg_snn *m, float limit);

/* Writes the int8 model of dir (any loadable form) to out_dir/model.safetensors (the format
 * above) and copies metadata.json and the tokenizer files (vocab.json, merges.txt, *.tiktoken).
 * out_dir is created if missing. */
sg_status sg_snn_quantize(const char *dir, const char *out_dir, sg_error *err);

#endif
