/* JPEG encoding of camera frames with TurboJPEG (libjpeg-turbo; on Android the NDK build links the
 * same library): optional fit to the upload size first, then 4:2:0 baseline at the policy's
 * quality. The encoder keeps its TurboJPEG handle and resize buffer between frames. */
#include <stdlib.h>
#include <string.h>

#include <turbojpeg.h>

#include "sgclient.h"
#include "status.h"

struct sg_jpeg_encoder {
    tjhandle tj;
    uint8_t *scaled;
    size_t scaled_cap;
};

sg_client_status sg_jpeg_encoder_new(sg_jpeg_encoder **out)
{
    sg_jpeg_encoder *e = calloc(1, sizeof *e);
    *out = NULL;
    if (!e)
        return SG_CLIENT_ENOMEM;
    e->tj = tjInitCompress();
    if (!e->tj) {
        free(e);
        return SG_CLIENT_ECODEC;
    }
    *out = e;
    return SG_CLIENT_OK;
}

void sg_jpeg_encoder_free(sg_jpeg_encoder *e)
{
    if (!e)
        return;
    tjDestroy(e->tj);
    free(e->scaled);
    free(e);
}

sg_client_status sg_jpeg_encode(sg_jpeg_encoder *e, const uint8_t *rgb, int width, int height,
                                int out_width, int out_height, int quality, uint8_t **out,
                                size_t *out_len, char err[SG_CLIENT_ERROR_SIZE])
{
    *out = NULL;
    *out_len = 0;
    if (!e || !rgb || width <= 0 || height <= 0 || width > 16384 || height > 16384)
        return sg_client_fail(err, SG_CLIENT_EINVAL, "bad frame (%dx%d)", width, height);
    if (quality < 1 || quality > 100)
        return sg_client_fail(err, SG_CLIENT_EINVAL, "JPEG quality %d is outside 1..100", quality);
    const uint8_t *src = rgb;
    int w = width, h = height;
    if (out_width > 0 && out_height > 0 && (out_width != width || out_height != height)) {
        if (out_width > 16384 || out_height > 16384)
            return sg_client_fail(err, SG_CLIENT_EINVAL, "bad output size %dx%d", out_width,
                                  out_height);
        size_t need = (size_t)out_width * (size_t)out_height * 3;
        if (need > e->scaled_cap) {
            uint8_t *p = realloc(e->scaled, need);
            if (!p)
                return sg_client_fail(err, SG_CLIENT_ENOMEM, "out of memory");
            e->scaled = p;
            e->scaled_cap = need;
        }
        sg_client_status st = sg_rgb_fit(rgb, width, height, e->scaled, out_width, out_height);
        if (st != SG_CLIENT_OK)
            return sg_client_fail(err, st, "cannot resize %dx%d to %dx%d", width, height,
                                  out_width, out_height);
        src = e->scaled;
        w = out_width;
        h = out_height;
    }
    unsigned long cap = tjBufSize(w, h, TJSAMP_420);
    uint8_t *buf = malloc(cap);
    if (!buf)
        return sg_client_fail(err, SG_CLIENT_ENOMEM, "out of memory");
    unsigned long size = cap;
    if (tjCompress2(e->tj, src, w, w * 3, h, TJPF_RGB, &buf, &size, TJSAMP_420, quality,
                    TJFLAG_NOREALLOC) != 0) {
        free(buf);
        return sg_client_fail(err, SG_CLIENT_ECODEC, "JPEG encode failed: %s",
                              tjGetErrorStr2(e->tj));
    }
    uint8_t *fit = realloc(buf, size);
    *out = fit ? fit : buf;
    *out_len = size;
    return SG_CLIENT_OK;
}
