/* A DAT stream's state in one process (server/dat_state.h): sequence windows per chunk type, the
 * current turn's raw audio chunks in sequence order, joining a turn's chunks into 16 kHz audio. */
#include "server/dat_state.h"

#include <stdlib.h>
#include <string.h>

void sg_dat_state_init(sg_dat_state *d)
{
    memset(d, 0, sizeof *d);
    pthread_mutex_init(&d->lock, NULL);
    for (int k = 0; k < SG_DAT_TYPES; k++)
        d->seen[k].hi = -1;
    d->audio_consumed = -1;
    d->frame_latest = -1;
}

void sg_dat_state_free(sg_dat_state *d)
{
    sg_dat_state_clear(d);
    pthread_mutex_destroy(&d->lock);
}

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

static sg_dat_seen state_claim(void *self, sg_dat_type t, long long seq)
{
    sg_dat_state *d = self;
    pthread_mutex_lock(&d->lock);
    sg_dat_seen r = win_peek(&d->seen[t], seq);
    if (r == SG_DAT_NEW)
        win_mark(&d->seen[t], seq);
    else
        d->cur.duplicates++;
    pthread_mutex_unlock(&d->lock);
    return r;
}

static void state_unclaim(void *self, sg_dat_type t, long long seq)
{
    if (t == SG_DAT_AUDIO)
        return; /* a buffered chunk's mark is what keeps it from being buffered twice */
    sg_dat_state *d = self;
    pthread_mutex_lock(&d->lock);
    sg_dat_window *w = &d->seen[t];
    if (seq <= w->hi && seq > w->hi - SG_DAT_WINDOW)
        win_put(w, seq, false);
    pthread_mutex_unlock(&d->lock);
}

static void stats_of(const sg_dat_state *d, sg_dat_stats *out)
{
    out->chunks = d->cur.n;
    out->bytes = d->cur.bytes;
    out->seconds = d->cur.seconds;
}

double sg_dat_chunk_seconds(const sg_dat_audio_fmt *fmt, size_t len)
{
    size_t frame_bytes = (fmt->format == SG_AUDIO_PCM_F32LE ? 4u : 2u) * (size_t)fmt->channels;
    return fmt->sample_rate > 0 && frame_bytes ? (double)(len / frame_bytes) / fmt->sample_rate : 0;
}

sg_status sg_dat_error_chunk_over(sg_error *err, const sg_config *cfg, size_t len, double sec)
{
    return sg_error_set(err, SG_ETOOBIG,
                        "Audio payload exceeds configured maximum buffer %s: audio chunk of %zu "
                        "bytes (%.3f s) is over the buffer limit on its own "
                        "(AUDIO_BUFFER_MAX_BYTES=%zu, AUDIO_BUFFER_MAX_SECONDS=%g)",
                        len > cfg->audio_max_bytes ? "size" : "duration", len, sec,
                        cfg->audio_max_bytes, cfg->audio_max_seconds);
}

sg_status sg_dat_error_full(sg_error *err, const sg_config *cfg, size_t n, double seconds,
                            size_t bytes)
{
    return sg_error_set(err, SG_ETOOBIG,
                        "Audio buffer would exceed configured limits; adjust AUDIO_BUFFER_* "
                        "settings or set AUDIO_BUFFER_POLICY=trim: %zu chunks, %.3f s, %zu bytes "
                        "buffered under reject (limits %g s, %zu bytes, %d chunks); complete the "
                        "turn first",
                        n, seconds, bytes, cfg->audio_max_seconds, cfg->audio_max_bytes,
                        SG_DAT_MAX_CHUNKS);
}

/* cur.n + 1 chunks of cur.bytes + len bytes and cur.seconds + sec seconds exceed a limit */
static bool dat_over(const sg_dat_turn *c, const sg_config *cfg, size_t extra_n, size_t len,
                     double sec)
{
    return c->n + extra_n > SG_DAT_MAX_CHUNKS || c->bytes + len > cfg->audio_max_bytes ||
           c->seconds + sec > cfg->audio_max_seconds + 1e-9;
}

static sg_status state_add_audio(void *self, const sg_config *cfg, long long seq,
                                 const sg_dat_audio_fmt *fmt, uint8_t *data, size_t len,
                                 sg_dat_seen *seen, sg_dat_stats *stats, sg_error *err)
{
    sg_dat_state *d = self;
    memset(stats, 0, sizeof *stats);
    double sec = sg_dat_chunk_seconds(fmt, len);
    pthread_mutex_lock(&d->lock);
    *seen = seq <= d->audio_consumed ? SG_DAT_DUPLICATE : win_peek(&d->seen[SG_DAT_AUDIO], seq);
    if (*seen != SG_DAT_NEW) {
        d->cur.duplicates++;
        stats_of(d, stats);
        pthread_mutex_unlock(&d->lock);
        free(data);
        return SG_OK;
    }
    sg_status st = SG_OK;
    if (len > cfg->audio_max_bytes || sec > cfg->audio_max_seconds + 1e-9) {
        st = sg_dat_error_chunk_over(err, cfg, len, sec);
    } else if (dat_over(&d->cur, cfg, 1, len, sec) && cfg->audio_policy == SG_POLICY_REJECT) {
        st = sg_dat_error_full(err, cfg, d->cur.n, d->cur.seconds, d->cur.bytes);
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
        pthread_mutex_unlock(&d->lock);
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
    pthread_mutex_unlock(&d->lock);
    return SG_OK;
}

static void state_count(void *self, sg_dat_type t, long samples)
{
    sg_dat_state *d = self;
    pthread_mutex_lock(&d->lock);
    if (t == SG_DAT_FRAME)
        d->cur.frames++;
    else if (t == SG_DAT_IMU) {
        d->cur.imu_chunks++;
        d->cur.imu_samples += samples;
    }
    pthread_mutex_unlock(&d->lock);
}

static bool state_frame_newest(void *self, long long seq)
{
    sg_dat_state *d = self;
    pthread_mutex_lock(&d->lock);
    bool newest = seq >= d->frame_latest; /* equal: a retry of a frame that failed */
    if (newest)
        d->frame_latest = seq;
    pthread_mutex_unlock(&d->lock);
    return newest;
}

void sg_dat_state_stats(sg_dat_state *d, sg_dat_stats *out)
{
    memset(out, 0, sizeof *out);
    pthread_mutex_lock(&d->lock);
    stats_of(d, out);
    pthread_mutex_unlock(&d->lock);
}

/* Takes the current turn out under the lock (the chunks are freed by the caller, outside it). */
static void take_cur(sg_dat_state *d, sg_dat_turn *out, bool consumed)
{
    pthread_mutex_lock(&d->lock);
    *out = d->cur;
    if (consumed && out->n && out->chunks[out->n - 1].seq > d->audio_consumed)
        d->audio_consumed = out->chunks[out->n - 1].seq;
    memset(&d->cur, 0, sizeof d->cur);
    d->cap = 0;
    pthread_mutex_unlock(&d->lock);
}

static sg_status state_take_turn(void *self, sg_dat_turn *out, sg_error *err)
{
    (void)err; /* in process it cannot fail */
    take_cur(self, out, true);
    return SG_OK;
}

const sg_dat_ops sg_dat_state_ops = {
    .claim = state_claim,
    .unclaim = state_unclaim,
    .add_audio = state_add_audio,
    .count = state_count,
    .frame_newest = state_frame_newest,
    .take_turn = state_take_turn,
};

void sg_dat_turn_free(sg_dat_turn *t)
{
    for (size_t i = 0; i < t->n; i++)
        free(t->chunks[i].data);
    free(t->chunks);
    memset(t, 0, sizeof *t);
}

void sg_dat_state_clear(sg_dat_state *d)
{
    sg_dat_turn t;
    take_cur(d, &t, false);
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
