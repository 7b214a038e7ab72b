/* YUV4MPEG2 (.y4m) parsing, the raw-video format of ffmpeg/x264 test clips, used by `sg stream`
 * as a camera. 8-bit 4:2:0 (any chroma siting), 4:2:2, 4:4:4 and mono; interlacing flags are
 * accepted and the fields shown as stored. Pure: works on buffers, the caller reads the file. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "sgclient_policy.h"
#include "status.h"

#define Y4M_MAX_HEADER 4096
#define Y4M_MAX_DIM 16384
#define Y4M_MAX_PIXELS (64ll * 1024 * 1024)

static int parse_uint(const char *s, size_t n, long long *out)
{
    if (n == 0 || n > 12)
        return -1;
    long long v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9')
            return -1;
        v = v * 10 + (s[i] - '0');
    }
    *out = v;
    return 0;
}

static int tok_is(const char *tok, size_t n, const char *name)
{
    return strlen(name) == n && memcmp(tok, name, n) == 0;
}

sg_client_status sg_y4m_parse_header(const uint8_t *buf, size_t len, sg_y4m_info *out,
                                     char err[SG_CLIENT_ERROR_SIZE])
{
    memset(out, 0, sizeof *out);
    out->fps_num = 30;
    out->fps_den = 1;
    out->chroma = 420;
    static const char magic[] = "YUV4MPEG2";
    if (!buf || len < sizeof magic || memcmp(buf, magic, sizeof magic - 1) != 0) {
        return sg_client_fail(err, SG_CLIENT_EFORMAT, "not a Y4M file (no YUV4MPEG2 signature)");
    }
    size_t lim = len < Y4M_MAX_HEADER ? len : Y4M_MAX_HEADER;
    const uint8_t *nl = memchr(buf, '\n', lim);
    if (!nl) {
        return sg_client_fail(err, SG_CLIENT_EFORMAT,
                              "Y4M header is truncated or longer than %d bytes", Y4M_MAX_HEADER);
    }
    size_t end = (size_t)(nl - buf);
    long long w = -1, h = -1;
    size_t i = sizeof magic - 1;
    while (i < end) {
        if (buf[i] == ' ') {
            i++;
            continue;
        }
        size_t j = i;
        while (j < end && buf[j] != ' ')
            j++;
        const char *tok = (const char *)buf + i;
        size_t n = j - i;
        switch (tok[0]) {
        case 'W':
            if (parse_uint(tok + 1, n - 1, &w) != 0) {
                return sg_client_fail(err, SG_CLIENT_EFORMAT, "bad Y4M width");
            }
            break;
        case 'H':
            if (parse_uint(tok + 1, n - 1, &h) != 0) {
                return sg_client_fail(err, SG_CLIENT_EFORMAT, "bad Y4M height");
            }
            break;
        case 'F': {
            const char *colon = memchr(tok, ':', n);
            long long a, b;
            if (!colon || parse_uint(tok + 1, (size_t)(colon - tok - 1), &a) != 0 ||
                parse_uint(colon + 1, n - (size_t)(colon - tok) - 1, &b) != 0 || a <= 0 || b <= 0 ||
                a > 1000000 || b > 1000000) {
                return sg_client_fail(err, SG_CLIENT_EFORMAT, "bad Y4M frame rate");
            }
            out->fps_num = (int)a;
            out->fps_den = (int)b;
            break;
        }
        case 'C':
            if (tok_is(tok, n, "C420") || tok_is(tok, n, "C420jpeg") || tok_is(tok, n, "C420paldv") ||
                tok_is(tok, n, "C420mpeg2"))
                out->chroma = 420; /* the chroma siting does not matter at this quality */
            else if (tok_is(tok, n, "C422"))
                out->chroma = 422;
            else if (tok_is(tok, n, "C444"))
                out->chroma = 444;
            else if (tok_is(tok, n, "Cmono"))
                out->chroma = 0;
            else {
                return sg_client_fail(err, SG_CLIENT_EFORMAT,
                                      "unsupported Y4M colour space '%.*s' (8-bit 420, 422, 444, mono)",
                                      (int)(n > 20 ? 20 : n), tok);
            }
            break;
        default: /* I (interlacing), A (aspect), X (comments): nothing to do */
            break;
        }
        i = j;
    }
    if (w <= 0 || h <= 0) {
        return sg_client_fail(err, SG_CLIENT_EFORMAT, "Y4M header has no W/H");
    }
    if (w > Y4M_MAX_DIM || h > Y4M_MAX_DIM || w * h > Y4M_MAX_PIXELS) {
        return sg_client_fail(err, SG_CLIENT_EFORMAT, "Y4M frames of %lldx%lld are too large", w, h);
    }
    out->width = (int)w;
    out->height = (int)h;
    size_t luma = (size_t)w * (size_t)h, cw = (size_t)(w + 1) / 2, ch = (size_t)(h + 1) / 2;
    switch (out->chroma) {
    case 420: out->frame_bytes = luma + 2 * cw * ch; break;
    case 422: out->frame_bytes = luma + 2 * cw * (size_t)h; break;
    case 444: out->frame_bytes = 3 * luma; break;
    default: out->frame_bytes = luma; break;
    }
    out->header_len = end + 1;
    return SG_CLIENT_OK;
}

size_t sg_y4m_frame_header_len(const uint8_t *buf, size_t len)
{
    if (!buf || len < 6 || memcmp(buf, "FRAME", 5) != 0)
        return 0;
    size_t lim = len < Y4M_MAX_HEADER ? len : Y4M_MAX_HEADER;
    const uint8_t *nl = memchr(buf + 5, '\n', lim - 5);
    if (!nl || (nl != buf + 5 && buf[5] != ' '))
        return 0;
    return (size_t)(nl - buf) + 1;
}

static uint8_t clamp255(int v) { return (uint8_t)(v < 0 ? 0 : (v > 255 ? 255 : v)); }

void sg_y4m_to_rgb(const sg_y4m_info *info, const uint8_t *planes, uint8_t *rgb)
{
    const int w = info->width, h = info->height;
    const uint8_t *Y = planes, *U = NULL, *V = NULL;
    int cw = w, shx = 0, shy = 0;
    if (info->chroma == 420) {
        cw = (w + 1) / 2;
        shx = shy = 1;
        U = Y + (size_t)w * h;
        V = U + (size_t)cw * ((h + 1) / 2);
    } else if (info->chroma == 422) {
        cw = (w + 1) / 2;
        shx = 1;
        U = Y + (size_t)w * h;
        V = U + (size_t)cw * h;
    } else if (info->chroma == 444) {
        U = Y + (size_t)w * h;
        V = U + (size_t)w * h;
    }
    /* BT.601 limited range, 16.16 fixed point */
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            int c = 76284 * ((int)Y[(size_t)y * w + x] - 16);
            int u = 0, v = 0;
            if (U) {
                size_t ci = (size_t)(y >> shy) * cw + (size_t)(x >> shx);
                u = (int)U[ci] - 128;
                v = (int)V[ci] - 128;
            }
            uint8_t *p = rgb + ((size_t)y * w + x) * 3;
            p[0] = clamp255((c + 104595 * v + 32768) >> 16);
            p[1] = clamp255((c - 25624 * u - 53281 * v + 32768) >> 16);
            p[2] = clamp255((c + 132251 * u + 32768) >> 16);
        }
    }
}
