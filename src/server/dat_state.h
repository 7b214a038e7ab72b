/* A DAT stream's state: per chunk type a sliding window of received sequence numbers, the current
 * turn's raw audio chunks in sequence order, the turn's counters - the operations on it
 * (sg_dat_ops, which a session store hands out with each session) and their in-process
 * implementation (sg_dat_state, with its own short lock; session_memory.c keeps one per
 * session). A shared store implements the same operations on its own representation. See
 * docs/ARCHITECTURE.md "DAT routes". */
#ifndef SG_SERVER_DAT_STATE_H
#define SG_SERVER_DAT_STATE_H

#include <pthread.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "media/audio.h"
#include "server/config.h"

/* Chunks are de-duplicated per chunk type by sequence number with a window of the last
 * SG_DAT_WINDOW numbers up to the newest seen (numbers increase within a session, as the wire
 * protocol asks). Audio chunks are kept raw (PCM bytes + their format) in sequence order until
 * the turn that consumes them; a chunk numbered at or below the last audio chunk a completed turn
 * consumed belongs to that turn and is not buffered again. Frames are not buffered here (their
 * derived scene is the session's working state) and IMU chunks are only counted. */
#define SG_DAT_WINDOW 1024
#define SG_DAT_MAX_CHUNKS 16384 /* audio chunks buffered per turn */

typedef enum sg_dat_type { SG_DAT_AUDIO = 0, SG_DAT_FRAME, SG_DAT_IMU, SG_DAT_TYPES } sg_dat_type;

typedef enum sg_dat_seen {
    SG_DAT_NEW = 0,   /* first time: now marked as received */
    SG_DAT_DUPLICATE, /* already received (or consumed by a completed turn) */
    SG_DAT_TOO_OLD,   /* below the window: cannot tell, treated as already received */
    SG_DAT_FAILED     /* a shared store could not answer: nothing was marked */
} sg_dat_seen;

/* Sequence numbers at most this (2^53 - 1): a shared store's scripts count in doubles, and a
 * JSON client in JavaScript cannot send a larger integer exactly anyway. */
#define SG_DAT_SEQ_MAX 9007199254740991LL

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

/* What one turn takes from the buffer (take_turn); free with sg_dat_turn_free. */
typedef struct sg_dat_turn {
    sg_dat_chunk *chunks;    /* in sequence order */
    size_t n;
    size_t bytes;
    double seconds;
    long frames, imu_chunks, imu_samples, duplicates, trimmed;
} sg_dat_turn;

/* The buffer's totals after an operation, for the chunk acknowledgement. */
typedef struct sg_dat_stats {
    size_t chunks, bytes;
    double seconds;
    long trimmed;                 /* chunks dropped by this operation (trim policy) */
    bool kept;                    /* the new chunk is in the buffer (false when trimmed itself) */
} sg_dat_stats;

/* The operations on one session's DAT stream, as a session store hands them out (a session's
 * sg_dat_stream: ops + self, like the model backends of agent/backends.h). Each is atomic on its
 * own: chunks are answered without waiting for a running turn. */
typedef struct sg_dat_ops {
    /* Checks number seq of chunk type t against the window and, when new, marks it received;
     * duplicates are counted in the current turn. SG_DAT_FAILED: the store cannot be reached. */
    sg_dat_seen (*claim)(void *self, sg_dat_type t, long long seq);
    /* Forgets a frame / IMU claim whose chunk then failed (so a corrected retry is not a
     * duplicate). No-op for audio: add_audio marks a number only when the chunk is buffered.
     * unclaim and count cannot fail: a shared store that cannot be reached skips them (a retry
     * is then a duplicate; the turn's counters miss a chunk). */
    void (*unclaim)(void *self, sg_dat_type t, long long seq);
    /* Buffers an audio chunk (takes ownership of data, also on error). The limits are the
     * server's AUDIO_BUFFER_MAX_BYTES (raw bytes buffered), AUDIO_BUFFER_MAX_SECONDS and
     * SG_DAT_MAX_CHUNKS; a chunk alone over a limit is SG_ETOOBIG, and a full buffer is
     * SG_ETOOBIG under the reject policy, while trim drops the oldest chunks (lowest numbers)
     * until it fits. *seen says whether the chunk was new; a duplicate or late chunk is freed and
     * not buffered (SG_OK). *stats: the buffer's totals after it. */
    sg_status (*add_audio)(void *self, const sg_config *cfg, long long seq,
                           const sg_dat_audio_fmt *fmt, uint8_t *data, size_t len,
                           sg_dat_seen *seen, sg_dat_stats *stats, sg_error *err);
    /* Counts a frame / IMU chunk (with its samples) in the current turn once it was handled. */
    void (*count)(void *self, sg_dat_type t, long samples);
    /* Records frame seq as the newest to analyse; false (nothing recorded) when a frame
     * numbered higher already was. A shared store that cannot be reached says true: the work
     * lock that follows reports it. */
    bool (*frame_newest)(void *self, long long seq);
    /* Moves the buffered chunks and counters into *out and empties the buffer; later audio
     * chunks numbered at or below the last one taken are late (duplicates). A shared store:
     * SG_EUNAVAILABLE or SG_ECORRUPT (a stored chunk that cannot be read), *out empty. */
    sg_status (*take_turn)(void *self, sg_dat_turn *out, sg_error *err);
} sg_dat_ops;

typedef struct sg_dat_stream {
    const sg_dat_ops *ops;
    void *self;
} sg_dat_stream;

/* The in-process state: self for sg_dat_state_ops. */
typedef struct sg_dat_state {
    pthread_mutex_t lock;         /* guards everything below; held only inside the operations */
    sg_dat_window seen[SG_DAT_TYPES];
    long long audio_consumed;     /* highest audio number a completed turn consumed, -1 */
    long long frame_latest;       /* number of the newest frame sent to analysis, -1 */
    sg_dat_turn cur;              /* what the next turn will take */
    size_t cap;                   /* capacity of cur.chunks */
} sg_dat_state;

extern const sg_dat_ops sg_dat_state_ops;

/* The Redis representation (dat_redis.c): self for sg_dat_redis_ops, one in each session handle
 * of the Redis store. The state lives in the session's keys (hash, window bits, sorted set of
 * chunk records), changed by Lua scripts: each operation is one atomic script. */
struct sg_redis;
typedef struct sg_dat_redis {
    struct sg_redis *redis;
    const sg_config *cfg;
    char key_state[64], key_window[64], key_chunks[64];
} sg_dat_redis;

extern const sg_dat_ops sg_dat_redis_ops;
/* The keys of session id's DAT state (docs/ARCHITECTURE.md "Sessions in Redis"). */
void sg_dat_redis_init(sg_dat_redis *d, struct sg_redis *redis, const sg_config *cfg,
                       const char *session_id);

void sg_dat_state_init(sg_dat_state *d);
/* Frees the buffered chunks and the lock. */
void sg_dat_state_free(sg_dat_state *d);
/* Frees every buffered chunk now (session deletion and expiry: raw audio goes at once, even while
 * a request still holds the session); the windows stay. */
void sg_dat_state_clear(sg_dat_state *d);
/* The current buffer's totals. */
void sg_dat_state_stats(sg_dat_state *d, sg_dat_stats *out);

/* For store backends, so every store words these alike: a chunk over a limit on its own, and a
 * full buffer under AUDIO_BUFFER_POLICY=reject (n chunks, seconds, bytes buffered). */
sg_status sg_dat_error_chunk_over(sg_error *err, const sg_config *cfg, size_t len, double sec);
sg_status sg_dat_error_full(sg_error *err, const sg_config *cfg, size_t n, double seconds,
                            size_t bytes);
/* The seconds of len bytes of PCM in fmt. */
double sg_dat_chunk_seconds(const sg_dat_audio_fmt *fmt, size_t len);

void sg_dat_turn_free(sg_dat_turn *t);
/* The turn's chunks as one 16 kHz mono signal: each run of consecutive chunks in one format is
 * decoded in one piece by media/audio.c (stereo through a WAV header, so it is down-mixed as WAV
 * uploads are), then the runs are concatenated. No chunks: an empty signal (samples NULL). */
sg_status sg_dat_turn_audio(const sg_dat_turn *t, sg_audio *out, sg_error *err);

#endif
