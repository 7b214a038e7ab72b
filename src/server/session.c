/* Session table: open hashing over a power-of-two bucket array, a reaper-friendly expiry sweep,
 * and the bounded per-session buffers that the privacy flags allow. */
#include "server/session.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/uuid.h"

#define NBUCKETS 1024

typedef struct entry {
    sg_session *s;
    struct entry *next;
} entry;

struct sg_session_table {
    pthread_mutex_t lock;
    entry *buckets[NBUCKETS];
    long count, created;
    const sg_config *cfg;
};

static unsigned hash_id(const char *id)
{
    unsigned h = 2166136261u;
    for (; *id; id++)
        h = (h ^ (unsigned char)*id) * 16777619u;
    return h & (NBUCKETS - 1);
}

sg_session_table *sg_session_table_new(const sg_config *cfg)
{
    sg_session_table *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    pthread_mutex_init(&t->lock, NULL);
    t->cfg = cfg;
    return t;
}

static void session_destroy(sg_session *s)
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
    pthread_mutex_destroy(&s->lock);
    pthread_mutex_destroy(&s->rate_lock);
    free(s);
}

void sg_session_release(sg_session *s)
{
    if (s && atomic_fetch_sub(&s->refs, 1) == 1)
        session_destroy(s);
}

void sg_session_table_free(sg_session_table *t)
{
    if (!t)
        return;
    for (int b = 0; b < NBUCKETS; b++) {
        for (entry *e = t->buckets[b], *next; e; e = next) {
            next = e->next;
            sg_session_release(e->s);
            free(e);
        }
    }
    pthread_mutex_destroy(&t->lock);
    free(t);
}

void sg_session_touch(sg_session *s) { atomic_store(&s->last_used_ms, sg_now_ms()); }

sg_status sg_session_create(sg_session_table *t, const sg_privacy *privacy, sg_session **out,
                            sg_error *err)
{
    *out = NULL;
    sg_session *s = calloc(1, sizeof *s);
    entry *e = malloc(sizeof *e);
    if (!s || !e) {
        free(s);
        free(e);
        return sg_error_set(err, SG_ENOMEM, "out of memory creating a session");
    }
    sg_uuid4(s->id);
    atomic_init(&s->refs, 2); /* the table's and the caller's */
    pthread_mutex_init(&s->lock, NULL);
    pthread_mutex_init(&s->rate_lock, NULL);
    s->created_wall_s = sg_wall_s();
    s->privacy = *privacy;
    sg_visual_memory_init(&s->vision);
    s->tokens = -1; /* bucket starts full on first use */
    sg_session_touch(s);
    e->s = s;
    pthread_mutex_lock(&t->lock);
    if (t->count >= t->cfg->max_sessions) {
        pthread_mutex_unlock(&t->lock);
        session_destroy(s);
        free(e);
        return sg_error_set(err, SG_ETOOBIG,
                            "session limit reached: %d sessions are open (SG_MAX_SESSIONS); delete "
                            "one or wait for idle sessions to expire",
                            t->cfg->max_sessions);
    }
    unsigned b = hash_id(s->id);
    e->next = t->buckets[b];
    t->buckets[b] = e;
    t->count++;
    t->created++;
    pthread_mutex_unlock(&t->lock);
    *out = s;
    return SG_OK;
}

sg_session *sg_session_get(sg_session_table *t, const char *id)
{
    if (!id || strlen(id) != 36)
        return NULL;
    char lower[37];
    for (int i = 0; i < 37; i++)
        lower[i] = (id[i] >= 'A' && id[i] <= 'F') ? (char)(id[i] - 'A' + 'a') : id[i];
    sg_session *found = NULL;
    pthread_mutex_lock(&t->lock);
    for (entry *e = t->buckets[hash_id(lower)]; e; e = e->next) {
        if (strcmp(e->s->id, lower) == 0) {
            found = e->s;
            atomic_fetch_add(&found->refs, 1);
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    if (found)
        sg_session_touch(found);
    return found;
}

bool sg_session_delete(sg_session_table *t, const char *id)
{
    if (!id || strlen(id) != 36)
        return false;
    char lower[37];
    for (int i = 0; i < 37; i++)
        lower[i] = (id[i] >= 'A' && id[i] <= 'F') ? (char)(id[i] - 'A' + 'a') : id[i];
    entry *victim = NULL;
    pthread_mutex_lock(&t->lock);
    for (entry **pe = &t->buckets[hash_id(lower)]; *pe; pe = &(*pe)->next) {
        if (strcmp((*pe)->s->id, lower) == 0) {
            victim = *pe;
            *pe = victim->next;
            t->count--;
            break;
        }
    }
    pthread_mutex_unlock(&t->lock);
    if (!victim)
        return false;
    sg_session_release(victim->s);
    free(victim);
    return true;
}

int sg_session_expire(sg_session_table *t, double now_ms)
{
    double ttl_ms = (double)t->cfg->session_ttl_s * 1000.0;
    entry *dead = NULL;
    int n = 0;
    pthread_mutex_lock(&t->lock);
    for (int b = 0; b < NBUCKETS; b++) {
        for (entry **pe = &t->buckets[b]; *pe;) {
            entry *e = *pe;
            /* refs == 1: only the table holds it, so no request is using it right now */
            if (now_ms - atomic_load(&e->s->last_used_ms) > ttl_ms && atomic_load(&e->s->refs) == 1) {
                *pe = e->next;
                e->next = dead;
                dead = e;
                t->count--;
                n++;
            } else {
                pe = &e->next;
            }
        }
    }
    pthread_mutex_unlock(&t->lock);
    while (dead) {
        entry *next = dead->next;
        sg_session_release(dead->s);
        free(dead);
        dead = next;
    }
    return n;
}

long sg_session_count(sg_session_table *t)
{
    pthread_mutex_lock(&t->lock);
    long n = t->count;
    pthread_mutex_unlock(&t->lock);
    return n;
}

long sg_session_created(sg_session_table *t)
{
    pthread_mutex_lock(&t->lock);
    long n = t->created;
    pthread_mutex_unlock(&t->lock);
    return n;
}

json_t *sg_session_list_json(sg_session_table *t)
{
    json_t *arr = json_array();
    pthread_mutex_lock(&t->lock);
    for (int b = 0; b < NBUCKETS; b++) {
        for (entry *e = t->buckets[b]; e; e = e->next) {
            sg_session *s = e->s;
            json_array_append_new(
                arr, json_pack("{s:s,s:I,s:b,s:I,s:I}", "session_id", s->id, "transcript_count",
                               (json_int_t)atomic_load(&s->transcript_count), "has_frame",
                               (int)atomic_load(&s->has_frame), "query_count",
                               (json_int_t)atomic_load(&s->query_count), "frame_count",
                               (json_int_t)atomic_load(&s->frame_count)));
        }
    }
    pthread_mutex_unlock(&t->lock);
    return arr;
}

void sg_session_add_transcript(sg_session *s, const char *text)
{
    if (!s->privacy.store_transcripts || !text)
        return;
    char *copy = strdup(text);
    if (!copy)
        return;
    int slot = (s->transcripts_head + s->transcripts_n) % SG_TRANSCRIPTS_KEPT;
    if (s->transcripts_n == SG_TRANSCRIPTS_KEPT) {
        slot = s->transcripts_head;
        s->transcripts_head = (s->transcripts_head + 1) % SG_TRANSCRIPTS_KEPT;
    } else {
        s->transcripts_n++;
    }
    free(s->transcripts[slot]);
    s->transcripts[slot] = copy;
    atomic_store(&s->transcript_count, s->transcripts_n);
}

void sg_session_add_turn(sg_session *s, const char *query, const char *response)
{
    if (!s->privacy.store_transcripts)
        return;
    int slot = (s->history_head + s->history_n) % SG_HISTORY_TURNS;
    if (s->history_n == SG_HISTORY_TURNS) {
        slot = s->history_head;
        s->history_head = (s->history_head + 1) % SG_HISTORY_TURNS;
    } else {
        s->history_n++;
    }
    free(s->history[slot][0]);
    free(s->history[slot][1]);
    s->history[slot][0] = query ? strdup(query) : NULL;
    s->history[slot][1] = response ? strdup(response) : NULL;
}

sg_status sg_session_keep_frame(sg_session *s, const sg_config *cfg, const uint8_t *data,
                                size_t len, sg_error *err)
{
    if (!s->privacy.store_raw_frames || cfg->frame_history <= 0)
        return SG_OK;
    if (!s->frames) {
        s->frames = calloc((size_t)cfg->frame_history, sizeof *s->frames);
        if (!s->frames)
            return sg_error_set(err, SG_ENOMEM, "out of memory");
        s->frames_cap = cfg->frame_history;
    }
    bool full = s->frames_n == s->frames_cap || s->frames_bytes + len > cfg->frame_max_bytes;
    if (full && cfg->frame_policy == SG_POLICY_REJECT)
        return sg_error_set(err, SG_ETOOBIG,
                            "frame buffer full (%d frames, %zu bytes; FRAME_BUFFER_POLICY=reject)",
                            s->frames_n, s->frames_bytes);
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
                                "session audio buffer full (%.1f s kept; AUDIO_BUFFER_POLICY=reject)",
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
    return SG_OK;
}

bool sg_session_rate_ok(sg_session *s, double rps, int *retry_after_s)
{
    if (rps <= 0)
        return true;
    double burst = rps * 2 < 1 ? 1 : rps * 2;
    double now = sg_now_ms();
    pthread_mutex_lock(&s->rate_lock);
    if (s->tokens < 0) {
        s->tokens = burst;
        s->tokens_at_ms = now;
    }
    s->tokens += (now - s->tokens_at_ms) / 1000.0 * rps;
    if (s->tokens > burst)
        s->tokens = burst;
    s->tokens_at_ms = now;
    bool ok = s->tokens >= 1.0;
    if (ok)
        s->tokens -= 1.0;
    else
        *retry_after_s = (int)ceil((1.0 - s->tokens) / rps);
    pthread_mutex_unlock(&s->rate_lock);
    return ok;
}
