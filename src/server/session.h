/* Sessions and the session store. A session is what the server remembers of one wearer between
 * requests; the store is where sessions live, behind an interface (ops + self, as the model
 * backends in agent/backends.h) so that a store shared by several sg-edge instances (Redis) can
 * take the place of the in-process one (session_memory.c) without touching a route.
 *
 * What a session holds, and where it lives:
 * - Persistent state (a shared store keeps it, under keys that expire with the session):
 *   identity and metadata (id, privacy flags, creation time), the listing counters, the working
 *   state below (remembered scene, keyframe gate, transcripts, history, raw frames/audio only where
 *   privacy allows), the DAT stream state (sequence windows, buffered chunks) and the rate-limit
 *   bucket. The last two are reached only through operations atomic on their own: the session's
 *   DAT stream (s->dat: sg_dat_ops of server/dat_state.h, set up by the store) and rate_ok.
 * - Process-local: the sg_session handle itself, its reference count and locks, WebSockets.
 *
 * Who locks it. Three kinds of access, never nested, so there is no lock order to keep:
 * - sg_session_get/release: a reference. It keeps the handle valid (a deleted session's handle
 *   stays usable until its last reference goes), not its state.
 * - sg_session_lock/unlock: the work lock. The fields marked "working state" are read and written
 *   only between them, so requests on one session are serialised while different sessions run in
 *   parallel. A shared store takes a lock with an owner token and an expiry, loads the working
 *   state in lock and saves it in unlock. Held for a whole turn: never call another store
 *   operation while holding it.
 * - the DAT and rate-limit operations (s->dat.ops, sg_session_rate_ok): short and atomic
 *   (a shared store: a script or compare-and-set), never waiting for the work lock, so chunks are
 *   answered while a turn runs.
 * The listing counters are atomics, written under the work lock and read without it.
 *
 * How it expires: every get and touch restarts the idle clock; sg_session_expire removes sessions
 * idle longer than SG_SESSION_TTL_S that no request or WebSocket holds (a shared store lets its
 * keys expire with the TTL, refreshed on use). Deletion and expiry free buffered raw DAT audio at
 * once, even while a request still holds the session. */
#ifndef SG_SERVER_SESSION_H
#define SG_SERVER_SESSION_H

#include <stdatomic.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/turn.h"
#include "base/error.h"
#include "server/config.h"
#include "server/dat_state.h"

#define SG_TRANSCRIPTS_KEPT 32
#define SG_HISTORY_TURNS 4

typedef struct sg_blob {
    uint8_t *data;
    size_t len;
} sg_blob;

typedef struct sg_session_store sg_session_store;
typedef struct sg_session sg_session;

/* A session as a request holds it. */
struct sg_session {
    char id[37];                   /* lower-case UUID v4; constant */
    sg_session_store *store;       /* the store it belongs to; constant */
    sg_dat_stream dat;             /* its DAT stream: s->dat.ops->claim(s->dat.self, …);
                                      the handle is constant */
    double created_wall_s;         /* constant */
    sg_privacy privacy;            /* effective flags (server AND request); constant */

    /* Listing counters (GET /sessions reads them without the work lock). */
    atomic_long query_count, frame_count, transcript_count;
    atomic_bool has_frame;

    /* Working state: only under sg_session_lock. */
    sg_visual_memory vision;       /* derived frame data: always kept */
    long long dat_frame_analysed;  /* number of the DAT frame the scene is from, -1 */

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
    bool raw_dirty;                /* frames or audio changed since the lock (a shared store
                                      saves them only then: they are the large part) */
};

/* A store backend. Every operation is thread-safe. Ownership: create and get hand out a
 * reference the caller gives back with release; the store owns the session. A new backend is a
 * file beside session_memory.c that fills this table and gives each session its DAT stream
 * (docs/ARCHITECTURE.md, "Session store"). */
typedef struct sg_session_store_ops {
    const char *name;
    /* New session with the effective privacy flags; SG_ETOOBIG at SG_MAX_SESSIONS. */
    sg_status (*create)(void *self, const sg_privacy *privacy, sg_session **out, sg_error *err);
    /* A reference to a live session (id case-insensitive), touched. NULL when there is none, and
     * err->code says why: SG_OK for an unknown id, SG_EUNAVAILABLE when a shared store cannot be
     * reached, SG_ECORRUPT when what it holds for the id cannot be read (err->msg: the detail). */
    sg_session *(*get)(void *self, const char *id, sg_error *err);
    void (*release)(void *self, sg_session *s);
    /* Removes a session everywhere; false when it did not, err->code saying why as for get (SG_OK:
     * unknown). References stay valid. */
    bool (*remove)(void *self, const char *id, sg_error *err);
    /* Removes sessions idle longer than the TTL that nobody holds; returns how many. */
    int (*expire)(void *self, double now_ms);
    long (*count)(void *self);     /* sessions live now (unreachable store: the last count seen) */
    long (*created)(void *self);   /* sessions this process created since it started */
    /* [{"session_id","transcript_count","has_frame","query_count","frame_count"}, …]; NULL with
     * err when the store cannot be reached. */
    json_t *(*list_json)(void *self, sg_error *err);
    void (*touch)(void *self, sg_session *s);
    /* The work lock (see above). lock may fail for a shared store: SG_EUNAVAILABLE (unreachable),
     * SG_EBUSY (still taken after SG_SESSION_LOCK_WAIT_MS), SG_ECORRUPT (unreadable state). */
    sg_status (*lock)(void *self, sg_session *s, sg_error *err);
    void (*unlock)(void *self, sg_session *s);
    /* Token bucket of the session: true when a request may proceed, else *retry_after_s. */
    bool (*rate_ok)(void *self, sg_session *s, double rps, int *retry_after_s);
    /* SG_OK when the store can be used now (GET /ready); else SG_EUNAVAILABLE and why. */
    sg_status (*ping)(void *self, sg_error *err);
    /* What /metrics shows of the store: {"backend", …}. */
    json_t *(*stats_json)(void *self);
    void (*free)(void *self);
} sg_session_store_ops;

struct sg_session_store {
    const sg_session_store_ops *ops;
    void *self;
    int debug_lock_hold_ms; /* SG_DEBUG_LOCK_HOLD_MS (tests): sg_session_lock sleeps after taking */
};

/* The store cfg->store names: the in-process one or Redis. NULL with err when it cannot be made
 * (out of memory); an unreachable Redis is not an error here (its operations fail until it is
 * back). */
sg_session_store *sg_session_store_new(const sg_config *cfg, sg_error *err);
/* The in-process store (session_memory.c): a table of reference-counted sessions. */
sg_session_store *sg_session_store_memory_new(const sg_config *cfg);
/* The Redis store (session_redis.c), at cfg->store. */
sg_session_store *sg_session_store_redis_new(const sg_config *cfg, sg_error *err);
void sg_session_store_free(sg_session_store *st);

/* The store's operations, for callers (each calls st->ops). */
sg_status sg_session_create(sg_session_store *st, const sg_privacy *privacy, sg_session **out,
                            sg_error *err);
/* NULL when there is none; err (may be NULL) says why: code SG_OK for an unknown id. */
sg_session *sg_session_get(sg_session_store *st, const char *id, sg_error *err);
void sg_session_release(sg_session *s); /* NULL: nothing */
bool sg_session_delete(sg_session_store *st, const char *id, sg_error *err);
int sg_session_expire(sg_session_store *st, double now_ms);
long sg_session_count(sg_session_store *st);
long sg_session_created(sg_session_store *st);
json_t *sg_session_list_json(sg_session_store *st, sg_error *err);
sg_status sg_session_store_ping(sg_session_store *st, sg_error *err);
json_t *sg_session_store_stats_json(sg_session_store *st);
/* Marks use (restarts the idle clock). */
void sg_session_touch(sg_session *s);
sg_status sg_session_lock(sg_session *s, sg_error *err);
void sg_session_unlock(sg_session *s);
bool sg_session_rate_ok(sg_session *s, double rps, int *retry_after_s);

/* For backends: a new session's state (a fresh id, the flags, an empty scene) and its end. */
void sg_session_state_init(sg_session *s, sg_session_store *st, const sg_privacy *privacy);
void sg_session_state_free(sg_session *s);
/* For backends: empties the working state (as a new session's), keeping identity and flags. */
void sg_session_state_reset(sg_session *s);
/* For backends: the lower-case form of a session id (ids match case-insensitively); false when id
 * is not a UUID, so that it is unknown without a look (and never becomes part of a key). */
bool sg_session_id_key(const char *id, char key[37]);
/* For backends: the session's entry in GET /sessions. */
json_t *sg_session_list_entry(const sg_session *s);

/* Working state, under the work lock. */
void sg_session_add_transcript(sg_session *s, const char *text);
void sg_session_add_turn(sg_session *s, const char *query, const char *response);
/* A frame was ingested (counts it for the listing). */
void sg_session_frame_counted(sg_session *s);
/* Keeps a copy of an encoded frame if the privacy flags allow; SG_ETOOBIG under the reject policy
 * when the frame buffer would overflow. */
sg_status sg_session_keep_frame(sg_session *s, const sg_config *cfg, const uint8_t *data,
                                size_t len, sg_error *err);
sg_status sg_session_keep_audio(sg_session *s, const sg_config *cfg, const float *pcm, size_t n,
                                sg_error *err);

#endif
