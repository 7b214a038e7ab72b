/* Client telemetry: the X-Client-Telemetry parser and the table of each session's last report
 * (telemetry.h). The table is a fixed array indexed by a hash of the session id with a bounded
 * probe, so a report costs a few comparisons under one mutex and memory never grows with
 * traffic: sessions beyond the capacity take the place of the oldest report. */
#include "server/telemetry.h"

#include <math.h>
#include <pthread.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

/* ---- the header -------------------------------------------------------------------------- */

#define MAX_PAIRS 16

typedef struct key {
    const char *name;
    double lo, hi;
    size_t offset; /* of the double in sg_client_report; charging is read apart */
} key;

static const key keys[] = {
    {"battery", 0, 100, offsetof(sg_client_report, battery_pct)},
    {"fps", 0, 1000, offsetof(sg_client_report, fps)},
    {"upload_kb_per_min", 0, 1e6, offsetof(sg_client_report, upload_kb_per_min)},
    {"memory", 0, 1e12, offsetof(sg_client_report, memory_bytes)},
};
#define NKEYS (sizeof keys / sizeof *keys)

static bool is_space(char c) { return c == ' ' || c == '\t'; }

/* [s, e) without the spaces around it. */
static void trim(const char **s, const char **e)
{
    while (*s < *e && is_space(**s))
        (*s)++;
    while (*e > *s && is_space((*e)[-1]))
        (*e)--;
}

static bool word_is(const char *s, size_t n, const char *w)
{
    return strlen(w) == n && strncasecmp(s, w, n) == 0;
}

/* A finite number filling [s, e), or false. */
static bool number(const char *s, const char *e, double *out)
{
    char buf[40];
    const size_t n = (size_t)(e - s);
    if (n == 0 || n >= sizeof buf)
        return false;
    memcpy(buf, s, n);
    buf[n] = 0;
    for (size_t i = 0; i < n; i++) /* strtod's hex, inf, nan and spaces are not numbers here */
        if (!strchr("0123456789.eE+-", buf[i]))
            return false;
    char *end;
    double v = strtod(buf, &end);
    if (end != buf + n || !isfinite(v))
        return false;
    *out = v;
    return true;
}

static sg_status pair(const char *k, const char *ke, const char *v, const char *ve,
                      sg_client_report *out, unsigned *seen, sg_error *err)
{
    const size_t kn = (size_t)(ke - k);
    if (word_is(k, kn, "charging")) {
        if (*seen & (1u << NKEYS))
            return sg_error_set(err, SG_EINVAL, "telemetry key charging given twice");
        *seen |= 1u << NKEYS;
        const size_t vn = (size_t)(ve - v);
        if (word_is(v, vn, "1") || word_is(v, vn, "true"))
            out->charging = 1;
        else if (word_is(v, vn, "0") || word_is(v, vn, "false"))
            out->charging = 0;
        else
            return sg_error_set(err, SG_EINVAL, "telemetry charging must be 0 or 1 (got \"%.*s\")",
                                (int)(vn > 20 ? 20 : vn), v);
        return SG_OK;
    }
    for (unsigned i = 0; i < NKEYS; i++) {
        if (!word_is(k, kn, keys[i].name))
            continue;
        if (*seen & (1u << i))
            return sg_error_set(err, SG_EINVAL, "telemetry key %s given twice", keys[i].name);
        *seen |= 1u << i;
        double x;
        if (!number(v, ve, &x) || x < keys[i].lo || x > keys[i].hi)
            return sg_error_set(err, SG_EINVAL, "telemetry %s must be a number in %g..%g (got "
                                "\"%.*s\")", keys[i].name, keys[i].lo, keys[i].hi,
                                (int)(ve - v > 20 ? 20 : ve - v), v);
        *(double *)((char *)out + keys[i].offset) = x;
        return SG_OK;
    }
    return SG_OK; /* a key of a newer client */
}

sg_status sg_client_report_parse(const char *s, size_t len, sg_client_report *out, sg_error *err)
{
    *out = (sg_client_report){-1, -1, -1, -1, -1};
    if (len > SG_TELEMETRY_MAX_BYTES)
        return sg_error_set(err, SG_EINVAL, "telemetry header over %d bytes", SG_TELEMETRY_MAX_BYTES);
    unsigned seen = 0;
    int pairs = 0;
    const char *p = s, *end = s + len;
    while (p < end) {
        const char *q = p;
        while (q < end && *q != ';' && *q != ',')
            q++;
        const char *ps = p, *pe = q;
        trim(&ps, &pe);
        p = q + 1;
        if (ps == pe)
            continue; /* "a=1;;b=2", a trailing ';' */
        if (++pairs > MAX_PAIRS)
            return sg_error_set(err, SG_EINVAL, "telemetry header with over %d pairs", MAX_PAIRS);
        const char *eq = memchr(ps, '=', (size_t)(pe - ps));
        if (!eq)
            return sg_error_set(err, SG_EINVAL, "telemetry pair \"%.*s\" has no '='",
                                (int)(pe - ps > 20 ? 20 : pe - ps), ps);
        const char *k = ps, *ke = eq, *v = eq + 1, *ve = pe;
        trim(&k, &ke);
        trim(&v, &ve);
        sg_status st = pair(k, ke, v, ve, out, &seen, err);
        if (st != SG_OK)
            return st;
    }
    if (!(seen & 1u))
        return sg_error_set(err, SG_EINVAL, "telemetry must include battery=<0..100>");
    return SG_OK;
}

sg_battery_band sg_battery_band_of(double battery_pct)
{
    return battery_pct >= 50 ? SG_BAND_HIGH : battery_pct >= 20 ? SG_BAND_MID : SG_BAND_LOW;
}

const char *sg_battery_band_name(sg_battery_band b)
{
    static const char *const names[SG_BAND_COUNT] = {"low", "mid", "high"};
    return (unsigned)b < SG_BAND_COUNT ? names[b] : "low";
}

/* ---- the table --------------------------------------------------------------------------- */

#define PROBE 16 /* places an id may take: a report or a lookup reads at most these */

typedef struct entry {
    char id[40];   /* "" = free */
    double at_s;
    sg_client_report r;
} entry;

struct sg_telemetry {
    pthread_mutex_t lock;
    entry *slots;
    size_t mask;
    double window_s;
    long reports, evicted;
};

sg_telemetry *sg_telemetry_new(int capacity, double window_s)
{
    size_t cap = 64;
    while ((int)cap < capacity && cap < 65536)
        cap *= 2;
    sg_telemetry *t = calloc(1, sizeof *t);
    if (!t)
        return NULL;
    t->slots = calloc(cap, sizeof *t->slots);
    if (!t->slots) {
        free(t);
        return NULL;
    }
    pthread_mutex_init(&t->lock, NULL);
    t->mask = cap - 1;
    t->window_s = window_s;
    return t;
}

void sg_telemetry_free(sg_telemetry *t)
{
    if (!t)
        return;
    pthread_mutex_destroy(&t->lock);
    free(t->slots);
    free(t);
}

static size_t hash_id(const char *id)
{
    uint64_t h = 1469598103934665603ull; /* FNV-1a */
    for (const unsigned char *p = (const unsigned char *)id; *p; p++)
        h = (h ^ *p) * 1099511628211ull;
    return (size_t)(h ^ (h >> 29));
}

/* The slot holding id within its probe, or NULL. */
static entry *find(sg_telemetry *t, const char *id, size_t h)
{
    for (size_t i = 0; i < PROBE; i++) {
        entry *e = &t->slots[(h + i) & t->mask];
        if (e->id[0] && strcmp(e->id, id) == 0)
            return e;
    }
    return NULL;
}

void sg_telemetry_report(sg_telemetry *t, const char *session_id, const sg_client_report *r,
                         double now_s)
{
    if (!t || !session_id || !session_id[0] || strlen(session_id) >= sizeof t->slots->id)
        return;
    const size_t h = hash_id(session_id);
    pthread_mutex_lock(&t->lock);
    entry *e = find(t, session_id, h);
    if (!e) {
        /* a free place, else one whose report is out of the window, else the oldest */
        entry *oldest = NULL;
        for (size_t i = 0; i < PROBE && !e; i++) {
            entry *c = &t->slots[(h + i) & t->mask];
            if (!c->id[0] || now_s - c->at_s > t->window_s)
                e = c;
            else if (!oldest || c->at_s < oldest->at_s)
                oldest = c;
        }
        if (!e) {
            e = oldest;
            t->evicted++;
        }
        memcpy(e->id, session_id, strlen(session_id) + 1);
    }
    e->at_s = now_s;
    e->r = *r;
    t->reports++;
    pthread_mutex_unlock(&t->lock);
}

void sg_telemetry_forget(sg_telemetry *t, const char *session_id)
{
    if (!t || !session_id)
        return;
    pthread_mutex_lock(&t->lock);
    entry *e = find(t, session_id, hash_id(session_id));
    if (e)
        e->id[0] = 0;
    pthread_mutex_unlock(&t->lock);
}

void sg_telemetry_snapshot_at(sg_telemetry *t, double now_s, sg_telemetry_snapshot *out)
{
    memset(out, 0, sizeof *out);
    if (!t)
        return;
    pthread_mutex_lock(&t->lock);
    for (size_t i = 0; i <= t->mask; i++) {
        const entry *e = &t->slots[i];
        if (!e->id[0] || now_s - e->at_s > t->window_s)
            continue;
        const sg_client_report *r = &e->r;
        sg_telemetry_band *b = &out->band[sg_battery_band_of(r->battery_pct)];
        b->sessions++;
        b->battery_sum += r->battery_pct;
        if (r->fps >= 0) {
            b->fps_n++;
            b->fps_sum += r->fps;
        }
        if (r->upload_kb_per_min >= 0) {
            b->upload_n++;
            b->upload_sum += r->upload_kb_per_min;
        }
        out->charging += r->charging == 1;
        if (r->memory_bytes >= 0) {
            out->memory_n++;
            out->memory_sum += r->memory_bytes;
            if (r->memory_bytes > out->memory_max)
                out->memory_max = r->memory_bytes;
        }
    }
    out->reports = t->reports;
    out->evicted = t->evicted;
    pthread_mutex_unlock(&t->lock);
}
