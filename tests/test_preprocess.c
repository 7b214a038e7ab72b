/* CLIP preprocessing against Pillow and transformers, through tests/fixtures/preprocess (written by
 * py/gen_preprocess_fixture.py): the sample photos end to end, synthetic images regenerated
 * here byte for byte (odd sizes, extreme aspect, up- and downscales, padding crops), the resize
 * size rule, the normalisation table, crop windows against full resizes, and the error paths. */
#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "media/image.h"
#include "media/preprocess.h"

#define FIXTURE_DIR "tests/fixtures/preprocess/"

/* ---- SHA-256 (FIPS 180-4), for the fixture's digests ----------------------------------------- */

typedef struct sha256_ctx {
    uint32_t h[8];
    uint8_t block[64];
    size_t fill;
    uint64_t total;
} sha256_ctx;

static const uint32_t sha256_k[64] = {
    0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4, 0xab1c5ed5,
    0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe, 0x9bdc06a7, 0xc19bf174,
    0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f, 0x4a7484aa, 0x5cb0a9dc, 0x76f988da,
    0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7, 0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967,
    0x27b70a85, 0x2e1b2138, 0x4d2c6dfc, 0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85,
    0xa2bfe8a1, 0xa81a664b, 0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070,
    0x19a4c116, 0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
    0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7, 0xc67178f2,
};

static uint32_t ror32(uint32_t x, int n)
{
    return (x >> n) | (x << (32 - n));
}

static void sha256_block(sha256_ctx *c, const uint8_t *p)
{
    uint32_t w[64];
    for (int i = 0; i < 16; i++)
        w[i] = (uint32_t)p[4 * i] << 24 | (uint32_t)p[4 * i + 1] << 16 |
               (uint32_t)p[4 * i + 2] << 8 | p[4 * i + 3];
    for (int i = 16; i < 64; i++) {
        uint32_t s0 = ror32(w[i - 15], 7) ^ ror32(w[i - 15], 18) ^ (w[i - 15] >> 3);
        uint32_t s1 = ror32(w[i - 2], 17) ^ ror32(w[i - 2], 19) ^ (w[i - 2] >> 10);
        w[i] = w[i - 16] + s0 + w[i - 7] + s1;
    }
    uint32_t a = c->h[0], b = c->h[1], cc = c->h[2], d = c->h[3];
    uint32_t e = c->h[4], f = c->h[5], g = c->h[6], h = c->h[7];
    for (int i = 0; i < 64; i++) {
        uint32_t t1 = h + (ror32(e, 6) ^ ror32(e, 11) ^ ror32(e, 25)) + ((e & f) ^ (~e & g)) +
                      sha256_k[i] + w[i];
        uint32_t t2 = (ror32(a, 2) ^ ror32(a, 13) ^ ror32(a, 22)) + ((a & b) ^ (a & cc) ^ (b & cc));
        h = g, g = f, f = e, e = d + t1, d = cc, cc = b, b = a, a = t1 + t2;
    }
    c->h[0] += a, c->h[1] += b, c->h[2] += cc, c->h[3] += d;
    c->h[4] += e, c->h[5] += f, c->h[6] += g, c->h[7] += h;
}

static void sha256_hex(const void *data, size_t len, char hex[65])
{
    static const uint32_t iv[8] = {0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a,
                                   0x510e527f, 0x9b05688c, 0x1f83d9ab, 0x5be0cd19};
    sha256_ctx c = {.fill = 0, .total = len};
    memcpy(c.h, iv, sizeof iv);
    const uint8_t *p = data;
    for (; len >= 64; p += 64, len -= 64)
        sha256_block(&c, p);
    uint8_t tail[128] = {0};
    memcpy(tail, p, len);
    tail[len] = 0x80;
    size_t n = len + 1 + 8 <= 64 ? 64 : 128;
    uint64_t bits = c.total * 8;
    for (int i = 0; i < 8; i++)
        tail[n - 1 - i] = (uint8_t)(bits >> (8 * i));
    for (size_t off = 0; off < n; off += 64)
        sha256_block(&c, tail + off);
    for (int i = 0; i < 8; i++)
        snprintf(hex + 8 * i, 9, "%08x", c.h[i]);
}

static bool sha256_is(const void *data, size_t len, const char *want)
{
    char hex[65];
    sha256_hex(data, len, hex);
    return want && strcmp(hex, want) == 0;
}

/* ---- helpers ------------------------------------------------------------------------------- */

static bool decode_file(const char *path, int min_short_side, sg_image *img)
{
    size_t len = 0;
    uint8_t *buf = check_read_file(path, &len);
    CHECK_MSG(buf != NULL, "cannot read %s", path);
    if (!buf)
        return false;
    sg_error err = {0};
    sg_status st = sg_image_decode(buf, len, min_short_side, img, &err);
    free(buf);
    CHECK_MSG(st == SG_OK, "%s: %s", path, err.msg);
    return st == SG_OK;
}

static int max_abs_diff(const uint8_t *a, const uint8_t *b, size_t n)
{
    int m = 0;
    for (size_t i = 0; i < n; i++) {
        int d = a[i] > b[i] ? a[i] - b[i] : b[i] - a[i];
        if (d > m)
            m = d;
    }
    return m;
}

static int hex_nibble(char c)
{
    return c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ? c - 'a' + 10 : -1;
}

/* The fixture generator's synthetic images (see synth() in the script). */
static uint8_t *synth(const char *kind, int w, int h, uint32_t seed)
{
    uint8_t *p = malloc((size_t)w * h * 3);
    if (!p)
        return NULL;
    if (strcmp(kind, "noise") == 0) {
        uint32_t s = seed;
        for (size_t i = 0; i < (size_t)w * h * 3; i++) {
            s ^= s << 13;
            s ^= s >> 17;
            s ^= s << 5;
            p[i] = (uint8_t)(s >> 24);
        }
        return p;
    }
    bool grad = strcmp(kind, "gradient") == 0;
    for (int y = 0; y < h; y++) {
        for (int x = 0; x < w; x++) {
            uint8_t *q = p + ((size_t)y * w + x) * 3;
            if (grad) {
                q[0] = (uint8_t)(x * 255 / (w > 1 ? w - 1 : 1));
                q[1] = (uint8_t)(y * 255 / (h > 1 ? h - 1 : 1));
                q[2] = (uint8_t)((3 * x + 5 * y) & 255);
            } else {
                q[0] = ((x / 3 + y / 2) & 1) ? 255 : 0;
                q[1] = ((x + y) & 1) ? 255 : 0;
                q[2] = (uint8_t)((37 * x + 11 * y) & 255);
            }
        }
    }
    return p;
}

/* transformers' rescale + normalize for one byte, written independently of the library:
 * float64 multiply by the double 1/255, float32 cast, float32 subtract and divide. */
static float hf_normalize(int v, double mean, double std)
{
    float x = (float)((double)v * 0.00392156862745098);
    float m = (float)mean, s = (float)std;
    float d = x - m;
    return d / s;
}

static const double clip_mean[3] = {0.48145466, 0.4578275, 0.40821073};
static const double clip_std[3] = {0.26862954, 0.26130258, 0.27577711};
static float norm_lut[3][256];

/* Inverse of norm_lut (strictly increasing per channel): the byte a tensor value came from, or
 * -1 when the value is no normalised byte at all. */
static int unnormalize(int c, float v)
{
    int lo = 0, hi = 255;
    while (lo < hi) {
        int mid = (lo + hi) / 2;
        if (norm_lut[c][mid] < v)
            lo = mid + 1;
        else
            hi = mid;
    }
    return norm_lut[c][lo] == v ? lo : -1;
}

/* A CHW tensor back to the HWC uint8 crop it normalises; false if some value is not a table
 * entry. */
static bool chw_to_crop(const float *chw, int cw, int ch, uint8_t *crop)
{
    bool ok = true;
    for (int c = 0; c < 3; c++)
        for (size_t i = 0; i < (size_t)cw * ch; i++) {
            int v = unnormalize(c, chw[(size_t)c * cw * ch + i]);
            ok &= v >= 0;
            crop[i * 3 + c] = (uint8_t)(v < 0 ? 0 : v);
        }
    return ok;
}

static double json_num(json_t *v)
{
    return json_number_value(v);
}

/* Checks a CLIP record (crop/chw digests, head/tail values, sum) against sg_clip_preprocess of img
 * with the record's config. Returns the max |diff| of the crop against png_crop when given, 0 on
 * a digest match, or -1 when the crop differs and no PNG says by how much. */
static int check_clip_record(const char *what, const sg_image *img, json_t *rec,
                             const uint8_t *png_crop)
{
    sg_clip_preprocess_cfg cfg;
    sg_clip_preprocess_defaults(&cfg);
    cfg.shortest_edge = (int)json_integer_value(json_object_get(rec, "shortest_edge"));
    json_t *crop_size = json_object_get(rec, "crop");
    cfg.crop_w = (int)json_integer_value(json_array_get(crop_size, 0));
    cfg.crop_h = (int)json_integer_value(json_array_get(crop_size, 1));
    json_t *resized = json_object_get(rec, "resized");
    int rw = 0, rh = 0;
    CHECK(sg_clip_resize_dims(img->width, img->height, cfg.shortest_edge, &rw, &rh, NULL) == SG_OK);
    CHECK_EQ_INT(rw, json_integer_value(json_array_get(resized, 0)));
    CHECK_EQ_INT(rh, json_integer_value(json_array_get(resized, 1)));

    const size_t plane = (size_t)cfg.crop_w * cfg.crop_h, n = plane * 3;
    float *chw = malloc(n * sizeof *chw);
    uint8_t *crop = malloc(n);
    if (!chw || !crop) {
        free(chw);
        free(crop);
        CHECK(!"out of memory");
        return -1;
    }
    sg_error err = {0};
    sg_status st = sg_clip_preprocess(img, &cfg, chw, &err);
    CHECK_MSG(st == SG_OK, "%s: %s", what, err.msg);
    int maxdiff = -1;
    if (st == SG_OK) {
        CHECK_MSG(chw_to_crop(chw, cfg.crop_w, cfg.crop_h, crop),
                  "%s: tensor holds values that are no normalised byte", what);
        bool crop_ok = sha256_is(crop, n, json_string_value(json_object_get(rec, "crop_sha256")));
        CHECK_MSG(crop_ok, "%s: uint8 crop differs from Pillow's", what);
        maxdiff = crop_ok ? 0 : -1;
        if (png_crop)
            maxdiff = max_abs_diff(crop, png_crop, n);

        /* The float tensor, bit for bit (little-endian float32, as numpy wrote it). */
        CHECK_MSG(sha256_is(chw, n * sizeof *chw,
                            json_string_value(json_object_get(rec, "chw_sha256"))),
                  "%s: float32 tensor is not bit-identical to transformers'", what);
        json_t *head = json_object_get(rec, "chw_head"), *tail = json_object_get(rec, "chw_tail");
        for (size_t i = 0; i < 8; i++) {
            CHECK_NEAR(chw[i], json_num(json_array_get(head, i)), 1e-6);
            CHECK_NEAR(chw[n - 8 + i], json_num(json_array_get(tail, i)), 1e-6);
        }
        double sum = 0;
        for (size_t i = 0; i < n; i++)
            sum += chw[i];
        CHECK_NEAR(sum, json_num(json_object_get(rec, "chw_sum")), 1e-4);
    }
    free(chw);
    free(crop);
    return maxdiff;
}

/* transformers' center_crop on an HWC uint8 image, zero padding included. */
static void hf_center_crop(const uint8_t *rgb, int w, int h, int cw, int ch, uint8_t *out)
{
    int left = w - cw >= 0 ? (w - cw) / 2 : -((cw - w + 1) / 2);
    int top = h - ch >= 0 ? (h - ch) / 2 : -((ch - h + 1) / 2);
    for (int y = 0; y < ch; y++)
        for (int x = 0; x < cw; x++) {
            int sx = x + left, sy = y + top;
            for (int c = 0; c < 3; c++)
                out[((size_t)y * cw + x) * 3 + c] =
                    sx >= 0 && sx < w && sy >= 0 && sy < h ? rgb[((size_t)sy * w + sx) * 3 + c] : 0;
        }
}

/* sg_clip_preprocess computes only the crop window; compare it with a full resize, a crop and
 * the table, for one image and config. */
static bool window_matches_full(const sg_image *img, const sg_clip_preprocess_cfg *cfg)
{
    int rw = 0, rh = 0;
    if (sg_clip_resize_dims(img->width, img->height, cfg->shortest_edge, &rw, &rh, NULL) != SG_OK)
        return false;
    sg_image full = {0};
    sg_error err = {0};
    if (sg_image_resize_bicubic(img, rw, rh, &full, &err) != SG_OK)
        return false;
    size_t plane = (size_t)cfg->crop_w * cfg->crop_h;
    uint8_t *crop = malloc(plane * 3);
    float *want = malloc(plane * 3 * sizeof *want), *got = malloc(plane * 3 * sizeof *got);
    bool ok = crop && want && got;
    if (ok) {
        hf_center_crop(full.rgb, rw, rh, cfg->crop_w, cfg->crop_h, crop);
        for (int c = 0; c < 3; c++)
            for (size_t i = 0; i < plane; i++)
                want[c * plane + i] = norm_lut[c][crop[i * 3 + c]];
        ok = sg_clip_preprocess(img, cfg, got, &err) == SG_OK &&
             memcmp(want, got, plane * 3 * sizeof *got) == 0;
    }
    free(crop);
    free(want);
    free(got);
    sg_image_free(&full);
    return ok;
}

/* ---- tests --------------------------------------------------------------------------------- */

/* The digest itself, on FIPS 180-2's examples (one block, and 56 bytes: padding spills over). */
static void test_sha256(void)
{
    CHECK(sha256_is("abc", 3,
                    "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"));
    const char *two = "abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    CHECK(sha256_is(two, strlen(two),
                    "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"));
}

static void test_norm_table(json_t *m)
{
    sg_clip_preprocess_cfg cfg;
    sg_clip_preprocess_defaults(&cfg);
    CHECK_EQ_INT(cfg.shortest_edge, 224);
    CHECK_EQ_INT(cfg.crop_w, 224);
    CHECK_EQ_INT(cfg.crop_h, 224);
    json_t *table = json_object_get(m, "norm_table");
    CHECK_EQ_INT(json_array_size(table), 3);
    int exact = 0;
    for (int c = 0; c < 3; c++) {
        CHECK(cfg.mean[c] == (float)clip_mean[c]);
        CHECK(cfg.std[c] == (float)clip_std[c]);
        CHECK(cfg.mean[c] == (float)json_num(json_array_get(json_object_get(m, "mean"), c)));
        CHECK(cfg.std[c] == (float)json_num(json_array_get(json_object_get(m, "std"), c)));
        json_t *row = json_array_get(table, c);
        for (int v = 0; v < 256; v++) {
            double want = json_num(json_array_get(row, v));
            CHECK_NEAR(norm_lut[c][v], want, 1e-6);
            exact += norm_lut[c][v] == (float)want;
            if (v > 0)
                CHECK(norm_lut[c][v] > norm_lut[c][v - 1]);
        }
    }
    CHECK_EQ_INT(exact, 3 * 256);

    /* The library's own table through a 1x1 image of each grey level: an image with one value
     * resizes to that value everywhere. */
    sg_image one = {.width = 1, .height = 1};
    uint8_t px[3];
    one.rgb = px;
    float *chw = malloc((size_t)3 * 224 * 224 * sizeof *chw);
    CHECK(chw != NULL);
    int lib_exact = 0;
    for (int v = 0; chw && v < 256; v += 17) {
        px[0] = px[1] = px[2] = (uint8_t)v;
        CHECK(sg_clip_preprocess(&one, NULL, chw, NULL) == SG_OK);
        for (int c = 0; c < 3; c++)
            lib_exact += chw[(size_t)c * 224 * 224 + 12345] == norm_lut[c][v] &&
                         chw[(size_t)c * 224 * 224] == norm_lut[c][v];
    }
    CHECK_EQ_INT(lib_exact, 16 * 3);

    /* cfg NULL is the defaults. */
    sg_image img = {.width = 300, .height = 233};
    img.rgb = synth("noise", 300, 233, 42);
    float *chw2 = malloc((size_t)3 * 224 * 224 * sizeof *chw2);
    CHECK(img.rgb && chw && chw2 && sg_clip_preprocess(&img, NULL, chw, NULL) == SG_OK &&
          sg_clip_preprocess(&img, &cfg, chw2, NULL) == SG_OK &&
          memcmp(chw, chw2, (size_t)3 * 224 * 224 * sizeof *chw) == 0);
    free(img.rgb);
    free(chw2);
    free(chw);
}

static void test_dims(json_t *m)
{
    json_t *dims = json_object_get(m, "dims");
    size_t i;
    json_t *row;
    int bad = 0;
    CHECK(json_array_size(dims) > 100);
    json_array_foreach(dims, i, row) {
        int w = (int)json_integer_value(json_array_get(row, 0));
        int h = (int)json_integer_value(json_array_get(row, 1));
        int se = (int)json_integer_value(json_array_get(row, 2));
        int ow = -1, oh = -1;
        sg_status st = sg_clip_resize_dims(w, h, se, &ow, &oh, NULL);
        if (st != SG_OK || ow != json_integer_value(json_array_get(row, 3)) ||
            oh != json_integer_value(json_array_get(row, 4))) {
            bad++;
            fprintf(stderr, "dims %dx%d se %d -> %dx%d\n", w, h, se, ow, oh);
        }
    }
    CHECK_EQ_INT(bad, 0);
    int ow = 0, oh = 0;
    CHECK(sg_clip_resize_dims(320, 240, 224, &ow, &oh, NULL) == SG_OK && ow == 298 && oh == 224);
    CHECK(sg_clip_resize_dims(451, 300, 224, &ow, &oh, NULL) == SG_OK && ow == 336 && oh == 224);
    CHECK(sg_clip_resize_dims(240, 320, 224, &ow, &oh, NULL) == SG_OK && ow == 224 && oh == 298);
    CHECK(sg_clip_resize_dims(224, 224, 224, &ow, &oh, NULL) == SG_OK && ow == 224 && oh == 224);
}

static void test_photos(json_t *m)
{
    json_t *photos = json_object_get(m, "photos");
    CHECK_EQ_INT(json_array_size(photos), 8);
    size_t i;
    json_t *rec;
    printf("%-18s %9s %9s %8s %7s %s\n", "photo", "size", "resized", "decode", "|diff|",
           "DCT-scaled decode |diff| (info)");
    json_array_foreach(photos, i, rec) {
        const char *name = json_string_value(json_object_get(rec, "name"));
        char path[256];
        snprintf(path, sizeof path, "../shared/data/images/%s.jpg", name);
        sg_image img = {0};
        if (!decode_file(path, 0, &img))
            continue;
        CHECK_EQ_INT(img.width, json_integer_value(json_object_get(rec, "width")));
        CHECK_EQ_INT(img.height, json_integer_value(json_object_get(rec, "height")));
        /* Pillow and TurboJPEG share Debian's libjpeg-turbo, so the decode should agree too. */
        bool same_decode = sha256_is(img.rgb, (size_t)img.width * img.height * 3,
                                     json_string_value(json_object_get(rec, "decode_sha256")));
        CHECK_MSG(same_decode, "%s: full-size decode differs from Pillow's", name);

        uint8_t *png = NULL;
        sg_image pimg = {0};
        const char *png_name = json_string_value(json_object_get(rec, "png"));
        if (png_name) {
            snprintf(path, sizeof path, FIXTURE_DIR "%s", png_name);
            if (decode_file(path, 0, &pimg)) {
                CHECK_EQ_INT(pimg.width, 224);
                CHECK_EQ_INT(pimg.height, 224);
                png = pimg.rgb;
            }
        }
        int diff = check_clip_record(name, &img, rec, png);

        /* The production path decodes DCT-scaled first; how far that lands from the reference
         * is worth seeing but is not a property of this module. */
        char dct[32] = "-";
        if (png) {
            sg_image small = {0};
            snprintf(path, sizeof path, "../shared/data/images/%s.jpg", name);
            uint8_t crop[224 * 224 * 3];
            float *chw = malloc(sizeof(float) * 3 * 224 * 224);
            if (chw && decode_file(path, 224, &small) &&
                sg_clip_preprocess(&small, NULL, chw, NULL) == SG_OK &&
                chw_to_crop(chw, 224, 224, crop)) {
                double mean = 0;
                for (size_t k = 0; k < sizeof crop; k++)
                    mean += abs((int)crop[k] - (int)png[k]);
                snprintf(dct, sizeof dct, "max %d mean %.2f (%dx%d)",
                         max_abs_diff(crop, png, sizeof crop), mean / (double)sizeof crop,
                         small.width, small.height);
            }
            free(chw);
            sg_image_free(&small);
        }
        char size[24], rsz[24];
        snprintf(size, sizeof size, "%dx%d", img.width, img.height);
        json_t *r = json_object_get(rec, "resized");
        snprintf(rsz, sizeof rsz, "%lldx%lld", (long long)json_integer_value(json_array_get(r, 0)),
                 (long long)json_integer_value(json_array_get(r, 1)));
        printf("%-18s %9s %9s %8s %7d %s\n", name, size, rsz, same_decode ? "same" : "DIFFERS",
               diff, dct);

        sg_clip_preprocess_cfg cfg;
        sg_clip_preprocess_defaults(&cfg);
        CHECK_MSG(window_matches_full(&img, &cfg), "%s: crop window differs from full resize",
                  name);
        sg_image_free(&pimg);
        sg_image_free(&img);
    }
}

static void test_synthetic(json_t *m)
{
    json_t *syn = json_object_get(m, "synthetic");
    CHECK(json_array_size(syn) >= 8);
    size_t i;
    json_t *rec;
    json_array_foreach(syn, i, rec) {
        const char *name = json_string_value(json_object_get(rec, "name"));
        int w = (int)json_integer_value(json_object_get(rec, "width"));
        int h = (int)json_integer_value(json_object_get(rec, "height"));
        sg_image img = {.width = w, .height = h};
        img.rgb = synth(json_string_value(json_object_get(rec, "kind")), w, h,
                        (uint32_t)json_integer_value(json_object_get(rec, "seed")));
        if (!img.rgb) {
            CHECK(!"out of memory");
            continue;
        }
        CHECK_MSG(sha256_is(img.rgb, (size_t)w * h * 3,
                            json_string_value(json_object_get(rec, "input_sha256"))),
                  "%s: generated input differs from the script's", name);

        size_t j;
        json_t *rz;
        json_array_foreach(json_object_get(rec, "resizes"), j, rz) {
            int ow = (int)json_integer_value(json_array_get(json_object_get(rz, "size"), 0));
            int oh = (int)json_integer_value(json_array_get(json_object_get(rz, "size"), 1));
            sg_image out = {0};
            sg_error err = {0};
            sg_status st = sg_image_resize_bicubic(&img, ow, oh, &out, &err);
            CHECK_MSG(st == SG_OK, "%s -> %dx%d: %s", name, ow, oh, err.msg);
            if (st != SG_OK)
                continue;
            CHECK_EQ_INT(out.width, ow);
            CHECK_EQ_INT(out.height, oh);
            size_t n = (size_t)ow * oh * 3;
            bool same = sha256_is(out.rgb, n, json_string_value(json_object_get(rz, "sha256")));
            const char *hex = json_string_value(json_object_get(rz, "hex"));
            int diff = same ? 0 : -1;
            if (hex && strlen(hex) == 2 * n) {
                diff = 0;
                for (size_t k = 0; k < n; k++) {
                    int want = hex_nibble(hex[2 * k]) * 16 + hex_nibble(hex[2 * k + 1]);
                    int d = abs(want - out.rgb[k]);
                    diff = d > diff ? d : diff;
                }
            }
            CHECK_MSG(same && diff == 0, "%s -> %dx%d differs from Pillow (max |diff| %d)", name,
                      ow, oh, diff);
            sg_image_free(&out);
        }

        json_t *cr;
        json_array_foreach(json_object_get(rec, "clip"), j, cr) {
            char what[96];
            snprintf(what, sizeof what, "%s clip #%zu", name, j);
            CHECK_EQ_INT(check_clip_record(what, &img, cr, NULL), 0);
        }
        free(img.rgb);
    }
}

/* Windows against full resizes on shapes and configs the fixture does not cover: every crop
 * position class (inside, flush, padded on one or both axes, odd and even slack). */
static void test_windows(void)
{
    static const int sizes[][2] = {{1, 1}, {2, 9}, {9, 2}, {37, 23}, {64, 64}, {100, 7},
                                   {250, 251}, {333, 190}, {47, 300}};
    static const int cfgs[][3] = {{224, 224, 224}, {16, 16, 16}, {16, 9, 20}, {20, 40, 12},
                                  {33, 35, 35}, {7, 3, 5}, {50, 51, 49}};
    int bad = 0, n = 0;
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int w = sizes[s][0], h = sizes[s][1];
        sg_image img = {.width = w, .height = h};
        img.rgb = synth(s % 2 ? "noise" : "checker", w, h, 99 + (uint32_t)s);
        for (size_t c = 0; img.rgb && c < sizeof cfgs / sizeof cfgs[0]; c++) {
            sg_clip_preprocess_cfg cfg;
            sg_clip_preprocess_defaults(&cfg);
            cfg.shortest_edge = cfgs[c][0];
            cfg.crop_w = cfgs[c][1];
            cfg.crop_h = cfgs[c][2];
            n++;
            if (!window_matches_full(&img, &cfg)) {
                bad++;
                fprintf(stderr, "window %dx%d cfg %d/%dx%d differs\n", w, h, cfg.shortest_edge,
                        cfg.crop_w, cfg.crop_h);
            }
        }
        free(img.rgb);
    }
    CHECK_EQ_INT(n, 63);
    CHECK_EQ_INT(bad, 0);
}

static void test_resize_properties(void)
{
    uint8_t px[3] = {10, 200, 77};
    sg_image one = {.width = 1, .height = 1, .src_width = 5, .src_height = 6,
                    .format = SG_IMAGE_PNG, .rgb = px};
    sg_image out = {0};
    CHECK(sg_image_resize_bicubic(&one, 13, 4, &out, NULL) == SG_OK);
    bool flat = out.rgb != NULL;
    for (int i = 0; flat && i < 13 * 4; i++)
        flat = memcmp(out.rgb + 3 * i, px, 3) == 0;
    CHECK(flat);
    CHECK_EQ_INT(out.src_width, 5);
    CHECK_EQ_INT(out.src_height, 6);
    CHECK_EQ_INT(out.format, SG_IMAGE_PNG);
    sg_image_free(&out);

    /* The same size is a copy. */
    sg_image img = {.width = 31, .height = 17};
    img.rgb = synth("noise", 31, 17, 5);
    CHECK(img.rgb && sg_image_resize_bicubic(&img, 31, 17, &out, NULL) == SG_OK);
    CHECK(out.rgb && memcmp(out.rgb, img.rgb, 31 * 17 * 3) == 0);
    sg_image_free(&out);
    free(img.rgb);
}

static void test_errors(void)
{
    uint8_t px[12] = {0};
    sg_image img = {.width = 2, .height = 2, .rgb = px};
    sg_image out = {.width = 99};
    sg_error err = {0};
    float chw[3 * 4 * 4];

    CHECK(sg_image_resize_bicubic(NULL, 4, 4, &out, &err) == SG_EINVAL);
    CHECK_EQ_INT(out.width, 0); /* zeroed on error */
    CHECK(err.code == SG_EINVAL && err.msg[0]);
    CHECK(sg_image_resize_bicubic(&img, 4, 4, NULL, &err) == SG_EINVAL);
    CHECK(sg_image_resize_bicubic(&img, 0, 4, &out, &err) == SG_EINVAL);
    CHECK(sg_image_resize_bicubic(&img, 4, -1, &out, &err) == SG_EINVAL);
    CHECK(sg_image_resize_bicubic(&img, SG_IMAGE_MAX_DIM + 1, 4, &out, &err) == SG_ETOOBIG);
    CHECK(sg_image_resize_bicubic(&img, SG_IMAGE_MAX_DIM, SG_IMAGE_MAX_DIM, &out, &err) ==
          SG_ETOOBIG);
    CHECK(out.rgb == NULL);
    sg_image empty = {.width = 0, .height = 2, .rgb = px};
    CHECK(sg_image_resize_bicubic(&empty, 4, 4, &out, &err) == SG_EINVAL);
    sg_image norgb = {.width = 2, .height = 2, .rgb = NULL};
    CHECK(sg_image_resize_bicubic(&norgb, 4, 4, &out, &err) == SG_EINVAL);
    CHECK(sg_image_resize_bicubic(&img, 4, 4, &out, NULL) == SG_OK); /* err is optional */
    sg_image_free(&out);

    sg_clip_preprocess_cfg cfg;
    sg_clip_preprocess_defaults(&cfg);
    cfg.crop_w = cfg.crop_h = 4;
    cfg.shortest_edge = 4;
    CHECK(sg_clip_preprocess(&img, &cfg, chw, &err) == SG_OK);
    CHECK(sg_clip_preprocess(NULL, &cfg, chw, &err) == SG_EINVAL);
    CHECK(sg_clip_preprocess(&empty, &cfg, chw, &err) == SG_EINVAL);
    CHECK(sg_clip_preprocess(&norgb, &cfg, chw, &err) == SG_EINVAL);
    CHECK(sg_clip_preprocess(&img, &cfg, NULL, &err) == SG_EINVAL);
    sg_clip_preprocess_cfg bad = cfg;
    bad.shortest_edge = 0;
    CHECK(sg_clip_preprocess(&img, &bad, chw, &err) == SG_EINVAL);
    bad = cfg;
    bad.crop_w = 0;
    CHECK(sg_clip_preprocess(&img, &bad, chw, &err) == SG_EINVAL);
    bad = cfg;
    bad.crop_h = -3;
    CHECK(sg_clip_preprocess(&img, &bad, chw, &err) == SG_EINVAL);
    bad = cfg;
    bad.std[1] = 0.0f;
    CHECK(sg_clip_preprocess(&img, &bad, chw, &err) == SG_EINVAL);
    bad = cfg;
    bad.mean[2] = NAN;
    CHECK(sg_clip_preprocess(&img, &bad, chw, &err) == SG_EINVAL);
    sg_clip_preprocess_defaults(NULL); /* harmless */

    int ow = 0, oh = 0;
    CHECK(sg_clip_resize_dims(0, 5, 224, &ow, &oh, &err) == SG_EINVAL);
    CHECK(sg_clip_resize_dims(5, -1, 224, &ow, &oh, &err) == SG_EINVAL);
    CHECK(sg_clip_resize_dims(5, 5, 0, &ow, &oh, &err) == SG_EINVAL);
    CHECK(sg_clip_resize_dims(1, 16384, 1 << 30, &ow, &oh, &err) == SG_ETOOBIG);
    /* A huge virtual resize is fine for the CLIP path: only the crop is computed. */
    sg_image strip = {.width = 16384, .height = 1};
    strip.rgb = synth("gradient", 16384, 1, 0);
    float *big = malloc(sizeof(float) * 3 * 224 * 224);
    CHECK(strip.rgb && big && sg_clip_preprocess(&strip, NULL, big, &err) == SG_OK);
    free(big);
    free(strip.rgb);
}

int main(void)
{
    for (int c = 0; c < 3; c++)
        for (int v = 0; v < 256; v++)
            norm_lut[c][v] = hf_normalize(v, clip_mean[c], clip_std[c]);
    test_sha256();
    json_error_t jerr;
    json_t *m = json_load_file(FIXTURE_DIR "manifest.json", 0, &jerr);
    CHECK_MSG(m != NULL, "cannot load " FIXTURE_DIR "manifest.json: %s (line %d)", jerr.text,
              jerr.line);
    if (m) {
        test_norm_table(m);
        test_dims(m);
        test_photos(m);
        test_synthetic(m);
        json_decref(m);
    }
    test_windows();
    test_resize_properties();
    test_errors();
    return check_report("test_preprocess");
}
