/* CLIP preprocessing. The resize reproduces Pillow's bicubic resampler arithmetic (double-precision
 * weights, normalised per output sample, rounded to 22-bit fixed point; integer accumulation; an
 * 8-bit intermediate between the horizontal and the vertical pass), because CLIP was trained and
 * is evaluated on Pillow's pixels and a "better" resize shifts the embeddings. The CLIP step then
 * follows transformers' CLIPImageProcessor in the same float32 operations numpy performs, so the
 * tensor matches bit for bit, not merely to a tolerance. */
#include "media/preprocess.h"

#include "nn/resample.h"

#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* The weights must be computed exactly as Pillow computes them: a fused multiply-add would change
 * the last bit of a weight and, rarely, its fixed-point rounding. GCC does not contract in ISO C
 * mode (-std=c11); clang needs telling. */
#ifdef __clang__
#pragma STDC FP_CONTRACT OFF
#endif

/* Keys' cubic convolution kernel with a = -0.5 (Catmull-Rom), support 2. The expressions keep the
 * reference's operation order: weights are rounded to fixed point after this, and a different
 * last bit can move a weight across a rounding boundary. */
static double cubic_weight(double x)
{
    const double a = -0.5;
    if (x < 0.0)
        x = -x;
    if (x < 1.0)
        return ((a + 2.0) * x - (a + 3.0)) * x * x + 1;
    if (x < 2.0)
        return (((x - 5) * x + 8) * x - 4) * a;
    return 0.0;
}

/* Weights of one axis for output samples [o0, o0 + n) of an in_size -> out_size resize. Output
 * sample o reads inputs first[i] .. first[i] + count[i] - 1 with weights k[i * ksize + t]. */

static void axis_free(sg_resample_axis *ax)
{
    free(ax->first);
    free(ax->count);
    free(ax->k);
    memset(ax, 0, sizeof *ax);
}

static sg_status axis_init(sg_resample_axis *ax, int in_size, int out_size, int o0, int n,
                           sg_error *err)
{
    memset(ax, 0, sizeof *ax);
    /* scale is in/out; when shrinking the kernel is stretched by it (antialiasing) and its taps
     * are evaluated at distance/scale, so the support covers 2 * scale input pixels. */
    double scale = (double)in_size / out_size;
    double filterscale = scale < 1.0 ? 1.0 : scale;
    double support = 2.0 * filterscale;
    double inv = 1.0 / filterscale;
    int ksize = (int)ceil(support) * 2 + 1;

    ax->n = n;
    ax->ksize = ksize;
    ax->first = malloc((size_t)n * sizeof *ax->first);
    ax->count = malloc((size_t)n * sizeof *ax->count);
    ax->k = malloc((size_t)n * (size_t)ksize * sizeof *ax->k);
    double *w = malloc((size_t)ksize * sizeof *w);
    if (!ax->first || !ax->count || !ax->k || !w) {
        free(w);
        axis_free(ax);
        return sg_error_set(err, SG_ENOMEM, "no memory for %d resize weights", n);
    }

    for (int i = 0; i < n; i++) {
        int o = o0 + i;
        double center = (o + 0.5) * scale;
        /* The window is [center - support, center + support] rounded half up, by truncation as
         * the reference does (only non-negative values survive the clamp, so this is floor). */
        int lo = (int)(center - support + 0.5);
        if (lo < 0)
            lo = 0;
        int hi = (int)(center + support + 0.5);
        if (hi > in_size)
            hi = in_size;
        int cnt = hi - lo;
        /* Never triggers: the window spans 1 .. 2 * support + 1 samples. Kept as a bound. */
        if (cnt > ksize)
            cnt = ksize;
        if (cnt < 0)
            cnt = 0;

        double sum = 0.0;
        for (int t = 0; t < cnt; t++) {
            w[t] = cubic_weight((t + lo - center + 0.5) * inv);
            sum += w[t];
        }
        int32_t *k = ax->k + (size_t)i * ksize;
        for (int t = 0; t < cnt; t++) {
            double v = sum != 0.0 ? w[t] / sum : w[t];
            /* round half away from zero */
            k[t] = v < 0 ? (int32_t)(-0.5 + v * (1 << SG_RESAMPLE_BITS))
                         : (int32_t)(0.5 + v * (1 << SG_RESAMPLE_BITS));
        }
        for (int t = cnt; t < ksize; t++)
            k[t] = 0;
        ax->first[i] = lo;
        ax->count[i] = cnt;
    }
    free(w);
    return SG_OK;
}

/* Computes the window [x0, x0 + rw) x [y0, y0 + rh) of the out_w x out_h Pillow resize of src
 * into dst (rw * rh * 3 bytes). Every output pixel depends only on its own column's and row's
 * weights and on the 8-bit horizontal intermediate of the rows it reads, so a window equals the
 * same pixels of the full resize. */
static sg_status resize_window(const sg_image *src, int out_w, int out_h, int x0, int y0, int rw,
                               int rh, uint8_t *dst, sg_error *err)
{
    const int in_w = src->width, in_h = src->height;
    const size_t in_stride = (size_t)in_w * 3, win_bytes = (size_t)rw * 3;
    const int need_h = out_w != in_w, need_v = out_h != in_h;
    sg_resample_axis hx = {0}, vy = {0};
    uint8_t *tmp = NULL;
    int32_t *tcol = NULL;
    sg_status st = SG_OK;

    /* Source rows the window needs: those the vertical weights read, or the window's own rows. */
    int ry0 = y0, ry1 = y0 + rh;
    if (need_v) {
        if ((st = axis_init(&vy, in_h, out_h, y0, rh, err)) != SG_OK)
            goto done;
        ry0 = vy.first[0];
        ry1 = vy.first[0] + vy.count[0];
        for (int i = 1; i < rh; i++) {
            if (vy.first[i] < ry0)
                ry0 = vy.first[i];
            if (vy.first[i] + vy.count[i] > ry1)
                ry1 = vy.first[i] + vy.count[i];
        }
        for (int i = 0; i < rh; i++)
            vy.first[i] -= ry0;
    }

    /* The rows the vertical pass reads: the horizontal intermediate, or src itself. */
    const uint8_t *vin;
    size_t vin_stride;
    if (need_h) {
        if ((st = axis_init(&hx, in_w, out_w, x0, rw, err)) != SG_OK)
            goto done;
        uint8_t *hout = dst;
        tcol = malloc((size_t)in_w * SG_RESAMPLE_HLANES * sizeof *tcol);
        if (need_v)
            hout = tmp = malloc((size_t)(ry1 - ry0) * win_bytes);
        if (!tcol || !hout) {
            st = sg_error_set(err, SG_ENOMEM, "no memory to resize to %dx%d", out_w, out_h);
            goto done;
        }
        sg_resample_horizontal(src->rgb + (size_t)ry0 * in_stride, in_stride, ry1 - ry0, &hx,
                               hout, tcol);
        if (!need_v)
            goto done;
        vin = tmp;
        vin_stride = win_bytes;
    } else {
        vin = src->rgb + (size_t)ry0 * in_stride + (size_t)x0 * 3;
        vin_stride = in_stride;
    }

    if (need_v) {
        sg_resample_vertical(vin, vin_stride, win_bytes, &vy, dst);
    } else {
        for (int y = 0; y < rh; y++)
            memcpy(dst + (size_t)y * win_bytes, vin + (size_t)y * vin_stride, win_bytes);
    }
done:
    axis_free(&hx);
    axis_free(&vy);
    free(tmp);
    free(tcol);
    return st;
}

static sg_status check_source(const sg_image *src, sg_error *err)
{
    if (!src || !src->rgb)
        return sg_error_set(err, SG_EINVAL, "no image to resize");
    if (src->width <= 0 || src->height <= 0)
        return sg_error_set(err, SG_EINVAL, "image has an empty size (%dx%d)", src->width,
                            src->height);
    return SG_OK;
}

sg_status sg_image_resize_bicubic(const sg_image *src, int out_w, int out_h, sg_image *out,
                                  sg_error *err)
{
    if (!out)
        return sg_error_set(err, SG_EINVAL, "no output image");
    memset(out, 0, sizeof *out);
    sg_status st = check_source(src, err);
    if (st != SG_OK)
        return st;
    if (out_w <= 0 || out_h <= 0)
        return sg_error_set(err, SG_EINVAL, "cannot resize to an empty size (%dx%d)", out_w,
                            out_h);
    if (out_w > SG_IMAGE_MAX_DIM || out_h > SG_IMAGE_MAX_DIM ||
        (long long)out_w * out_h > (long long)SG_IMAGE_MAX_PIXELS)
        return sg_error_set(err, SG_ETOOBIG, "resize to %dx%d is over the %dx%d / %u pixel limit",
                            out_w, out_h, SG_IMAGE_MAX_DIM, SG_IMAGE_MAX_DIM, SG_IMAGE_MAX_PIXELS);

    uint8_t *rgb = malloc((size_t)out_w * (size_t)out_h * 3);
    if (!rgb)
        return sg_error_set(err, SG_ENOMEM, "no memory for a %dx%d image", out_w, out_h);
    if ((st = resize_window(src, out_w, out_h, 0, 0, out_w, out_h, rgb, err)) != SG_OK) {
        free(rgb);
        return st;
    }
    out->width = out_w;
    out->height = out_h;
    out->src_width = src->src_width;
    out->src_height = src->src_height;
    out->format = src->format;
    out->rgb = rgb;
    return SG_OK;
}

/* ---- CLIPImageProcessor ---------------------------------------------------------------------- */

void sg_clip_preprocess_defaults(sg_clip_preprocess_cfg *c)
{
    if (!c)
        return;
    /* The reference holds these as Python floats (doubles) that numpy rounds to float32; a float
     * literal would round the decimal directly, which can differ in the last bit. */
    static const double mean[3] = {0.48145466, 0.4578275, 0.40821073};
    static const double std[3] = {0.26862954, 0.26130258, 0.27577711};
    c->shortest_edge = 224;
    c->crop_w = c->crop_h = 224;
    for (int i = 0; i < 3; i++) {
        c->mean[i] = (float)mean[i];
        c->std[i] = (float)std[i];
    }
}

sg_status sg_clip_resize_dims(int w, int h, int shortest_edge, int *out_w, int *out_h,
                              sg_error *err)
{
    if (w <= 0 || h <= 0 || shortest_edge <= 0)
        return sg_error_set(err, SG_EINVAL, "bad resize: %dx%d to a short side of %d", w, h,
                            shortest_edge);
    int shrt = w <= h ? w : h, lng = w <= h ? h : w;
    /* Python: int(size * long / short) -- an exact integer product, a correctly rounded true
     * division, truncation. Both operands are exact doubles, so C's division rounds the same. */
    double q = (double)((long long)shortest_edge * lng) / (double)shrt;
    if (q >= (double)INT_MAX)
        return sg_error_set(err, SG_ETOOBIG, "resizing %dx%d to a short side of %d is too large",
                            w, h, shortest_edge);
    int new_long = (int)q;
    if (w <= h) {
        *out_w = shortest_edge;
        *out_h = new_long;
    } else {
        *out_w = new_long;
        *out_h = shortest_edge;
    }
    return SG_OK;
}

/* Python's (a - b) // 2 for a possibly negative difference. */
static int floor_half(int d)
{
    return d >= 0 ? d / 2 : -((-d + 1) / 2);
}

sg_status sg_clip_preprocess(const sg_image *img, const sg_clip_preprocess_cfg *cfg,
                             float *chw_out, sg_error *err)
{
    sg_clip_preprocess_cfg defaults;
    if (!cfg) {
        sg_clip_preprocess_defaults(&defaults);
        cfg = &defaults;
    }
    sg_status st = check_source(img, err);
    if (st != SG_OK)
        return st;
    if (!chw_out)
        return sg_error_set(err, SG_EINVAL, "no output tensor");
    if (cfg->crop_w <= 0 || cfg->crop_h <= 0 || cfg->crop_w > SG_IMAGE_MAX_DIM ||
        cfg->crop_h > SG_IMAGE_MAX_DIM)
        return sg_error_set(err, SG_EINVAL, "bad crop size %dx%d", cfg->crop_w, cfg->crop_h);
    for (int c = 0; c < 3; c++)
        if (!(cfg->std[c] != 0.0f) || !isfinite(cfg->std[c]) || !isfinite(cfg->mean[c]))
            return sg_error_set(err, SG_EINVAL, "bad normalisation for channel %d", c);

    int rw_full = 0, rh_full = 0;
    if ((st = sg_clip_resize_dims(img->width, img->height, cfg->shortest_edge, &rw_full,
                                  &rh_full, err)) != SG_OK)
        return st;

    /* Crop origin in resized coordinates (negative when padding), and the part of the resized
     * image inside the crop: the only pixels worth resampling. */
    const int cw = cfg->crop_w, ch = cfg->crop_h;
    const int left = floor_half(rw_full - cw), top = floor_half(rh_full - ch);
    const int x0 = left > 0 ? left : 0, y0 = top > 0 ? top : 0;
    const int x1 = left + cw < rw_full ? left + cw : rw_full;
    const int y1 = top + ch < rh_full ? top + ch : rh_full;
    const int ww = x1 - x0, wh = y1 - y0;

    uint8_t *win = malloc((size_t)ww * (size_t)wh * 3);
    if (!win)
        return sg_error_set(err, SG_ENOMEM, "no memory for a %dx%d crop", ww, wh);
    if ((st = resize_window(img, rw_full, rh_full, x0, y0, ww, wh, win, err)) != SG_OK) {
        free(win);
        return st;
    }

    /* rescale: float64 multiply by the double 1/255, cast to float32; normalise: float32
     * subtract then divide. 256 values per channel, so a table. */
    float lut[3][256];
    for (int c = 0; c < 3; c++) {
        for (int v = 0; v < 256; v++) {
            float x = (float)((double)v * (1.0 / 255.0));
            float d = x - cfg->mean[c];
            lut[c][v] = d / cfg->std[c];
        }
    }

    /* Crop pixel (cx, cy) is resized pixel (cx + left, cy + top); outside the resized image it is
     * the zero padding, which normalises like a black pixel. Columns cxa .. cxb - 1 of every
     * row inside the window come from the window. */
    const size_t plane = (size_t)cw * ch;
    float *pr = chw_out, *pg = chw_out + plane, *pb = chw_out + 2 * plane;
    const int cxa = x0 - left, cxb = x1 - left;
    for (int cy = 0; cy < ch; cy++) {
        const size_t o = (size_t)cy * cw;
        const int ry = cy + top;
        const bool inside = ry >= y0 && ry < y1;
        const int a = inside ? cxa : cw, b = inside ? cxb : cw;
        for (int cx = 0; cx < a; cx++)
            pr[o + cx] = lut[0][0], pg[o + cx] = lut[1][0], pb[o + cx] = lut[2][0];
        if (inside) {
            const uint8_t *px = win + (size_t)(ry - y0) * ww * 3;
            for (int cx = a; cx < b; cx++, px += 3) {
                pr[o + cx] = lut[0][px[0]];
                pg[o + cx] = lut[1][px[1]];
                pb[o + cx] = lut[2][px[2]];
            }
        }
        for (int cx = b; cx < cw; cx++)
            pr[o + cx] = lut[0][0], pg[o + cx] = lut[1][0], pb[o + cx] = lut[2][0];
    }
    free(win);
    return SG_OK;
}
