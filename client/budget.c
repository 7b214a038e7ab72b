/* The upload budget (policy: pure, no I/O, time passed in). See sgclient_policy.h for the contract.
 *
 * A token bucket in bytes: it holds at most burst_kb and refills at (kb_per_min - burst_kb) a
 * minute, so whatever 60 s one looks at, the bytes spent are at most burst + refill = kb_per_min
 * (the guarantee holds for frames; audio and questions are spent unconditionally and may push the
 * bucket below zero, which then holds frames back until it refills). A frame is uploaded only
 * when its encoded size plus the request overhead fits the tokens; to fit, the quality steps down
 * from the wanted one to min_quality, guided by a size estimate (the JPEG size curve below, scaled
 * by what recent frames really weighed), and every guess is checked against the real encoded size
 * before anything is spent. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "sgclient_policy.h"

/* JPEG bytes at quality q relative to q85: TurboJPEG/libjpeg 4:2:0, the eight shared photos fitted
 * to 640x480 (docs/PERFORMANCE.md, "Phone side"), q = 20, 25, ..., 100. Scenes differ in absolute
 * size by 3x, much less in this shape, so the scale is learned and the shape is fixed. */
static const double jpeg_curve[17] = {0.303, 0.346, 0.384, 0.421, 0.450, 0.485, 0.514, 0.544, 0.582,
                                      0.631, 0.688, 0.754, 0.857, 1.000, 1.248, 1.769, 3.367};

double sg_jpeg_size_ratio(int quality)
{
    if (quality <= 20) /* below the table: down to half of q20's size at q1 (a guess; unused) */
        return jpeg_curve[0] * (0.5 + 0.5 * (quality < 1 ? 1 : quality) / 20.0);
    if (quality >= 100)
        return jpeg_curve[16];
    int i = (quality - 20) / 5;
    double t = (double)(quality - 20 - 5 * i) / 5.0;
    return jpeg_curve[i] + t * (jpeg_curve[i + 1] - jpeg_curve[i]);
}

double sg_budget_kb_per_min_for(double battery_pct)
{
    if (!(battery_pct >= 0)) /* NaN: the safe side, as the rate table */
        battery_pct = 0;
    if (battery_pct < 20)
        return 300;
    if (battery_pct < 50)
        return 450;
    return 600;
}

void sg_budget_config_default(sg_budget_config *c, double battery_pct)
{
    memset(c, 0, sizeof *c);
    c->kb_per_min = sg_budget_kb_per_min_for(battery_pct);
    c->burst_kb = 0; /* 10 % of the budget */
    c->min_quality = SG_JPEG_QUALITY_FLOOR;
    c->quality_step = 5;
    c->overhead_bytes = SG_BUDGET_OVERHEAD_BYTES;
    c->initial_kb_q85 = 50;
}

struct sg_budget {
    sg_budget_config cfg;
    double cap, rate;  /* bucket size (bytes), refill (bytes per ms) */
    double tokens;     /* bytes available; below 0 after audio/questions beyond the budget */
    double last_ms;
    bool started;
    bool owed;         /* a due frame was skipped: the next captured frame is due */
    double ref_bytes;  /* estimated JPEG bytes at q85 for the current scene (learned) */
    sg_budget_stats stats;
};

sg_client_status sg_budget_new(const sg_budget_config *cfg, sg_budget **out)
{
    sg_budget *b = calloc(1, sizeof *b);
    *out = b;
    if (!b)
        return SG_CLIENT_ENOMEM;
    if (cfg)
        b->cfg = *cfg;
    else
        sg_budget_config_default(&b->cfg, 100);
    sg_budget_config *c = &b->cfg;
    if (!(c->kb_per_min > 0) || !isfinite(c->kb_per_min))
        c->kb_per_min = 0; /* unlimited */
    if (!(c->burst_kb > 0)) /* 10 %, but room for a detailed 640x480 frame at q40 (~30 KB) plus
                               the audio charged between two refills */
        c->burst_kb = fmax(c->kb_per_min / 10, SG_BUDGET_MIN_BURST_KB);
    if (c->burst_kb >= c->kb_per_min)
        c->burst_kb = c->kb_per_min / 2;
    if (c->min_quality < 1)
        c->min_quality = 1;
    if (c->min_quality > 100)
        c->min_quality = 100;
    if (c->quality_step < 1)
        c->quality_step = 1;
    if (!(c->overhead_bytes >= 0))
        c->overhead_bytes = SG_BUDGET_OVERHEAD_BYTES;
    if (!(c->initial_kb_q85 > 0))
        c->initial_kb_q85 = 50;
    b->cap = c->burst_kb * 1024.0;
    b->rate = (c->kb_per_min - c->burst_kb) * 1024.0 / 60000.0;
    b->tokens = b->cap;
    b->ref_bytes = c->initial_kb_q85 * 1024.0;
    return SG_CLIENT_OK;
}

void sg_budget_free(sg_budget *b) { free(b); }

void sg_budget_get_config(const sg_budget *b, sg_budget_config *out) { *out = b->cfg; }

void sg_budget_get_stats(const sg_budget *b, sg_budget_stats *out) { *out = b->stats; }

bool sg_budget_unlimited(const sg_budget *b) { return !(b->cfg.kb_per_min > 0); }

double sg_budget_available(sg_budget *b, double now_ms)
{
    if (!b->started) {
        b->started = true;
        b->last_ms = now_ms;
    }
    if (now_ms > b->last_ms) {
        b->tokens += b->rate * (now_ms - b->last_ms);
        if (b->tokens > b->cap)
            b->tokens = b->cap;
        b->last_ms = now_ms;
    }
    return b->tokens;
}

void sg_budget_spend(sg_budget *b, double now_ms, sg_upload_kind kind, double bytes)
{
    sg_budget_available(b, now_ms);
    if (!isfinite(bytes))
        return;
    b->tokens -= bytes;
    if (b->tokens > b->cap) /* a refund cannot overfill the bucket */
        b->tokens = b->cap;
    if (kind >= 0 && kind < SG_UPLOAD_KINDS)
        b->stats.spent[kind] += bytes;
}

double sg_budget_frame_estimate(const sg_budget *b, int quality)
{
    return b->ref_bytes * sg_jpeg_size_ratio(quality) + b->cfg.overhead_bytes;
}

bool sg_budget_due(const sg_budget *b, bool keyframe) { return keyframe || b->owed; }

/* The next quality to try below `below` (exclusive) for a frame that wants `want`: want itself
 * first, then the multiples of the step under it, then min_quality; 0 when none is left. */
static int next_quality(const sg_budget_config *c, int want, int below)
{
    if (want < 1)
        want = 1;
    if (want > 100)
        want = 100;
    if (below > want)
        return want;
    int floor_q = c->min_quality < want ? c->min_quality : want;
    int q = (below - 1) / c->quality_step * c->quality_step;
    if (q < floor_q)
        q = floor_q;
    return q < below ? q : 0;
}

sg_client_status sg_budget_fit_frame(sg_budget *b, double now_ms, int want_quality,
                                     sg_budget_encode_fn encode, void *ud, sg_budget_frame *out)
{
    const sg_budget_config *c = &b->cfg;
    sg_budget_stats *st = &b->stats;
    memset(out, 0, sizeof *out);
    st->frames_due++;
    if (want_quality < 1)
        want_quality = 1;
    if (want_quality > 100)
        want_quality = 100;
    size_t size;
    sg_client_status es;
    if (sg_budget_unlimited(b)) {
        es = encode(ud, want_quality, &size);
        out->encodes = 1;
        if (es != SG_CLIENT_OK)
            return es;
        out->quality = want_quality;
        out->bytes = size;
        st->frames_sent++;
        sg_budget_spend(b, now_ms, SG_UPLOAD_FRAME, (double)size + c->overhead_bytes);
        return SG_CLIENT_OK;
    }
    const double avail = sg_budget_available(b, now_ms);
    double ref = b->ref_bytes; /* this frame's own estimate once it has been encoded */
    int q = next_quality(c, want_quality, 101);
    while (q > 0) {
        /* skip the qualities that the estimate already says do not fit */
        while (q > 0 && ref * sg_jpeg_size_ratio(q) + c->overhead_bytes > avail)
            q = next_quality(c, want_quality, q);
        if (q == 0)
            break;
        es = encode(ud, q, &size);
        out->encodes++;
        if (es != SG_CLIENT_OK)
            return es;
        ref = (double)size / sg_jpeg_size_ratio(q);
        b->ref_bytes = 0.5 * b->ref_bytes + 0.5 * ref; /* the scene's scale, smoothed over frames */
        if ((double)size + c->overhead_bytes <= avail) {
            out->quality = q;
            out->bytes = size;
            out->lowered = q < want_quality;
            st->frames_sent++;
            st->frames_lowered += out->lowered;
            st->reencodes += out->encodes - 1;
            b->owed = false;
            sg_budget_spend(b, now_ms, SG_UPLOAD_FRAME, (double)size + c->overhead_bytes);
            return SG_CLIENT_OK;
        }
        q = next_quality(c, want_quality, q);
    }
    st->frames_skipped++;
    st->reencodes += out->encodes > 0 ? out->encodes - 1 : 0;
    b->owed = true; /* the view the skipped frame showed still has to reach the server */
    return SG_CLIENT_OK;
}
