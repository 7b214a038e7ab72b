/* Image decoding for the frame pipeline. JPEG goes through TurboJPEG and lets the IDCT scale
 * down (1/8 .. 8/8) so a 640x480 frame the describer wants at >= 128 px never exists at full size;
 * PNG goes through libpng's simplified API and is then area-averaged down. Both check the stored
 * dimensions against the bomb limits before a single pixel buffer is allocated. */
#include "media/image.h"
#include "media/thumb.h"

#include <limits.h>
#include <png.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

static const uint8_t jpeg_magic[3] = {0xFF, 0xD8, 0xFF};
static const uint8_t png_magic[8] = {0x89, 'P', 'N', 'G', 0x0D, 0x0A, 0x1A, 0x0A};

sg_image_format sg_image_sniff(const uint8_t *buf, size_t len)
{
    if (!buf)
        return SG_IMAGE_UNKNOWN;
    if (len >= sizeof jpeg_magic && memcmp(buf, jpeg_magic, sizeof jpeg_magic) == 0)
        return SG_IMAGE_JPEG;
    if (len >= sizeof png_magic && memcmp(buf, png_magic, sizeof png_magic) == 0)
        return SG_IMAGE_PNG;
    return SG_IMAGE_UNKNOWN;
}

void sg_image_free(sg_image *img)
{
    if (!img)
        return;
    free(img->rgb);
    memset(img, 0, sizeof *img);
}

/* The bomb guard, applied to the size stored in the file. */
static sg_status check_dims(long long w, long long h, sg_error *err)
{
    if (w <= 0 || h <= 0)
        return sg_error_set(err, SG_EIMAGE, "image has an empty size (%lldx%lld)", w, h);
    if (w > SG_IMAGE_MAX_DIM || h > SG_IMAGE_MAX_DIM || w * h > (long long)SG_IMAGE_MAX_PIXELS)
        return sg_error_set(err, SG_ETOOBIG, "image is %lldx%lld, over the %dx%d / %u pixel limit",
                            w, h, SG_IMAGE_MAX_DIM, SG_IMAGE_MAX_DIM, SG_IMAGE_MAX_PIXELS);
    return SG_OK;
}

static uint8_t *alloc_rgb(int w, int h)
{
    return malloc((size_t)w * (size_t)h * 3);
}

/* ---- JPEG ------------------------------------------------------------------------------------ */

/* Picks the DCT scaling factor (never above 1) giving the smallest short side that still reaches
 * min_short_side; full size when nothing smaller does. */
static tjscalingfactor jpeg_pick_scale(int w, int h, int min_short_side)
{
    tjscalingfactor best = {1, 1};
    if (min_short_side <= 0)
        return best;
    int n = 0;
    const tjscalingfactor *sf = tjGetScalingFactors(&n);
    int best_short = w < h ? w : h;
    for (int i = 0; sf && i < n; i++) {
        if (sf[i].num <= 0 || sf[i].denom <= 0 || sf[i].num > sf[i].denom)
            continue;
        int sw = TJSCALED(w, sf[i]), sh = TJSCALED(h, sf[i]);
        int s = sw < sh ? sw : sh;
        /* Equal short sides: the smaller factor does less work for the same size. */
        if (s >= min_short_side &&
            (s < best_short ||
             (s == best_short && sf[i].num * best.denom < best.num * sf[i].denom))) {
            best = sf[i];
            best_short = s;
        }
    }
    return best;
}

static sg_status decode_jpeg(const uint8_t *buf, size_t len, int min_short_side, sg_image *out,
                             sg_error *err)
{
    if (len > ULONG_MAX)
        return sg_error_set(err, SG_ETOOBIG, "JPEG of %zu bytes is too large", len);
    tjhandle tj = tjInitDecompress();
    if (!tj)
        return sg_error_set(err, SG_ENOMEM, "cannot create a JPEG decompressor");

    sg_status st = SG_OK;
    int w = 0, h = 0, subsamp = 0, colorspace = 0;
    if (tjDecompressHeader3(tj, buf, (unsigned long)len, &w, &h, &subsamp, &colorspace) != 0) {
        st = sg_error_set(err, SG_EIMAGE, "bad JPEG header: %s", tjGetErrorStr2(tj));
        goto done;
    }
    if ((st = check_dims(w, h, err)) != SG_OK)
        goto done;

    tjscalingfactor sf = jpeg_pick_scale(w, h, min_short_side);
    int sw = TJSCALED(w, sf), sh = TJSCALED(h, sf);
    uint8_t *rgb = alloc_rgb(sw, sh);
    if (!rgb) {
        st = sg_error_set(err, SG_ENOMEM, "no memory for a %dx%d image", sw, sh);
        goto done;
    }
    /* STOPONWARNING turns "premature end" and "corrupt data" warnings into errors, so a
     * truncated upload is rejected instead of being padded with grey; LIMITSCANS stops
     * progressive files built to burn CPU with thousands of scans. */
    int flags = TJFLAG_STOPONWARNING;
#ifdef TJFLAG_LIMITSCANS
    flags |= TJFLAG_LIMITSCANS;
#endif
    if (tjDecompress2(tj, buf, (unsigned long)len, rgb, sw, sw * 3, sh, TJPF_RGB, flags) != 0) {
        st = sg_error_set(err, SG_EIMAGE, "bad JPEG data: %s", tjGetErrorStr2(tj));
        free(rgb);
        goto done;
    }
    out->width = sw;
    out->height = sh;
    out->src_width = w;
    out->src_height = h;
    out->format = SG_IMAGE_JPEG;
    out->rgb = rgb;
done:
    tjDestroy(tj);
    return st;
}

/* ---- area downscale -------------------------------------------------------------------------- */

/* Output size with short side exactly min_short_side and the aspect ratio kept (rounded). */
static void area_target(int w, int h, int min_short_side, int *ow, int *oh)
{
    *ow = w;
    *oh = h;
    if (min_short_side <= 0)
        return;
    int s = w < h ? w : h;
    if (min_short_side >= s)
        return;
    long long lng = w < h ? h : w;
    long long scaled = (lng * min_short_side + s / 2) / s;
    if (scaled < min_short_side)
        scaled = min_short_side;
    if (w < h) {
        *ow = min_short_side;
        *oh = (int)scaled;
    } else {
        *oh = min_short_side;
        *ow = (int)scaled;
    }
}

/* Overlap of [a0,a1) and [b0,b1). */
static long long overlap(long long a0, long long a1, long long b0, long long b1)
{
    long long lo = a0 > b0 ? a0 : b0, hi = a1 < b1 ? a1 : b1;
    return hi > lo ? hi - lo : 0;
}

/* Exact area average from sw x sh to dw x dh (dw <= sw, dh <= sh), in integers. Coordinates are
 * scaled so both grids are whole numbers: source pixel x spans [x*dw, (x+1)*dw), output pixel ox
 * spans [ox*sw, (ox+1)*sw). A source row is folded horizontally, then added to the one or two
 * output rows it overlaps, weighted by the overlap. */
static sg_status area_downscale(const uint8_t *src, int sw, int sh, int dw, int dh, uint8_t **dst,
                                sg_error *err)
{
    uint32_t *hrow = malloc((size_t)dw * 3 * sizeof *hrow);
    uint64_t *acc = calloc((size_t)dw * 3, sizeof *acc);
    uint8_t *out = alloc_rgb(dw, dh);
    if (!hrow || !acc || !out) {
        free(hrow);
        free(acc);
        free(out);
        return sg_error_set(err, SG_ENOMEM, "no memory to downscale to %dx%d", dw, dh);
    }
    const uint64_t norm = (uint64_t)sw * (uint64_t)sh;
    int oy = 0;
    for (int y = 0; y < sh; y++) {
        /* Fold row y horizontally: hrow[ox] = sum over x of pixel * overlap. */
        memset(hrow, 0, (size_t)dw * 3 * sizeof *hrow);
        const uint8_t *row = src + (size_t)y * sw * 3;
        for (int x = 0; x < sw; x++) {
            long long x0 = (long long)x * dw, x1 = x0 + dw;
            for (int ox = (int)(x0 / sw); ox < dw && (long long)ox * sw < x1; ox++) {
                uint32_t wgt = (uint32_t)overlap(x0, x1, (long long)ox * sw, (long long)(ox + 1) * sw);
                hrow[ox * 3 + 0] += row[x * 3 + 0] * wgt;
                hrow[ox * 3 + 1] += row[x * 3 + 1] * wgt;
                hrow[ox * 3 + 2] += row[x * 3 + 2] * wgt;
            }
        }
        long long y0 = (long long)y * dh, y1 = y0 + dh;
        for (int ty = (int)(y0 / sh); ty < dh && (long long)ty * sh < y1; ty++) {
            uint64_t wgt = (uint64_t)overlap(y0, y1, (long long)ty * sh, (long long)(ty + 1) * sh);
            if (ty != oy) {
                /* Output row oy is complete: no later source row reaches it. */
                for (int i = 0; i < dw * 3; i++) {
                    out[(size_t)oy * dw * 3 + i] = (uint8_t)((acc[i] + norm / 2) / norm);
                    acc[i] = 0;
                }
                oy = ty;
            }
            for (int i = 0; i < dw * 3; i++)
                acc[i] += hrow[i] * wgt;
        }
    }
    for (int i = 0; i < dw * 3; i++)
        out[(size_t)oy * dw * 3 + i] = (uint8_t)((acc[i] + norm / 2) / norm);
    free(hrow);
    free(acc);
    *dst = out;
    return SG_OK;
}

/* ---- PNG ------------------------------------------------------------------------------------- */

static sg_status decode_png(const uint8_t *buf, size_t len, int min_short_side, sg_image *out,
                            sg_error *err)
{
    png_image png;
    memset(&png, 0, sizeof png);
    png.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_memory(&png, buf, len)) {
        sg_status st = sg_error_set(err, SG_EIMAGE, "bad PNG header: %s", png.message);
        png_image_free(&png);
        return st;
    }
    sg_status st = check_dims(png.width, png.height, err);
    if (st == SG_OK && (long long)png.width * png.height > (long long)SG_IMAGE_MAX_PNG_PIXELS)
        st = sg_error_set(err, SG_ETOOBIG, "PNG is %ux%u, over the %u pixel limit for PNG (decoded "
                          "whole; send a JPEG for larger frames)", png.width, png.height,
                          SG_IMAGE_MAX_PNG_PIXELS);
    if (st != SG_OK) {
        png_image_free(&png);
        return st;
    }
    int w = (int)png.width, h = (int)png.height;
    /* Asking for plain RGB makes libpng expand palette and gray, reduce 16-bit to 8-bit and
     * composite any alpha onto the background given below: black. */
    png.format = PNG_FORMAT_RGB;
    uint8_t *rgb = alloc_rgb(w, h);
    if (!rgb) {
        png_image_free(&png);
        return sg_error_set(err, SG_ENOMEM, "no memory for a %dx%d image", w, h);
    }
    const png_color black = {0, 0, 0};
    if (!png_image_finish_read(&png, &black, rgb, w * 3, NULL)) {
        st = sg_error_set(err, SG_EIMAGE, "bad PNG data: %s", png.message);
        png_image_free(&png);
        free(rgb);
        return st;
    }
    png_image_free(&png);

    int dw, dh;
    area_target(w, h, min_short_side, &dw, &dh);
    if (dw != w || dh != h) {
        uint8_t *small = NULL;
        st = area_downscale(rgb, w, h, dw, dh, &small, err);
        free(rgb);
        if (st != SG_OK)
            return st;
        rgb = small;
    }
    out->width = dw;
    out->height = dh;
    out->src_width = w;
    out->src_height = h;
    out->format = SG_IMAGE_PNG;
    out->rgb = rgb;
    return SG_OK;
}

sg_status sg_image_decode(const uint8_t *buf, size_t len, int min_short_side, sg_image *out,
                          sg_error *err)
{
    if (!out)
        return sg_error_set(err, SG_EINVAL, "no output image");
    memset(out, 0, sizeof *out);
    if (!buf || len == 0)
        return sg_error_set(err, SG_EIMAGE, "empty image");
    switch (sg_image_sniff(buf, len)) {
    case SG_IMAGE_JPEG: return decode_jpeg(buf, len, min_short_side, out, err);
    case SG_IMAGE_PNG: return decode_png(buf, len, min_short_side, out, err);
    case SG_IMAGE_UNKNOWN: break;
    }
    return sg_error_set(err, SG_EIMAGE, "not a JPEG or PNG image");
}

/* ---- keyframe thumbnail ---------------------------------------------------------------------- */

/* The arithmetic lives in media/thumb.c, which libsgclient compiles too. */
void sg_image_thumb8(const sg_image *img, float thumb[64])
{
    if (!img)
        sg_thumb8_rgb(NULL, 0, 0, thumb);
    else
        sg_thumb8_rgb(img->rgb, img->width, img->height, thumb);
}
