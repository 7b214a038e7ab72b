/* Sessions: the store's operations as callers see them (each goes to the backend's ops), and
 * the working state every backend shares - a new session's state, the listing entry and the
 * bounded per-session buffers that the privacy flags allow. The in-process backend is
 * session_memory.c. */
#include "server/session.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "base/clock.h"
#include "base/uuid.h"

/* ---- the store's operations --------------------------------------------------------------- */

sg_status sg_session_create(sg_session_store *st, const sg_privacy *privacy, sg_session **out,
                            sg_error *err)
{
    return st->ops->create(st->self, privacy, out, err);
}

sg_session_store *sg_session_store_new(const sg_config *cfg, sg_error *err)
{
    sg_session_store *st = cfg->store.kind != SG_STORE_MEMORY ? sg_session_store_redis_new(cfg, err)
                                                              : sg_session_store_memory_new(cfg);
    if (!st && cfg->store.kind == SG_STORE_MEMORY)
        sg_error_set(err, SG_ENOMEM, "out of memory creating the session store");
    if (st)
        st->debug_lock_hold_ms = cfg->debug_lock_hold_ms;
    return st;
}

sg_session *sg_session_get(sg_session_store *st, const char *id, sg_error *err)
{
    sg_error local;
    if (!err)
        err = &local;
    err->code = SG_OK;
    err->msg[0] = 0;
    return st->ops->get(st->self, id, err);
}

void sg_session_release(sg_session *s)
{
    if (s)
        s->store->ops->release(s->store->self, s);
}

bool sg_session_delete(sg_session_store *st, const char *id, sg_error *err)
{
    sg_error local;
    if (!err)
        err = &local;
    err->code = SG_OK;
    err->msg[0] = 0;
    return st->ops->remove(st->self, id, err);
}
int sg_session_expire(sg_session_store *st, double now_ms) { return st->ops->expire(st->self, now_ms); }
long sg_session_count(sg_session_store *st) { return st->ops->count(st->self); }
long sg_session_created(sg_session_store *st) { return st->ops->created(st->self); }
json_t *sg_session_list_json(sg_session_store *st, sg_error *err)
{
    return st->ops->list_json(st->self, err);
}

sg_status sg_session_store_ping(sg_session_store *st, sg_error *err)
{
    return st->ops->ping(st->self, err);
}

json_t *sg_session_store_stats_json(sg_session_store *st) { return st->ops->stats_json(st->self); }

void sg_session_store_free(sg_session_store *st)
{
    if (st)
        st->ops->free(st->self);
}

void sg_session_touch(sg_session *s) { s->store->ops->touch(s->store->self, s); }

sg_status sg_session_lock(sg_session *s, sg_error *err)
{
    sg_status st = s->store->ops->lock(s->store->self, s, err);
    int hold = s->store->debug_lock_hold_ms;
    if (st == SG_OK && hold > 0) { /* tests: an instance killed while it holds the lock */
        struct timespec ts = {hold / 1000, (long)(hold % 1000) * 1000000L};
        nanosleep(&ts, NULL);
    }
    return st;
}

void sg_session_unlock(sg_session *s) { s->store->ops->unlock(s->store->self, s); }

bool sg_session_rate_ok(sg_session *s, double rps, int *retry_after_s)
{
    return s->store->ops->rate_ok(s->store->self, s, rps, retry_after_s);
}

/* ---- working state -------------------------------------------------------------------------- */

void sg_session_state_init(sg_session *s, sg_session_store *st, const sg_privacy *privacy)
{
    sg_uuid4(s->id);
    s->store = st;
    s->created_wall_s = sg_wall_s();
    s->privacy = *privacy;
    sg_visual_memory_init(&s->vision);
    s->dat_frame_analysed = -1;
}

void sg_session_state_reset(sg_session *s)
{
    sg_session_state_free(s);
    sg_visual_memory_init(&s->vision);
    s->dat_frame_analysed = -1;
    memset(s->transcripts, 0, sizeof s->transcripts);
    s->transcripts_head = s->transcripts_n = 0;
    memset(s->history, 0, sizeof s->history);
    s->history_head = s->history_n = 0;
    s->frames = NULL;
    s->frames_cap = s->frames_head = s->frames_n = 0;
    s->frames_bytes = 0;
    s->audio = NULL;
    s->audio_n = s->audio_cap = 0;
    s->raw_dirty = false;
}

void sg_session_state_free(sg_session *s)
{
    sg_visual_memory_free(&s->vision);
    for (int i = 0; i < SG_TRANSCRIPTS_KEPT; i++)
        free(s->transcripts[i]);
    for (int i = 0; i < SG_HISTORY_TURNS; i++) {
        free(s->history[i][0]);
        free(s->history[i][1]);
    }
    for (int i = 0; i < s->frames_cap; i++)
        free(s->frames[i].data);
    free(s->frames);
    free(s->audio);
}

bool sg_session_id_key(const char *id, char key[37])
{
    if (!id || !sg_uuid_valid(id))
        return false;
    for (int i = 0; i < 37; i++)
        key[i] = (id[i] >= 'A' && id[i] <= 'F') ? (char)(id[i] - 'A' + 'a') : id[i];
    return true;
}

json_t *sg_session_list_entry(const sg_session *s)
{
    return json_pack("{s:s,s:I,s:b,s:I,s:I}", "session_id", s->id, "transcript_count",
                     (json_int_t)atomic_load(&s->transcript_count), "has_frame",
                     (int)atomic_load(&s->has_frame), "query_count",
                     (json_int_t)atomic_load(&s->query_count), "frame_count",
                     (json_int_t)atomic_load(&s->frame_count));
}

void sg_session_frame_counted(sg_session *s)
{
    atomic_fetch_add(&s->frame_count, 1);
    atomic_store(&s->has_frame, true);
}

/* The slot for a new entry of a ring of cap entries (the oldest one's when it is full). */
static int ring_push(int *head, int *n, int cap)
{
    if (*n < cap)
        return (*head + (*n)++) % cap;
    int slot = *head;
    *head = (*head + 1) % cap;
    return slot;
}

void sg_session_add_transcript(sg_session *s, const char *text)
{
    if (!s->privacy.store_transcripts || !text)
        return;
    char *copy = strdup(text);
    if (!copy)
        return;
    int slot = ring_push(&s->transcripts_head, &s->transcripts_n, SG_TRANSCRIPTS_KEPT);
    free(s->transcripts[slot]);
    s->transcripts[slot] = copy;
    atomic_store(&s->transcript_count, s->transcripts_n);
}

void sg_session_add_turn(sg_session *s, const char *query, const char *response)
{
    if (!s->privacy.store_transcripts)
        return;
    int slot = ring_push(&s->history_head, &s->history_n, SG_HISTORY_TURNS);
    free(s->history[slot][0]);
    free(s->history[slot][1]);
    s->history[slot][0] = query ? strdup(query) : NULL;
    s->history[slot][1] = response ? strdup(response) : NULL;
}

/* The frame ring laid out again with cap slots, keeping the newest frames (a shared store
 * decodes the ring with as many slots as it held frames; FRAME_HISTORY_SIZE may have changed). */
static sg_status frames_relayout(sg_session *s, int cap, sg_error *err)
{
    sg_blob *f = calloc((size_t)cap, sizeof *f);
    if (!f)
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    int keep = s->frames_n < cap ? s->frames_n : cap;
    for (int i = 0; i < s->frames_n; i++) {
        sg_blob *b = &s->frames[(s->frames_head + i) % s->frames_cap];
        if (i < s->frames_n - keep) {
            s->frames_bytes -= b->len;
            free(b->data);
        } else {
            f[i - (s->frames_n - keep)] = *b;
        }
    }
    free(s->frames);
    s->frames = f;
    s->frames_cap = cap;
    s->frames_head = 0;
    s->frames_n = keep;
    return SG_OK;
}

sg_status sg_session_keep_frame(sg_session *s, const sg_config *cfg, const uint8_t *data,
                                size_t len, sg_error *err)
{
    if (!s->privacy.store_raw_frames || cfg->frame_history <= 0)
        return SG_OK;
    if (s->frames && s->frames_cap != cfg->frame_history) {
        sg_status st = frames_relayout(s, cfg->frame_history, err);
        if (st != SG_OK)
            return st;
    }
    if (!s->frames) {
        s->frames = calloc((size_t)cfg->frame_history, sizeof *s->frames);
        if (!s->frames)
            return sg_error_set(err, SG_ENOMEM, "out of memory");
        s->frames_cap = cfg->frame_history;
    }
    bool full = s->frames_n == s->frames_cap || s->frames_bytes + len > cfg->frame_max_bytes;
    if (full && cfg->frame_policy == SG_POLICY_REJECT)
        return sg_error_set(err, SG_ETOOBIG,
                            "Frame buffer would exceed configured limits; reduce frame frequency "
                            "or set FRAME_BUFFER_POLICY=trim: %d frames, %zu bytes kept "
                            "(FRAME_HISTORY_SIZE=%d, FRAME_BUFFER_MAX_BYTES=%zu)",
                            s->frames_n, s->frames_bytes, cfg->frame_history, cfg->frame_max_bytes);
    /* trim: drop the oldest until the new frame fits */
    while (s->frames_n > 0 &&
           (s->frames_n == s->frames_cap || s->frames_bytes + len > cfg->frame_max_bytes)) {
        sg_blob *old = &s->frames[s->frames_head];
        s->frames_bytes -= old->len;
        free(old->data);
        old->data = NULL;
        old->len = 0;
        s->frames_head = (s->frames_head + 1) % s->frames_cap;
        s->frames_n--;
    }
    uint8_t *copy = malloc(len);
    if (!copy)
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    memcpy(copy, data, len);
    sg_blob *slot = &s->frames[(s->frames_head + s->frames_n) % s->frames_cap];
    slot->data = copy;
    slot->len = len;
    s->frames_n++;
    s->frames_bytes += len;
    s->raw_dirty = true;
    return SG_OK;
}

sg_status sg_session_keep_audio(sg_session *s, const sg_config *cfg, const float *pcm, size_t n,
                                sg_error *err)
{
    if (!s->privacy.store_raw_audio)
        return SG_OK;
    size_t max_n = (size_t)(cfg->audio_max_seconds * SG_AUDIO_RATE);
    size_t byte_cap = cfg->audio_max_bytes / sizeof(float);
    if (byte_cap < max_n)
        max_n = byte_cap;
    if (s->audio_n + n > max_n) {
        if (cfg->audio_policy == SG_POLICY_REJECT)
            return sg_error_set(err, SG_ETOOBIG,
                                "Audio buffer would exceed configured limits; adjust "
                                "AUDIO_BUFFER_* settings or set AUDIO_BUFFER_POLICY=trim: %.3f s "
                                "kept in the session (AUDIO_BUFFER_POLICY=reject)",
                                (double)s->audio_n / SG_AUDIO_RATE);
        if (n >= max_n) { /* keep only the newest max_n samples */
            pcm += n - max_n;
            n = max_n;
            s->audio_n = 0;
        } else {
            size_t drop = s->audio_n + n - max_n;
            memmove(s->audio, s->audio + drop, (s->audio_n - drop) * sizeof(float));
            s->audio_n -= drop;
        }
    }
    if (s->audio_n + n > s->audio_cap) {
        size_t cap = s->audio_n + n;
        float *p = realloc(s->audio, cap * sizeof(float));
        if (!p)
            return sg_error_set(err, SG_ENOMEM, "out of memory");
        s->audio = p;
        s->audio_cap = cap;
    }
    memcpy(s->audio + s->audio_n, pcm, n * sizeof(float));
    s->audio_n += n;
    s->raw_dirty = true;
    return SG_OK;
}
