/* The speech side of /ws/audio/{id}, without sockets or threads: it turns the client's messages
 * into the messages to send back. server/ws_conn.c feeds it from a work-queue job (one message at
 * a time, in order) and runs the partial transcriptions it asks for on the work queue too.
 *
 * Protocol (also in docs/ARCHITECTURE.md):
 * - An optional text message {"sample_rate": 8000..192000, "format": "pcm_s16le"|"pcm_f32le",
 *   "language": "en"|null} before the audio (or right after an "end"); default s16le 16 kHz mono.
 * - Binary messages are raw PCM in any sizes (a sample may be split between messages); f32
 *   samples beyond full scale are clipped to [-1, 1] (as /audio clips them). Other
 *   rates are resampled with libsamplerate's sinc converter (media/audio.c's), its state kept
 *   across messages so chunk borders leave no seams.
 * - With a VAD backend that streams: its events end-point the speech. An utterance begins at a
 *   START; from then, about once per second of received audio, {"type":"partial","text","t_ms"}
 *   transcribes the utterance so far - skipped when the previous partial is still running, never
 *   queued; at each END, {"type":"final","text","t_ms","start_ms","end_ms"} transcribes the VAD
 *   segment [start_ms, end_ms] (padded as sg_vad_segments pads it).
 * - Without one: all audio is speech; partials once per second; a final on "end", on close, or
 *   when the utterance reaches 30 s.
 * - Either way an utterance is cut at 30 s (Whisper's window): a final for those 30 s, and the
 *   speech goes on as a new utterance.
 * - {"type":"end"} ends the audio stream: the resampler and the VAD are flushed (an open segment
 *   ends there and gets its final), then {"type":"end","t_ms"} acknowledges it. Audio may follow
 *   as a new stream (a new configuration too).
 * - t_ms, start_ms, end_ms count 16 kHz audio received since the socket opened, in ms.
 * - Mistakes get {"type":"error","error":CODE,"detail"} and the socket stays open: INVALID_REQUEST
 *   (a malformed or misplaced configuration, an unknown message type), INVALID_AUDIO (non-finite
 *   f32 samples; that message is dropped). */
#ifndef SG_SERVER_WS_AUDIO_H
#define SG_SERVER_WS_AUDIO_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/backends.h"
#include "base/error.h"

#define SG_WS_AUDIO_MAX_UTTERANCE_S 30
#define SG_WS_AUDIO_PARTIAL_EVERY_S 1

typedef struct sg_ws_audio sg_ws_audio;

/* A partial transcription to run: the utterance so far. */
typedef struct sg_ws_partial {
    float *pcm; /* malloc'ed copy, 16 kHz mono */
    size_t n;
    long long utt;      /* the utterance it belongs to (1, 2, ...) */
    double t_ms;        /* audio received when it was taken */
    char language[16];  /* "" = not given */
} sg_ws_partial;

typedef struct sg_ws_audio_result {
    json_t *msgs;             /* messages to send, in order (an array the caller owns) */
    const float *pcm16k;      /* this message's audio at 16 kHz (for the session's raw-audio
                                 buffer); valid until the next call */
    size_t n16k;
    sg_ws_partial *partial;   /* a partial to run, or NULL; the caller frees it */
    long long finalized;      /* the last utterance given its final by this call, 0 if none */
    double asr_ms;            /* time spent on finals */
    int finals;
    bool speech_started;      /* the VAD heard speech begin (barge-in on a streaming answer) */
} sg_ws_audio_result;

/* b->asr is required; b->vad is used when it can stream. */
sg_ws_audio *sg_ws_audio_new(const sg_backends *b, sg_error *err);
void sg_ws_audio_free(sg_ws_audio *a);

/* One message from the client. partial_busy: a partial of this socket is still running (then
 * none is asked for). Always fills *res (with error messages for bad input). */
void sg_ws_audio_text(sg_ws_audio *a, const char *text, size_t len, bool partial_busy,
                      sg_ws_audio_result *res);
void sg_ws_audio_binary(sg_ws_audio *a, const uint8_t *data, size_t len, bool partial_busy,
                        sg_ws_audio_result *res);
/* The socket is closing: a final for the speech still open (no "end" acknowledgement). */
void sg_ws_audio_flush(sg_ws_audio *a, sg_ws_audio_result *res);

/* Answers: {"answer": true} (or "speak": true, which also speaks them) in a configuration
 * message - allowed at any time, also while audio flows - or the socket's query string: each
 * non-empty final is then answered as POST /query answers (server/ws_conn.c streams it). */
void sg_ws_audio_set_answer(sg_ws_audio *a, bool answer, bool speak);
/* speak_format: 0 Ogg Opus, 1 WAV (agent/tts.h's sg_tts_format). */
void sg_ws_audio_answer_mode(const sg_ws_audio *a, bool *answer, bool *speak, int *speak_format);

/* The utterances given a final so far (partials of these are stale). */
long long sg_ws_audio_finalized(const sg_ws_audio *a);

/* Runs a partial on the ASR backend: {"type":"partial","text","t_ms"}, or an error message. */
json_t *sg_ws_partial_run(const sg_asr_backend *asr, const sg_ws_partial *p, double *asr_ms);
void sg_ws_partial_free(sg_ws_partial *p);

#endif
