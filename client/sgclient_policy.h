/* libsgclient's policy half: what a phone decides before anything goes on the air. Pure code with
 * libc + libm only (target sgclient_policy; an Android NDK or iOS build can take just these
 * sources): no I/O, no threads, no clock or RNG of its own (time and randomness are passed in).
 * The I/O half (JPEG encoding, audio chunks, the HTTP client) is sgclient.h, which includes this.
 *
 * The numbers come from the Python system's performance guide (docs/PERFORMANCE_OPTIMIZATION.md of
 * SmartGlass-AI-Agent); where the guide's code is wrong or silent, the comment says what we do.
 *
 * The API's conventions, one for the whole library (and for what later wraps it, e.g. JNI):
 *  - every function that can fail returns an sg_client_status (SG_CLIENT_OK = 0); where a message
 *    says more, it goes to a caller's buffer of SG_CLIENT_ERROR_SIZE bytes (NULL: no message);
 *    functions that cannot fail return their value (a bool answers a question, it is no error);
 *  - state lives in opaque handles made by <type>_new(..., &handle) and released by <type>_free
 *    (NULL is a no-op); their counters are read through <module>_get_stats into a public struct;
 *  - configuration, results and statistics are caller-allocated structs with public fields; a
 *    config is filled by its _default() function first, then the caller changes what it wants;
 *    _clear() releases what a result struct holds (never the struct itself);
 *  - the caller owns what it passes in and what it gets back (free() for returned buffers).
 * Nothing here is thread-safe: one handle per thread, or lock around it (the HTTP client of
 * sgclient.h, sg_client, is the one exception). Layouts of the public structs are part of the
 * ABI: changing one is a new SGCLIENT_VERSION_MAJOR; new functions are a new MINOR. */
#ifndef SGCLIENT_POLICY_H
#define SGCLIENT_POLICY_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#define SGCLIENT_VERSION_MAJOR 1
#define SGCLIENT_VERSION_MINOR 3
#define SGCLIENT_VERSION_PATCH 0
#define SGCLIENT_VERSION "1.3.0"
/* 0xMMmmpp, for #if comparisons (like LIBCURL_VERSION_NUM) */
#define SGCLIENT_VERSION_NUM \
    ((SGCLIENT_VERSION_MAJOR << 16) | (SGCLIENT_VERSION_MINOR << 8) | SGCLIENT_VERSION_PATCH)

/* The public functions are exported from a shared build (libsgclient.so, built with
 * -fvisibility=hidden: CMake option SG_CLIENT_SHARED); everything else stays internal. */
#ifndef SGCLIENT_API
#if defined(_WIN32) && defined(SGCLIENT_SHARED_BUILD)
#define SGCLIENT_API __declspec(dllexport)
#elif defined(__GNUC__) || defined(__clang__)
#define SGCLIENT_API __attribute__((visibility("default")))
#else
#define SGCLIENT_API
#endif
#endif

#ifdef __cplusplus
extern "C" {
#endif

/* ==== status, errors, version ================================================================== */

/* The one status enum of the library. The values are stable (new ones are appended). */
typedef enum sg_client_status {
    SG_CLIENT_OK = 0,
    SG_CLIENT_FAILED,          /* HTTP: a permanent failure (4xx, or 503 MODEL_UNAVAILABLE) */
    SG_CLIENT_GAVE_UP,         /* HTTP: transient failures until the retry policy gave up */
    SG_CLIENT_ABANDONED,       /* HTTP: keep_trying said no */
    SG_CLIENT_EINVAL,          /* bad arguments */
    SG_CLIENT_ENOMEM,          /* out of memory (or a library that could not start) */
    SG_CLIENT_EFORMAT,         /* input data malformed or unsupported (e.g. a Y4M header) */
    SG_CLIENT_ECODEC,          /* an encoder failed (TurboJPEG, libsndfile) */
    SG_CLIENT_DROPPED_OLDEST,  /* upload queue: stored; the oldest frame was evicted */
    SG_CLIENT_DROPPED_NEW,     /* upload queue: a frame that could not be stored */
    SG_CLIENT_FULL,            /* upload queue: audio or a query that does not fit: not stored */
    SG_CLIENT_CANCELLED        /* local model: sg_local_llm_cancel stopped the generation (1.3) */
} sg_client_status;

/* Bytes of the error buffers the library writes ("char err[SG_CLIENT_ERROR_SIZE]"). */
#define SG_CLIENT_ERROR_SIZE 256

/* "ok", "failed", "gave_up", "abandoned", "einval", "enomem", "eformat", "ecodec",
 * "dropped_oldest", "dropped_new", "full"; "?" for anything else. */
SGCLIENT_API const char *sg_client_status_name(sg_client_status s);
/* A sentence for people ("bad arguments"), like curl_easy_strerror. */
SGCLIENT_API const char *sg_client_strerror(sg_client_status s);
/* The library's version at run time: "1.0.0" and SGCLIENT_VERSION_NUM as it was built. */
SGCLIENT_API const char *sg_client_version(void);
SGCLIENT_API unsigned sg_client_version_num(void);

/* ==== upload kinds ============================================================================= */

typedef enum sg_upload_kind {
    SG_UPLOAD_FRAME = 0,
    SG_UPLOAD_AUDIO,
    SG_UPLOAD_QUERY,
    SG_UPLOAD_CONTROL, /* sessions and other requests (stats only; never queued) */
    SG_UPLOAD_KINDS
} sg_upload_kind;
SGCLIENT_API const char *sg_upload_kind_name(sg_upload_kind k); /* "frame", "audio", ... */

/* ==== adaptive frame rate ===================================================================== */

/* The guide's modes. HIGH is never chosen by the table (as in the guide); an app can force it. */
typedef enum sg_rate_mode { SG_RATE_MINIMAL = 0, SG_RATE_LOW, SG_RATE_MEDIUM, SG_RATE_HIGH } sg_rate_mode;
#define SG_RATE_MODES 4
#define SG_CAMERA_FPS 30

SGCLIENT_API int sg_rate_mode_fps(sg_rate_mode m);          /* 1, 5, 10, 30 */
SGCLIENT_API const char *sg_rate_mode_name(sg_rate_mode m); /* "MINIMAL", ... */

/* The table: battery < 15 % -> MINIMAL; < 30 % -> LOW; < 60 % and user idle -> LOW; otherwise
 * MEDIUM. A battery level that is NaN counts as 0 (the safe side); values are clamped to 0..100. */
SGCLIENT_API sg_rate_mode sg_rate_mode_for(double battery_pct, bool user_active);

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

SGCLIENT_API void sg_rate_config_default(sg_rate_config *c);

/* Target capture rate for the given state: the mode's fps, x motion_boost when motion >
 * motion_threshold and battery > motion_min_battery, never above camera_fps. cfg NULL = defaults. */
SGCLIENT_API double sg_rate_target_fps(const sg_rate_config *cfg, double battery_pct,
                                       bool user_active, double motion);

typedef struct sg_rate_decision {
    bool capture;        /* send this camera frame on (to the pre-filter and the encoder) */
    sg_rate_mode mode;   /* mode of the table (or forced) */
    double target_fps;   /* after the motion boost */
    bool user_active;
    bool boosted;        /* the motion boost applied */
} sg_rate_decision;

/* The frame-rate controller: the table plus the user's activity and the motion boost over time. */
typedef struct sg_rate_controller sg_rate_controller;
/* cfg NULL = defaults. SG_CLIENT_OK or SG_CLIENT_ENOMEM. */
SGCLIENT_API sg_client_status sg_rate_controller_new(const sg_rate_config *cfg,
                                                     sg_rate_controller **out);
SGCLIENT_API void sg_rate_controller_free(sg_rate_controller *rc);
/* The user touched, spoke or asked something at now_ms. */
SGCLIENT_API void sg_rate_interaction(sg_rate_controller *rc, double now_ms);
SGCLIENT_API bool sg_rate_user_active(const sg_rate_controller *rc, double now_ms);
/* From the next frame on: mode >= 0 forces that sg_rate_mode (a HIGH burst), -1 gives the choice
 * back to the table (the config's forced_mode). */
SGCLIENT_API void sg_rate_force_mode(sg_rate_controller *rc, int mode);
/* Called for every camera frame (camera_fps of them a second), with the frame's motion score.
 * Capture decision: a phase accumulator gains target_fps per camera frame and captures when it
 * reaches camera_fps, so the long-run capture rate is exactly target_fps also when it does not
 * divide 30 (7.5 fps = every 4th frame, 15 = every 2nd) and a rate change takes effect at the
 * next frame without a burst (at most one capture per camera frame, no credit saved up). The first
 * frame is always captured. (The guide's `frameNumber % (30 / fps)`
 * divides by zero above 30 fps and turns 7 fps into 7.5.) */
SGCLIENT_API sg_rate_decision sg_rate_on_frame(sg_rate_controller *rc, double now_ms,
                                               double battery_pct, double motion);

typedef struct sg_rate_stats {
    long long frames, captured; /* camera frames seen, frames captured */
    long long frames_in_mode[SG_RATE_MODES], captured_in_mode[SG_RATE_MODES];
} sg_rate_stats;
SGCLIENT_API void sg_rate_get_stats(const sg_rate_controller *rc, sg_rate_stats *out);

/* ==== motion score ============================================================================= */

/* Motion between two frames, 0 (identical) .. 1 (every sampled channel went from 0 to 255 or back):
 * the mean over pixels sampled every `step` pixels in x and y (the guide samples every 10th) and
 * over the three colour channels of |a - b| / 255, per channel. The guide's Kotlin subtracts the
 * packed ARGB integers (abs(pixel1 - pixel2)), which is wrong: a change of 1 in red counts 65536
 * times a change of 1 in blue, borrows leak across channels (G 1 -> 0 with B 0 -> 255 gives 1,
 * not 256), alpha takes part, and the sum is then clamped to 1, so any red change reads as full
 * motion. bytes_per_pixel is 3 (RGB/BGR) or 4 (RGBA/BGRA/ARGB_8888 as bytes: the 4th byte, alpha,
 * is ignored); stride is bytes per row. Returns 0 for empty or mismatched input. */
SGCLIENT_API double sg_motion_score(const uint8_t *a, const uint8_t *b, int width, int height,
                                    size_t stride, int bytes_per_pixel, int step);

/* Keeps only the samples of the previous frame (not the frame) for a score per camera frame. */
typedef struct sg_motion_tracker sg_motion_tracker;
/* step < 1 -> 10. SG_CLIENT_OK or SG_CLIENT_ENOMEM. */
SGCLIENT_API sg_client_status sg_motion_tracker_new(int step, sg_motion_tracker **out);
SGCLIENT_API void sg_motion_tracker_free(sg_motion_tracker *t);
/* Score of this frame against the previous one pushed (0 for the first, or after a size change). */
SGCLIENT_API double sg_motion_tracker_push(sg_motion_tracker *t, const uint8_t *frame, int width,
                                           int height, size_t stride, int bytes_per_pixel);

/* ==== JPEG quality and the uplink ============================================================== */

#define SG_JPEG_QUALITY_FLOOR 40 /* the guide's "emergency mode" row */
/* The guide's battery rule: battery < 20 % -> 60, < 50 % -> 75, otherwise 85; then, on a slow
 * measured uplink, 10 lower below 2000 kbit/s and 20 lower below 500 kbit/s, never below 40.
 * uplink_kbps <= 0 or NaN means "not measured yet": no penalty. */
SGCLIENT_API int sg_jpeg_quality_for(double battery_pct, double uplink_kbps);

/* Uplink throughput estimate: an exponentially weighted mean (alpha 0.25) of bytes*8/transfer time
 * of uploads of at least 4096 bytes (smaller ones measure the round trip, not the link). */
typedef struct sg_uplink sg_uplink;
SGCLIENT_API sg_client_status sg_uplink_new(sg_uplink **out); /* OK or ENOMEM */
SGCLIENT_API void sg_uplink_free(sg_uplink *u);
/* transfer_ms should be the client round trip minus the server's own processing time. */
SGCLIENT_API void sg_uplink_observe(sg_uplink *u, size_t bytes, double transfer_ms);
SGCLIENT_API double sg_uplink_kbps(const sg_uplink *u); /* the estimate, <= 0 when none */
SGCLIENT_API long sg_uplink_samples(const sg_uplink *u); /* uploads that counted */

/* ==== frames: resize, thumbnail, keyframe pre-filter =========================================== */

/* Scales packed RGB src (sw x sh) to dst (dw x dh): centre crop to dst's aspect ratio, then an
 * exact area average when shrinking or bilinear interpolation when enlarging, per axis.
 * SG_CLIENT_OK, SG_CLIENT_EINVAL (bad sizes) or SG_CLIENT_ENOMEM. */
SGCLIENT_API sg_client_status sg_rgb_fit(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw,
                                         int dh);

/* The thumbnail the pre-filter compares: the server's keyframe thumbnail (src/media/thumb.c,
 * compiled into this library, so phone and server compute the same floats from the same pixels):
 * exact area mean of BT.601 luma (299 R + 587 G + 114 B) / 1000 over an 8x8 grid, 0..255; packed
 * RGB rows of width*3 bytes. No picture or an empty size gives zeros. */
SGCLIENT_API void sg_prefilter_thumb(const uint8_t *rgb, int width, int height, float thumb[64]);

/* On-device keyframe pre-filter: runs the server's own gate (src/agent/keyframe.c, the same code,
 * same defaults diff_tau 8.0 and min_gap 3) over the frames the rate controller captures, so the
 * frames it holds back are exactly those the server's gate would skip were every captured frame
 * uploaded (same thumbnails, same decisions; the server sees the JPEG, whose thumbnail differs from
 * the raw frame's by a fraction of a grey level, so a frame right at the threshold can flip).
 * The frames it passes are uploaded with the client-keyframe hint (sg_client_upload_frame_hint):
 * the server's gate sees only the uploads and would count min_gap in those (analysing about a
 * third of them); with the hint it analyses every one. */
typedef struct sg_prefilter sg_prefilter;
/* diff_tau, min_gap <= 0: the server's defaults. SG_CLIENT_OK or SG_CLIENT_ENOMEM. */
SGCLIENT_API sg_client_status sg_prefilter_new(float diff_tau, int min_gap, sg_prefilter **out);
SGCLIENT_API void sg_prefilter_free(sg_prefilter *p);
/* true: a keyframe (upload it); false: the server would skip it. */
SGCLIENT_API bool sg_prefilter_push(sg_prefilter *p, const float thumb[64]);
SGCLIENT_API long long sg_prefilter_frames(const sg_prefilter *p);
SGCLIENT_API long long sg_prefilter_keyframes(const sg_prefilter *p);

/* ==== upload queue ============================================================================= */

typedef struct sg_upload_item {
    sg_upload_kind kind;
    uint8_t *data; /* payload; the queue stores the pointer, the caller owns and frees it */
    size_t len;
    double t_ms;   /* when it was produced (caller's clock) */
    long long tag; /* caller's */
    long long seq; /* set by the queue: push order */
} sg_upload_item;

/* Bounded: at most `capacity` items, of which at most `max_frames` frames. A frame beyond
 * max_frames, or any item arriving when the queue is full, evicts the oldest queued frame. Audio
 * and queries are never evicted: when the queue is full of them, SG_CLIENT_FULL (back-pressure).
 * Pop order: queries, then audio, then frames (a question should not wait behind frames), FIFO
 * within a kind. Allocates only in _new. */
typedef struct sg_upload_queue sg_upload_queue;
/* SG_CLIENT_OK, SG_CLIENT_EINVAL (capacity outside 1..1000000, max_frames < 0) or ENOMEM. */
SGCLIENT_API sg_client_status sg_upload_queue_new(int capacity, int max_frames,
                                                  sg_upload_queue **out);
/* Frees the queue, not the payloads still in it (pop them first). */
SGCLIENT_API void sg_upload_queue_free(sg_upload_queue *q);
/* SG_CLIENT_OK: stored. SG_CLIENT_DROPPED_OLDEST: stored; the oldest frame was evicted into
 * *evicted (may be NULL), the caller frees its payload. SG_CLIENT_DROPPED_NEW: a frame that could
 * not be stored (the queue holds only audio and queries): not stored, the caller frees it.
 * SG_CLIENT_FULL: audio or a query that does not fit: not stored and NOT dropped; the caller keeps
 * it and pushes it again later. SG_CLIENT_EINVAL: a kind that is never queued. */
SGCLIENT_API sg_client_status sg_upload_queue_push(sg_upload_queue *q, sg_upload_item item,
                                                   sg_upload_item *evicted);
/* Puts back an item that was popped but not delivered (the link is down): it keeps its seq and
 * its place in the pop order, ahead of anything pushed after it (libsgclient 1.3). Room is made as
 * sg_upload_queue_push makes it, except that a frame older than every queued frame is the one
 * dropped (SG_CLIENT_DROPPED_NEW: the caller frees it). SG_CLIENT_OK, DROPPED_OLDEST (*evicted,
 * if not NULL, is the frame that went), DROPPED_NEW, FULL or EINVAL, as push. */
SGCLIENT_API sg_client_status sg_upload_queue_requeue(sg_upload_queue *q, sg_upload_item item,
                                                      sg_upload_item *evicted);
/* The next item by the pop order into *out; false when the queue is empty. */
SGCLIENT_API bool sg_upload_queue_pop(sg_upload_queue *q, sg_upload_item *out);
/* Items of a kind queued now; SG_UPLOAD_KINDS = all. */
SGCLIENT_API int sg_upload_queue_count(const sg_upload_queue *q, sg_upload_kind kind);
/* Is a frame newer than seq queued? (a frame being retried is stale then) */
SGCLIENT_API bool sg_upload_queue_has_newer_frame(const sg_upload_queue *q, long long seq);

typedef struct sg_upload_queue_stats {
    long long pushed[SG_UPLOAD_KINDS];  /* stored, by kind */
    long long evicted_frames;           /* stored frames evicted by a newer item */
    long long dropped_new_frames;       /* frames refused (SG_CLIENT_DROPPED_NEW) */
    long long refused[SG_UPLOAD_KINDS]; /* SG_CLIENT_FULL answers, by kind */
} sg_upload_queue_stats;
SGCLIENT_API void sg_upload_queue_get_stats(const sg_upload_queue *q, sg_upload_queue_stats *out);

/* ==== upload budget ============================================================================= */

/* A KB/min budget for everything the phone uploads (frames, audio, questions), enforced on frames:
 * audio and questions are never dropped and are simply spent; a keyframe that is due is uploaded
 * only if it fits what is left, first at a lower JPEG quality (down to min_quality), else it is
 * skipped and the next captured frame is due in its place (the view still has to reach the server).
 * A token bucket of burst_kb refilled at (kb_per_min - burst_kb) per minute: any 60 s window holds
 * at most kb_per_min of frames + audio + questions, unless audio and questions alone exceed it.
 * A frame larger than the bucket at min_quality can never go (hence SG_BUDGET_MIN_BURST_KB).
 * Pure: time is passed in (the caller's clock, the one its uploads live on; a simulator that falls
 * behind the wall clock passes its simulated time); the encoder is a callback, so tests use a fake
 * one. */
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
SGCLIENT_API double sg_budget_kb_per_min_for(double battery_pct);
SGCLIENT_API void sg_budget_config_default(sg_budget_config *c, double battery_pct);
/* JPEG bytes at quality q relative to q85 (a fixed curve measured on the shared photos). */
SGCLIENT_API double sg_jpeg_size_ratio(int quality);

typedef struct sg_budget sg_budget;
/* cfg NULL: the defaults at 100 % battery. SG_CLIENT_OK or SG_CLIENT_ENOMEM. */
SGCLIENT_API sg_client_status sg_budget_new(const sg_budget_config *cfg, sg_budget **out);
SGCLIENT_API void sg_budget_free(sg_budget *b);
/* The configuration in force (the defaults filled in: burst_kb as used, 0 kb_per_min = unlimited). */
SGCLIENT_API void sg_budget_get_config(const sg_budget *b, sg_budget_config *out);
SGCLIENT_API bool sg_budget_unlimited(const sg_budget *b);
/* Bytes available at now_ms (refills first; the first call starts the clock with a full bucket).
 * Time going backwards changes nothing. */
SGCLIENT_API double sg_budget_available(sg_budget *b, double now_ms);
/* Charges bytes unconditionally: audio and questions when queued, and corrections once an upload
 * is done (its real bytes minus what was charged: retries cost more, a frame dropped from the
 * queue is refunded with a negative value; a refund never fills the bucket beyond burst). */
SGCLIENT_API void sg_budget_spend(sg_budget *b, double now_ms, sg_upload_kind kind, double bytes);
/* Estimated upload bytes of a frame at quality q (current scene estimate + overhead). */
SGCLIENT_API double sg_budget_frame_estimate(const sg_budget *b, int quality);
/* Is this captured frame due for upload: the pre-filter said keyframe, or a skipped one is owed. */
SGCLIENT_API bool sg_budget_due(const sg_budget *b, bool keyframe);

/* Encodes the frame at `quality` into the caller's own buffer and sets *bytes to its size; any
 * status but SG_CLIENT_OK is an encoder failure. */
typedef sg_client_status (*sg_budget_encode_fn)(void *ud, int quality, size_t *bytes);
typedef struct sg_budget_frame {
    int quality;   /* the quality it was encoded at and is to be sent with; 0 = skipped */
    size_t bytes;  /* its JPEG size */
    int encodes;   /* encode calls made (1 + re-encodes at lower quality) */
    bool lowered;  /* sent below want_quality */
} sg_budget_frame;
/* Fits a due frame into the budget: tries want_quality, then lower qualities down to min_quality
 * (skipping those the size estimate rules out), encoding and checking the real size each time.
 * When one fits, its bytes + overhead are charged and the frame is to be sent (the last encode is
 * the one to send). Otherwise it is skipped (frames_skipped) and owed. Unlimited: encodes once at
 * want_quality. Returns SG_CLIENT_OK (sent or skipped, see out->quality) or the encoder's failure
 * (the frame is then neither sent nor counted as skipped). */
SGCLIENT_API sg_client_status sg_budget_fit_frame(sg_budget *b, double now_ms, int want_quality,
                                                  sg_budget_encode_fn encode, void *ud,
                                                  sg_budget_frame *out);

typedef struct sg_budget_stats {
    long long frames_due, frames_sent, frames_skipped, frames_lowered, reencodes;
    double spent[SG_UPLOAD_KINDS]; /* bytes charged per kind (corrections included) */
} sg_budget_stats;
SGCLIENT_API void sg_budget_get_stats(const sg_budget *b, sg_budget_stats *out);

/* ==== retries ================================================================================== */

/* Randomness is passed in: a function returning a uniform double in [0, 1). */
typedef double (*sg_uniform_fn)(void *ud);
/* xorshift64*, for callers without their own: a caller-allocated struct whose one field is the
 * generator's state (set by sg_rng_seed). */
typedef struct sg_rng { uint64_t s; } sg_rng;
SGCLIENT_API void sg_rng_seed(sg_rng *r, uint64_t seed);
SGCLIENT_API double sg_rng_uniform(void *rng); /* an sg_uniform_fn over an sg_rng */

typedef struct sg_retry_policy {
    int max_attempts;          /* including the first (5) */
    double base_ms;            /* backoff after the first failure (250) */
    double multiplier;         /* growth per failure (2) */
    double max_backoff_ms;     /* cap (8000) */
    double jitter;             /* 0..1: the wait is uniform in [d * (1 - jitter), d] (0.5) */
    double max_retry_after_ms; /* a longer Retry-After gives up instead of waiting (30000) */
} sg_retry_policy;
SGCLIENT_API void sg_retry_policy_default(sg_retry_policy *p);

typedef enum sg_retry_class { SG_RETRY_SUCCESS = 0, SG_RETRY_TRANSIENT, SG_RETRY_PERMANENT } sg_retry_class;
/* status 0 = network error (no response). 2xx success; network errors, 429 and 5xx transient;
 * other statuses permanent. One 5xx is permanent by contract: 503 MODEL_UNAVAILABLE without
 * Retry-After (API.md: Retry-After marks a transient 503; without it the model is simply not
 * there, and retrying would only delay the caller). error_code may be NULL. */
SGCLIENT_API sg_retry_class sg_retry_classify(int status, double retry_after_ms,
                                              const char *error_code);

/* Backoff before attempt `failures + 1`: d = min(max_backoff, base * multiplier^(failures-1)),
 * then d * (1 - jitter * u) for u in [0, 1). */
SGCLIENT_API double sg_retry_backoff_ms(const sg_retry_policy *p, int failures, double u);

typedef enum sg_retry_action { SG_RETRY_DONE = 0, SG_RETRY_WAIT, SG_RETRY_GIVE_UP } sg_retry_action;
/* One request's retries: a caller-allocated struct, zeroed before the first attempt. */
typedef struct sg_retry_state {
    int attempts;        /* attempts made so far */
    double next_at_ms;   /* when SG_RETRY_WAIT: time of the next attempt */
    double last_wait_ms;
} sg_retry_state;
/* After an attempt finished at now_ms with this outcome: DONE (success or a permanent failure: do
 * not retry), WAIT (retry at next_at_ms = now + max(Retry-After, jittered backoff)) or GIVE_UP
 * (attempts exhausted, or Retry-After longer than max_retry_after_ms). */
SGCLIENT_API sg_retry_action sg_retry_next(const sg_retry_policy *p, sg_retry_state *st, int status,
                                           double retry_after_ms, const char *error_code,
                                           double now_ms, sg_uniform_fn uniform, void *rng_ud);
/* Retry-After value -> milliseconds: delta-seconds, or an IMF-fixdate ("Sun, 06 Nov 1994 08:49:37
 * GMT") relative to now_epoch_s. -1 (the API's "no Retry-After", as in sg_client_result) when
 * absent or malformed; 0 for a date in the past. */
SGCLIENT_API double sg_retry_after_parse(const char *value, double now_epoch_s);

/* ==== statistics =============================================================================== */

/* p-th percentile (0..100) with linear interpolation (numpy's default); sorts v in place; NaN for
 * n == 0. */
SGCLIENT_API double sg_client_percentile(double *v, size_t n, double p);
/* bytes per elapsed minute in KB (1 KB = 1024 bytes); 0 when elapsed_ms <= 0. */
SGCLIENT_API double sg_client_kb_per_min(uint64_t bytes, double elapsed_ms);

/* ==== Y4M (YUV4MPEG2) frames, for simulators and tests ========================================= */

typedef struct sg_y4m_info {
    int width, height;
    int fps_num, fps_den; /* 30:1 when the header has no F */
    int chroma;           /* 420, 422, 444, or 0 for mono */
    size_t header_len;    /* bytes of the stream header including its '\n' */
    size_t frame_bytes;   /* bytes of one frame's planes */
} sg_y4m_info;
/* Parses the stream header at buf. SG_CLIENT_OK, or SG_CLIENT_EFORMAT with a reason in err (not
 * Y4M, unsupported colour space or interlacing, sizes over 16384 or 64 Mpixel, truncated). */
SGCLIENT_API sg_client_status sg_y4m_parse_header(const uint8_t *buf, size_t len, sg_y4m_info *out,
                                                  char err[SG_CLIENT_ERROR_SIZE]);
/* Length of a "FRAME[ params]\n" line at buf, or 0 when buf does not start with one. */
SGCLIENT_API size_t sg_y4m_frame_header_len(const uint8_t *buf, size_t len);
/* Planes of one frame (frame_bytes bytes) -> packed RGB (BT.601, limited range). */
SGCLIENT_API void sg_y4m_to_rgb(const sg_y4m_info *info, const uint8_t *planes, uint8_t *rgb);

/* ==== telemetry (libsgclient 1.2) ============================================================== */

/* What a client says about itself to the server (its X-Client-Telemetry header, aggregated by the
 * server into smartglass_battery_level{band} and friends; docs/OPERATIONS.md). Caller-allocated. */
typedef struct sg_client_telemetry {
    double battery_pct;       /* 0..100; NaN = unknown (then nothing is sent) */
    int charging;             /* 1, 0; -1 = unknown */
    double fps;               /* frames a second delivered; < 0 = unknown */
    double upload_kb_per_min; /* KB (1024 bytes) a minute uploaded, headers included; < 0 = unknown */
    double memory_bytes;      /* the app's resident memory; < 0 = unknown */
} sg_client_telemetry;

#define SG_TELEMETRY_HEADER_SIZE 192 /* the longest header line and its NUL */
/* The header line "X-Client-Telemetry: battery=80.0; charging=0; fps=9.80; upload_kb_per_min=412.0;
 * memory=18350080" (unknown fields left out) into out. SG_CLIENT_OK, or SG_CLIENT_EINVAL when the
 * battery level is unknown or outside 0..100 (out is then ""); other values are clamped to what
 * the server takes. */
SGCLIENT_API sg_client_status sg_client_telemetry_header(const sg_client_telemetry *t,
                                                         char out[SG_TELEMETRY_HEADER_SIZE]);

/* Frames and bytes sent over the last minute: what the fps and upload_kb_per_min above measure.
 * Sixty one-second buckets: a rate is over the last 60 s, or since the first add when that is
 * more recent (at least 1 s). */
typedef struct sg_usage_meter sg_usage_meter;
SGCLIENT_API sg_client_status sg_usage_meter_new(sg_usage_meter **out); /* OK or ENOMEM */
SGCLIENT_API void sg_usage_meter_free(sg_usage_meter *m);
/* bytes uploaded and frames delivered at now_ms (monotonic). Time going backwards counts in the
 * newest bucket. */
SGCLIENT_API void sg_usage_meter_add(sg_usage_meter *m, double now_ms, uint64_t bytes, int frames);
/* Rates at now_ms: frames a second and KB (1024 bytes) a minute; both 0 before any add. */
SGCLIENT_API void sg_usage_meter_rates(const sg_usage_meter *m, double now_ms, double *fps,
                                       double *kb_per_min);

/* ==== Server-Sent Events (libsgclient 1.2) ===================================================== */

/* The text/event-stream parser under sg_client_query_stream, for apps with their own HTTP stack:
 * lines end in LF, CRLF or CR; "event:" names the event (default "message"), "data:" lines are
 * joined with LF, a line starting with ':' is a comment, other fields are ignored; an empty line
 * dispatches. Bounded: an event's data over max_event_bytes is SG_CLIENT_EFORMAT. */
typedef struct sg_sse_parser sg_sse_parser;
/* max_event_bytes 0 = SG_SSE_DEFAULT_MAX_EVENT. SG_CLIENT_OK or ENOMEM. */
#define SG_SSE_DEFAULT_MAX_EVENT (32u << 20)
SGCLIENT_API sg_client_status sg_sse_parser_new(size_t max_event_bytes, sg_sse_parser **out);
SGCLIENT_API void sg_sse_parser_free(sg_sse_parser *p);
/* event: NUL-terminated name; data: NUL-terminated at data[len]; both valid during the call.
 * Return false to stop. */
typedef bool (*sg_sse_event_fn)(void *ud, const char *event, const char *data, size_t len);
/* Feeds bytes as they arrive. SG_CLIENT_OK; SG_CLIENT_ABANDONED when fn said stop; EFORMAT (an
 * event or line too long, a NUL byte) or ENOMEM: the stream cannot go on. */
SGCLIENT_API sg_client_status sg_sse_parser_feed(sg_sse_parser *p, const char *bytes, size_t n,
                                                 sg_sse_event_fn fn, void *ud);

#ifdef __cplusplus
}
#endif

#endif
