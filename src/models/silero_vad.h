/* Silero VAD v6.2 (16 kHz) from whisper.cpp's ggml file: a speech probability per 512-sample
 * (32 ms) window, and speech segments from those probabilities by silero's get_speech_timestamps
 * rules (utils_vad.py, max_speech_duration_s = inf). Both also stream: sg_silero_stream gives the
 * same probabilities for audio fed in any chunks, sg_vad_tracker applies the segment rules one
 * window at a time (end-pointing for /ws/audio). */
#ifndef SG_MODELS_SILERO_VAD_H
#define SG_MODELS_SILERO_VAD_H

#include <stdbool.h>
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

/* ---- streaming -------------------------------------------------------------------------------- */

/* A stream carries the LSTM state and the last 64 samples from one call to the next, so feeding
 * audio in any chunks gives exactly the probabilities sg_silero_probs gives for the whole audio
 * (the same front end and recurrence; tests/test_silero_vad.c checks it bit for bit). Windows are
 * run as they complete; up to 511 samples wait for the next call. One stream per audio stream and
 * thread; the model may be shared by many streams. */
typedef struct sg_silero_stream sg_silero_stream;

sg_silero_stream *sg_silero_stream_new(const sg_silero *m, sg_error *err);
void sg_silero_stream_free(sg_silero_stream *s);
/* Back to the start of a new audio stream (zero state, no context, no pending samples). */
void sg_silero_stream_reset(sg_silero_stream *s);
/* How many probabilities feeding n more samples produces. */
size_t sg_silero_stream_capacity(const sg_silero_stream *s, size_t n);
/* Windows completed since the start (or the last reset / finish). */
size_t sg_silero_stream_windows(const sg_silero_stream *s);
/* Feeds n samples of 16 kHz mono audio and writes the probability of every window they complete
 * to probs (room for cap >= sg_silero_stream_capacity(s, n)). Non-finite samples are SG_EINVAL and
 * leave the stream as it was; an overflow (as in sg_silero_probs) is SG_EINVAL and the stream must
 * be reset. */
sg_status sg_silero_stream_feed(sg_silero_stream *s, const float *pcm, size_t n, float *probs,
                                size_t cap, size_t *nprobs, sg_error *err);
/* End of the audio: the probability of the partial last window, zero-padded as sg_silero_probs
 * pads it (*nprobs 0 when no samples wait), then a reset. */
sg_status sg_silero_stream_finish(sg_silero_stream *s, float *prob, size_t *nprobs, sg_error *err);

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

/* ---- streaming segments (end-pointing) ----------------------------------------------------------
 * The rules of sg_vad_segments applied one window at a time, as events at the moment each
 * becomes certain:
 *   START  the first window with p >= threshold (a segment may begin; start = its padded start),
 *   END    a segment ended by min_silence_ms of p < neg_threshold and longer than min_speech_ms
 *          (start/end padded as sg_vad_segments pads them),
 *   DROP   a segment that ended too short (start/end unpadded); it is not a segment.
 * The END segments are exactly sg_vad_segments' whenever min_silence_ms + 32 >= 2 * speech_pad_ms
 * (the defaults: 100 + 32 >= 60), so two segments are never close enough for its split-the-gap
 * padding; otherwise each keeps its own padding, clipped at the previous segment's end. */
typedef enum sg_vad_track_kind {
    SG_VAD_TRACK_START = 1,
    SG_VAD_TRACK_END,
    SG_VAD_TRACK_DROP,
} sg_vad_track_kind;

typedef struct sg_vad_tracker_event {
    sg_vad_track_kind kind;
    long long start, end; /* samples from the start of the stream */
    long long at;         /* samples of audio seen when the event was decided */
} sg_vad_tracker_event;

typedef struct sg_vad_tracker {
    double thr, neg, min_speech, min_silence, pad; /* thresholds; durations in samples */
    bool triggered;
    long long start, temp_end, pos, prev_end;      /* samples */
} sg_vad_tracker;

/* p NULL = defaults; SG_EINVAL for parameters sg_vad_segments refuses. */
sg_status sg_vad_tracker_init(sg_vad_tracker *t, const sg_vad_params *p, sg_error *err);
/* A new stream with the same parameters. */
void sg_vad_tracker_reset(sg_vad_tracker *t);
/* The next window's probability; true when *ev was filled. */
bool sg_vad_tracker_push(sg_vad_tracker *t, float prob, sg_vad_tracker_event *ev);
/* The audio ended after n_samples: an open segment ends there (END or DROP); then a reset. */
bool sg_vad_tracker_finish(sg_vad_tracker *t, size_t n_samples, sg_vad_tracker_event *ev);

#endif
