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
#include "server/config.h"

#define SG_TRANSCRIPTS_KEPT 32
#define SG_HISTORY_TURNS 4

typedef struct sg_blob {
    uint8_t *data;
    size_t len;
} sg_blob;

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

/* Token bucket: true when a request may proceed; else *retry_after_s is set. */
bool sg_session_rate_ok(sg_session *s, double rps, int *retry_after_s);

#endif
