/* libsgclient: the phone side of smartglass-edge, in C so an Android (NDK) or iOS app can link it.
 *
 * Two halves, two headers:
 *  - sgclient_policy.h, the POLICY (rate.c, frame.c, upload_queue.c, retry.c, stats.c, y4m.c,
 *    budget.c, status.c, plus the server's own keyframe gate src/agent/keyframe.c and thumbnail
 *    src/media/thumb.c): pure functions and small state machines, libc + libm only
 *    (target sgclient_policy); it also holds the library's conventions, status enum and version;
 *  - this header, the I/O (jpeg.c: TurboJPEG encoding; audio_codec.c: Opus/FLAC chunks through
 *    libsndfile; http.c: the HTTP client on libcurl + jansson) (target sgclient, which includes
 *    the policy). */
#ifndef SGCLIENT_H
#define SGCLIENT_H

#include "sgclient_policy.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ==== JPEG encoding (TurboJPEG) ================================================================ */

typedef struct sg_jpeg_encoder sg_jpeg_encoder;
/* SG_CLIENT_OK, SG_CLIENT_ENOMEM, or SG_CLIENT_ECODEC (TurboJPEG would not start). */
SGCLIENT_API sg_client_status sg_jpeg_encoder_new(sg_jpeg_encoder **out);
SGCLIENT_API void sg_jpeg_encoder_free(sg_jpeg_encoder *e);
/* Encodes packed RGB (width x height) at quality 1..100, 4:2:0 like Android's Bitmap.compress.
 * out_width/out_height > 0 first fits the picture to that size (sg_rgb_fit; e.g. 640x480).
 * *out is malloc'ed. SG_CLIENT_OK, or EINVAL / ENOMEM / ECODEC with a reason in err. */
SGCLIENT_API sg_client_status sg_jpeg_encode(sg_jpeg_encoder *e, const uint8_t *rgb, int width,
                                             int height, int out_width, int out_height, int quality,
                                             uint8_t **out, size_t *out_len,
                                             char err[SG_CLIENT_ERROR_SIZE]);

/* ==== audio chunks (libsndfile) ================================================================ */

/* What `sg stream` and an app send as audio: each chunk is a standalone file. */
typedef enum sg_audio_codec {
    SG_AUDIO_CODEC_PCM = 0, /* WAV, 16-bit mono: 32 KB/s at 16 kHz */
    SG_AUDIO_CODEC_FLAC,    /* FLAC, lossless (~half of PCM on speech) */
    SG_AUDIO_CODEC_OPUS     /* Ogg Opus, VBR (24 kbit/s default: ~3.2 KB per 1 s chunk) */
} sg_audio_codec;
#define SG_OPUS_DEFAULT_BITRATE 24000
SGCLIENT_API const char *sg_audio_codec_name(sg_audio_codec c); /* "pcm", "flac", "opus" */
/* "pcm", "wav" (= pcm), "flac", "opus": SG_CLIENT_OK; anything else SG_CLIENT_EINVAL. */
SGCLIENT_API sg_client_status sg_audio_codec_parse(const char *name, sg_audio_codec *out);
SGCLIENT_API const char *sg_audio_codec_content_type(sg_audio_codec c); /* audio/wav, ... */
/* Encodes n mono 16-bit samples at sample_rate (Opus: 8/12/16/24/48 kHz) into one file in *out
 * (malloc'ed). bitrate_bps: Opus only, 6000..256000, 0 = SG_OPUS_DEFAULT_BITRATE. SG_CLIENT_OK, or
 * EINVAL / ENOMEM / ECODEC with a reason in err. */
SGCLIENT_API sg_client_status sg_audio_encode(sg_audio_codec codec, const int16_t *pcm, size_t n,
                                              int sample_rate, int bitrate_bps, uint8_t **out,
                                              size_t *out_len, char err[SG_CLIENT_ERROR_SIZE]);

/* A mono 16-bit PCM WAV file (44-byte header + samples) in out (44 + 2n bytes). Returns its size. */
SGCLIENT_API size_t sg_wav_pcm16(const int16_t *samples, size_t n, int sample_rate, uint8_t *out);

/* ==== HTTP client (libcurl) ==================================================================== */

typedef struct sg_client sg_client;

typedef struct sg_client_config {
    const char *base_url;       /* "http://host:port" (no trailing slash needed) */
    const char *api_key;        /* NULL: none; sent as X-API-Key */
    long timeout_ms;            /* per attempt (30000) */
    long connect_timeout_ms;    /* (5000) */
    sg_retry_policy retry;
    bool frame_json;            /* frames as {"image_base64": ...} instead of raw image/jpeg */
    /* Injectable time and randomness: now_ms (monotonic ms) and sleep_ms drive the retry waits;
     * NULL = CLOCK_MONOTONIC and nanosleep. uniform NULL = an sg_rng seeded with rng_seed.
     * rng_seed 0 (the default) seeds from the clock, so clients do not retry in lockstep.
     * Round-trip latencies are always measured on CLOCK_MONOTONIC. */
    double (*now_ms)(void *ud);
    void (*sleep_ms)(void *ud, double ms);
    sg_uniform_fn uniform;
    void *ud;
    uint64_t rng_seed;
    /* Asked before every retry (after the wait): false abandons the request (e.g. a frame that a
     * newer one has made stale). NULL = keep trying. */
    bool (*keep_trying)(void *ud, sg_upload_kind kind, int attempts);
} sg_client_config;
SGCLIENT_API void sg_client_config_default(sg_client_config *c, const char *base_url);

#define SG_CLIENT_SESSION_ID_SIZE 64 /* a session id and its NUL */
#define SG_CLIENT_ERROR_CODE_SIZE 32 /* the "error" code of an API error body and its NUL */

/* What one request did: caller-allocated, filled by every request function (also on failure);
 * sg_client_result_clear releases the body. */
typedef struct sg_client_result {
    sg_client_status outcome;
    int status;              /* last HTTP status; 0 = no response (network error) */
    int attempts;
    int retries;             /* attempts - 1 */
    int network_errors;      /* attempts that got no response */
    char error[SG_CLIENT_ERROR_CODE_SIZE]; /* "error" code of a JSON error body, e.g. "OVERLOADED" */
    char detail[SG_CLIENT_ERROR_SIZE];     /* "detail" of the error body, or the network error */
    double latency_ms;       /* round trip of the last attempt */
    double total_ms;         /* first attempt start to the end, waits included (config clock) */
    double server_ms;        /* the body's latency_ms.total (or metadata.latency_ms.total), -1 */
    double retry_after_ms;   /* last Retry-After, -1 */
    uint64_t bytes_up;       /* all attempts: request line + headers + body, as sent */
    uint64_t body_up;        /* all attempts: body bytes */
    uint64_t bytes_down;     /* all attempts: response headers + body */
    char *body;              /* last response body, NUL-terminated, malloc'ed, or NULL */
    size_t body_len;
} sg_client_result;
SGCLIENT_API void sg_client_result_clear(sg_client_result *r);

typedef struct sg_client_kind_stats {
    uint64_t requests, ok, failed, attempts, retries, network_errors;
    uint64_t bytes_up, body_up, bytes_down;
    double latency_sum_ms;   /* of the last attempts of ok requests */
} sg_client_kind_stats;
typedef struct sg_client_stats {
    sg_client_kind_stats kind[SG_UPLOAD_KINDS];
    uint64_t by_status[6];   /* responses by class: [0] no response, [1..5] 1xx..5xx */
} sg_client_stats;

/* SG_CLIENT_EINVAL with a reason in err when the URL is empty or not http(s), SG_CLIENT_ENOMEM
 * when libcurl cannot start. The config's strings are copied. Call curl_global_init() once per
 * process before creating clients from several threads (the first sg_client_new does it
 * otherwise). */
SGCLIENT_API sg_client_status sg_client_new(const sg_client_config *cfg, sg_client **out,
                                            char err[SG_CLIENT_ERROR_SIZE]);
SGCLIENT_API void sg_client_free(sg_client *c);
SGCLIENT_API void sg_client_get_stats(const sg_client *c, sg_client_stats *out);

/* ---- transport (libsgclient 1.1) ----
 * An sg_client is the one handle of the library that may be used from several threads at once:
 * its requests then share its connections, and over HTTP/2 they run side by side as streams of
 * one connection (a frame upload does not wait for a question's answer, nor open a connection of
 * its own). Requests made one after another reuse the connection too (HTTP/1.1 keep-alive or
 * HTTP/2). Options are functions rather than sg_client_config fields so that the layout of the
 * config struct, part of the ABI, stays that of 1.0. Set them before the first request (they
 * apply from the next request on). */

/* TLS for https:// servers. ca_file: a PEM file of the certificates to trust (e.g. a cluster's
 * self-signed one); NULL = the system's. verify_peer false skips verifying the certificate and
 * the host name (testing only: anyone on the path can then read and change the traffic).
 * The path is copied. SG_CLIENT_OK, or EINVAL / ENOMEM. */
SGCLIENT_API sg_client_status sg_client_set_tls(sg_client *c, const char *ca_file, bool verify_peer,
                                                char err[SG_CLIENT_ERROR_SIZE]);

typedef enum sg_client_http {
    SG_CLIENT_HTTP_AUTO = 0, /* HTTP/2 when the server offers it in the TLS handshake (ALPN), else
                              * HTTP/1.1; plain http:// is HTTP/1.1 (the default) */
    SG_CLIENT_HTTP_1_1       /* HTTP/1.1 only (comparisons, servers with broken HTTP/2) */
} sg_client_http;
SGCLIENT_API sg_client_status sg_client_set_http(sg_client *c, sg_client_http version);

/* The HTTP version of the last response: "1.0", "1.1", "2" (or "3"); "" before any response. */
SGCLIENT_API const char *sg_client_http_version(const sg_client *c);
/* Connections the client has opened so far (libcurl's CURLINFO_NUM_CONNECTS, summed): 1 when
 * every request went over one connection. */
SGCLIENT_API uint64_t sg_client_connections(const sg_client *c);

/* ---- telemetry (libsgclient 1.2) ----
 * The client tells the server how the device is doing: battery level and charging state (the app
 * says them), the frame rate and upload rate it measures itself over the last minute (every
 * request's bytes, frames delivered), and the process's resident memory. They go in an
 * X-Client-Telemetry header on the next request to a session's route (frame, audio, query) once
 * every interval: no request of their own, so no radio wake-up of their own, and a few dozen bytes
 * every 30 s. Nothing is sent until sg_client_set_device gives a battery level. */
#define SG_CLIENT_TELEMETRY_INTERVAL_MS 30000.0
/* battery_pct 0..100 (anything else: unknown, telemetry off); charging 1, 0, or -1 unknown. */
SGCLIENT_API void sg_client_set_device(sg_client *c, double battery_pct, int charging);
/* At most one report every interval_ms on the config clock; 0 = never. EINVAL for < 0 or NaN. */
SGCLIENT_API sg_client_status sg_client_set_telemetry_interval(sg_client *c, double interval_ms);
/* What a report would say now. */
SGCLIENT_API void sg_client_get_telemetry(sg_client *c, sg_client_telemetry *out);

/* ---- streamed answers (libsgclient 1.2) ----
 * A question answered as it is made (the server's Server-Sent Events, ../shared/API.md and
 * docs/ARCHITECTURE.md): the scene, the answer's text piece by piece, each sentence's speech as
 * soon as it is synthesised, then the turn result. The same events come from /ws/audio when the
 * socket asks for answers; an app holding that socket passes its messages to
 * sg_answer_ws_message. */
typedef struct sg_answer_event {
    const char *type;      /* "vision", "transcript", "token", "reset", "audio", "done", "error";
                              from /ws/audio also "partial", "final", "end", "answer_cancelled" */
    const char *text;      /* token: the piece; audio: the sentence; transcript, partial, final:
                              the text; error: the detail; else NULL */
    int sentence;          /* audio: the sentence's number from 0; else -1 */
    const char *format;    /* audio: "ogg" (Ogg Opus) or "wav" */
    int sample_rate;       /* audio */
    const uint8_t *audio;  /* audio: the file (decoded from base64), audio_len bytes */
    size_t audio_len;
    long long answer;      /* /ws/audio: which answer (1, 2, ...); 0 over HTTP */
    const char *json;      /* the event's data as sent, json_len bytes (done: the turn result) */
    size_t json_len;
    double t_ms;           /* over HTTP: ms since the request was sent; -1 from /ws/audio */
} sg_answer_event;
/* Everything in ev is valid during the call only. Return false to stop (the request ends). */
typedef bool (*sg_answer_fn)(void *ud, const sg_answer_event *ev);

/* POST /sessions/{id}/query with Accept: text/event-stream: {"text_query": text, "image_base64":
 * jpeg?, "speak": speak}. on_event runs on the calling thread for each event as it arrives (the
 * stream has a connection of its own). Before the stream starts, failures are retried as any
 * request's; once it started, never. res (may be NULL): SG_CLIENT_OK when the done event came
 * (res->body is its data: the turn result, as sg_client_query's body); FAILED after an error
 * event (res->status, error, detail are its), a stream cut short, or an error answer; ABANDONED
 * when on_event said stop; GAVE_UP, EINVAL, ENOMEM as other requests. The stream is cut when
 * nothing arrives for the config's timeout_ms, not at a total time. */
SGCLIENT_API sg_client_status sg_client_query_stream(sg_client *c, const char *session_id,
                                                     const char *text, const uint8_t *jpeg,
                                                     size_t jpeg_len, bool speak,
                                                     sg_answer_fn on_event, void *ud,
                                                     sg_client_result *res);
/* One /ws/audio text message (JSON with a "type") as an event: SG_CLIENT_OK after on_event, or
 * EFORMAT (not such a message), ABANDONED (on_event said stop), EINVAL. */
SGCLIENT_API sg_client_status sg_answer_ws_message(const char *msg, size_t len,
                                                   sg_answer_fn on_event, void *ud);

/* The request functions return res->outcome: SG_CLIENT_OK (2xx), FAILED, GAVE_UP, ABANDONED,
 * EINVAL or ENOMEM; res may be NULL when the caller wants only that. */

/* POST /sessions; session_id gets the new id. */
SGCLIENT_API sg_client_status sg_client_create_session(sg_client *c,
                                                       char session_id[SG_CLIENT_SESSION_ID_SIZE],
                                                       sg_client_result *res);
SGCLIENT_API sg_client_status sg_client_delete_session(sg_client *c, const char *session_id,
                                                       sg_client_result *res);
/* POST /sessions/{id}/frame with a JPEG (raw image/jpeg, or JSON image_base64 if frame_json). */
SGCLIENT_API sg_client_status sg_client_upload_frame(sg_client *c, const char *session_id,
                                                     const uint8_t *jpeg, size_t len,
                                                     sg_client_result *res);
/* The same with the client-keyframe hint when client_keyframe is true: header
 * "X-Client-Keyframe: true" on a raw body, "client_keyframe": true in a JSON body. The server
 * then analyses the frame whatever its own gate would say (the client's pre-filter has run that
 * gate over every captured frame; see docs/ARCHITECTURE.md). */
SGCLIENT_API sg_client_status sg_client_upload_frame_hint(sg_client *c, const char *session_id,
                                                          const uint8_t *jpeg, size_t len,
                                                          bool client_keyframe,
                                                          sg_client_result *res);
/* POST /sessions/{id}/audio with an audio file; the media type follows its magic: audio/ogg
 * ("OggS", e.g. from sg_audio_encode's Opus), audio/flac ("fLaC"), else audio/wav. */
SGCLIENT_API sg_client_status sg_client_upload_audio(sg_client *c, const char *session_id,
                                                     const uint8_t *audio, size_t len,
                                                     sg_client_result *res);
/* POST /sessions/{id}/query: {"text_query": text, "image_base64": jpeg?}. */
SGCLIENT_API sg_client_status sg_client_query(sg_client *c, const char *session_id,
                                              const char *text, const uint8_t *jpeg,
                                              size_t jpeg_len, sg_client_result *res);
/* Any request (for tests and tools): body may be NULL; content_type NULL = application/json. */
SGCLIENT_API sg_client_status sg_client_request(sg_client *c, sg_upload_kind kind,
                                                const char *method, const char *path,
                                                const char *content_type, const void *body,
                                                size_t len, sg_client_result *res);

/* ==== on-device language model (libsgclient 1.3) ============================================== */

/* The SNN student (src/models/snn.h: the server's own model code, compiled into the library) on
 * the phone: the int8 directory `sg quantize` writes (model.safetensors in format sg-snn-int8 +
 * metadata.json + the tokenizer's vocab.json/merges.txt), or an f32 one (student.pt or
 * model.safetensors). Greedy decoding, exactly the tokens sg_snn_generate gives on the server for
 * the same file and precision. A handle's calls are serialised (one generation at a time);
 * sg_local_llm_cancel may be called from any thread at any time. */
typedef struct sg_local_llm sg_local_llm;

typedef enum sg_local_llm_precision {
    SG_LOCAL_LLM_AUTO = 0, /* the file's: int8 for an sg-snn-int8 file, else f32 */
    SG_LOCAL_LLM_F32,      /* f32 weights (an int8 file is dequantised) */
    SG_LOCAL_LLM_INT8      /* int8 weights (an f32 file is quantised at load) */
} sg_local_llm_precision;

/* Part of the ABI: fields are only ever added in place of reserved ones. */
typedef struct sg_local_llm_options {
    int precision;   /* sg_local_llm_precision */
    int threads;     /* threads, the caller's included; 0 = one per core (at most 4); 1 = the caller's */
    int stop_at_eos; /* nonzero: stop at <|endoftext|> (not included) instead of max_tokens */
    int reserved[5]; /* zero */
} sg_local_llm_options;
SGCLIENT_API void sg_local_llm_options_default(sg_local_llm_options *o);

/* What a loaded model is (sg_local_llm_get_info). */
typedef struct sg_local_llm_info {
    int vocab, dim, depth, heads;
    int int8;                 /* 1: int8 weights, 0: f32 */
    int prequantized;         /* 1: loaded from an int8 file */
    unsigned long long weight_bytes; /* memory the weights hold */
    int reserved[4];
} sg_local_llm_info;

/* Loads dir (opts NULL = defaults). SG_CLIENT_OK, or EINVAL (NULL arguments, bad options),
 * EFORMAT (no model there, or one that does not load: the reason names the file) or ENOMEM, with
 * the reason in err. */
SGCLIENT_API sg_client_status sg_local_llm_open(const char *dir, const sg_local_llm_options *opts,
                                                sg_local_llm **out, char err[SG_CLIENT_ERROR_SIZE]);
SGCLIENT_API void sg_local_llm_get_info(const sg_local_llm *h, sg_local_llm_info *out);

/* Hears each piece of the answer as it is made (valid UTF-8; the pieces make the text). Return
 * false to stop: generate then returns SG_CLIENT_ABANDONED with what was made so far. */
typedef bool (*sg_local_llm_token_fn)(void *ud, const char *piece, size_t len);

/* The prompt "{system}\n\n{prompt}" (system NULL: prompt alone), then max_tokens tokens (1..2047,
 * fewer at end-of-text when stop_at_eos). on_token (may be NULL) runs on the calling thread.
 * text (may be NULL) gets the answer, malloc'ed (free() it), also when stopped early.
 * SG_CLIENT_OK; SG_CLIENT_CANCELLED when sg_local_llm_cancel stopped it, ABANDONED when on_token
 * did (text: what was made so far); EINVAL; ENOMEM. */
SGCLIENT_API sg_client_status sg_local_llm_generate(sg_local_llm *h, const char *system,
                                                    const char *prompt, int max_tokens,
                                                    sg_local_llm_token_fn on_token, void *ud,
                                                    char **text, char err[SG_CLIENT_ERROR_SIZE]);
/* Token ids of the last generation (at most cap of them into ids, which may be NULL); returns how
 * many there were. */
SGCLIENT_API int sg_local_llm_last_tokens(sg_local_llm *h, int32_t *ids, int cap);
/* Makes the generation running now return SG_CLIENT_CANCELLED after the token it is computing
 * (a generation started later is not affected). Thread-safe, async-signal-unsafe, never blocks. */
SGCLIENT_API void sg_local_llm_cancel(sg_local_llm *h);
/* Frees the model (no generation may be running: cancel it and let it return first). */
SGCLIENT_API void sg_local_llm_close(sg_local_llm *h);

/* ==== offline answers (libsgclient 1.3) ======================================================== */

/* Where an offline answer came from. */
typedef enum sg_offline_source {
    SG_OFFLINE_RULES = 0,    /* the server's rule-based responder (src/agent/responder.c, compiled
                                in): keyword intents over the remembered scene */
    SG_OFFLINE_LOCAL_LLM     /* the on-device model, the remembered scene in its system prompt */
} sg_offline_source;
SGCLIENT_API const char *sg_offline_source_name(sg_offline_source s); /* "rules", "local-llm" */

/* A question answered on the phone while the server cannot be reached. scene: the last scene the
 * server described (a turn result's "visual_context"), NULL or "" when none. llm (may be NULL):
 * answers questions about the scene and open questions with max_tokens tokens (on_token hears
 * them); the time, help, reminder and navigation intents always get the rule-based answer (the
 * phone's clock and skills know better), as does everything when llm is NULL. text gets the
 * answer (malloc'ed), source (may be NULL) where it came from. SG_CLIENT_OK, EINVAL, ENOMEM, or
 * what sg_local_llm_generate returned (CANCELLED, ABANDONED: text holds what was made). */
SGCLIENT_API sg_client_status sg_offline_answer(sg_local_llm *llm, const char *scene,
                                                const char *question, int max_tokens,
                                                sg_local_llm_token_fn on_token, void *ud,
                                                char **text, sg_offline_source *source,
                                                char err[SG_CLIENT_ERROR_SIZE]);

#ifdef __cplusplus
}
#endif

#endif
