/* Local speech synthesis: the backend interface (a vtable like agent/backends.h's, filled by
 * agent/tts_flite.h) and what every caller needs on top of it - bounds, encoding to Ogg Opus (the
 * client's libsndfile encoder, client/audio_codec.c) or WAV, and the JSON the API sends.
 *
 * Two ways in:
 *  - streaming (an SSE or WebSocket answer): feed the generated text to a sentence feeder
 *    (agent/sentences.h) and, for each sentence it hands on, call sg_tts_speak_sentence with one
 *    sg_tts_budget per request, then send sg_tts_event_json; stop when it returns SG_ETOOBIG
 *    (the budget is spent: report truncated);
 *  - whole text (`sg say`, "speak": true on a plain query): sg_tts_speak.
 *
 * Bounds: at most SG_TTS_MAX_CHARS bytes of text and SG_TTS_MAX_SECONDS of audio are synthesised
 * per request; longer text is cut at a word boundary and the result says "truncated" (a 10,000
 * character answer gets its first ~2,000 characters spoken, not an error). Text with nothing to
 * speak (empty, white space, punctuation only, or no letters the voice can read) is SG_EINVAL. */
#ifndef SG_AGENT_TTS_H
#define SG_AGENT_TTS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define SG_TTS_MAX_CHARS 2000     /* bytes of text synthesised per request */
#define SG_TTS_MAX_SECONDS 180.0  /* seconds of audio per request (2,000 digits read one by one
                                     would be ~9 minutes) */
#define SG_TTS_RATE_MIN 0.5       /* speaking rate: 1 = the voice's own, 2 = twice as fast */
#define SG_TTS_RATE_MAX 2.0

typedef struct sg_tts_backend {
    const char *name; /* reported in /health model_names.tts, e.g. "flite-2.2 cmu_us_slt" */
    const char *voice; /* e.g. "slt" */
    int sample_rate;   /* of the PCM that synthesize gives */
    double rate;       /* the configured speaking rate */
    /* Synthesises text (one sentence or a few; the caller keeps it under SG_TTS_MAX_CHARS) into
     * 16-bit mono PCM at sample_rate; *pcm is malloc'ed. rate 0 = the configured one, else
     * SG_TTS_RATE_MIN..SG_TTS_RATE_MAX. Safe to call from several threads at once. */
    sg_status (*synthesize)(void *self, const char *text, double rate, int16_t **pcm, size_t *n,
                            sg_error *err);
    void *self;
} sg_tts_backend;

typedef enum sg_tts_format {
    SG_TTS_OGG = 0, /* Ogg Opus (the default): ~3 KB per second of speech */
    SG_TTS_WAV,     /* 16-bit PCM WAV at the voice's rate: 32 KB per second at 16 kHz */
    SG_TTS_FLAC,    /* FLAC 16-bit (lossless, about half of WAV) */
    SG_TTS_MP3,     /* MPEG layer III (libsndfile's LAME writer; OpenAI's default format) */
    SG_TTS_PCM      /* raw 16-bit little-endian mono samples at the voice's rate, no header */
} sg_tts_format;

/* "ogg" (also "opus"), "wav"; NULL or "" = ogg. Else SG_EINVAL. The streamed answers take only
 * these two; sg_tts_format_parse_any also takes "flac", "mp3" and "pcm" (whole files: POST
 * /v1/audio/speech). */
sg_status sg_tts_format_parse(const char *name, sg_tts_format *out, sg_error *err);
sg_status sg_tts_format_parse_any(const char *name, sg_tts_format *out, sg_error *err);
const char *sg_tts_format_name(sg_tts_format f); /* "ogg", "wav", "flac", "mp3", "pcm" */
/* audio/ogg, audio/wav, audio/flac, audio/mpeg, audio/pcm */
const char *sg_tts_format_content_type(sg_tts_format f);

/* What one request may still synthesise. */
typedef struct sg_tts_budget {
    size_t chars_left;
    double seconds_left;
    bool truncated; /* something was cut or refused for want of budget */
} sg_tts_budget;

/* max_chars 0 = SG_TTS_MAX_CHARS (larger values are capped to it). */
void sg_tts_budget_init(sg_tts_budget *b, size_t max_chars);

typedef struct sg_tts_audio {
    sg_tts_format format;
    int sample_rate;
    uint8_t *data; /* the encoded file (malloc'ed) */
    size_t len;
    size_t samples;
    double duration_s;
    size_t chars;   /* bytes of the text that were spoken */
    bool truncated; /* only the start of the text was spoken (bounds) */
} sg_tts_audio;

/* Encodes PCM as fmt: Ogg Opus at 24 kbit/s (the voice's rate must be one Opus takes: 8, 12, 16,
 * 24 or 48 kHz) or WAV. *out is malloc'ed. */
sg_status sg_tts_encode(const int16_t *pcm, size_t n, int sample_rate, sg_tts_format fmt,
                        uint8_t **out, size_t *out_len, sg_error *err);

/* Speaks one sentence within budget (NULL: only SG_TTS_MAX_CHARS applies): a sentence longer than
 * what is left is cut at a word boundary (out->truncated, budget->truncated). SG_ETOOBIG when the
 * budget is already spent (nothing synthesised); SG_EINVAL when there is nothing to speak. */
sg_status sg_tts_speak_sentence(const sg_tts_backend *tts, const char *sentence, double rate,
                                sg_tts_format fmt, sg_tts_budget *budget, sg_tts_audio *out,
                                sg_error *err);
/* Speaks a whole text as one file: sentence by sentence (agent/sentences.h) until the text, or
 * max_chars (0 = SG_TTS_MAX_CHARS) or SG_TTS_MAX_SECONDS, runs out (then out->truncated). */
sg_status sg_tts_speak(const sg_tts_backend *tts, const char *text, size_t max_chars, double rate,
                       sg_tts_format fmt, sg_tts_audio *out, sg_error *err);
void sg_tts_audio_free(sg_tts_audio *a);

/* Streamed answers: speaks sentence n (from 0) within budget and hands each audio event's JSON
 * (sg_tts_event_json, plus "part" when split) to emit, which owns it and returns false to stop.
 * The first sentence of an answer, unless short, is spoken in two parts - up to its first clause
 * break (or a word break near SG_TTS_LEAD_BYTES), then the rest - so the wearer hears the start
 * sooner: a part's synthesis and encoding take time in proportion to its length, and the rest is
 * made while the first part plays. A sentence with
 * nothing to speak, or a spent budget, emits nothing. Returns false when emit said stop (or out
 * of memory). */
#define SG_TTS_LEAD_BYTES 28
typedef bool (*sg_tts_emit_fn)(void *ud, json_t *event);
bool sg_tts_speak_streamed(const sg_tts_backend *tts, int n, const char *sentence,
                           sg_tts_format fmt, sg_tts_budget *budget, sg_tts_emit_fn emit,
                           void *ud);
/* Where the lead part of a long first sentence ends (bytes), or strlen(sentence): no split. */
size_t sg_tts_lead_cut(const char *sentence);

/* {"format", "sample_rate", "duration_s", "audio_base64"[, "truncated": true]}: the "audio" member
 * of a query answer. NULL when out of memory. */
json_t *sg_tts_audio_json(const sg_tts_audio *a);
/* {"sentence": n, "text", "format", "sample_rate", "duration_s", "audio_base64"[, "truncated"]}:
 * one streamed audio event (n counts from 0). NULL when out of memory. */
json_t *sg_tts_event_json(size_t sentence, const char *text, const sg_tts_audio *a);

#endif
