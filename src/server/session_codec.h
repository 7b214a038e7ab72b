/* The bytes a shared session store keeps (session_redis.c): a session's metadata, its working
 * state, its raw frames/audio and its buffered DAT audio chunks, each in a versioned format with a
 * bounded decoder. What is read back from the store is untrusted: a corrupt value, another
 * program's or another format version's is SG_ECORRUPT with the first thing found wrong, never a
 * crash, and the decoder never allocates more than the input's size in total. */
#ifndef SG_SERVER_SESSION_CODEC_H
#define SG_SERVER_SESSION_CODEC_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "server/dat_state.h"
#include "server/session.h"

/* The format version: in every value and in every key (sg:v1:…), so a server that reads another
 * version never even looks at its keys. A change of layout is a new version. */
#define SG_SESSION_CODEC_VERSION 1

/* A value is "SGSS", the version, the part, then fields (a tag byte, a 32-bit length, the
 * payload), each at most once; see session_codec.c for the fields of each part. */
typedef enum sg_session_part {
    SG_SESSION_PART_META = 1,  /* privacy flags, creation time, the listing counters */
    SG_SESSION_PART_STATE = 2, /* scene, keyframe gate, embedding, transcripts, history */
    SG_SESSION_PART_RAW = 3,   /* raw frames and audio (only what privacy allows is ever kept) */
} sg_session_part;

/* The metadata: what GET /sessions lists and what a handle needs before the work lock. */
typedef struct sg_session_meta {
    sg_privacy privacy;
    double created_wall_s;
    long queries, frames, transcripts;
    bool has_frame;
} sg_session_meta;

/* A new buffer (*out, malloc'ed) with s's part (META: from s's flags and counters). */
sg_status sg_session_encode(const sg_session *s, sg_session_part part, uint8_t **out,
                            size_t *len, sg_error *err);
/* Decodes a STATE or RAW value into s's working state, which must be empty (new, or after
 * sg_session_state_reset); on an error it may hold part of the value: reset it. */
sg_status sg_session_decode(sg_session *s, sg_session_part part, const uint8_t *buf, size_t len,
                            sg_error *err);

sg_status sg_session_meta_encode(const sg_session_meta *m, uint8_t **out, size_t *len,
                                 sg_error *err);
sg_status sg_session_meta_decode(const uint8_t *buf, size_t len, sg_session_meta *m,
                                 sg_error *err);

/* A buffered DAT audio chunk as the store keeps it: a 28-byte header ("SGDC", version, format,
 * channels, 0, sample rate, sequence number, seconds as a little-endian double at byte 20, which
 * the store's scripts read to trim) and the PCM bytes. */
#define SG_DAT_RECORD_HEADER 28
sg_status sg_dat_record_encode(long long seq, const sg_dat_audio_fmt *fmt, const uint8_t *data,
                               size_t len, double seconds, uint8_t **out, size_t *out_len,
                               sg_error *err);
/* Into *c (c->data malloc'ed); seconds are recomputed from the bytes, not trusted. */
sg_status sg_dat_record_decode(const uint8_t *buf, size_t len, sg_dat_chunk *c, sg_error *err);

#endif
