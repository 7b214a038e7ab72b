/* Silero VAD v6.2 (16 kHz) from whisper.cpp's ggml file: a speech probability per 512-sample
 * (32 ms) window, and speech segments from those probabilities by silero's get_speech_timestamps
 * rules (utils_vad.py, max_speech_duration_s = inf). */
#ifndef SG_MODELS_SILERO_VAD_H
#define SG_MODELS_SILERO_VAD_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define SG_SILERO_WINDOW 512 /* samples per probability */
#define SG_SILERO_CONTEXT 64 /* samples of the previous window prepended to each */
#define SG_SILERO_RATE 16000

typedef struct sg_silero sg_silero;

/* A speech segment in seconds. (The same shape as agent/backends.h's sg_speech_segment, which this
 * layer cannot include; the VAD backend, agent/vad_silero.c, converts.) */
typedef struct sg_vad_segment {
    double start_s, end_s;
} sg_vad_segment;

/* Loads a whisper.cpp-layout Silero file (e.g. silero-vad-v6.2.0-ggml.bin). Every field of the
 * header and every tensor's name, dimensions and type (F32 or F16) is checked against the
 * architecture; truncated, garbled or foreign files give SG_EINVAL (SG_EIO if unreadable) with a
 * message. */
sg_silero *sg_silero_load(const char *path, sg_error *err);
/* The same from bytes in memory (copied; buf may be freed after). */
sg_silero *sg_silero_load_memory(const uint8_t *buf, size_t len, sg_error *err);
void sg_silero_free(sg_silero *m);
/* "6.2.0" as the file states it. */
const char *sg_silero_version(const sg_silero *m);

/* Speech probability of each 512-sample window of 16 kHz mono audio: *nprobs = ceil(n / 512),
 * the last window zero-padded; *probs is malloc'ed (NULL when n == 0). The LSTM state and the
 * 64-sample context start from zero at each call, so calls are independent; the model is only
 * read, so calls from several threads may run at once. Non-finite samples, and samples so large
 * that the activations overflow (|x| ~ 1e19), give SG_EINVAL; otherwise every p is in [0, 1]. */
sg_status sg_silero_probs(const sg_silero *m, const float *pcm16k, size_t n, float **probs,
                          size_t *nprobs, sg_error *err);

typedef struct sg_vad_params {
    float threshold;     /* a window is speech at p >= threshold */
    float neg_threshold; /* speech ends below this; <= 0: max(threshold - 0.15, 0.01), computed in
                            double as silero does (0.35 for threshold 0.5) */
    int min_speech_ms;   /* shorter segments are dropped */
    int min_silence_ms;  /* silence needed to end a segment */
    int speech_pad_ms;   /* added on each side (split evenly when segments are closer) */
} sg_vad_params;

/* threshold 0.5, neg_threshold auto (0.35), min speech 250 ms, min silence 100 ms, pad 30 ms. */
sg_vad_params sg_vad_params_default(void);

/* Segments (seconds) from the probabilities of n_samples samples of audio (nprobs must be
 * ceil(n_samples / 512)); p NULL = defaults. *segs is malloc'ed (NULL when there is none). */
sg_status sg_vad_segments(const float *probs, size_t nprobs, size_t n_samples,
                          const sg_vad_params *p, sg_vad_segment **segs, size_t *nsegs,
                          sg_error *err);

#endif
