/* The Device Access Toolkit (DAT) routes: the Python runtime's wire protocol for glasses that
 * stream chunks and then ask for a turn (POST /dat/session, /dat/stream, /dat/turn/complete).
 *
 * Decisions (also in docs/ARCHITECTURE.md "DAT"):
 * - /dat/session creates an ordinary session (the table of POST /sessions, X-Privacy-* headers
 *   honoured the same way); device_id and client_version are required and only validated.
 * - Sequence numbers are de-duplicated per chunk type (audio, frame, imu) over the session with a
 *   window of the last SG_DAT_WINDOW numbers (server/dat_state.h): a repeated number is answered
 *   "duplicate" and not used again; so is an audio chunk numbered at or below the last audio chunk
 *   that a completed turn consumed (a retry, or a straggler of that turn). Numbers must therefore
 *   keep increasing within a session, as the protocol says.
 * - Audio chunks (pcm_s16le or pcm_f32le, mono or interleaved stereo, 8..192 kHz) are kept raw
 *   with their format and answered "buffered" at once, without the work queue. Out-of-order
 *   chunks are accepted and put in sequence order. At turn time consecutive chunks of one format
 *   are joined and decoded by media/audio.c in one piece (so one stream gives exactly the samples
 *   the same PCM sent to /audio gives), then runs are concatenated.
 * - Limits: raw bytes buffered <= AUDIO_BUFFER_MAX_BYTES, duration <= AUDIO_BUFFER_MAX_SECONDS,
 *   <= SG_DAT_MAX_CHUNKS chunks; over them 413 PAYLOAD_TOO_LARGE under AUDIO_BUFFER_POLICY=reject,
 *   oldest chunks dropped under trim; a single chunk over a limit is 413 under both policies.
 *   A frame chunk is limited by FRAME_BUFFER_MAX_BYTES, an IMU chunk by SG_DAT_IMU_MAX_BYTES.
 * - Frames go through the /frame path on the work queue (decode, keyframe gate, vision backend
 *   or pixel describer); the session keeps the derived scene only (raw frames only when
 *   STORE_RAW_FRAMES allows, as /frame). A frame numbered below the newest analysed frame is
 *   acknowledged but not analysed, so the scene is always the latest frame's.
 * - IMU chunks are validated (base64, sensor_type, sample_count) and counted; turns do not use
 *   them.
 * - /dat/turn/complete runs sg_turn_run on the work queue, exactly as /query: the buffered audio
 *   is the audio input (audio wins over query_text), the session's latest scene is the visual
 *   context. Taking the buffer empties it, whatever the turn's outcome: raw audio never outlives
 *   the turn (nor the session: deletion and expiry free it at once).
 * - Unsupported but known encodings (opus audio, yuv420/i420/nv21 frames) are 415; unknown values
 *   and wrong types are 422; missing required fields and bad payloads are 400. */
#include "server/internal.h"

#include <limits.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"

#define SG_DAT_IMU_MAX_BYTES (1u << 20)
#define SG_DAT_TURN_ID_MAX 128

static double ms3(double x) { return (double)(long long)(x * 1000 + 0.5) / 1000; }

static bool blank(const char *s)
{
    for (; s && *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

/* A required non-empty string field; false after a 400 (missing) or 422 (type). */
static bool req_string(sg_req *r, json_t *obj, const char *name, const char *what, const char **out)
{
    if (!sg_req_opt_string(r, obj, name, NULL, out))
        return false;
    if (!*out || !(*out)[0]) {
        sg_req_error(r, 400, "INVALID_REQUEST", "missing \"%s\" (%s)", name, what);
        return false;
    }
    return true;
}

/* An optional field that must be a JSON object when present (null counts as absent). */
static bool opt_object(sg_req *r, json_t *obj, const char *name, json_t **out)
{
    json_t *v = json_object_get(obj, name);
    *out = NULL;
    if (!v || json_is_null(v))
        return true;
    if (!json_is_object(v)) {
        sg_req_error(r, 422, "INVALID_REQUEST", "field \"%s\" must be an object", name);
        return false;
    }
    *out = v;
    return true;
}

/* The body's session_id into r->session_id, then the session lookup (404 / 429). */
static bool body_session(sg_req *r, json_t *body)
{
    const char *id;
    if (!req_string(r, body, "session_id", "from POST /dat/session", &id))
        return false;
    size_t n = strlen(id);
    if (n < sizeof r->session_id)
        memcpy(r->session_id, id, n + 1);
    else
        r->session_id[0] = 0; /* too long to be a session id: unknown */
    return sg_req_lookup_session(r);
}

/* ---- POST /dat/session -------------------------------------------------------------------- */

void sg_handle_dat_session(sg_req *r)
{
    json_t *body, *caps, *meta;
    if (!sg_req_body(r, &body))
        return;
    const char *device, *client;
    bool flag;
    bool ok = req_string(r, body, "device_id", "the glasses' device id", &device) &&
              req_string(r, body, "client_version", "the client's version", &client) &&
              opt_object(r, body, "capabilities", &caps) && opt_object(r, body, "metadata", &meta);
    if (ok && caps)
        ok = sg_req_opt_bool(r, caps, "audio_streaming", &flag) &&
             sg_req_opt_bool(r, caps, "video_streaming", &flag) &&
             sg_req_opt_bool(r, caps, "imu_streaming", &flag);
    json_decref(body);
    if (!ok)
        return;
    sg_session *s;
    sg_privacy p;
    if (!sg_req_new_session(r, &s, &p))
        return;
    const sg_config *cfg = r->srv->cfg;
    /* a chunk of this size passes every per-chunk limit and fits in a body as base64 */
    size_t max_chunk = cfg->audio_max_bytes < cfg->frame_max_bytes ? cfg->audio_max_bytes
                                                                    : cfg->frame_max_bytes;
    size_t body_fit = cfg->max_body_bytes > 4096 ? (cfg->max_body_bytes - 4096) / 4 * 3 : 1024;
    if (max_chunk > body_fit)
        max_chunk = body_fit;
    json_t *o = json_pack(
        "{s:s,s:s,s:I,s:{s:b,s:b},s:{s:b,s:b,s:b},s:{s:f,s:I,s:s,s:I,s:I}}", "session_id", s->id,
        "server_version", SG_VERSION, "max_chunk_size_bytes", (json_int_t)max_chunk,
        "capabilities", "multimodal_queries", 1, "streaming_transcription",
        r->srv->b->asr != NULL, "privacy", "store_raw_audio", p.store_raw_audio, "store_raw_frames",
        p.store_raw_frames, "store_transcripts", p.store_transcripts, "limits", "audio_max_seconds",
        cfg->audio_max_seconds, "audio_max_bytes", (json_int_t)cfg->audio_max_bytes, "audio_policy",
        cfg->audio_policy == SG_POLICY_REJECT ? "reject" : "trim", "frame_max_bytes",
        (json_int_t)cfg->frame_max_bytes, "max_audio_chunks", (json_int_t)SG_DAT_MAX_CHUNKS);
    sg_session_release(s);
    if (!o) {
        sg_req_error(r, 503, "OVERLOADED", "out of memory");
        return;
    }
    sg_req_json(r, 200, o);
}

/* ---- POST /dat/stream --------------------------------------------------------------------- */

static json_t *ack(const sg_session *s, long long seq, const char *status, const char *msg)
{
    return json_pack("{s:s,s:I,s:s,s:s}", "session_id", s->id, "sequence_number", (json_int_t)seq,
                     "status", status, "message", msg);
}

static void ack_duplicate(sg_req *r, const char *type, long long seq, sg_dat_seen seen)
{
    if (seen == SG_DAT_FAILED) {
        sg_req_error(r, 503, "STORE_UNAVAILABLE", "the session store cannot be reached: %s chunk "
                     "%lld was not recorded; send it again", type, seq);
        r->retry_after = r->srv->cfg->retry_after_s;
        return;
    }
    char msg[200];
    if (seen == SG_DAT_TOO_OLD)
        snprintf(msg, sizeof msg, "%s chunk %lld is more than %d behind the newest; treated as "
                 "already received", type, seq, SG_DAT_WINDOW);
    else
        snprintf(msg, sizeof msg, "%s chunk %lld was already received; not used again", type, seq);
    sg_req_json(r, 200, ack(r->session, seq, "duplicate", msg));
}

static void buffer_json(json_t *o, const sg_dat_stats *st)
{
    json_object_set_new(o, "buffer", json_pack("{s:I,s:f,s:I}", "audio_chunks",
                                               (json_int_t)st->chunks, "audio_seconds",
                                               ms3(st->seconds), "audio_bytes",
                                               (json_int_t)st->bytes));
}

static void stream_audio(sg_req *r, long long seq, json_t *meta, const char *payload)
{
    sg_dat_audio_fmt fmt = {SG_AUDIO_PCM_S16LE, SG_AUDIO_RATE, 1};
    if (meta) {
        const char *f;
        bool have;
        long v;
        if (!sg_req_opt_string(r, meta, "format", NULL, &f))
            return;
        if (f && f[0]) {
            if (!strcmp(f, "pcm_s16le") || !strcmp(f, "s16le") || !strcmp(f, "pcm"))
                fmt.format = SG_AUDIO_PCM_S16LE;
            else if (!strcmp(f, "pcm_f32le") || !strcmp(f, "f32le"))
                fmt.format = SG_AUDIO_PCM_F32LE;
            else if (!strcmp(f, "opus") || !strcmp(f, "aac") || !strcmp(f, "mp3")) {
                sg_req_error(r, 415, "INVALID_AUDIO",
                             "audio chunks in %s are not supported; send pcm_s16le or pcm_f32le", f);
                return;
            } else {
                sg_req_error(r, 422, "INVALID_REQUEST",
                             "meta.format \"%.40s\" is not an audio format (pcm_s16le, pcm_f32le)", f);
                return;
            }
        }
        if (!sg_req_opt_int(r, meta, "sample_rate", 8000, 192000, &have, &v))
            return;
        if (have)
            fmt.sample_rate = (int)v;
        if (!sg_req_opt_int(r, meta, "channels", 1, 2, &have, &v))
            return;
        if (have)
            fmt.channels = (int)v;
        if (!sg_req_opt_int(r, meta, "duration_ms", 0, 86400000L, &have, &v))
            return;
    }
    const sg_config *cfg = r->srv->cfg;
    uint8_t *data;
    size_t len;
    if (!sg_req_b64(r, "payload", payload, "INVALID_AUDIO", cfg->audio_max_bytes,
                    "AUDIO_BUFFER_MAX_BYTES", &data, &len))
        return;
    size_t sample = fmt.format == SG_AUDIO_PCM_F32LE ? 4 : 2;
    size_t frame = sample * (size_t)fmt.channels;
    if (len == 0 || len % frame != 0) {
        free(data);
        sg_req_error(r, 400, "INVALID_AUDIO",
                     "Invalid audio payload: %zu bytes is not a whole number of %zu-byte frames "
                     "(%s, %d channel%s)", len, frame,
                     fmt.format == SG_AUDIO_PCM_F32LE ? "pcm_f32le" : "pcm_s16le", fmt.channels,
                     fmt.channels == 1 ? "" : "s");
        return;
    }
    if (fmt.format == SG_AUDIO_PCM_F32LE) {
        for (size_t i = 0; i < len; i += 4) {
            float x;
            memcpy(&x, data + i, 4); /* little-endian host (x86-64) */
            if (!isfinite(x)) {
                free(data);
                sg_req_error(r, 400, "INVALID_AUDIO", "Invalid audio payload: a non-finite float "
                             "sample at byte %zu", i);
                return;
            }
        }
    }
    sg_dat_seen seen;
    sg_dat_stats st;
    sg_error err = {0};
    sg_session *s = r->session;
    sg_status rc = s->dat.ops->add_audio(s->dat.self, cfg, seq, &fmt, data, len, &seen, &st,
                                         &err);
    if (rc != SG_OK) {
        sg_req_fail(r, rc, "INVALID_AUDIO", &err);
        return;
    }
    sg_metrics_record(r->srv->metrics, SG_STAGE_INGEST_AUDIO, sg_now_ms() - r->t_start);
    char msg[200];
    const char *status = "buffered";
    if (seen != SG_DAT_NEW) {
        status = "duplicate";
        if (seen == SG_DAT_TOO_OLD)
            snprintf(msg, sizeof msg, "audio chunk %lld is more than %d behind the newest; "
                     "treated as already received", seq, SG_DAT_WINDOW);
        else
            snprintf(msg, sizeof msg, "audio chunk %lld was already received (or its turn "
                     "completed); not buffered again", seq);
    } else if (!st.kept) {
        status = "accepted";
        snprintf(msg, sizeof msg, "audio chunk %lld is older than the buffered audio, which is "
                 "full; dropped (AUDIO_BUFFER_POLICY=trim)", seq);
    } else if (st.trimmed) {
        snprintf(msg, sizeof msg, "audio chunk buffered; %ld oldest chunk%s dropped to stay "
                 "within the limits (AUDIO_BUFFER_POLICY=trim)", st.trimmed,
                 st.trimmed == 1 ? "" : "s");
    } else {
        snprintf(msg, sizeof msg, "audio chunk buffered (%zu chunks, %.3f s)", st.chunks,
                 st.seconds);
    }
    json_t *o = ack(s, seq, status, msg);
    if (o) {
        buffer_json(o, &st);
        json_object_set_new(o, "trimmed", json_integer(st.trimmed));
    }
    sg_req_json(r, 200, o);
}

static void work_dat_frame(sg_req *r)
{
    sg_server *srv = r->srv;
    sg_session *s = r->session;
    long long seq = r->in.dat_seq;
    sg_dat_seen seen = s->dat.ops->claim(s->dat.self, SG_DAT_FRAME, seq);
    if (seen != SG_DAT_NEW) {
        ack_duplicate(r, "frame", seq, seen);
        return;
    }
    sg_error err = {0};
    sg_frame_result fr = {0};
    sg_status st = SG_OK;
    bool newest = s->dat.ops->frame_newest(s->dat.self, seq);
    if (newest)
        st = sg_session_lock(s, &err);
    if (newest && st == SG_OK) {
        /* two frames can pass sg_session_dat_frame_newest and then take the work lock in either
         * order: the older one must not replace the newer one's scene */
        newest = seq >= s->dat_frame_analysed;
        if (newest) {
            st = sg_frame_ingest(srv->b, &s->vision, r->in.image, r->in.image_len, false, &fr, &err);
            if (st == SG_OK) {
                s->dat_frame_analysed = seq; /* the scene is this frame's now */
                st = sg_session_keep_frame(s, srv->cfg, r->in.image, r->in.image_len, &err);
            }
            if (st == SG_OK)
                sg_session_frame_counted(s);
        }
        sg_session_unlock(s);
    }
    if (!newest) {
        s->dat.ops->count(s->dat.self, SG_DAT_FRAME, 0);
        sg_metrics_record(srv->metrics, SG_STAGE_INGEST_FRAME, sg_now_ms() - r->t_start);
        json_t *o = ack(s, seq, "accepted", "a newer frame was already analysed; this older "
                        "frame is not");
        if (o)
            json_object_set_new(o, "analysed", json_false());
        sg_req_json(r, 200, o);
        return;
    }
    if (st != SG_OK) {
        json_decref(fr.scene);
        s->dat.ops->unclaim(s->dat.self, SG_DAT_FRAME, seq); /* a corrected retry is welcome */
        sg_req_fail(r, st, "INVALID_IMAGE", &err);
        return;
    }
    s->dat.ops->count(s->dat.self, SG_DAT_FRAME, 0);
    double total = sg_frame_recorded(srv, &fr, r->t_start);
    json_t *o = ack(s, seq, "accepted",
                    fr.keyframe ? "frame analysed: it is the session's scene now"
                                : "frame skipped by the keyframe gate (no change); the scene stays");
    if (o) {
        json_object_set_new(o, "analysed", json_true());
        json_object_set_new(o, "keyframe", json_boolean(fr.keyframe));
        json_object_set_new(o, "scene", fr.scene ? fr.scene : json_null());
        json_object_set_new(o, "latency_ms",
                            json_pack("{s:f,s:f,s:f}", "decode", ms3(fr.decode_ms), "vision",
                                      ms3(fr.vision_ms), "total", ms3(total)));
    } else {
        json_decref(fr.scene);
    }
    sg_req_json(r, 200, o);
}

static void stream_frame(sg_req *r, long long seq, json_t *meta, const char *payload)
{
    if (meta) {
        const char *f;
        bool have, kf;
        long v;
        if (!sg_req_opt_string(r, meta, "format", NULL, &f))
            return;
        if (f && f[0] && strcmp(f, "jpeg") && strcmp(f, "jpg") && strcmp(f, "png")) {
            if (!strcmp(f, "yuv420") || !strcmp(f, "i420") || !strcmp(f, "nv21") ||
                !strcmp(f, "nv12"))
                sg_req_error(r, 415, "INVALID_IMAGE",
                             "raw %s frames are not supported; send JPEG or PNG", f);
            else
                sg_req_error(r, 422, "INVALID_REQUEST",
                             "meta.format \"%.40s\" is not a frame format (jpeg, png)", f);
            return;
        }
        if (!sg_req_opt_int(r, meta, "width", 1, 65535, &have, &v) ||
            !sg_req_opt_int(r, meta, "height", 1, 65535, &have, &v) ||
            !sg_req_opt_int(r, meta, "quality", 0, 100, &have, &v) ||
            !sg_req_opt_bool(r, meta, "is_keyframe", &kf))
            return;
    }
    const sg_config *cfg = r->srv->cfg;
    if (!sg_req_b64(r, "payload", payload, "INVALID_IMAGE", cfg->frame_max_bytes,
                    "FRAME_BUFFER_MAX_BYTES", &r->in.image, &r->in.image_len))
        return;
    if (r->in.image_len == 0) {
        sg_req_error(r, 400, "INVALID_IMAGE", "empty frame payload");
        return;
    }
    /* claimed by the worker: a frame refused here (queue full) stays unclaimed for its retry */
    r->in.dat_seq = seq;
    sg_req_submit(r, work_dat_frame);
}

static void stream_imu(sg_req *r, long long seq, json_t *meta, const char *payload)
{
    long samples = 0;
    if (meta) {
        const char *type;
        bool have;
        if (!sg_req_opt_string(r, meta, "sensor_type", NULL, &type) ||
            !sg_req_opt_int(r, meta, "sample_count", 1, 1000000, &have, &samples))
            return;
        if (type && strcmp(type, "accelerometer") && strcmp(type, "gyroscope") &&
            strcmp(type, "magnetometer")) {
            sg_req_error(r, 422, "INVALID_REQUEST", "meta.sensor_type \"%.40s\" is not one of "
                         "accelerometer, gyroscope, magnetometer", type);
            return;
        }
    }
    uint8_t *data;
    size_t len;
    if (!sg_req_b64(r, "payload", payload, "INVALID_REQUEST", SG_DAT_IMU_MAX_BYTES,
                    "the IMU chunk limit", &data, &len))
        return;
    free(data); /* validated, never kept */
    sg_session *s = r->session;
    sg_dat_seen seen = s->dat.ops->claim(s->dat.self, SG_DAT_IMU, seq);
    if (seen != SG_DAT_NEW) {
        ack_duplicate(r, "imu", seq, seen);
        return;
    }
    s->dat.ops->count(s->dat.self, SG_DAT_IMU, samples);
    sg_req_json(r, 200, ack(s, seq, "accepted",
                            "IMU chunk validated and counted; turns do not use IMU data"));
}

void sg_handle_dat_stream(sg_req *r)
{
    json_t *body, *meta;
    if (!sg_req_body(r, &body))
        return;
    const char *type = NULL, *payload = NULL;
    bool have_seq, have_ts;
    long seq = 0, ts = 0;
    bool ok = body_session(r, body) &&
              req_string(r, body, "chunk_type", "audio, frame or imu", &type) &&
              sg_req_opt_int(r, body, "sequence_number", 0, SG_DAT_SEQ_MAX, &have_seq, &seq) &&
              sg_req_opt_int(r, body, "timestamp_ms", 0, LONG_MAX, &have_ts, &ts) &&
              req_string(r, body, "payload", "the chunk's bytes in base64", &payload) &&
              opt_object(r, body, "meta", &meta);
    if (ok && (!have_seq || !have_ts)) {
        sg_req_error(r, 400, "INVALID_REQUEST", "missing \"%s\" (an integer >= 0)",
                     have_seq ? "timestamp_ms" : "sequence_number");
        ok = false;
    }
    if (ok) {
        if (!strcmp(type, "audio"))
            stream_audio(r, seq, meta, payload);
        else if (!strcmp(type, "frame"))
            stream_frame(r, seq, meta, payload);
        else if (!strcmp(type, "imu"))
            stream_imu(r, seq, meta, payload);
        else
            sg_req_error(r, 422, "INVALID_REQUEST",
                         "chunk_type \"%.40s\" is not one of audio, frame, imu", type);
    }
    json_decref(body);
}

/* ---- POST /dat/turn/complete -------------------------------------------------------------- */

static void work_dat_turn(sg_req *r)
{
    sg_session *s = r->session;
    sg_dat_turn t;
    sg_error err = {0};
    /* from here on the raw audio belongs to this turn only */
    sg_status st = s->dat.ops->take_turn(s->dat.self, &t, &err);
    if (st != SG_OK) {
        sg_req_fail(r, st, "INVALID_REQUEST", &err);
        return;
    }
    if (t.n == 0 && blank(r->in.text)) {
        st = sg_session_lock(s, &err);
        if (st != SG_OK) {
            sg_dat_turn_free(&t);
            sg_req_fail(r, st, "INVALID_REQUEST", &err);
            return;
        }
        bool scene = s->vision.has_scene;
        sg_session_unlock(s);
        if (!scene) {
            sg_dat_turn_free(&t);
            sg_req_error(r, 400, "INVALID_REQUEST",
                         "nothing to answer: no audio chunks are buffered for this turn, there is "
                         "no query_text and no frame was streamed in this session");
            return;
        }
    }
    sg_audio a;
    st = sg_dat_turn_audio(&t, &a, &err);
    if (st != SG_OK) {
        sg_dat_turn_free(&t);
        sg_req_fail(r, st, "INVALID_AUDIO", &err);
        return;
    }
    sg_turn_input ti = {.text = r->in.text, .audio = t.n ? &a : NULL, .language = r->in.language,
                        .cloud_offload = r->in.cloud_offload, .max_tokens = r->in.max_tokens};
    bool speech = false;
    json_t *o = sg_req_run_turn(r, &ti, &speech);
    sg_audio_free(&a);
    if (o) {
        json_object_set_new(o, "turn_id", json_string(r->in.dat_turn_id));
        json_t *meta = json_object_get(o, "metadata");
        if (json_is_object(meta))
            json_object_set_new(
                meta, "dat",
                json_pack("{s:s,s:I,s:f,s:I,s:o,s:I,s:I,s:I,s:I,s:I}", "turn_id",
                          r->in.dat_turn_id, "audio_chunks", (json_int_t)t.n, "audio_seconds",
                          ms3(t.seconds), "audio_bytes", (json_int_t)t.bytes, "speech",
                          t.n ? json_boolean(speech) : json_null(), "frames",
                          (json_int_t)t.frames, "imu_chunks", (json_int_t)t.imu_chunks,
                          "imu_samples", (json_int_t)t.imu_samples, "duplicates",
                          (json_int_t)t.duplicates, "trimmed", (json_int_t)t.trimmed));
        sg_req_json(r, 200, o);
    }
    sg_dat_turn_free(&t);
}

void sg_handle_dat_turn(sg_req *r)
{
    json_t *body, *meta;
    if (!sg_req_body(r, &body))
        return;
    const char *turn_id = NULL, *text = NULL, *lang = NULL;
    bool have_max;
    long max_tokens = 0;
    bool ok = body_session(r, body) &&
              req_string(r, body, "turn_id", "the client's id for this turn", &turn_id) &&
              sg_req_opt_string(r, body, "query_text", NULL, &text) &&
              sg_req_opt_string(r, body, "language", NULL, &lang) &&
              sg_req_opt_bool(r, body, "cloud_offload", &r->in.cloud_offload) &&
              sg_req_opt_int(r, body, "max_tokens", 1, 4096, &have_max, &max_tokens) &&
              opt_object(r, body, "metadata", &meta);
    if (ok && strlen(turn_id) > SG_DAT_TURN_ID_MAX) {
        sg_req_error(r, 422, "INVALID_REQUEST", "turn_id is longer than %d bytes",
                     SG_DAT_TURN_ID_MAX);
        ok = false;
    }
    if (ok) {
        r->in.max_tokens = have_max ? (int)max_tokens : 0;
        if (!(r->in.dat_turn_id = strdup(turn_id)) ||
            (text && text[0] && !(r->in.text = strdup(text))) ||
            (lang && lang[0] && !(r->in.language = strdup(lang)))) {
            sg_req_error(r, 503, "OVERLOADED", "out of memory");
            ok = false;
        }
    }
    json_decref(body);
    if (ok)
        sg_req_submit(r, work_dat_turn);
}
