/* One turn of the assistant, independent of HTTP: inputs (text, audio, image) -> VAD/ASR ->
 * vision (or the session's remembered scene) -> prompt -> language backend -> actions -> safety ->
 * the result JSON of API.md. Also the frame ingest path (decode, keyframe gate, vision) that
 * /frame and images in a query share. The caller owns the per-session sg_visual_memory and
 * serialises access to it (the session lock). */
#ifndef SG_AGENT_TURN_H
#define SG_AGENT_TURN_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/answer_stream.h"
#include "agent/backends.h"
#include "agent/describe.h"
#include "agent/keyframe.h"
#include "media/audio.h"

#define SG_SYSTEM_PROMPT                                                                      \
    "You are a helpful assistant for smart glasses users. Use the provided visual context when " \
    "available to deliver concise, actionable answers."
#define SG_NO_VISUAL_INPUT "No visual input"
#define SG_DEFAULT_MAX_TOKENS 64

/* What a session remembers of what the wearer saw: derived data only, never raw pixels. */
typedef struct sg_visual_memory {
    sg_keyframe_gate gate;
    bool has_scene;
    char visual_context[512];
    sg_scene pixels;       /* valid when has_scene and the pixel fallback produced it */
    bool pixels_valid;
    json_t *scene;         /* last keyframe's scene JSON (owned), NULL before any keyframe */
    float *embedding;      /* last keyframe's vision embedding (owned) when a model produced one */
    int embedding_dim;
    char *ocr_text;        /* text OCR read on the last keyframe (owned; "" = it ran and read
                              none), NULL when OCR did not run on it (no text-like area) */
    long frames, keyframes;
} sg_visual_memory;

void sg_visual_memory_init(sg_visual_memory *m);
void sg_visual_memory_free(sg_visual_memory *m);

typedef struct sg_frame_result {
    bool keyframe;
    json_t *scene;        /* new reference to the keyframe's scene, NULL when skipped */
    double decode_ms, vision_ms;
    double ocr_ms;        /* < 0 when OCR did not run */
    int width, height;    /* size in the file */
} sg_frame_result;

/* Text kept from one keyframe's OCR, bytes at most (a sign, a menu page; not a book). */
#define SG_OCR_TEXT_MAX 2048

/* Decodes an encoded frame, runs the keyframe gate (force = always a keyframe) and, on a
 * keyframe, vision; updates m. Errors: SG_EIMAGE, SG_ETOOBIG, SG_ENOMEM, vision errors. */
sg_status sg_frame_ingest(const sg_backends *b, sg_visual_memory *m, const uint8_t *bytes,
                          size_t len, bool force, sg_frame_result *out, sg_error *err);
/* The same; with an OCR backend, a keyframe whose describer statistics show text-like areas is
 * read (the frame decoded again at full size, only then) and the text kept with the scene
 * (m->ocr_text, scene "text"); read_text reads a keyframe even without such areas (the question
 * asks to read). An OCR failure never fails the frame: the text is then unknown (NULL). */
sg_status sg_frame_ingest_ocr(const sg_backends *b, sg_visual_memory *m, const uint8_t *bytes,
                              size_t len, bool force, bool read_text, sg_frame_result *out,
                              sg_error *err);

/* Cheaper steps a turn is asked to take to keep within the latency budget (server/degrade.h
 * decides them). Each is taken only where it applies, and the output says which were. */
typedef struct sg_turn_degrade {
    bool asr_fallback;      /* transcribe with b->asr_fallback (when loaded) */
    int llm_max_tokens;     /* > 0: generate at most this many tokens (when below the request's) */
    bool llm_rule_based;    /* answer with the rule-based responder instead of the LLM */
    bool vision_remembered; /* do not analyse the request's image when the session has a scene */
} sg_turn_degrade;

typedef struct sg_turn_input {
    const char *text;            /* may be NULL */
    const sg_audio *audio;       /* decoded 16 kHz mono, may be NULL */
    const uint8_t *image;        /* encoded JPEG/PNG, may be NULL */
    size_t image_len;
    const char *language;        /* may be NULL */
    bool cloud_offload;
    int max_tokens;              /* <= 0: SG_DEFAULT_MAX_TOKENS */
    const sg_turn_degrade *degrade; /* NULL: every stage at its normal model */
    /* NULL: the answer comes whole in the result. Else the turn hands on its stages, the answer's
     * text and sentences as they are made (agent/answer_stream.h); the result's
     * metadata.latency_ms then has first_token and first_audio. */
    const sg_turn_stream *stream;
    /* With a stream: where the caller writes when the first audio went out (sg_now_ms), -1 none. */
    const double *first_audio_at;
    /* OpenAI's chat messages (POST /v1/chat/completions): system replaces SG_SYSTEM_PROMPT when
     * not NULL; history (earlier "User: …" / "Assistant: …" lines) goes into the prompt before
     * "User query:". NULL: none. */
    const char *system;
    const char *history;
    /* the language model's sampling (0, 0, 0: greedy); a sampled answer bypasses the cache */
    double temperature, top_p;
    unsigned long long seed;
    bool no_cache; /* bypass the response cache (the OpenAI routes: their usage counts tokens) */
} sg_turn_input;

typedef struct sg_turn_timing {
    double vad, asr, vision, llm, total; /* ms; < 0 when the stage did not run */
    double first_token, first_audio;     /* streamed turns: ms from the start, < 0 none */
    double ocr;                          /* ms of it inside vision; < 0 when OCR did not run */
} sg_turn_timing;

typedef struct sg_turn_output {
    json_t *result;        /* the turn result object (without session_id), owned */
    char *transcript;      /* ASR transcript, malloc'ed, NULL when no audio */
    char *query;           /* the user's words used for the turn, malloc'ed */
    char *response;        /* final response text, malloc'ed */
    bool speech;           /* audio contained speech */
    bool blocked;
    bool stopped;          /* streamed: a callback said stop (result is NULL) */
    sg_turn_timing t;
    sg_turn_degrade degraded; /* the steps of in->degrade that were taken (metadata.degraded) */
    sg_llm_usage usage;    /* the language model's token counts (zeros: the responder or the
                              cache answered) */
} sg_turn_output;

/* Runs one turn. *out is always to be freed with sg_turn_output_free: on an error it holds what
 * was made before it (a transcript, the query). */
sg_status sg_turn_run(const sg_backends *b, sg_visual_memory *m, const sg_turn_input *in,
                      sg_turn_output *out, sg_error *err);
void sg_turn_output_free(sg_turn_output *o);

/* Speech path shared by /audio and audio in a query: VAD, then ASR when there is speech.
 * *transcript is malloc'ed ("" when no speech). Without an ASR backend: SG_EUNSUPPORTED. */
sg_status sg_turn_transcribe(const sg_backends *b, const sg_audio *audio, const char *language,
                             char **transcript, bool *speech, double *vad_ms, double *asr_ms,
                             sg_error *err);
/* The same with the given ASR backend (b->asr or b->asr_fallback). */
sg_status sg_turn_transcribe_with(const sg_backends *b, const sg_asr_backend *asr,
                                  const sg_audio *audio, const char *language, char **transcript,
                                  bool *speech, double *vad_ms, double *asr_ms, sg_error *err);

/* {"vision":name|null,"asr":…,"vad":…,"llm":…,"ocr":…} */
json_t *sg_backends_models_json(const sg_backends *b);

#endif
