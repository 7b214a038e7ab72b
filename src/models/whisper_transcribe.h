/* openai/whisper's transcribe() over a loaded Whisper model: the seek loop through the log-mel of
 * the whole (30 s zero-padded) audio, decoding with timestamp tokens and openai's
 * ApplyTimestampRules, segments split at consecutive timestamps, seeking by the last timestamp,
 * previous-text and initial-prompt conditioning (<|startofprev|>, last n_text_ctx / 2 - 1
 * tokens), temperature fallback (compression ratio, average log-prob, no-speech skip) and word
 * timestamps by dynamic time warping over the alignment heads' cross-attention
 * (models/whisper_timing.h). The rules and their sources are in ../shared/MODELS.md §2.
 *
 * f32 results equal openai/whisper's on the same weights at temperature 0 (tests/
 * test_whisper_transcribe.c against py/whisper_reference.py's transcribe()). Sampling at
 * temperature > 0 draws from softmax(logits / T) with the seeded generator of sg_whisper_rng
 * (the reference draws the same numbers), so a seed reproduces a transcript.
 *
 * Calls are not serialised here: the caller must not run two transcriptions on one model at once. */
#ifndef SG_MODELS_WHISPER_TRANSCRIBE_H
#define SG_MODELS_WHISPER_TRANSCRIBE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "models/whisper.h"

#define SG_WHISPER_MAX_TEMPERATURES 16

typedef struct sg_whisper_word {
    char *word;        /* UTF-8, leading space kept as openai keeps it; malloc'ed */
    float start, end;  /* seconds */
    float probability; /* mean probability of its tokens */
} sg_whisper_word;

typedef struct sg_whisper_segment {
    int id;
    int seek;          /* mel frame where its window started */
    float start, end;  /* seconds */
    char *text;        /* malloc'ed; "" without a vocabulary */
    int32_t *tokens;   /* openai's segment tokens (timestamps included); malloc'ed */
    size_t n_tokens;
    float temperature, avg_logprob, compression_ratio, no_speech_prob;
    sg_whisper_word *words; /* word_timestamps only; malloc'ed */
    size_t n_words;
} sg_whisper_segment;

typedef struct sg_whisper_transcript {
    char *text;                /* openai's result["text"]: the decode of every kept segment's
                                * tokens after the initial prompt (timestamps dropped); malloc'ed */
    int32_t language;          /* language token (-1: .en model) */
    float duration;            /* seconds of audio (content frames * 0.01) */
    sg_whisper_segment *segments; /* malloc'ed */
    size_t n_segments;
    /* work done, for metrics and benchmarks */
    int n_windows, n_fallbacks;
    double encode_ms, decode_ms, align_ms;
} sg_whisper_transcript;

typedef struct sg_whisper_transcribe_opts {
    int32_t language;      /* language token; -1: detect on the first window (multilingual) */
    bool translate;        /* <|translate|> (multilingual only) */
    /* temperatures tried in order; n_temperatures 0 = openai's (0, 0.2, 0.4, 0.6, 0.8, 1.0) */
    float temperatures[SG_WHISPER_MAX_TEMPERATURES];
    int n_temperatures;
    float compression_ratio_threshold; /* 2.4; <= 0 disables the check */
    float logprob_threshold;           /* -1.0; -INFINITY disables */
    float no_speech_threshold;         /* 0.6; > 1 disables the skip */
    bool condition_on_previous_text;   /* true */
    const char *initial_prompt;        /* NULL: none */
    bool word_timestamps;
    bool without_timestamps;           /* <|notimestamps|>: one segment per window */
    float max_initial_timestamp;       /* 1.0 s */
    uint64_t seed;                     /* sampling at temperature > 0 */
    int sample_len;                    /* 0: n_text_ctx / 2 */
} sg_whisper_transcribe_opts;

/* openai's defaults (language -1, transcribe, the six temperatures, 2.4, -1.0, 0.6, condition on
 * previous text, max_initial_timestamp 1.0, seed 0). */
void sg_whisper_transcribe_opts_default(sg_whisper_transcribe_opts *o);

/* mel: n_mels rows x frames (sg_log_mel_padded(pcm, n, ..., 480000) gives it: the audio's own
 * frames followed by 30 s of appended silence); content_frames = frames - 3000 is the audio's
 * length in frames. out is zeroed first and freed with sg_whisper_transcript_free even on error.
 * opts NULL = the defaults. Segments are openai's: those cleared by its "instantaneous or no text"
 * rule stay, with text "" and no tokens (a model without a vocabulary clears only instantaneous
 * ones). The language is detected on mel[:, :3000] (pad_or_trim of the padded mel), then every
 * window is mel[:, seek:seek + min(3000, content_frames - seek)] zero-padded to 3000 frames.
 * Initial prompts are encoded with the model's vocabulary (a ggml file's token texts serve as
 * ranks). With word_timestamps, models/whisper_timing.h's sg_whisper_add_word_timestamps runs on
 * each window's segments and transcribe()'s seek rule follows (seek to the last word's end unless
 * the window ended with a single timestamp; never backwards, where openai could loop forever).
 * Not implemented (openai's defaults hold): clip_timestamps, hallucination_silence_threshold,
 * carry_initial_prompt, beam search / best_of.
 * Errors: SG_EINVAL (bad arguments, a language token of no language, translate on an .en model,
 * too few frames), SG_EUNSUPPORTED (an initial prompt without a vocabulary), SG_ENOMEM, and the
 * model's own. */
sg_status sg_whisper_transcribe(sg_whisper *m, const float *mel, int frames, int content_frames,
                                const sg_whisper_transcribe_opts *opts,
                                sg_whisper_transcript *out, sg_error *err);
void sg_whisper_transcript_free(sg_whisper_transcript *t);

/* openai/whisper's get_compression_ratio: len(utf8) / len(zlib.compress(utf8)) at zlib's default
 * level. 0 for "" or NULL; -1 when out of memory. */
float sg_whisper_compression_ratio(const char *text);

/* The sampling generator shared with the reference: splitmix64 (state += 0x9E3779B97F4A7C15, then
 * the xor-shift-multiply finaliser) seeded by seed; uniform floats in [0, 1) from the top 24
 * bits. One generator per transcription, seeded by opts->seed, draws for every sampled token of
 * every window and temperature in order; a draw at temperature T is Gumbel-max over the
 * vocabulary, one 53-bit uniform per id (models/whisper_priv.h, sg_whisper_sample). */
typedef struct sg_whisper_rng {
    uint64_t state;
} sg_whisper_rng;
void sg_whisper_rng_seed(sg_whisper_rng *r, uint64_t seed);
float sg_whisper_rng_uniform(sg_whisper_rng *r);

#endif
