/* JPEG encoding of camera frames with TurboJPEG (libjpeg-turbo; on Android the NDK build links the
 * same library): optional fit to the upload size first, then 4:2:0 baseline at the policy's
 * quality. The encoder keeps its TurboJPEG handle and resize buffer between frames. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <turbojpeg.h>

#include "sgclient.h"

struct sg_jpeg_encoder {
    tjhandle tj;
    uint8_t *scaled;
    size_t scaled_cap;
};

sg_jpeg_encoder *sg_jpeg_encoder_new(void)
{
    sg_jpeg_encoder *e = calloc(1, sizeof *e);
    if (!e)
        return NULL;
    e->tj = tjInitCompress();
    if (!e->tj) {
        free(e);
        return NULL;
    }
    return e;
}

void sg_jpeg_encoder_free(sg_jpeg_encoder *e)
{
    if (!e)
        return;
    tjDestroy(e->tj);
    free(e->scaled);
    free(e);
}

int sg_jpeg_encode(sg_jpeg_encoder *e, const uint8_t *rgb, int width, int height, int out_width,
                   int out_height, int quality, uint8_t **out, size_t *out_len, char err[128])
{
    *out = NULL;
    *out_len = 0;
    if (!e || !rgb || width <= 0 || height <= 0 || width > 16384 || height > 16384) {
        snprintf(err, 128, "bad frame (%dx%d)", width, height);
        return -1;
    }
    if (quality < 1 || quality > 100) {
        snprintf(err, 128, "JPEG quality %d is outside 1..100", quality);
        return -1;
    }
    const uint8_t *src = rgb;
    int w = width, h = height;
    if (out_width > 0 && out_height > 0 && (out_width != width || out_height != height)) {
        if (out_width > 16384 || out_height > 16384) {
            snprintf(err, 128, "bad output size %dx%d", out_width, out_height);
            return -1;
        }
        size_t need = (size_t)out_width * (size_t)out_height * 3;
        if (need > e->scaled_cap) {
            uint8_t *p = realloc(e->scaled, need);
            if (!p) {
                snprintf(err, 128, "out of memory");
                return -1;
            }
            e->scaled = p;
            e->scaled_cap = need;
        }
        if (sg_rgb_fit(rgb, width, height, e->scaled, out_width, out_height) != 0) {
            snprintf(err, 128, "cannot resize %dx%d to %dx%d", width, height, out_width, out_height);
            return -1;
        }
        src = e->scaled;
        w = out_width;
        h = out_height;
    }
    unsigned long cap = tjBufSize(w, h, TJSAMP_420);
    uint8_t *buf = malloc(cap);
    if (!buf) {
        snprintf(err, 128, "out of memory");
        return -1;
    }
    unsigned long size = cap;
    if (tjCompress2(e->tj, src, w, w * 3, h, TJPF_RGB, &buf, &size, TJSAMP_420, quality,
                    TJFLAG_NOREALLOC) != 0) {
        snprintf(err, 128, "JPEG encode failed: %s", tjGetErrorStr2(e->tj));
        free(buf);
        return -1;
    }
    uint8_t *fit = realloc(buf, size);
    *out = fit ? fit : buf;
    *out_len = size;
    return 0;
}
