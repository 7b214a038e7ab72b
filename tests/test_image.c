/* Image decoding: the sample photos at full size and DCT-scaled, PNG variants written here with
 * libpng (RGB, gray, palette, RGBA, 16-bit) and their area downscale, the error paths (truncated,
 * garbage, bomb headers, empty input) and the 8x8 keyframe thumbnail. */
#include <png.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "check.h"
#include "media/image.h"

typedef struct photo {
    const char *name;
    int w, h;
} photo;

static const photo photos[] = {
    {"astronaut", 512, 512},        {"camera", 512, 512},           {"chelsea", 451, 300},
    {"coffee", 600, 400},           {"motorcycle_left", 741, 500},  {"motorcycle_right", 741, 500},
    {"rocket", 640, 427},           {"text", 448, 172},
};
#define NPHOTOS ((int)(sizeof photos / sizeof photos[0]))

static int ceil_div(int a, int b)
{
    return (a + b - 1) / b;
}

/* The size the decoder must pick: the smallest n/8 (n = 1..8) whose short side reaches req. */
static void expected_scaled(int w, int h, int req, int *ew, int *eh)
{
    *ew = w;
    *eh = h;
    if (req <= 0)
        return;
    for (int n = 1; n <= 8; n++) {
        int sw = ceil_div(w * n, 8), sh = ceil_div(h * n, 8);
        if ((sw < sh ? sw : sh) >= req) {
            *ew = sw;
            *eh = sh;
            return;
        }
    }
}

static double mean_of(const sg_image *img, int channel)
{
    double sum = 0.0;
    size_t n = (size_t)img->width * img->height;
    for (size_t i = 0; i < n; i++)
        sum += img->rgb[i * 3 + channel];
    return sum / (double)n;
}

static void test_photos(void)
{
    static const int requests[] = {0, 8, 128, 224, 100000};
    for (int p = 0; p < NPHOTOS; p++) {
        size_t len;
        uint8_t *buf = check_read_photo(photos[p].name, &len);
        if (!buf)
            continue;
        CHECK_EQ_INT(sg_image_sniff(buf, len), SG_IMAGE_JPEG);
        double full_mean[3] = {0, 0, 0};
        for (size_t r = 0; r < sizeof requests / sizeof requests[0]; r++) {
            sg_image img;
            sg_error err = {0};
            sg_status st = sg_image_decode(buf, len, requests[r], &img, &err);
            CHECK_MSG(st == SG_OK, "%s at %d: %s", photos[p].name, requests[r], err.msg);
            if (st != SG_OK)
                continue;
            int ew, eh;
            expected_scaled(photos[p].w, photos[p].h, requests[r], &ew, &eh);
            CHECK_EQ_INT(img.src_width, photos[p].w);
            CHECK_EQ_INT(img.src_height, photos[p].h);
            CHECK_MSG(img.width == ew && img.height == eh, "%s at %d: got %dx%d, want %dx%d",
                      photos[p].name, requests[r], img.width, img.height, ew, eh);
            CHECK_EQ_INT(img.format, SG_IMAGE_JPEG);
            CHECK(img.rgb != NULL);
            for (int c = 0; c < 3; c++) {
                double m = mean_of(&img, c);
                if (requests[r] == 0)
                    full_mean[c] = m;
                else /* scaling must not shift the picture's colour */
                    CHECK_NEAR(m, full_mean[c], 2.0);
            }
            sg_image_free(&img);
            CHECK(img.rgb == NULL);
        }
        free(buf);
    }
}

/* ---- PNG ---- */

static uint8_t *write_png(png_image *png, const void *pixels, int stride, const void *colormap,
                          size_t *len)
{
    png_alloc_size_t size = 0;
    *len = 0;
    if (!png_image_write_to_memory(png, NULL, &size, 0, pixels, stride, colormap))
        return NULL;
    uint8_t *mem = malloc(size);
    if (mem && !png_image_write_to_memory(png, mem, &size, 0, pixels, stride, colormap)) {
        free(mem);
        return NULL;
    }
    *len = size;
    return mem;
}

static void png_header(png_image *png, int w, int h, png_uint_32 format)
{
    memset(png, 0, sizeof *png);
    png->version = PNG_IMAGE_VERSION;
    png->width = (png_uint_32)w;
    png->height = (png_uint_32)h;
    png->format = format;
}

static void test_png_rgb(void)
{
    enum { W = 40, H = 30 };
    uint8_t px[W * H * 3];
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            px[(y * W + x) * 3 + 0] = (uint8_t)(x * 6);
            px[(y * W + x) * 3 + 1] = (uint8_t)(y * 8);
            px[(y * W + x) * 3 + 2] = (uint8_t)((x + y) & 1 ? 255 : 0);
        }
    png_image png;
    png_header(&png, W, H, PNG_FORMAT_RGB);
    size_t len;
    uint8_t *buf = write_png(&png, px, W * 3, NULL, &len);
    CHECK(buf != NULL);
    if (!buf)
        return;
    CHECK_EQ_INT(sg_image_sniff(buf, len), SG_IMAGE_PNG);

    sg_image img;
    sg_error err = {0};
    CHECK_EQ_INT(sg_image_decode(buf, len, 0, &img, &err), SG_OK);
    CHECK_EQ_INT(img.width, W);
    CHECK_EQ_INT(img.height, H);
    CHECK_EQ_INT(img.format, SG_IMAGE_PNG);
    CHECK(img.rgb && memcmp(img.rgb, px, sizeof px) == 0);
    sg_image_free(&img);

    /* Short side 30 -> 15: an exact 2x2 box average. The blue checkerboard averages to 127.5,
     * rounded up. */
    CHECK_EQ_INT(sg_image_decode(buf, len, 15, &img, &err), SG_OK);
    CHECK_EQ_INT(img.width, 20);
    CHECK_EQ_INT(img.height, 15);
    CHECK_EQ_INT(img.src_width, W);
    CHECK_EQ_INT(img.src_height, H);
    if (img.rgb) {
        bool ok = true;
        for (int y = 0; y < 15; y++)
            for (int x = 0; x < 20; x++) {
                const uint8_t *o = img.rgb + (y * 20 + x) * 3;
                int r = (px[(2 * y * W + 2 * x) * 3] + px[(2 * y * W + 2 * x + 1) * 3] + 1) / 2;
                int g = (y * 16 + (y * 16 + 8) + 1) / 2;
                ok &= o[0] == r && o[1] == g && o[2] == 128;
            }
        CHECK(ok);
    }
    sg_image_free(&img);

    /* A non-integer ratio (30 -> 12): short side exact, long side rounded, mean preserved. */
    CHECK_EQ_INT(sg_image_decode(buf, len, 12, &img, &err), SG_OK);
    CHECK_EQ_INT(img.width, 16);
    CHECK_EQ_INT(img.height, 12);
    if (img.rgb) {
        sg_image full = {.width = W, .height = H, .rgb = px};
        for (int c = 0; c < 3; c++)
            CHECK_NEAR(mean_of(&img, c), mean_of(&full, c), 1.0);
    }
    sg_image_free(&img);

    /* Requests at or above the short side keep the full size. */
    CHECK_EQ_INT(sg_image_decode(buf, len, 30, &img, &err), SG_OK);
    CHECK_EQ_INT(img.width, W);
    sg_image_free(&img);
    CHECK_EQ_INT(sg_image_decode(buf, len, 1000, &img, &err), SG_OK);
    CHECK_EQ_INT(img.width, W);
    CHECK_EQ_INT(img.height, H);
    sg_image_free(&img);

    /* Truncated PNG. */
    CHECK_EQ_INT(sg_image_decode(buf, len / 2, 0, &img, &err), SG_EIMAGE);
    CHECK(img.rgb == NULL);
    free(buf);
}

static void test_png_uniform_downscale(void)
{
    /* A uniform picture stays exactly uniform through any area ratio. */
    enum { W = 97, H = 61 };
    static uint8_t px[W * H * 3];
    for (int i = 0; i < W * H; i++) {
        px[i * 3 + 0] = 200;
        px[i * 3 + 1] = 17;
        px[i * 3 + 2] = 99;
    }
    png_image png;
    png_header(&png, W, H, PNG_FORMAT_RGB);
    size_t len;
    uint8_t *buf = write_png(&png, px, W * 3, NULL, &len);
    CHECK(buf != NULL);
    sg_image img;
    sg_error err;
    CHECK_EQ_INT(sg_image_decode(buf, len, 7, &img, &err), SG_OK);
    CHECK_EQ_INT(img.height, 7);
    CHECK_EQ_INT(img.width, 11); /* 97 * 7 / 61 = 11.13 */
    bool ok = img.rgb != NULL;
    for (int i = 0; ok && i < img.width * img.height; i++)
        ok = img.rgb[i * 3] == 200 && img.rgb[i * 3 + 1] == 17 && img.rgb[i * 3 + 2] == 99;
    CHECK(ok);
    sg_image_free(&img);
    /* Portrait: the width is the short side. */
    png_header(&png, 5, 50, PNG_FORMAT_RGB);
    free(buf);
    buf = write_png(&png, px, 5 * 3, NULL, &len);
    CHECK_EQ_INT(sg_image_decode(buf, len, 2, &img, &err), SG_OK);
    CHECK_EQ_INT(img.width, 2);
    CHECK_EQ_INT(img.height, 20);
    sg_image_free(&img);
    free(buf);
}

static void test_png_variants(void)
{
    enum { W = 16, H = 8 };
    sg_image img;
    sg_error err;
    size_t len;
    png_image png;

    /* 8-bit gray: R = G = B = the gray value. */
    uint8_t gray[W * H];
    for (int i = 0; i < W * H; i++)
        gray[i] = (uint8_t)(i * 2);
    png_header(&png, W, H, PNG_FORMAT_GRAY);
    uint8_t *buf = write_png(&png, gray, W, NULL, &len);
    CHECK(buf != NULL);
    CHECK_EQ_INT(sg_image_decode(buf, len, 0, &img, &err), SG_OK);
    bool ok = img.rgb != NULL && img.width == W && img.height == H;
    for (int i = 0; ok && i < W * H; i++)
        ok = img.rgb[i * 3] == gray[i] && img.rgb[i * 3 + 1] == gray[i] && img.rgb[i * 3 + 2] == gray[i];
    CHECK(ok);
    sg_image_free(&img);
    /* ... and downscaled 2x. */
    CHECK_EQ_INT(sg_image_decode(buf, len, 4, &img, &err), SG_OK);
    CHECK_EQ_INT(img.width, 8);
    CHECK_EQ_INT(img.height, 4);
    if (img.rgb) /* cell (0,0) averages gray[0], gray[1], gray[16], gray[17] = 0, 2, 32, 34 */
        CHECK_EQ_INT(img.rgb[0], 17);
    sg_image_free(&img);
    free(buf);

    /* Palette: four colours. */
    uint8_t index[W * H];
    const uint8_t cmap[4 * 3] = {255, 0, 0, 0, 255, 0, 0, 0, 255, 10, 20, 30};
    for (int i = 0; i < W * H; i++)
        index[i] = (uint8_t)(i % 4);
    png_header(&png, W, H, PNG_FORMAT_RGB_COLORMAP);
    png.colormap_entries = 4;
    buf = write_png(&png, index, W, cmap, &len);
    CHECK(buf != NULL);
    CHECK_EQ_INT(sg_image_decode(buf, len, 0, &img, &err), SG_OK);
    ok = img.rgb != NULL;
    for (int i = 0; ok && i < W * H; i++)
        ok = memcmp(img.rgb + i * 3, cmap + (i % 4) * 3, 3) == 0;
    CHECK(ok);
    sg_image_free(&img);
    free(buf);

    /* RGBA: opaque pixels keep their colour, transparent ones go black, half-transparent ones
     * land in between. */
    uint8_t rgba[W * H * 4];
    for (int i = 0; i < W * H; i++) {
        rgba[i * 4 + 0] = 200;
        rgba[i * 4 + 1] = 100;
        rgba[i * 4 + 2] = 50;
        rgba[i * 4 + 3] = i % 3 == 0 ? 255 : i % 3 == 1 ? 0 : 128;
    }
    png_header(&png, W, H, PNG_FORMAT_RGBA);
    buf = write_png(&png, rgba, W * 4, NULL, &len);
    CHECK(buf != NULL);
    CHECK_EQ_INT(sg_image_decode(buf, len, 0, &img, &err), SG_OK);
    if (img.rgb) {
        CHECK(img.rgb[0] == 200 && img.rgb[1] == 100 && img.rgb[2] == 50);
        CHECK(img.rgb[3] == 0 && img.rgb[4] == 0 && img.rgb[5] == 0);
        CHECK(img.rgb[6] > 20 && img.rgb[6] < 200);
    }
    sg_image_free(&img);
    free(buf);

    /* 16-bit (linear) RGB: the extremes map to 0 and 255. */
    uint16_t deep[W * H * 3];
    for (int i = 0; i < W * H; i++) {
        deep[i * 3 + 0] = 65535;
        deep[i * 3 + 1] = 0;
        deep[i * 3 + 2] = (uint16_t)(i & 1 ? 65535 : 0);
    }
    png_header(&png, W, H, PNG_FORMAT_LINEAR_RGB);
    buf = write_png(&png, deep, W * 3, NULL, &len);
    CHECK(buf != NULL);
    CHECK_EQ_INT(sg_image_decode(buf, len, 0, &img, &err), SG_OK);
    if (img.rgb) {
        CHECK(img.rgb[0] == 255 && img.rgb[1] == 0 && img.rgb[2] == 0);
        CHECK(img.rgb[3] == 255 && img.rgb[4] == 0 && img.rgb[5] == 255);
    }
    sg_image_free(&img);
    free(buf);
}

/* ---- bad input ---- */

/* Finds the first SOFn marker (FFC0..FFC2) and rewrites its height and width. */
static bool patch_sof(uint8_t *buf, size_t len, int w, int h)
{
    for (size_t i = 2; i + 9 < len; i++) {
        if (buf[i] == 0xFF && buf[i + 1] >= 0xC0 && buf[i + 1] <= 0xC2) {
            buf[i + 5] = (uint8_t)(h >> 8);
            buf[i + 6] = (uint8_t)h;
            buf[i + 7] = (uint8_t)(w >> 8);
            buf[i + 8] = (uint8_t)w;
            return true;
        }
    }
    return false;
}

static uint32_t crc32_png(const uint8_t *p, size_t n)
{
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p[i];
        for (int k = 0; k < 8; k++)
            c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

static void put_be32(uint8_t *p, uint32_t v)
{
    p[0] = (uint8_t)(v >> 24);
    p[1] = (uint8_t)(v >> 16);
    p[2] = (uint8_t)(v >> 8);
    p[3] = (uint8_t)v;
}

static void test_bad_input(void)
{
    sg_image img;
    sg_error err = {0};
    size_t len;
    uint8_t *buf = check_read_photo("chelsea", &len);
    if (!buf)
        return;

    /* Truncated at 50%: an error, not a half-grey picture; also when DCT-scaled. */
    CHECK_EQ_INT(sg_image_decode(buf, len / 2, 0, &img, &err), SG_EIMAGE);
    CHECK(img.rgb == NULL && img.width == 0);
    CHECK_EQ_INT(sg_image_decode(buf, len / 2, 128, &img, &err), SG_EIMAGE);
    CHECK(err.msg[0] != '\0');
    /* Cut inside the header. */
    CHECK_EQ_INT(sg_image_decode(buf, 40, 0, &img, &err), SG_EIMAGE);
    /* A marker in the middle of the scan data ("premature end of data segment"). */
    uint8_t *bad = malloc(len);
    memcpy(bad, buf, len);
    bad[len / 2] = 0xFF;
    bad[len / 2 + 1] = 0xD9;
    CHECK_EQ_INT(sg_image_decode(bad, len, 0, &img, &err), SG_EIMAGE);
    /* Scrambled entropy-coded bytes need not be detectable (they often decode to a wrong but
     * valid picture); they must give either a picture or SG_EIMAGE. */
    memcpy(bad, buf, len);
    for (size_t i = len / 2; i < len / 2 + 64; i++)
        bad[i] = (uint8_t)(i * 37);
    sg_status st = sg_image_decode(bad, len, 0, &img, &err);
    CHECK(st == SG_OK || st == SG_EIMAGE);
    if (st == SG_OK)
        CHECK(img.width == 451 && img.height == 300);
    sg_image_free(&img);

    /* A header claiming 60000x60000 is refused before anything is allocated. */
    memcpy(bad, buf, len);
    CHECK(patch_sof(bad, len, 60000, 60000));
    CHECK_EQ_INT(sg_image_decode(bad, len, 0, &img, &err), SG_ETOOBIG);
    CHECK_EQ_INT(sg_image_decode(bad, len, 128, &img, &err), SG_ETOOBIG);
    CHECK(img.rgb == NULL);
    /* Over the side limit alone, and over the pixel limit with both sides allowed. */
    patch_sof(bad, len, SG_IMAGE_MAX_DIM + 1, 16);
    CHECK_EQ_INT(sg_image_decode(bad, len, 0, &img, &err), SG_ETOOBIG);
    patch_sof(bad, len, SG_IMAGE_MAX_DIM, SG_IMAGE_MAX_DIM);
    CHECK_EQ_INT(sg_image_decode(bad, len, 0, &img, &err), SG_ETOOBIG);
    free(bad);
    free(buf);

    /* The same for a PNG: IHDR rewritten (and its CRC fixed) to 60000x60000. */
    uint8_t px[4 * 4 * 3] = {0};
    png_image png;
    png_header(&png, 4, 4, PNG_FORMAT_RGB);
    buf = write_png(&png, px, 12, NULL, &len);
    CHECK(buf != NULL && len > 33 && memcmp(buf + 12, "IHDR", 4) == 0);
    if (buf && len > 33) {
        put_be32(buf + 16, 60000);
        put_be32(buf + 20, 60000);
        put_be32(buf + 29, crc32_png(buf + 12, 17));
        CHECK_EQ_INT(sg_image_decode(buf, len, 0, &img, &err), SG_ETOOBIG);
        /* A broken CRC in IHDR is an error, not a crash. */
        buf[29] ^= 0xFF;
        CHECK_EQ_INT(sg_image_decode(buf, len, 0, &img, &err), SG_EIMAGE);
    }
    free(buf);

    /* Garbage, magic followed by garbage, and empty input. */
    uint8_t junk[512];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 131 + 7);
    CHECK_EQ_INT(sg_image_sniff(junk, sizeof junk), SG_IMAGE_UNKNOWN);
    CHECK_EQ_INT(sg_image_decode(junk, sizeof junk, 0, &img, &err), SG_EIMAGE);
    junk[0] = 0xFF;
    junk[1] = 0xD8;
    junk[2] = 0xFF;
    CHECK_EQ_INT(sg_image_decode(junk, sizeof junk, 128, &img, &err), SG_EIMAGE);
    memcpy(junk, "\x89PNG\r\n\x1a\n", 8);
    CHECK_EQ_INT(sg_image_decode(junk, sizeof junk, 0, &img, &err), SG_EIMAGE);
    CHECK_EQ_INT(sg_image_decode(junk, 8, 0, &img, &err), SG_EIMAGE);
    CHECK_EQ_INT(sg_image_decode(NULL, 0, 0, &img, &err), SG_EIMAGE);
    CHECK_EQ_INT(sg_image_decode(junk, 0, 0, &img, &err), SG_EIMAGE);
    CHECK_EQ_INT(sg_image_decode(junk, 2, 0, &img, &err), SG_EIMAGE);
    CHECK_EQ_INT(sg_image_sniff(NULL, 0), SG_IMAGE_UNKNOWN);
    CHECK(img.rgb == NULL && img.width == 0 && img.height == 0);
    CHECK_EQ_INT(sg_image_decode(junk, 2, 0, &img, NULL), SG_EIMAGE); /* err is optional */
    CHECK_EQ_INT(sg_image_decode(junk, 2, 0, NULL, &err), SG_EINVAL);
    sg_image_free(&img);
    sg_image_free(NULL);
}

/* Grayscale JPEG made with TurboJPEG: decodes to equal channels. */
static void test_gray_jpeg(void)
{
    enum { W = 64, H = 48 };
    uint8_t gray[W * H];
    for (int i = 0; i < W * H; i++)
        gray[i] = (uint8_t)((i % W) * 4);
    tjhandle tj = tjInitCompress();
    unsigned char *jpeg = NULL;
    unsigned long jlen = 0;
    int rc = tjCompress2(tj, gray, W, W, H, TJPF_GRAY, &jpeg, &jlen, TJSAMP_GRAY, 90, 0);
    CHECK_EQ_INT(rc, 0);
    sg_image img;
    sg_error err;
    CHECK_EQ_INT(sg_image_decode(jpeg, jlen, 0, &img, &err), SG_OK);
    bool ok = img.rgb && img.width == W && img.height == H;
    int maxdiff = 0;
    for (int i = 0; ok && i < W * H; i++) {
        ok = img.rgb[i * 3] == img.rgb[i * 3 + 1] && img.rgb[i * 3] == img.rgb[i * 3 + 2];
        int d = abs(img.rgb[i * 3] - gray[i]);
        maxdiff = d > maxdiff ? d : maxdiff;
    }
    CHECK(ok);
    CHECK(maxdiff <= 12);
    sg_image_free(&img);
    CHECK_EQ_INT(sg_image_decode(jpeg, jlen, 6, &img, &err), SG_OK);
    CHECK_EQ_INT(img.width, 8);
    CHECK_EQ_INT(img.height, 6);
    sg_image_free(&img);
    tjFree(jpeg);
    tjDestroy(tj);
}

/* ---- thumbnail ---- */

static sg_image make_image(int w, int h)
{
    sg_image img = {.width = w, .height = h, .src_width = w, .src_height = h};
    img.rgb = calloc((size_t)w * h * 3, 1);
    return img;
}

static void set_gray(sg_image *img, int x, int y, uint8_t v)
{
    uint8_t *p = img->rgb + ((size_t)y * img->width + x) * 3;
    p[0] = p[1] = p[2] = v;
}

static void test_thumb8(void)
{
    float t[64];
    /* 16x16 in 2x2 cells of known gray. */
    sg_image img = make_image(16, 16);
    for (int y = 0; y < 16; y++)
        for (int x = 0; x < 16; x++)
            set_gray(&img, x, y, (uint8_t)(((y / 2) * 8 + x / 2) * 3));
    sg_image_thumb8(&img, t);
    bool ok = true;
    for (int i = 0; i < 64; i++)
        ok &= fabsf(t[i] - (float)(i * 3)) < 1e-3f;
    CHECK(ok);
    sg_image_free(&img);

    /* A 2x2 split in the middle of a cell averages by area; colours weigh by BT.601 luma. */
    img = make_image(16, 8);
    img.rgb[0] = 255;                     /* (0,0) red */
    img.rgb[(0 * 16 + 1) * 3 + 1] = 255;  /* (1,0) green */
    img.rgb[(0 * 16 + 2) * 3 + 2] = 255;  /* (2,0) blue, in the second cell */
    sg_image_thumb8(&img, t);
    CHECK_NEAR(t[0], (0.299 * 255 + 0.587 * 255) / 2.0, 1e-3);
    CHECK_NEAR(t[1], 0.114 * 255 / 2.0, 1e-3);
    CHECK_NEAR(t[8], 0.0, 1e-6);
    sg_image_free(&img);

    /* Smaller than 8 px: a 4x2 picture spreads each pixel over 2x4 cells. */
    img = make_image(4, 2);
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 4; x++)
            set_gray(&img, x, y, (uint8_t)(y * 100 + x * 10));
    sg_image_thumb8(&img, t);
    ok = true;
    for (int i = 0; i < 8; i++)
        for (int j = 0; j < 8; j++)
            ok &= fabsf(t[i * 8 + j] - (float)((i / 4) * 100 + (j / 2) * 10)) < 1e-3f;
    CHECK(ok);
    sg_image_free(&img);

    /* 1x1, and a 3x5 picture (cells straddle pixels): the cells' mean is the image mean. */
    img = make_image(1, 1);
    set_gray(&img, 0, 0, 77);
    sg_image_thumb8(&img, t);
    CHECK_NEAR(t[0], 77.0, 1e-3);
    CHECK_NEAR(t[63], 77.0, 1e-3);
    sg_image_free(&img);
    img = make_image(3, 5);
    double mean = 0.0;
    for (int y = 0; y < 5; y++)
        for (int x = 0; x < 3; x++) {
            set_gray(&img, x, y, (uint8_t)(x * 50 + y * 13));
            mean += x * 50 + y * 13;
        }
    mean /= 15.0;
    sg_image_thumb8(&img, t);
    double tm = 0.0;
    for (int i = 0; i < 64; i++)
        tm += t[i];
    CHECK_NEAR(tm / 64.0, mean, 1e-3);
    sg_image_free(&img);

    /* No image: zeros, no crash. */
    sg_image none = {0};
    t[5] = 9.0f;
    sg_image_thumb8(&none, t);
    CHECK_NEAR(t[5], 0.0, 0.0);

    /* A real photo: the same thumbnail whichever DCT scale decoded it, give or take. */
    size_t len;
    uint8_t *buf = check_read_photo("coffee", &len);
    if (buf) {
        sg_image a, b;
        sg_error err;
        float ta[64], tb[64];
        if (sg_image_decode(buf, len, 0, &a, &err) == SG_OK &&
            sg_image_decode(buf, len, 128, &b, &err) == SG_OK) {
            sg_image_thumb8(&a, ta);
            sg_image_thumb8(&b, tb);
            double d = 0.0;
            for (int i = 0; i < 64; i++)
                d += fabs(ta[i] - tb[i]);
            CHECK(d / 64.0 < 1.5);
            sg_image_free(&a);
            sg_image_free(&b);
        } else {
            CHECK(0);
        }
        free(buf);
    }
}

int main(void)
{
    test_photos();
    test_png_rgb();
    test_png_uniform_downscale();
    test_png_variants();
    test_bad_input();
    test_gray_jpeg();
    test_thumb8();
    return check_report("test_image");
}
