/* The speech-to-text pipeline over a loaded Whisper model and an optional Silero VAD:
 * 16 kHz PCM -> VAD speech segments -> leading/trailing silence dropped -> windows of at most 30 s
 * cut at the pauses between segments -> log-mel -> encoder -> language (given, detected on the
 * first window, "en" for .en models) -> greedy decoding -> one result segment per window with
 * openai/whisper's per-segment statistics (avg_logprob, no_speech_prob, compression_ratio).
 *
 * Decisions (also in docs/ARCHITECTURE.md):
 * - Windows: consecutive VAD segments are packed greedily into a window while the window, from the
 *   first segment's start to the last one's end, stays within the maximum (30 s); the silence
 *   between two windows is not transcribed. A single segment longer than the maximum is cut at the
 *   quietest 20 ms frame (lowest energy) in the last third of the window, so a cut falls between
 *   words whenever the speaker breathes; the rest continues in the next window. (Energy, not VAD
 *   probability, so the same rule works for segments that come from any VAD backend.) Without a
 *   VAD the audio is cut into plain consecutive windows of the maximum length, silence included.
 * - Standard mode: each window's log-mel is that of whisper.pad_or_trim(window) (3000 frames, the
 *   max - 8 clamp over those frames), so a single window of audio up to 30 s is exactly
 *   openai/whisper's decode() input. audio_ctx mode (off by default): the window is encoded at its
 *   own length (frames rounded up to even, at least 1 s) like whisper.cpp's audio_ctx; faster for
 *   short utterances but not what the models were trained on.
 * - No-speech rule as openai's transcribe(): a window whose no_speech_prob > 0.6 while its
 *   avg_logprob <= -1.0 is dropped (no segment, no text); it still counts in n_windows/n_skipped.
 * - No temperature fallback: greedy only; compression_ratio and avg_logprob are reported, never
 *   acted on.
 * - Text: the concatenation of the segments' texts (each keeps its leading space, as openai
 *   joins them); a model without a vocabulary gives "" (tokens are still reported).
 * Calls are not serialised here: the caller must not run two pipelines on one model at once (the
 * decoder reads the last encoded window). */
#ifndef SG_AGENT_SPEECH_H
#define SG_AGENT_SPEECH_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/backends.h"
#include "base/error.h"
#include "models/silero_vad.h"
#include "models/whisper.h"
#include "models/whisper_transcribe.h"

#define SG_SPEECH_MAX_WINDOW_S 30
#define SG_SPEECH_AUDIO_CTX_AUTO (-1)
#define SG_SPEECH_NO_SPEECH_THRESHOLD 0.6f
#define SG_SPEECH_LOGPROB_THRESHOLD (-1.0f)

typedef struct sg_speech_opts {
    const char *language; /* ISO 639-1 code ("en", "de", ...; case and a region suffix such as
                             "-US" are ignored); NULL or "" = detect (multilingual models);
                             .en models always use English */
    bool translate;       /* translate to English (multilingual models only) */
    int audio_ctx;        /* 0: standard (3000 frames); SG_SPEECH_AUDIO_CTX_AUTO: each window at
                             its own length; N > 0: windows of at most N encoder positions (N / 50
                             s), each encoded at exactly 2N frames (whisper.cpp's audio_ctx) */
    int max_tokens;       /* per window; 0: the model's n_text_ctx / 2 (224) */
} sg_speech_opts;

/* A window of the input in samples [start, end). */
typedef struct sg_speech_window {
    size_t start, end;
} sg_speech_window;

typedef struct sg_speech_seg {
    double start, end; /* seconds in the input audio */
    char *text;        /* malloc'ed UTF-8 ("" without a vocabulary) */
    int32_t *tokens;   /* text tokens (no prompt, no <|endoftext|>); malloc'ed, may be NULL */
    size_t n_tokens;
    float avg_logprob, no_speech_prob, compression_ratio;
} sg_speech_seg;

typedef struct sg_speech_timings {
    double mel, vad, encode, decode, total; /* ms; vad 0 when no VAD ran */
} sg_speech_timings;

typedef struct sg_speech_result {
    char *text;           /* all segments' texts joined, malloc'ed ("" when nothing was said) */
    char language[16];    /* code of the language used ("" when it was to be detected and no
                             window was decoded) */
    float language_prob;  /* detection probability; 1 when given or .en, 0 when nothing ran */
    bool speech;          /* the VAD found speech (always true without a VAD and n > 0) */
    sg_speech_seg *segs;  /* malloc'ed */
    size_t n_segs;
    size_t n_windows;     /* windows encoded */
    size_t n_skipped;     /* windows dropped by the no-speech rule */
    size_t n_steps;       /* decoder steps that sampled a token (text tokens + end-of-text) */
    sg_speech_timings t;
} sg_speech_result;

/* Cuts [0, n) into windows of at most max_len samples. have_vad false: plain consecutive windows
 * (segs ignored). have_vad true: segs (seconds, sorted, non-overlapping; clamped to the audio,
 * empty ones ignored) packed as described above; pcm is read only to cut a segment longer than
 * max_len at its quietest point. *out is malloc'ed (NULL when there is no window: n == 0, or a VAD
 * found nothing). Errors: SG_EINVAL (max_len < 320, unsorted segments), SG_ENOMEM. */
sg_status sg_speech_windows(const float *pcm, size_t n, bool have_vad,
                            const sg_speech_segment *segs, size_t nsegs, size_t max_len,
                            sg_speech_window **out, size_t *nout, sg_error *err);

/* openai/whisper's get_compression_ratio: len(utf8) / len(zlib.compress(utf8)) at zlib's default
 * level. 0 for "" (openai would give 0/8 = 0 too); -1 when out of memory. Now
 * sg_whisper_compression_ratio (models/whisper_transcribe.h), which this calls. */
float sg_speech_compression_ratio(const char *text);

/* The whole pipeline. vad may be NULL (no VAD: plain windows). opts NULL = defaults. With a VAD
 * that finds nothing, or n == 0, the result is empty (speech false, no segments, text "") and no
 * Whisper work is done. Errors: SG_EINVAL (unknown language, translate on an English-only model,
 * bad audio_ctx), model errors, SG_ENOMEM. */
sg_status sg_speech_transcribe(sg_whisper *m, const sg_silero *vad, const float *pcm, size_t n,
                               const sg_speech_opts *opts, sg_speech_result *res, sg_error *err);

/* The same with speech segments found elsewhere (e.g. the server's VAD backend): have_vad true
 * and nsegs 0 means "no speech". */
sg_status sg_speech_transcribe_segments(sg_whisper *m, const float *pcm, size_t n, bool have_vad,
                                        const sg_speech_segment *segs, size_t nsegs,
                                        const sg_speech_opts *opts, sg_speech_result *res,
                                        sg_error *err);

void sg_speech_result_free(sg_speech_result *res);

/* openai/whisper's transcribe() on 16 kHz mono audio (models/whisper_transcribe.h): the log-mel
 * of the whole audio with 30 s of silence appended (sg_log_mel_padded), then the seek loop. No
 * VAD: what POST /v1/audio/transcriptions and `sg transcribe --response-format` run. out is
 * freed with sg_whisper_transcript_free even on error. */
sg_status sg_speech_transcribe_openai(sg_whisper *m, const float *pcm, size_t n,
                                      const struct sg_whisper_transcribe_opts *o,
                                      struct sg_whisper_transcript *out, sg_error *err);

/* {"text","language","segments":[{"start","end","text","tokens","avg_logprob","no_speech_prob",
 * "compression_ratio"}],"timings_ms":{"load","mel","vad","encode","decode","total"}} with
 * load_ms as given; times rounded to 0.001 ms, start/end to 0.001 s. NULL when out of memory. */
json_t *sg_speech_result_json(const sg_speech_result *res, double load_ms);

/* A short model name: "whisper-<size>[.en]" for the standard sizes (tiny, base, small, medium,
 * large by width and depth), else the file or directory name without "ggml-" and ".bin" (for a
 * generic "ggml-model.bin", its directory's name); written to out. */
void sg_speech_model_name(const sg_whisper *m, const char *path, char *out, size_t cap);

#endif
