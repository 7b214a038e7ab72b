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
    void *self;
} sg_asr_backend;

/* Hears a reply as it is generated: a piece of valid UTF-8 text; false stops the generation. */
typedef bool (*sg_text_fn)(void *ud, const char *piece, size_t len);

/* How a reply's tokens are chosen (OpenAI's chat completion parameters). A zeroed struct is
 * greedy. temperature 0: greedy (argmax); > 0: sampled from softmax(logits / temperature), kept to
 * the nucleus when 0 < top_p < 1 (the smallest set of most probable tokens whose probability
 * reaches top_p; 0 or 1 keep all), drawn from a generator seeded with seed: the same seed gives
 * the same reply. A caller without a seed from its client picks one. */
typedef struct sg_llm_sampling {
    float temperature;
    float top_p;
    uint64_t seed;
} sg_llm_sampling;

typedef struct sg_llm_backend {
    const char *name;
    /* Generates a reply; *text is malloc'ed. on_text (may be NULL) hears it piece by piece as it
     * is made (the pieces concatenated are *text); when it says stop, *text is what was made. */
    sg_status (*generate)(void *self, const char *system, const char *prompt, int max_tokens,
                          sg_text_fn on_text, void *ud, char **text, sg_error *err);
    void *self;
    /* Optional (NULL: the backend only decodes greedily): generate with sampling (NULL: greedy,
     * as generate). Errors as generate, and SG_EINVAL for sampling values out of range. Call it
     * through sg_llm_generate. */
    sg_status (*generate_sampled)(void *self, const char *system, const char *prompt,
                                  int max_tokens, const sg_llm_sampling *sampling,
                                  sg_text_fn on_text, void *ud, char **text, sg_error *err);
} sg_llm_backend;

/* generate_sampled when the backend has it; otherwise generate, which is right for greedy
 * sampling and refused (SG_EUNSUPPORTED) for temperature > 0 so no caller believes it sampled. */
static inline sg_status sg_llm_generate(const sg_llm_backend *b, const char *system,
                                        const char *prompt, int max_tokens,
                                        const sg_llm_sampling *sampling, sg_text_fn on_text,
                                        void *ud, char **text, sg_error *err)
{
    if (b->generate_sampled)
        return b->generate_sampled(b->self, system, prompt, max_tokens, sampling, on_text, ud,
                                   text, err);
    if (sampling && sampling->temperature > 0.0f) {
        *text = NULL;
        return sg_error_set(err, SG_EUNSUPPORTED, "the language model %s decodes greedily only "
                            "(temperature 0)", b->name ? b->name : "");
    }
    return b->generate(b->self, system, prompt, max_tokens, on_text, ud, text, err);
}

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
