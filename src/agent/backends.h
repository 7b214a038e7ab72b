/* The model interfaces a turn plugs into. Each backend is a small vtable plus an opaque self
 * pointer, so a model issue only has to fill one in: vision (CLIP), ASR (Whisper), VAD (Silero),
 * LLM (the SNN student), OCR (Tesseract). A NULL backend means "no model configured": the turn then uses the
 * pixel-statistics describer for vision and the rule-based responder for language, reports that
 * honestly in metadata, and refuses work that truly needs a model (speech without ASR). */
#ifndef SG_AGENT_BACKENDS_H
#define SG_AGENT_BACKENDS_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "media/image.h"

typedef struct sg_vision_result {
    char visual_context[512]; /* e.g. "Scene appears to be: street scene (confidence: 61.20%)" */
    json_t *scene;            /* structured labels/scores for the frame response (owned) */
    float *embedding;         /* the frame's embedding (malloc'ed, owned) or NULL */
    int embedding_dim;
} sg_vision_result;

typedef struct sg_vision_backend {
    const char *name;   /* reported in metadata.models.vision, e.g. "clip-vit-base-patch32 int8" */
    int min_short_side; /* decode frames at least this large on the short side */
    sg_status (*analyze)(void *self, const sg_image *img, sg_vision_result *out, sg_error *err);
    /* Optional (NULL when the backend has none): L2-normalised embeddings in the model's joint
     * text-image space, embedding_dim floats (POST /v1/embeddings). embed_text refuses (SG_ERANGE)
     * text longer than the model's context; *n_tokens: the tokens it took. */
    int embedding_dim;
    int context; /* tokens embed_text takes, start and end included */
    sg_status (*embed_text)(void *self, const char *text, float *out, int *n_tokens, sg_error *err);
    sg_status (*embed_image)(void *self, const sg_image *img, float *out, sg_error *err);
    void *self;
} sg_vision_backend;

typedef struct sg_speech_segment {
    double start_s, end_s;
} sg_speech_segment;

/* Streaming end-pointing (optional part of a VAD backend): what the segment rules decide as audio
 * arrives. Times are seconds from the start of the stream (its open or its last finish). */
typedef enum sg_vad_event_kind {
    SG_VAD_EV_START = 1, /* speech may have begun at start_s (padded) */
    SG_VAD_EV_END,       /* a speech segment [start_s, end_s] is complete (an utterance ended) */
    SG_VAD_EV_DROP,      /* the speech begun was too short to be a segment; forget it */
} sg_vad_event_kind;

typedef struct sg_vad_event {
    sg_vad_event_kind kind;
    double start_s, end_s;
    double at_s; /* audio seen when this was decided */
} sg_vad_event;

typedef struct sg_vad_stream sg_vad_stream; /* the backend's per-stream state */

typedef struct sg_vad_backend {
    const char *name;
    /* Speech segments of 16 kHz mono audio; *segs is malloc'ed. */
    sg_status (*segments)(void *self, const float *pcm, size_t n, sg_speech_segment **segs,
                          size_t *nsegs, sg_error *err);
    /* Optional (all four NULL when the backend cannot stream): a stream takes 16 kHz mono audio
     * in chunks of any size and reports the events the batch segments() would lead to, in order,
     * as soon as each is certain. *ev is malloc'ed (NULL when there is none). finish ends the
     * audio (an open segment ends there) and starts a new stream. One stream per audio stream; a
     * stream is used by one thread at a time. */
    sg_vad_stream *(*stream_open)(void *self, sg_error *err);
    sg_status (*stream_feed)(sg_vad_stream *st, const float *pcm, size_t n, sg_vad_event **ev,
                             size_t *nev, sg_error *err);
    sg_status (*stream_finish)(sg_vad_stream *st, sg_vad_event **ev, size_t *nev, sg_error *err);
    void (*stream_close)(sg_vad_stream *st);
    void *self;
} sg_vad_backend;

struct sg_whisper;
struct sg_whisper_transcribe_opts;
struct sg_whisper_transcript;
typedef struct sg_asr_backend {
    const char *name;
    /* Transcribes 16 kHz mono audio; *text is malloc'ed. language may be NULL (auto). */
    sg_status (*transcribe)(void *self, const float *pcm, size_t n, const char *language,
                            char **text, sg_error *err);
    /* Optional (NULL when the backend has no use for it): the same, given the speech segments a
     * VAD found in this audio (seconds, sorted, nsegs >= 1), so the backend can drop the silence
     * around and between them and cut long audio at pauses without running a VAD again. */
    sg_status (*transcribe_segments)(void *self, const float *pcm, size_t n,
                                     const sg_speech_segment *segs, size_t nsegs,
                                     const char *language, char **text, sg_error *err);
    /* Optional: openai/whisper's transcribe() with its options and its detailed transcript
     * (models/whisper_transcribe.h; POST /v1/audio/transcriptions). NULL: not a Whisper. */
    sg_status (*transcribe_full)(void *self, const float *pcm, size_t n,
                                 const struct sg_whisper_transcribe_opts *o,
                                 struct sg_whisper_transcript *out, sg_error *err);
    /* Optional: the Whisper model behind it (languages, vocabulary), NULL when none. */
    struct sg_whisper *(*whisper)(void *self);
    void *self;
} sg_asr_backend;

/* Hears a reply as it is generated: a piece of valid UTF-8 text; false stops the generation. */
typedef bool (*sg_text_fn)(void *ud, const char *piece, size_t len);

/* How to generate: the length and the sampling (OpenAI's chat parameters). */
typedef struct sg_llm_params {
    int max_tokens;
    double temperature;      /* 0: greedy, exactly the reference's argmax */
    double top_p;            /* nucleus: the smallest set of tokens whose probability reaches
                                top_p (1 or 0: all) */
    unsigned long long seed; /* the sampler's seed: the same seed gives the same text */
} sg_llm_params;

/* What a generation took and made. */
typedef struct sg_llm_usage {
    int prompt_tokens, completion_tokens;
    bool hit_max_tokens; /* it ended at max_tokens rather than at the end of text */
} sg_llm_usage;

typedef struct sg_llm_backend {
    const char *name;
    /* Generates a reply; *text is malloc'ed. on_text (may be NULL) hears it piece by piece as it
     * is made (the pieces concatenated are *text); when it says stop, *text is what was made.
     * usage (may be NULL) gets the token counts. */
    sg_status (*generate)(void *self, const char *system, const char *prompt,
                          const sg_llm_params *p, sg_text_fn on_text, void *ud, char **text,
                          sg_llm_usage *usage, sg_error *err);
    void *self;
} sg_llm_backend;

struct sg_ocr_region;
struct sg_ocr_result;
typedef struct sg_ocr_backend {
    const char *name; /* reported in metadata.models.ocr, e.g. "tesseract 5.3.0 eng" */
    /* Reads the text in img (decoded at full size) into *out (agent/ocr.h; freed with
     * sg_ocr_result_free). regions: the text regions already found on this frame, or NULL to
     * find them here; with regions given and nregions 0 nothing runs. Safe to call from several
     * threads at once. */
    sg_status (*read)(void *self, const sg_image *img, const struct sg_ocr_region *regions,
                      int nregions, struct sg_ocr_result *out, sg_error *err);
    void *self;
} sg_ocr_backend;

typedef struct sg_backends {
    sg_vision_backend *vision; /* NULL: pixel statistics (agent/describe.h) */
    sg_vad_backend *vad;       /* NULL: all audio is treated as speech */
    sg_asr_backend *asr;       /* NULL: speech cannot be transcribed (503 MODEL_UNAVAILABLE) */
    sg_asr_backend *asr_fallback; /* a smaller Whisper for turns degraded to keep within the
                                     latency budget (--asr-fallback-model); NULL: none */
    sg_llm_backend *llm;       /* NULL: rule-based responder (agent/responder.h) */
    struct sg_tts_backend *tts; /* speech synthesis (agent/tts.h); NULL: off (SG_TTS=off), and a
                                   request asking for speech is told so */
    sg_ocr_backend *ocr;       /* NULL: no text recognition (the read intent says so) */
    struct sg_skills *skills;  /* action registry (agent/actions.h) */
    struct sg_cache *cache;    /* response cache around the LLM (agent/cache.h): a repeated
                                  normalised prompt with the same max_tokens is answered from it
                                  with metadata.cached: true; NULL = no cache */
} sg_backends;

#endif
