/* Sessions: a thread-safe table of reference-counted sessions keyed by UUID v4. The table lock
 * guards membership only; each session has its own lock, held for the whole of a request's work on
 * it, so concurrent requests on one session are serialised and never corrupt it, while different
 * sessions proceed in parallel. Lock order: table, then session - never the reverse. Counters read
 * by listings are atomics so a listing never waits for a long turn. */
#ifndef SG_SERVER_SESSION_H
#define SG_SERVER_SESSION_H

#include <pthread.h>
#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/turn.h"
#include "base/error.h"
#include "media/audio.h"
#include "server/config.h"

#define SG_TRANSCRIPTS_KEPT 32
#define SG_HISTORY_TURNS 4

typedef struct sg_blob {
    uint8_t *data;
    size_t len;
} sg_blob;

/* ---- Device Access Toolkit (DAT) stream state: see docs/ARCHITECTURE.md "DAT" ----------------
 * Chunks of a DAT stream are de-duplicated per chunk type by sequence number with a sliding
 * window of the last SG_DAT_WINDOW numbers above the newest seen (numbers increase within a
 * session, as the wire protocol asks). Audio chunks are kept raw (PCM bytes + their format) in
 * sequence order until the turn that consumes them; a chunk numbered at or below the last audio
 * chunk a completed turn consumed belongs to that turn and is not buffered again. Frames are not
 * buffered here (their derived scene lives in the session's sg_visual_memory) and IMU chunks are
 * only counted. Guarded by sg_session.dat_lock, never held together with sg_session.lock. */
#define SG_DAT_WINDOW 1024
#define SG_DAT_MAX_CHUNKS 16384 /* audio chunks buffered per turn */

typedef enum sg_dat_type { SG_DAT_AUDIO = 0, SG_DAT_FRAME, SG_DAT_IMU, SG_DAT_TYPES } sg_dat_type;

typedef enum sg_dat_seen {
    SG_DAT_NEW = 0,   /* first time: now marked as received */
    SG_DAT_DUPLICATE, /* already received (or consumed by a completed turn) */
    SG_DAT_TOO_OLD    /* below the window: cannot tell, treated as already received */
} sg_dat_seen;

typedef struct sg_dat_window {
    long long hi;                         /* highest number seen, -1 before any */
    uint64_t bits[SG_DAT_WINDOW / 64];    /* bit (n % SG_DAT_WINDOW) for n in (hi-W, hi] */
} sg_dat_window;

typedef struct sg_dat_audio_fmt {
    sg_audio_format format;  /* SG_AUDIO_PCM_S16LE or SG_AUDIO_PCM_F32LE */
    int sample_rate;
    int channels;            /* 1 or 2, interleaved */
} sg_dat_audio_fmt;

typedef struct sg_dat_chunk {
    long long seq;
    sg_dat_audio_fmt fmt;
    uint8_t *data;           /* raw PCM, owned */
    size_t len;
    double seconds;
} sg_dat_chunk;

/* What one turn takes from the buffer (sg_dat_take_turn); free with sg_dat_turn_free. */
typedef struct sg_dat_turn {
    sg_dat_chunk *chunks;    /* in sequence order */
    size_t n;
    size_t bytes;
    double seconds;
    long frames, imu_chunks, imu_samples, duplicates, trimmed;
} sg_dat_turn;

typedef struct sg_dat_state {
    sg_dat_window seen[SG_DAT_TYPES];
    long long audio_consumed;     /* highest audio number a completed turn consumed, -1 */
    long long frame_latest;       /* number of the newest frame sent to analysis, -1 */
    long long frame_analysed;     /* number of the last frame analysed, -1; guarded by
                                     sg_session.lock (not dat_lock), which analysis holds */
    sg_dat_turn cur;              /* what the next turn will take */
    size_t cap;                   /* capacity of cur.chunks */
} sg_dat_state;

/* The buffer's totals after an operation, for the chunk acknowledgement. */
typedef struct sg_dat_stats {
    size_t chunks, bytes;
    double seconds;
    long trimmed;                 /* chunks dropped by this operation (trim policy) */
    bool kept;                    /* the new chunk is in the buffer (false when trimmed itself) */
} sg_dat_stats;

typedef struct sg_session {
    char id[37];
    atomic_int refs;
    pthread_mutex_t lock;          /* guards everything below that is not atomic */
    double created_wall_s;
    _Atomic double last_used_ms;   /* monotonic; for idle expiry */
    sg_privacy privacy;            /* effective flags (server AND request) */
    atomic_long query_count, frame_count, transcript_count;
    atomic_bool has_frame;

    sg_visual_memory vision;       /* derived frame data: always kept */

    /* Only when privacy.store_transcripts: recent transcripts and turns. */
    char *transcripts[SG_TRANSCRIPTS_KEPT];
    int transcripts_head, transcripts_n;
    char *history[SG_HISTORY_TURNS][2]; /* query, response */
    int history_head, history_n;

    /* Only when privacy.store_raw_frames: the last FRAME_HISTORY_SIZE encoded frames. */
    sg_blob *frames;
    int frames_cap, frames_head, frames_n;
    size_t frames_bytes;

    /* Only when privacy.store_raw_audio: 16 kHz mono samples, bounded by the audio limits. */
    float *audio;
    size_t audio_n, audio_cap;

    /* DAT stream state, guarded by dat_lock (a short lock: chunks never wait for a turn). */
    pthread_mutex_t dat_lock;
    sg_dat_state dat;

    /* Rate limiting (token bucket), guarded by rate_lock so it never waits for the session lock. */
    pthread_mutex_t rate_lock;
    double tokens, tokens_at_ms;
} sg_session;

typedef struct sg_session_table sg_session_table;

sg_session_table *sg_session_table_new(const sg_config *cfg);
void sg_session_table_free(sg_session_table *t);

/* Creates a session with the given effective privacy flags. SG_ETOOBIG when SG_MAX_SESSIONS are
 * open. The returned session carries a reference for the caller (sg_session_release). */
sg_status sg_session_create(sg_session_table *t, const sg_privacy *privacy, sg_session **out,
                            sg_error *err);
/* Looks up and references a session; NULL when unknown or expired. */
sg_session *sg_session_get(sg_session_table *t, const char *id);
void sg_session_release(sg_session *s);
/* Removes a session; false when unknown. In-flight requests keep their reference. */
bool sg_session_delete(sg_session_table *t, const char *id);
/* Removes sessions idle for longer than the TTL; returns how many. */
int sg_session_expire(sg_session_table *t, double now_ms);
long sg_session_count(sg_session_table *t);
long sg_session_created(sg_session_table *t);
/* [{"session_id","transcript_count","has_frame","query_count"}, …] */
json_t *sg_session_list_json(sg_session_table *t);

/* Marks use (resets idle expiry). */
void sg_session_touch(sg_session *s);

/* Helpers used under the session lock. */
void sg_session_add_transcript(sg_session *s, const char *text);
void sg_session_add_turn(sg_session *s, const char *query, const char *response);
/* Keeps a copy of an encoded frame if the privacy flags allow; SG_ETOOBIG under the reject policy
 * when the frame buffer would overflow. */
sg_status sg_session_keep_frame(sg_session *s, const sg_config *cfg, const uint8_t *data,
                                size_t len, sg_error *err);
sg_status sg_session_keep_audio(sg_session *s, const sg_config *cfg, const float *pcm, size_t n,
                                sg_error *err);

/* DAT (all take dat_lock themselves; none may be called with it held).
 * Checks number seq of chunk type t against the window and, when new, marks it received;
 * duplicates are counted in the current turn. */
sg_dat_seen sg_dat_claim(sg_session *s, sg_dat_type t, long long seq);
/* Forgets a frame / IMU claim whose chunk then failed (so a corrected retry is not a duplicate).
 * No-op for audio: sg_dat_add_audio marks a number only when the chunk is buffered. */
void sg_dat_unclaim(sg_session *s, sg_dat_type t, long long seq);
/* Buffers an audio chunk (takes ownership of data, also on error). The limits are the server's
 * AUDIO_BUFFER_MAX_BYTES (raw bytes buffered), AUDIO_BUFFER_MAX_SECONDS and SG_DAT_MAX_CHUNKS;
 * a chunk alone over a limit is SG_ETOOBIG, and a full buffer is SG_ETOOBIG under the reject
 * policy, while trim drops the oldest chunks (lowest numbers) until it fits. *seen says whether
 * the chunk was new; a duplicate or late chunk is freed and not buffered (SG_OK). */
sg_status sg_dat_add_audio(sg_session *s, const sg_config *cfg, long long seq,
                           const sg_dat_audio_fmt *fmt, uint8_t *data, size_t len,
                           sg_dat_seen *seen, sg_dat_stats *stats, sg_error *err);
/* Counts a frame / IMU chunk (with its samples) in the current turn once it was handled. */
void sg_dat_count(sg_session *s, sg_dat_type t, long samples);
/* Records frame seq as the newest to analyse; false (nothing recorded) when a frame numbered
 * higher already was. */
bool sg_dat_frame_newest(sg_session *s, long long seq);
/* Current buffer totals. */
void sg_dat_stats_get(sg_session *s, sg_dat_stats *out);
/* Moves the buffered chunks and counters into *out and empties the buffer; later audio chunks
 * numbered at or below the last one taken are late (duplicates). */
void sg_dat_take_turn(sg_session *s, sg_dat_turn *out);
void sg_dat_turn_free(sg_dat_turn *t);
/* The turn's chunks as one 16 kHz mono signal: each run of consecutive chunks in one format is
 * decoded in one piece by media/audio.c (stereo through a WAV header, so it is down-mixed as WAV
 * uploads are), then the runs are concatenated. No chunks: an empty signal (samples NULL). */
sg_status sg_dat_turn_audio(const sg_dat_turn *t, sg_audio *out, sg_error *err);
/* Frees every buffered chunk (session deletion and expiry; also done when a session is freed). */
void sg_dat_clear(sg_session *s);

/* Token bucket: true when a request may proceed; else *retry_after_s is set. */
bool sg_session_rate_ok(sg_session *s, double rps, int *retry_after_s);

#endif
