/* Frame-side policy: the motion score, resizing a camera frame to the upload size, the keyframe
 * thumbnail and the on-device keyframe pre-filter. Pure code (libc + libm); the pre-filter runs the
 * server's own gate, src/agent/keyframe.c, and the thumbnail is the server's src/media/thumb.c,
 * both compiled into this library too, so there is one implementation of each, not a copy. */
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "agent/keyframe.h"
#include "media/thumb.h"
#include "sgclient_policy.h"

/* ---- motion ---------------------------------------------------------------------------------- */

double sg_motion_score(const uint8_t *a, const uint8_t *b, int width, int height, size_t stride,
                       int bytes_per_pixel, int step)
{
    if (!a || !b || width <= 0 || height <= 0 || (bytes_per_pixel != 3 && bytes_per_pixel != 4))
        return 0.0;
    if ((size_t)width * (size_t)bytes_per_pixel > stride)
        return 0.0;
    if (step < 1)
        step = 1;
    uint64_t sum = 0, n = 0;
    for (int y = 0; y < height; y += step) {
        const uint8_t *ra = a + (size_t)y * stride, *rb = b + (size_t)y * stride;
        for (int x = 0; x < width; x += step) {
            const uint8_t *pa = ra + (size_t)x * (size_t)bytes_per_pixel;
            const uint8_t *pb = rb + (size_t)x * (size_t)bytes_per_pixel;
            for (int c = 0; c < 3; c++)
                sum += (uint64_t)abs((int)pa[c] - (int)pb[c]);
            n++;
        }
    }
    return (double)sum / ((double)n * 3.0 * 255.0);
}

struct sg_motion_tracker {
    int step, width, height;
    uint8_t *samples; /* 3 bytes per sampled pixel of the previous frame */
    size_t cap;
    bool has_prev;
};

sg_client_status sg_motion_tracker_new(int step, sg_motion_tracker **out)
{
    sg_motion_tracker *t = calloc(1, sizeof *t);
    *out = t;
    if (!t)
        return SG_CLIENT_ENOMEM;
    t->step = step >= 1 ? step : 10;
    return SG_CLIENT_OK;
}

void sg_motion_tracker_free(sg_motion_tracker *t)
{
    if (!t)
        return;
    free(t->samples);
    free(t);
}

double sg_motion_tracker_push(sg_motion_tracker *t, const uint8_t *frame, int width, int height,
                              size_t stride, int bytes_per_pixel)
{
    if (!t || !frame || width <= 0 || height <= 0 || (bytes_per_pixel != 3 && bytes_per_pixel != 4) ||
        (size_t)width * (size_t)bytes_per_pixel > stride)
        return 0.0;
    size_t sx = (size_t)(width + t->step - 1) / (size_t)t->step;
    size_t sy = (size_t)(height + t->step - 1) / (size_t)t->step;
    size_t need = sx * sy * 3;
    bool comparable = t->has_prev && t->width == width && t->height == height;
    if (need > t->cap) {
        uint8_t *p = realloc(t->samples, need);
        if (!p)
            return 0.0;
        t->samples = p;
        t->cap = need;
    }
    uint64_t sum = 0;
    uint8_t *s = t->samples;
    for (int y = 0; y < height; y += t->step) {
        const uint8_t *row = frame + (size_t)y * stride;
        for (int x = 0; x < width; x += t->step) {
            const uint8_t *p = row + (size_t)x * (size_t)bytes_per_pixel;
            for (int c = 0; c < 3; c++, s++) {
                if (comparable)
                    sum += (uint64_t)abs((int)p[c] - (int)*s);
                *s = p[c];
            }
        }
    }
    t->width = width;
    t->height = height;
    t->has_prev = true;
    return comparable ? (double)sum / ((double)need * 255.0) : 0.0;
}

/* ---- resize ---------------------------------------------------------------------------------- */

/* Per-axis resampling taps: output i reads src[first[i] .. first[i]+count[i]) with weights
 * w[off[i] ...]. Shrinking: exact box (area) weights; enlarging: bilinear at pixel centres. */
typedef struct taps {
    int *first, *count, *off;
    float *w;
} taps;

static void taps_free(taps *t)
{
    free(t->first);
    free(t->count);
    free(t->off);
    free(t->w);
}

static int taps_make(taps *t, int src, int dst)
{
    memset(t, 0, sizeof *t);
    double scale = (double)src / dst;
    int per = scale > 1.0 ? (int)ceil(scale) + 1 : 2;
    t->first = malloc((size_t)dst * sizeof *t->first);
    t->count = malloc((size_t)dst * sizeof *t->count);
    t->off = malloc((size_t)dst * sizeof *t->off);
    t->w = malloc((size_t)dst * (size_t)per * sizeof *t->w);
    if (!t->first || !t->count || !t->off || !t->w) {
        taps_free(t);
        return -1;
    }
    int off = 0;
    for (int i = 0; i < dst; i++) {
        t->off[i] = off;
        if (scale > 1.0) {
            /* output i covers [i*src, (i+1)*src) in units where a source pixel is dst wide */
            long long lo = (long long)i * src, hi = lo + src;
            int x0 = (int)(lo / dst), x1 = (int)((hi - 1) / dst);
            t->first[i] = x0;
            t->count[i] = x1 - x0 + 1;
            for (int x = x0; x <= x1; x++) {
                long long a = (long long)x * dst, b = a + dst;
                long long ov = (b < hi ? b : hi) - (a > lo ? a : lo);
                t->w[off++] = (float)((double)ov / (double)src);
            }
        } else {
            double c = (i + 0.5) * scale - 0.5;
            if (c < 0.0)
                c = 0.0;
            int x0 = (int)floor(c);
            if (x0 > src - 1)
                x0 = src - 1;
            double f = c - x0;
            t->first[i] = x0;
            if (x0 + 1 < src && f > 0.0) {
                t->count[i] = 2;
                t->w[off++] = (float)(1.0 - f);
                t->w[off++] = (float)f;
            } else {
                t->count[i] = 1;
                t->w[off++] = 1.0f;
            }
        }
    }
    return 0;
}

sg_client_status sg_rgb_fit(const uint8_t *src, int sw, int sh, uint8_t *dst, int dw, int dh)
{
    if (!src || !dst || sw <= 0 || sh <= 0 || dw <= 0 || dh <= 0 || sw > 65535 || sh > 65535 ||
        dw > 65535 || dh > 65535)
        return SG_CLIENT_EINVAL;
    /* centre crop to dw:dh */
    int cw = sw, ch = sh;
    if ((long long)sw * dh > (long long)sh * dw)
        cw = (int)(((long long)sh * dw + dh / 2) / dh);
    else
        ch = (int)(((long long)sw * dh + dw / 2) / dw);
    if (cw < 1)
        cw = 1;
    if (ch < 1)
        ch = 1;
    const uint8_t *base = src + ((size_t)((sh - ch) / 2) * (size_t)sw + (size_t)((sw - cw) / 2)) * 3;
    if (cw == dw && ch == dh) {
        for (int y = 0; y < dh; y++)
            memcpy(dst + (size_t)y * dw * 3, base + (size_t)y * sw * 3, (size_t)dw * 3);
        return SG_CLIENT_OK;
    }
    taps tx, ty;
    if (taps_make(&tx, cw, dw) != 0)
        return SG_CLIENT_ENOMEM;
    if (taps_make(&ty, ch, dh) != 0) {
        taps_free(&tx);
        return SG_CLIENT_ENOMEM;
    }
    float *tmp = malloc((size_t)ch * (size_t)dw * 3 * sizeof *tmp); /* horizontal pass */
    if (!tmp) {
        taps_free(&tx);
        taps_free(&ty);
        return SG_CLIENT_ENOMEM;
    }
    for (int y = 0; y < ch; y++) {
        const uint8_t *row = base + (size_t)y * sw * 3;
        float *out = tmp + (size_t)y * dw * 3;
        for (int i = 0; i < dw; i++) {
            float r = 0, g = 0, b = 0;
            const float *w = tx.w + tx.off[i];
            const uint8_t *p = row + (size_t)tx.first[i] * 3;
            for (int k = 0; k < tx.count[i]; k++, p += 3) {
                r += w[k] * p[0];
                g += w[k] * p[1];
                b += w[k] * p[2];
            }
            out[i * 3] = r;
            out[i * 3 + 1] = g;
            out[i * 3 + 2] = b;
        }
    }
    for (int j = 0; j < dh; j++) {
        uint8_t *out = dst + (size_t)j * dw * 3;
        const float *w = ty.w + ty.off[j];
        for (int i = 0; i < dw * 3; i++) {
            float v = 0;
            for (int k = 0; k < ty.count[j]; k++)
                v += w[k] * tmp[(size_t)(ty.first[j] + k) * dw * 3 + i];
            int q = (int)lrintf(v);
            out[i] = (uint8_t)(q < 0 ? 0 : (q > 255 ? 255 : q));
        }
    }
    free(tmp);
    taps_free(&tx);
    taps_free(&ty);
    return SG_CLIENT_OK;
}

/* ---- keyframe pre-filter --------------------------------------------------------------------- */

/* The thumbnail is the server's (src/media/thumb.c, compiled into this library as well); the
 * library exports it under its own name, so a shared build need not export the server's. */
void sg_prefilter_thumb(const uint8_t *rgb, int width, int height, float thumb[64])
{
    sg_thumb8_rgb(rgb, width, height, thumb);
}

struct sg_prefilter {
    sg_keyframe_gate gate;
};

sg_client_status sg_prefilter_new(float diff_tau, int min_gap, sg_prefilter **out)
{
    sg_prefilter *p = malloc(sizeof *p);
    *out = p;
    if (!p)
        return SG_CLIENT_ENOMEM;
    sg_keyframe_gate_init(&p->gate, diff_tau > 0.0f ? diff_tau : SG_KEYFRAME_DIFF_TAU,
                          min_gap > 0 ? min_gap : SG_KEYFRAME_MIN_GAP);
    return SG_CLIENT_OK;
}

void sg_prefilter_free(sg_prefilter *p) { free(p); }

bool sg_prefilter_push(sg_prefilter *p, const float thumb[64])
{
    return sg_keyframe_gate_push(&p->gate, thumb, false).keyframe;
}

long long sg_prefilter_frames(const sg_prefilter *p) { return p->gate.frames; }
long long sg_prefilter_keyframes(const sg_prefilter *p) { return p->gate.keyframes; }
