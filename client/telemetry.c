/* What a client says about itself: the X-Client-Telemetry header and the usage meter behind its
 * frame rate and upload rate (sgclient_policy.h, "telemetry"). Pure: libc and libm. */
#include "sgclient_policy.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static double clamp(double v, double lo, double hi) { return v < lo ? lo : v > hi ? hi : v; }

sg_client_status sg_client_telemetry_header(const sg_client_telemetry *t,
                                            char out[SG_TELEMETRY_HEADER_SIZE])
{
    out[0] = 0;
    if (!t || !(t->battery_pct >= 0 && t->battery_pct <= 100)) /* NaN fails both */
        return SG_CLIENT_EINVAL;
    /* ranges as the server's parser (src/server/telemetry.c) takes them */
    int n = snprintf(out, SG_TELEMETRY_HEADER_SIZE, "X-Client-Telemetry: battery=%.1f",
                     t->battery_pct);
    if (t->charging == 0 || t->charging == 1)
        n += snprintf(out + n, SG_TELEMETRY_HEADER_SIZE - (size_t)n, "; charging=%d", t->charging);
    if (t->fps >= 0 && isfinite(t->fps))
        n += snprintf(out + n, SG_TELEMETRY_HEADER_SIZE - (size_t)n, "; fps=%.2f",
                      clamp(t->fps, 0, 1000));
    if (t->upload_kb_per_min >= 0 && isfinite(t->upload_kb_per_min))
        n += snprintf(out + n, SG_TELEMETRY_HEADER_SIZE - (size_t)n, "; upload_kb_per_min=%.1f",
                      clamp(t->upload_kb_per_min, 0, 1e6));
    if (t->memory_bytes >= 0 && isfinite(t->memory_bytes))
        snprintf(out + n, SG_TELEMETRY_HEADER_SIZE - (size_t)n, "; memory=%.0f",
                 clamp(t->memory_bytes, 0, 1e12));
    return SG_CLIENT_OK;
}

#define SLOTS 60 /* one-second buckets: the last minute */

typedef struct bucket {
    long long second; /* which second it holds; -1 = none */
    uint64_t bytes;
    long frames;
} bucket;

struct sg_usage_meter {
    bucket b[SLOTS];
    long long first, last; /* seconds of the first and the newest add; first -1 = none */
};

sg_client_status sg_usage_meter_new(sg_usage_meter **out)
{
    sg_usage_meter *m = calloc(1, sizeof *m);
    *out = m;
    if (!m)
        return SG_CLIENT_ENOMEM;
    for (int i = 0; i < SLOTS; i++)
        m->b[i].second = -1;
    m->first = m->last = -1;
    return SG_CLIENT_OK;
}

void sg_usage_meter_free(sg_usage_meter *m) { free(m); }

void sg_usage_meter_add(sg_usage_meter *m, double now_ms, uint64_t bytes, int frames)
{
    if (!m || !(now_ms >= 0))
        return;
    long long sec = (long long)(now_ms / 1000.0);
    if (sec < m->last)
        sec = m->last; /* time going backwards: the newest bucket */
    bucket *b = &m->b[sec % SLOTS];
    if (b->second != sec)
        *b = (bucket){sec, 0, 0};
    b->bytes += bytes;
    b->frames += frames > 0 ? frames : 0;
    if (m->first < 0)
        m->first = sec;
    m->last = sec;
}

void sg_usage_meter_rates(const sg_usage_meter *m, double now_ms, double *fps, double *kb_per_min)
{
    *fps = *kb_per_min = 0;
    if (!m || m->first < 0 || !(now_ms >= 0))
        return;
    const long long now = (long long)(now_ms / 1000.0);
    uint64_t bytes = 0;
    long frames = 0;
    for (int i = 0; i < SLOTS; i++)
        if (m->b[i].second >= 0 && m->b[i].second > now - SLOTS && m->b[i].second <= now) {
            bytes += m->b[i].bytes;
            frames += m->b[i].frames;
        }
    /* the span the buckets cover: the last minute, or since the first add (whole seconds, the
     * current one counted as a whole: at least 1 s) */
    double span = (double)(now - m->first + 1);
    span = clamp(span, 1, SLOTS);
    *fps = (double)frames / span;
    *kb_per_min = (double)bytes / 1024.0 / span * 60.0;
}
