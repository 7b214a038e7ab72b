/* libsgclient: the phone side of smartglass-edge, in C so an Android (NDK) or iOS app can link it.
 *
 * Two halves:
 *  - the POLICY (rate.c, frame.c, upload_queue.c, retry.c, stats.c, y4m.c, budget.c, plus the
 *    server's own keyframe gate src/agent/keyframe.c): pure functions and small state machines. No
 *    I/O, no threads, no clock or RNG of their own (time and randomness are passed in), libc + libm
 *    only, so they build anywhere (target sgclient_policy);
 *  - the I/O (jpeg.c: TurboJPEG encoding; audio_codec.c: Opus/FLAC chunks through libsndfile;
 *    http.c: the HTTP client on libcurl + jansson) (target sgclient, which includes the policy).
 *
 * The numbers come from the Python system's performance guide (docs/PERFORMANCE_OPTIMIZATION.md of
 * SmartGlass-AI-Agent); where the guide's code is wrong or silent, the comment says what we do.
 * Nothing here is thread-safe; one object per thread, or lock around it. */
#ifndef SGCLIENT_H
#define SGCLIENT_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

/* ==== adaptive frame rate ===================================================================== */

/* The guide's modes. HIGH is never chosen by the table (as in the guide); an app can force it. */
typedef enum sg_rate_mode { SG_RATE_MINIMAL = 0, SG_RATE_LOW, SG_RATE_MEDIUM, SG_RATE_HIGH } sg_rate_mode;
#define SG_RATE_MODES 4
#define SG_CAMERA_FPS 30

int sg_rate_mode_fps(sg_rate_mode m); /* 1, 5, 10, 30 */
const char *sg_rate_mode_name(sg_rate_mode m); /* "MINIMAL", ... */

/* The table: battery < 15 % -> MINIMAL; < 30 % -> LOW; < 60 % and user idle -> LOW; otherwise
 * MEDIUM. A battery level that is NaN counts as 0 (the safe side); values are clamped to 0..100. */
sg_rate_mode sg_rate_mode_for(double battery_pct, bool user_active);

typedef struct sg_rate_config {
    int camera_fps;            /* frames the camera delivers per second (30) */
    double active_window_ms;   /* user active = an interaction within this window (10000) */
    double motion_threshold;   /* motion score above which the rate is raised (0.3) */
    double motion_boost;       /* factor applied then (1.5) */
    double motion_min_battery; /* boost only when battery > this (30) */
    double motion_hold_ms;     /* the boost lasts this long after the last score over the
                                  threshold (1000); 0 = only for that one camera frame */
    int forced_mode;           /* -1: the table decides; else an sg_rate_mode (e.g. a HIGH burst) */
} sg_rate_config;

void sg_rate_config_default(sg_rate_config *c);

/* Target capture rate for the given state: the mode's fps, x motion_boost when motion >
 * motion_threshold and battery > motion_min_battery, never above camera_fps. cfg NULL = defaults. */
double sg_rate_target_fps(const sg_rate_config *cfg, double battery_pct, bool user_active,
                          double motion);

typedef struct sg_rate_decision {
    bool capture;        /* send this camera frame on (to the pre-filter and the encoder) */
    sg_rate_mode mode;   /* mode of the table (or forced) */
    double target_fps;   /* after the motion boost */
    bool user_active;
    bool boosted;        /* the motion boost applied */
} sg_rate_decision;

typedef struct sg_rate_controller {
    sg_rate_config cfg;
    bool has_interaction, has_motion;
    double last_interaction_ms, last_motion_ms;
    long long phase;     /* capture accumulator, in milli-frames */
    long long frames, captured;
    long long frames_in_mode[SG_RATE_MODES], captured_in_mode[SG_RATE_MODES];
} sg_rate_controller;

void sg_rate_init(sg_rate_controller *rc, const sg_rate_config *cfg); /* cfg NULL = defaults */
/* The user touched, spoke or asked something at now_ms. */
void sg_rate_interaction(sg_rate_controller *rc, double now_ms);
bool sg_rate_user_active(const sg_rate_controller *rc, double now_ms);
/* Called for every camera frame (camera_fps of them a second), with the frame's motion score.
 * Capture decision: a phase accumulator gains target_fps per camera frame and captures when it
 * reaches camera_fps, so the long-run capture rate is exactly target_fps also when it does not
 * divide 30 (7.5 fps = every 4th frame, 15 = every 2nd) and a rate change takes effect at the
 * next frame without a burst (at most one capture per camera frame, no credit saved up). The first
 * frame is always captured. (The guide's `frameNumber % (30 / fps)`
 * divides by zero above 30 fps and turns 7 fps into 7.5.) */
sg_rate_decision sg_rate_on_frame(sg_rate_controller *rc, double now_ms, double battery_pct,
                                  double motion);

/* ==== motion score ============================================================================= */

/* Motion between two frames, 0 (identical) .. 1 (every sampled channel went from 0 to 255 or back):
 * the mean over pixels sampled every `step` pixels in x and y (the guide samples every 10th) and
 * over the three colour channels of |a - b| / 255, per channel. The guide's Kotlin subtracts the
 * packed ARGB integers (abs(pixel1 - pixel2)), which is wrong: a change of 1 in red counts 65536
 * times a change of 1 in blue, borrows leak across channels (G 1 -> 0 with B 0 -> 255 gives 1,
 * not 256), alpha takes part, and the sum is then clamped to 1, so any red change reads as full
 * motion. bytes_per_pixel is 3 (RGB/BGR) or 4 (RGBA/BGRA/ARGB_8888 as bytes: the 4th byte, alpha,
 * is ignored); stride is bytes per row. Returns 0 for empty or mismatched input. */
double sg_motion_score(const uint8_t *a, const uint8_t *b, int width, int height, size_t stride,
                       int bytes_per_pixel, int step);

/* Keeps only the samples of the previous frame (not the frame) for a score per camera frame. */
typedef struct sg_motion_tracker sg_motion_tracker;
sg_motion_tracker *sg_motion_tracker_new(int step); /* step < 1 -> 10 */
void sg_motion_tracker_free(sg_motion_tracker *t);
/* Score of this frame against the previous one pushed (0 for the first, or after a size change). */
double sg_motion_tracker_push(sg_motion_tracker *t, const uint8_t *frame, int width, int height,
                              size_t stride, int bytes_per_pixel);

/* ==== JPEG quality and the uplink ============================================================== */

#define SG_JPEG_QUALITY_FLOOR 40 /* the guide's "emergency mode" row */
/* The guide's battery rule: battery < 20 % -> 60, < 50 % -> 75, otherwise 85; then, on a slow
 * measured uplink, 10 lower below 2000 kbit/s and 20 lower below 500 kbit/s, never below 40.
 * uplink_kbps <= 0 or NaN means "not measured yet": no penalty. */
int sg_jpeg_quality_for(double battery_pct, double uplink_kbps);

/* Uplink throughput estimate: an exponentially weighted mean (alpha 0.25) of bytes*8/transfer time
 * of uploads of at least min_bytes (4096; smaller ones measure the round trip, not the link).
 * transfer_ms should be the client round trip minus the server's own processing time. */
typedef struct sg_uplink {
    double kbps;    /* estimate, <= 0 when none */
    double alpha;
    size_t min_bytes;
    long samples;
} sg_uplink;
void sg_uplink_init(sg_uplink *u);
void sg_uplink_observe(sg_uplink *u, size_t bytes, double transfer_ms);

/* ==== frames: resize, thumbnail, keyframe pre-filter =========================================== */

/* Scales packed RGB src (sw x sh) to dst (dw x dh): centre crop to dst's aspect ratio, then an
 * exact area average when shrinking or bilinear interpolation when enlarging, per axis.
 * Returns 0, or -1 on bad sizes. */
int sg_rgb_fit(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh);

/* The server's keyframe thumbnail (src/media/thumb.c, compiled into this library; the server's
 * sg_image_thumb8 calls it): exact area mean of BT.601 luma (299 R + 587 G + 114 B) / 1000 over an
 * 8x8 grid, 0..255; packed RGB rows of width*3 bytes. */
void sg_thumb8_rgb(const uint8_t *rgb, int width, int height, float thumb[64]);

/* On-device keyframe pre-filter: runs the server's own gate (src/agent/keyframe.c, the same code,
 * same defaults diff_tau 8.0 and min_gap 3) over the frames the rate controller captures, so the
 * frames it holds back are exactly those the server's gate would skip were every captured frame
 * uploaded (same thumbnails, same decisions; the server sees the JPEG, whose thumbnail differs from
 * the raw frame's by a fraction of a grey level, so a frame right at the threshold can flip).
 * The frames it passes are uploaded with the client-keyframe hint (sg_client_upload_frame_hint):
 * the server's gate sees only the uploads and would count min_gap in those (analysing about a
 * third of them); with the hint it analyses every one. */
typedef struct sg_prefilter sg_prefilter;
sg_prefilter *sg_prefilter_new(float diff_tau, int min_gap); /* <= 0: the server's defaults */
void sg_prefilter_free(sg_prefilter *p);
/* true: a keyframe (upload it); false: the server would skip it. */
bool sg_prefilter_push(sg_prefilter *p, const float thumb[64]);
long long sg_prefilter_frames(const sg_prefilter *p);
long long sg_prefilter_keyframes(const sg_prefilter *p);

/* ==== upload queue ============================================================================= */

typedef enum sg_upload_kind {
    SG_UPLOAD_FRAME = 0,
    SG_UPLOAD_AUDIO,
    SG_UPLOAD_QUERY,
    SG_UPLOAD_CONTROL, /* sessions and other requests (stats only; never queued) */
    SG_UPLOAD_KINDS
} sg_upload_kind;
const char *sg_upload_kind_name(sg_upload_kind k);

typedef struct sg_upload_item {
    sg_upload_kind kind;
    uint8_t *data; /* payload; the queue stores the pointer, the caller owns and frees it */
    size_t len;
    double t_ms;   /* when it was produced (caller's clock) */
    long long tag; /* caller's */
    long long seq; /* set by the queue: push order */
} sg_upload_item;

typedef enum sg_upq_status {
    SG_UPQ_OK = 0,
    SG_UPQ_DROPPED_OLDEST, /* stored; the oldest frame was evicted into *evicted */
    SG_UPQ_DROPPED_NEW,    /* a frame that could not be stored (the queue holds only audio and
                              queries): not stored, the caller frees it */
    SG_UPQ_FULL,           /* audio or a query that does not fit: not stored and NOT dropped; the
                              caller keeps it and pushes it again later */
    SG_UPQ_EINVAL
} sg_upq_status;

/* Bounded: at most `capacity` items, of which at most `max_frames` frames. A frame beyond
 * max_frames, or any item arriving when the queue is full, evicts the oldest queued frame. Audio
 * and queries are never evicted: when the queue is full of them, SG_UPQ_FULL (back-pressure).
 * Pop order: queries, then audio, then frames (a question should not wait behind frames), FIFO
 * within a kind. */
typedef struct sg_upload_queue {
    sg_upload_item *items; /* push order */
    int n, capacity, max_frames;
    long long seq;
    long long pushed[SG_UPLOAD_KINDS], evicted_frames, dropped_new_frames, refused[SG_UPLOAD_KINDS];
} sg_upload_queue;

int sg_upq_init(sg_upload_queue *q, int capacity, int max_frames); /* 0, or -1 (bad sizes, OOM) */
void sg_upq_free(sg_upload_queue *q); /* frees the array, not the payloads */
sg_upq_status sg_upq_push(sg_upload_queue *q, sg_upload_item item, sg_upload_item *evicted);
bool sg_upq_pop(sg_upload_queue *q, sg_upload_item *out);
int sg_upq_count(const sg_upload_queue *q, sg_upload_kind kind); /* SG_UPLOAD_KINDS = all */
/* Is a frame newer than seq queued? (a frame being retried is stale then) */
bool sg_upq_has_newer_frame(const sg_upload_queue *q, long long seq);

/* ==== upload budget ============================================================================= */

/* A KB/min budget for everything the phone uploads (frames, audio, questions), enforced on frames:
 * audio and questions are never dropped and are simply spent; a keyframe that is due is uploaded
 * only if it fits what is left, first at a lower JPEG quality (down to min_quality), else it is
 * skipped and the next captured frame is due in its place (the view still has to reach the server).
 * A token bucket of burst_kb refilled at (kb_per_min - burst_kb) per minute: any 60 s window holds
 * at most kb_per_min of frames + audio + questions, unless audio and questions alone exceed it.
 * A frame larger than the bucket at min_quality can never go (hence SG_BUDGET_MIN_BURST_KB).
 * Pure: time is passed in; the encoder is a callback, so tests use a fake one. */
#define SG_BUDGET_OVERHEAD_BYTES 300 /* request line + headers of one upload (sg-edge, loopback) */
/* The bucket must hold the largest frame at min_quality plus the audio charged meanwhile, or such
 * frames could never go: a detailed 640x480 photo is ~30 KB at q40. */
#define SG_BUDGET_MIN_BURST_KB 48

typedef struct sg_budget_config {
    double kb_per_min;    /* budget in KB (1024 bytes) a minute; <= 0 = unlimited */
    double burst_kb;      /* bucket size; <= 0: 10 % of kb_per_min, at least SG_BUDGET_MIN_BURST_KB;
                             >= kb_per_min: half of it */
    int min_quality;      /* lowest JPEG quality before a frame is skipped (40) */
    int quality_step;     /* the quality steps down to multiples of this (5) */
    double overhead_bytes;/* added to each frame's JPEG size (SG_BUDGET_OVERHEAD_BYTES) */
    double initial_kb_q85;/* size guess at q85 before the first frame is encoded (50) */
} sg_budget_config;

/* Default budget per battery band (the radio costs energy per byte, so it shrinks with the
 * battery like the JPEG quality table): >= 50 % 600 KB/min (the guide's target), 20-50 % 450,
 * < 20 % 300. NaN counts as 0. */
double sg_budget_kb_per_min_for(double battery_pct);
void sg_budget_config_default(sg_budget_config *c, double battery_pct);
/* JPEG bytes at quality q relative to q85 (a fixed curve measured on the shared photos). */
double sg_jpeg_size_ratio(int quality);

typedef struct sg_budget {
    sg_budget_config cfg;
    double cap, rate;      /* bucket size (bytes), refill (bytes per ms) */
    double tokens;         /* bytes available; below 0 after audio/questions beyond the budget */
    double last_ms;
    bool started;
    bool owed;             /* a due frame was skipped: the next captured frame is due */
    double ref_bytes;      /* estimated JPEG bytes at q85 for the current scene (learned) */
    long long frames_due, frames_sent, frames_skipped, frames_lowered, reencodes;
    double spent[SG_UPLOAD_KINDS]; /* bytes charged per kind (corrections included) */
} sg_budget;

void sg_budget_init(sg_budget *b, const sg_budget_config *cfg); /* cfg NULL: 100 % defaults */
bool sg_budget_unlimited(const sg_budget *b);
/* Bytes available at now_ms (refills first; the first call starts the clock with a full bucket). */
double sg_budget_available(sg_budget *b, double now_ms);
/* Charges bytes unconditionally: audio and questions when queued, and corrections once an upload
 * is done (its real bytes minus what was charged: retries cost more, a frame dropped from the
 * queue is refunded with a negative value; a refund never fills the bucket beyond burst). */
void sg_budget_spend(sg_budget *b, double now_ms, sg_upload_kind kind, double bytes);
/* Estimated upload bytes of a frame at quality q (current scene estimate + overhead). */
double sg_budget_frame_estimate(const sg_budget *b, int quality);
/* Is this captured frame due for upload: the pre-filter said keyframe, or a skipped one is owed. */
bool sg_budget_due(const sg_budget *b, bool keyframe);

/* Encodes the frame at `quality` and returns its size in bytes (< 0: error). */
typedef long (*sg_budget_encode_fn)(void *ud, int quality);
typedef struct sg_budget_frame {
    int quality;   /* the quality it was encoded at and is to be sent with; 0 = skipped */
    long bytes;    /* its JPEG size */
    int encodes;   /* encode calls made (1 + re-encodes at lower quality) */
    bool lowered;  /* sent below want_quality */
    bool error;    /* the encoder failed: neither sent nor counted as skipped */
} sg_budget_frame;
/* Fits a due frame into the budget: tries want_quality, then lower qualities down to min_quality
 * (skipping those the size estimate rules out), encoding and checking the real size each time.
 * When one fits, its bytes + overhead are charged and the frame is to be sent (the last encode is
 * the one to send). Otherwise it is skipped (frames_skipped) and owed. Unlimited: encodes once at
 * want_quality. */
sg_budget_frame sg_budget_fit_frame(sg_budget *b, double now_ms, int want_quality,
                                    sg_budget_encode_fn encode, void *ud);

/* ==== retries ================================================================================== */

/* Randomness is passed in: a function returning a uniform double in [0, 1). */
typedef double (*sg_uniform_fn)(void *ud);
typedef struct sg_rng { uint64_t s; } sg_rng; /* xorshift64*, for callers without their own */
void sg_rng_seed(sg_rng *r, uint64_t seed);
double sg_rng_uniform(void *rng); /* an sg_uniform_fn over an sg_rng */

typedef struct sg_retry_policy {
    int max_attempts;          /* including the first (5) */
    double base_ms;            /* backoff after the first failure (250) */
    double multiplier;         /* growth per failure (2) */
    double max_backoff_ms;     /* cap (8000) */
    double jitter;             /* 0..1: the wait is uniform in [d * (1 - jitter), d] (0.5) */
    double max_retry_after_ms; /* a longer Retry-After gives up instead of waiting (30000) */
} sg_retry_policy;
void sg_retry_policy_default(sg_retry_policy *p);

typedef enum sg_retry_class { SG_RETRY_SUCCESS = 0, SG_RETRY_TRANSIENT, SG_RETRY_PERMANENT } sg_retry_class;
/* status 0 = network error (no response). 2xx success; network errors, 429 and 5xx transient;
 * other statuses permanent. One 5xx is permanent by contract: 503 MODEL_UNAVAILABLE without
 * Retry-After (API.md: Retry-After marks a transient 503; without it the model is simply not
 * there, and retrying would only delay the caller). error_code may be NULL. */
sg_retry_class sg_retry_classify(int status, double retry_after_ms, const char *error_code);

/* Backoff before attempt `failures + 1`: d = min(max_backoff, base * multiplier^(failures-1)),
 * then d * (1 - jitter * u) for u in [0, 1). */
double sg_retry_backoff_ms(const sg_retry_policy *p, int failures, double u);

typedef enum sg_retry_action { SG_RETRY_DONE = 0, SG_RETRY_WAIT, SG_RETRY_GIVE_UP } sg_retry_action;
typedef struct sg_retry_state {
    int attempts;        /* attempts made so far */
    double next_at_ms;   /* when SG_RETRY_WAIT: time of the next attempt */
    double last_wait_ms;
} sg_retry_state;
/* After an attempt finished at now_ms with this outcome: DONE (success or a permanent failure: do
 * not retry), WAIT (retry at next_at_ms = now + max(Retry-After, jittered backoff)) or GIVE_UP
 * (attempts exhausted, or Retry-After longer than max_retry_after_ms). */
sg_retry_action sg_retry_next(const sg_retry_policy *p, sg_retry_state *st, int status,
                              double retry_after_ms, const char *error_code, double now_ms,
                              sg_uniform_fn uniform, void *rng_ud);
/* Retry-After value -> milliseconds: delta-seconds, or an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37
 * GMT") relative to now_epoch_s. -1 when absent or malformed; 0 for a date in the past. */
double sg_retry_after_parse(const char *value, double now_epoch_s);

/* ==== statistics =============================================================================== */

/* p-th percentile (0..100) with linear interpolation (numpy's default); sorts v in place; NaN for
 * n == 0. */
double sg_client_percentile(double *v, size_t n, double p);
/* bytes per elapsed minute in KB (1 KB = 1024 bytes); 0 when elapsed_ms <= 0. */
double sg_client_kb_per_min(uint64_t bytes, double elapsed_ms);

/* ==== Y4M (YUV4MPEG2) frames, for simulators and tests ========================================= */

typedef struct sg_y4m_info {
    int width, height;
    int fps_num, fps_den; /* 30:1 when the header has no F */
    int chroma;           /* 420, 422, 444, or 0 for mono */
    size_t header_len;    /* bytes of the stream header including its '\n' */
    size_t frame_bytes;   /* bytes of one frame's planes */
} sg_y4m_info;
/* Parses the stream header at buf. 0, or -1 with a reason in err (not Y4M, unsupported colour
 * space or interlacing, sizes over 16384 or 64 Mpixel, truncated). */
int sg_y4m_parse_header(const uint8_t *buf, size_t len, sg_y4m_info *out, char err[128]);
/* Length of a "FRAME[ params]\n" line at buf, or -1 when buf does not start with one. */
long sg_y4m_frame_header_len(const uint8_t *buf, size_t len);
/* Planes of one frame (frame_bytes bytes) -> packed RGB (BT.601, limited range). */
void sg_y4m_to_rgb(const sg_y4m_info *info, const uint8_t *planes, uint8_t *rgb);

/* ==== JPEG encoding (TurboJPEG) ================================================================ */

typedef struct sg_jpeg_encoder sg_jpeg_encoder;
sg_jpeg_encoder *sg_jpeg_encoder_new(void);
void sg_jpeg_encoder_free(sg_jpeg_encoder *e);
/* Encodes packed RGB (width x height) at quality 1..100, 4:2:0 like Android's Bitmap.compress.
 * out_width/out_height > 0 first fits the picture to that size (sg_rgb_fit; e.g. 640x480).
 * *out is malloc'ed. 0, or -1 with a reason in err. */
int sg_jpeg_encode(sg_jpeg_encoder *e, const uint8_t *rgb, int width, int height, int out_width,
                   int out_height, int quality, uint8_t **out, size_t *out_len, char err[128]);

/* ==== audio chunks (libsndfile) ================================================================ */

/* What `sg stream` and an app send as audio: each chunk is a standalone file. */
typedef enum sg_audio_codec {
    SG_AUDIO_CODEC_PCM = 0, /* WAV, 16-bit mono: 32 KB/s at 16 kHz */
    SG_AUDIO_CODEC_FLAC,    /* FLAC, lossless (~half of PCM on speech) */
    SG_AUDIO_CODEC_OPUS     /* Ogg Opus, VBR (24 kbit/s default: ~3.2 KB per 1 s chunk) */
} sg_audio_codec;
#define SG_OPUS_DEFAULT_BITRATE 24000
const char *sg_audio_codec_name(sg_audio_codec c);       /* "pcm", "flac", "opus" */
int sg_audio_codec_parse(const char *name, sg_audio_codec *out); /* 0, or -1; "wav" = pcm */
const char *sg_audio_codec_content_type(sg_audio_codec c); /* audio/wav, audio/flac, audio/ogg */
/* Encodes n mono 16-bit samples at sample_rate (Opus: 8/12/16/24/48 kHz) into one file in *out
 * (malloc'ed). bitrate_bps: Opus only, 6000..256000, 0 = SG_OPUS_DEFAULT_BITRATE. 0, or -1 with a
 * reason in err. */
int sg_audio_encode(sg_audio_codec codec, const int16_t *pcm, size_t n, int sample_rate,
                    int bitrate_bps, uint8_t **out, size_t *out_len, char err[128]);

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
void sg_client_config_default(sg_client_config *c, const char *base_url);

typedef enum sg_client_status {
    SG_CLIENT_OK = 0,      /* 2xx */
    SG_CLIENT_FAILED,      /* a permanent failure (4xx, or 503 MODEL_UNAVAILABLE): not retried */
    SG_CLIENT_GAVE_UP,     /* transient failures until the retry policy gave up */
    SG_CLIENT_ABANDONED,   /* keep_trying said no */
    SG_CLIENT_EINVAL,      /* bad arguments */
    SG_CLIENT_ENOMEM
} sg_client_status;
const char *sg_client_status_name(sg_client_status s);

typedef struct sg_client_result {
    sg_client_status outcome;
    int status;              /* last HTTP status; 0 = no response (network error) */
    int attempts;
    int retries;             /* attempts - 1 */
    int network_errors;      /* attempts that got no response */
    char error[32];          /* "error" code of a JSON error body, e.g. "OVERLOADED" */
    char detail[256];        /* "detail" of the error body, or the network error */
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
void sg_client_result_free(sg_client_result *r);

typedef struct sg_client_kind_stats {
    uint64_t requests, ok, failed, attempts, retries, network_errors;
    uint64_t bytes_up, body_up, bytes_down;
    double latency_sum_ms;   /* of the last attempts of ok requests */
} sg_client_kind_stats;
typedef struct sg_client_stats {
    sg_client_kind_stats kind[SG_UPLOAD_KINDS];
    uint64_t by_status[6];   /* responses by class: [0] no response, [1..5] 1xx..5xx */
} sg_client_stats;

/* NULL with a reason in err when the URL is empty or libcurl cannot start. The config's strings
 * are copied. Call curl_global_init() once per process before creating clients from several
 * threads (the first sg_client_new does it otherwise). */
sg_client *sg_client_new(const sg_client_config *cfg, char err[128]);
void sg_client_free(sg_client *c);
void sg_client_get_stats(const sg_client *c, sg_client_stats *out);

/* POST /sessions; session_id gets the new id. */
sg_client_status sg_client_create_session(sg_client *c, char session_id[64], sg_client_result *res);
sg_client_status sg_client_delete_session(sg_client *c, const char *session_id, sg_client_result *res);
/* POST /sessions/{id}/frame with a JPEG (raw image/jpeg, or JSON image_base64 if frame_json). */
sg_client_status sg_client_upload_frame(sg_client *c, const char *session_id, const uint8_t *jpeg,
                                        size_t len, sg_client_result *res);
/* The same with the client-keyframe hint when client_keyframe is true: header
 * "X-Client-Keyframe: true" on a raw body, "client_keyframe": true in a JSON body. The server
 * then analyses the frame whatever its own gate would say (the client's pre-filter has run that
 * gate over every captured frame; see docs/ARCHITECTURE.md). */
sg_client_status sg_client_upload_frame_hint(sg_client *c, const char *session_id,
                                             const uint8_t *jpeg, size_t len, bool client_keyframe,
                                             sg_client_result *res);
/* POST /sessions/{id}/audio with an audio file; the media type follows its magic: audio/ogg
 * ("OggS", e.g. from sg_audio_encode's Opus), audio/flac ("fLaC"), else audio/wav. */
sg_client_status sg_client_upload_audio(sg_client *c, const char *session_id, const uint8_t *audio,
                                        size_t len, sg_client_result *res);
/* POST /sessions/{id}/query: {"text_query": text, "image_base64": jpeg?}. */
sg_client_status sg_client_query(sg_client *c, const char *session_id, const char *text,
                                 const uint8_t *jpeg, size_t jpeg_len, sg_client_result *res);
/* Any request (for tests and tools): body may be NULL; content_type NULL = application/json. */
sg_client_status sg_client_request(sg_client *c, sg_upload_kind kind, const char *method,
                                   const char *path, const char *content_type, const void *body,
                                   size_t len, sg_client_result *res);

/* A mono 16-bit PCM WAV file (44-byte header + samples) in out (44 + 2n bytes). Returns its size. */
size_t sg_wav_pcm16(const int16_t *samples, size_t n, int sample_rate, uint8_t *out);

#ifdef __cplusplus
}
#endif

#endif
