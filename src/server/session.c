/* Session table: open hashing over a power-of-two bucket array, a reaper-friendly expiry sweep,
 * the bounded per-session buffers that the privacy flags allow, and the DAT stream state (sequence
 * windows per chunk type, the current turn's raw audio chunks in sequence order). */
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
    sg_dat_clear(s);
    pthread_mutex_destroy(&s->dat_lock);
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
    pthread_mutex_init(&s->dat_lock, NULL);
    for (int k = 0; k < SG_DAT_TYPES; k++)
        s->dat.seen[k].hi = -1;
    s->dat.audio_consumed = -1;
    s->dat.frame_latest = -1;
    s->dat.frame_analysed = -1;
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
    sg_dat_clear(victim->s); /* raw audio goes now, even if a request still holds the session */
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
        sg_dat_clear(dead->s);
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

/* ---- DAT stream state ------------------------------------------------------------------------ */

static bool win_get(const sg_dat_window *w, long long seq)
{
    unsigned long long i = (unsigned long long)seq % SG_DAT_WINDOW;
    return (w->bits[i / 64] >> (i % 64)) & 1u;
}

static void win_put(sg_dat_window *w, long long seq, bool on)
{
    unsigned long long i = (unsigned long long)seq % SG_DAT_WINDOW;
    uint64_t m = (uint64_t)1 << (i % 64);
    w->bits[i / 64] = on ? w->bits[i / 64] | m : w->bits[i / 64] & ~m;
}

/* What claiming seq would answer, without marking it. */
static sg_dat_seen win_peek(const sg_dat_window *w, long long seq)
{
    if (seq > w->hi)
        return SG_DAT_NEW;
    if (seq <= w->hi - SG_DAT_WINDOW)
        return SG_DAT_TOO_OLD;
    return win_get(w, seq) ? SG_DAT_DUPLICATE : SG_DAT_NEW;
}

static void win_mark(sg_dat_window *w, long long seq)
{
    if (seq > w->hi) {
        /* slide: the slots of hi+1..seq held numbers that now fall out of the window */
        if (w->hi < 0 || seq - w->hi >= SG_DAT_WINDOW)
            memset(w->bits, 0, sizeof w->bits);
        else
            for (long long k = w->hi + 1; k <= seq; k++)
                win_put(w, k, false);
        w->hi = seq;
    }
    win_put(w, seq, true);
}

sg_dat_seen sg_dat_claim(sg_session *s, sg_dat_type t, long long seq)
{
    pthread_mutex_lock(&s->dat_lock);
    sg_dat_seen r = win_peek(&s->dat.seen[t], seq);
    if (r == SG_DAT_NEW)
        win_mark(&s->dat.seen[t], seq);
    else
        s->dat.cur.duplicates++;
    pthread_mutex_unlock(&s->dat_lock);
    return r;
}

void sg_dat_unclaim(sg_session *s, sg_dat_type t, long long seq)
{
    if (t == SG_DAT_AUDIO)
        return; /* a buffered chunk's mark is what keeps it from being buffered twice */
    pthread_mutex_lock(&s->dat_lock);
    sg_dat_window *w = &s->dat.seen[t];
    if (seq <= w->hi && seq > w->hi - SG_DAT_WINDOW)
        win_put(w, seq, false);
    pthread_mutex_unlock(&s->dat_lock);
}

static void stats_of(const sg_dat_state *d, sg_dat_stats *out)
{
    out->chunks = d->cur.n;
    out->bytes = d->cur.bytes;
    out->seconds = d->cur.seconds;
}

/* cur.n + 1 chunks of cur.bytes + len bytes and cur.seconds + sec seconds exceed a limit */
static bool dat_over(const sg_dat_turn *c, const sg_config *cfg, size_t extra_n, size_t len,
                     double sec)
{
    return c->n + extra_n > SG_DAT_MAX_CHUNKS || c->bytes + len > cfg->audio_max_bytes ||
           c->seconds + sec > cfg->audio_max_seconds + 1e-9;
}

sg_status sg_dat_add_audio(sg_session *s, const sg_config *cfg, long long seq,
                           const sg_dat_audio_fmt *fmt, uint8_t *data, size_t len,
                           sg_dat_seen *seen, sg_dat_stats *stats, sg_error *err)
{
    memset(stats, 0, sizeof *stats);
    size_t frame_bytes = (fmt->format == SG_AUDIO_PCM_F32LE ? 4u : 2u) * (size_t)fmt->channels;
    double sec = fmt->sample_rate > 0 ? (double)(len / frame_bytes) / fmt->sample_rate : 0;
    sg_dat_state *d = &s->dat;
    pthread_mutex_lock(&s->dat_lock);
    *seen = seq <= d->audio_consumed ? SG_DAT_DUPLICATE : win_peek(&d->seen[SG_DAT_AUDIO], seq);
    if (*seen != SG_DAT_NEW) {
        d->cur.duplicates++;
        stats_of(d, stats);
        pthread_mutex_unlock(&s->dat_lock);
        free(data);
        return SG_OK;
    }
    sg_status st = SG_OK;
    if (len > cfg->audio_max_bytes || sec > cfg->audio_max_seconds + 1e-9) {
        st = sg_error_set(err, SG_ETOOBIG,
                          "audio chunk of %zu bytes (%.3f s) is over the buffer limit on its own "
                          "(AUDIO_BUFFER_MAX_BYTES=%zu, AUDIO_BUFFER_MAX_SECONDS=%g)",
                          len, sec, cfg->audio_max_bytes, cfg->audio_max_seconds);
    } else if (dat_over(&d->cur, cfg, 1, len, sec) && cfg->audio_policy == SG_POLICY_REJECT) {
        st = sg_error_set(err, SG_ETOOBIG,
                          "DAT audio buffer full (%zu chunks, %.3f s, %zu bytes buffered; limits "
                          "%d chunks, AUDIO_BUFFER_MAX_SECONDS=%g, AUDIO_BUFFER_MAX_BYTES=%zu, "
                          "AUDIO_BUFFER_POLICY=reject): complete the turn first",
                          d->cur.n, d->cur.seconds, d->cur.bytes, SG_DAT_MAX_CHUNKS,
                          cfg->audio_max_seconds, cfg->audio_max_bytes);
    } else if (d->cur.n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 64;
        sg_dat_chunk *p = realloc(d->cur.chunks, cap * sizeof *p);
        if (!p)
            st = sg_error_set(err, SG_ENOMEM, "out of memory buffering audio");
        else {
            d->cur.chunks = p;
            d->cap = cap;
        }
    }
    if (st != SG_OK) {
        stats_of(d, stats);
        pthread_mutex_unlock(&s->dat_lock);
        free(data);
        return st;
    }
    /* insert in sequence order; chunks nearly always arrive in order, so search from the end */
    size_t pos = d->cur.n;
    while (pos > 0 && d->cur.chunks[pos - 1].seq > seq)
        pos--;
    memmove(d->cur.chunks + pos + 1, d->cur.chunks + pos, (d->cur.n - pos) * sizeof *d->cur.chunks);
    d->cur.chunks[pos] = (sg_dat_chunk){seq, *fmt, data, len, sec};
    d->cur.n++;
    d->cur.bytes += len;
    d->cur.seconds += sec;
    win_mark(&d->seen[SG_DAT_AUDIO], seq);
    stats->kept = true;
    /* trim: drop the oldest (lowest numbers) until the limits hold again */
    size_t drop = 0;
    while (drop < d->cur.n && (d->cur.n - drop > SG_DAT_MAX_CHUNKS ||
                               d->cur.bytes > cfg->audio_max_bytes ||
                               d->cur.seconds > cfg->audio_max_seconds + 1e-9)) {
        sg_dat_chunk *c = &d->cur.chunks[drop];
        if (c->seq == seq)
            stats->kept = false;
        d->cur.bytes -= c->len;
        d->cur.seconds -= c->seconds;
        free(c->data);
        drop++;
    }
    if (drop) {
        d->cur.n -= drop;
        memmove(d->cur.chunks, d->cur.chunks + drop, d->cur.n * sizeof *d->cur.chunks);
        if (d->cur.n == 0)
            d->cur.seconds = 0;
        d->cur.trimmed += (long)drop;
    }
    stats->trimmed = (long)drop;
    stats_of(d, stats);
    pthread_mutex_unlock(&s->dat_lock);
    return SG_OK;
}

void sg_dat_count(sg_session *s, sg_dat_type t, long samples)
{
    pthread_mutex_lock(&s->dat_lock);
    if (t == SG_DAT_FRAME)
        s->dat.cur.frames++;
    else if (t == SG_DAT_IMU) {
        s->dat.cur.imu_chunks++;
        s->dat.cur.imu_samples += samples;
    }
    pthread_mutex_unlock(&s->dat_lock);
}

bool sg_dat_frame_newest(sg_session *s, long long seq)
{
    pthread_mutex_lock(&s->dat_lock);
    bool newest = seq >= s->dat.frame_latest; /* equal: a retry of a frame that failed */
    if (newest)
        s->dat.frame_latest = seq;
    pthread_mutex_unlock(&s->dat_lock);
    return newest;
}

void sg_dat_stats_get(sg_session *s, sg_dat_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&s->dat_lock);
    stats_of(&s->dat, out);
    pthread_mutex_unlock(&s->dat_lock);
}

void sg_dat_take_turn(sg_session *s, sg_dat_turn *out)
{
    pthread_mutex_lock(&s->dat_lock);
    sg_dat_state *d = &s->dat;
    *out = d->cur;
    if (out->n && out->chunks[out->n - 1].seq > d->audio_consumed)
        d->audio_consumed = out->chunks[out->n - 1].seq;
    memset(&d->cur, 0, sizeof d->cur);
    d->cap = 0;
    pthread_mutex_unlock(&s->dat_lock);
}

void sg_dat_turn_free(sg_dat_turn *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->chunks[i].data);
    free(t->chunks);
    memset(t, 0, sizeof *t);
}

void sg_dat_clear(sg_session *s)
{
    sg_dat_turn t;
    pthread_mutex_lock(&s->dat_lock);
    t = s->dat.cur;
    memset(&s->dat.cur, 0, sizeof s->dat.cur);
    s->dat.cap = 0;
    pthread_mutex_unlock(&s->dat_lock);
    sg_dat_turn_free(&t);
}

/* A 44-byte WAV header for interleaved PCM, so media/audio.c decodes (and down-mixes) stereo runs
 * exactly as it does WAV uploads. */
static void wav_header(uint8_t *h, const sg_dat_audio_fmt *f, size_t bytes)
{
    unsigned bits = f->format == SG_AUDIO_PCM_F32LE ? 32 : 16;
    unsigned align = (unsigned)f->channels * bits / 8;
    uint32_t data = bytes < 0xFFFFFFFFu ? (uint32_t)bytes : 0; /* 0: runs to the end */
    uint32_t v[] = {(uint32_t)f->sample_rate, (uint32_t)f->sample_rate * align};
    memcpy(h, "RIFF\0\0\0\0WAVEfmt ", 16);
    h[16] = 16, h[17] = h[18] = h[19] = 0;
    h[20] = f->format == SG_AUDIO_PCM_F32LE ? 3 : 1, h[21] = 0;
    h[22] = (uint8_t)f->channels, h[23] = 0;
    for (int i = 0; i < 2; i++)
        for (int b = 0; b < 4; b++)
            h[24 + 4 * i + b] = (uint8_t)(v[i] >> (8 * b));
    h[32] = (uint8_t)align, h[33] = 0, h[34] = (uint8_t)bits, h[35] = 0;
    memcpy(h + 36, "data", 4);
    for (int b = 0; b < 4; b++)
        h[40 + b] = (uint8_t)(data >> (8 * b));
}

static bool same_fmt(const sg_dat_audio_fmt *a, const sg_dat_audio_fmt *b)
{
    return a->format == b->format && a->sample_rate == b->sample_rate && a->channels == b->channels;
}

sg_status sg_dat_turn_audio(const sg_dat_turn *t, sg_audio *out, sg_error *err)
{
    memset(out, 0, sizeof *out);
    float *all = NULL;
    size_t total = 0;
    for (size_t i = 0, j; i < t->n; i = j) {
        const sg_dat_audio_fmt *f = &t->chunks[i].fmt;
        size_t bytes = 0;
        for (j = i; j < t->n && same_fmt(&t->chunks[j].fmt, f); j++)
            bytes += t->chunks[j].len;
        size_t hdr = f->channels > 1 ? 44 : 0;
        uint8_t *buf = malloc(hdr + bytes);
        if (!buf) {
            free(all);
            return sg_error_set(err, SG_ENOMEM, "out of memory joining the audio chunks");
        }
        if (hdr)
            wav_header(buf, f, bytes);
        for (size_t k = i, at = hdr; k < j; at += t->chunks[k].len, k++)
            memcpy(buf + at, t->chunks[k].data, t->chunks[k].len);
        sg_audio a;
        sg_status st = sg_audio_decode(buf, hdr + bytes, hdr ? SG_AUDIO_WAV : f->format,
                                       f->sample_rate, 0, &a, err);
        free(buf);
        if (st != SG_OK) {
            free(all);
            return st;
        }
        float *grown = realloc(all, (total + a.n) * sizeof *all);
        if (!grown) {
            sg_audio_free(&a);
            free(all);
            return sg_error_set(err, SG_ENOMEM, "out of memory joining the audio chunks");
        }
        all = grown;
        memcpy(all + total, a.samples, a.n * sizeof *all);
        total += a.n;
        sg_audio_free(&a);
    }
    out->samples = all;
    out->n = total;
    out->src_rate = t->n ? t->chunks[0].fmt.sample_rate : SG_AUDIO_RATE;
    out->src_channels = t->n ? t->chunks[0].fmt.channels : 1;
    out->duration_s = t->seconds;
    return SG_OK;
}
