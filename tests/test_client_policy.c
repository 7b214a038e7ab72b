/* Tests of libsgclient's policy code (no network): the frame-rate controller's configuration matrix
 * and capture counts over simulated seconds, the motion score (including the packed-ARGB mistake of
 * the guide's Kotlin), the JPEG quality rule and uplink estimate, the keyframe pre-filter against
 * the server's own gate and thumbnail, frame fitting, the upload queue, the retry policy with a
 * fake clock and RNG, Retry-After parsing, Y4M parsing, the statistics helpers, and the upload
 * budget (bands, token bucket, quality stepping with a fake encoder, skips that stay owed, and ten
 * simulated minutes in which no 60 s window goes over the budget), and the library's status names,
 * messages and version. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/keyframe.h"
#include "check.h"
#include "media/image.h"
#include "sgclient.h"

/* Handles for the tests: a failed _new is a failed check, then a crash on the NULL. */
static sg_rate_controller *new_rate(const sg_rate_config *c)
{
    sg_rate_controller *rc = NULL;
    CHECK(sg_rate_controller_new(c, &rc) == SG_CLIENT_OK);
    return rc;
}

static sg_budget *new_budget(const sg_budget_config *c)
{
    sg_budget *b = NULL;
    CHECK(sg_budget_new(c, &b) == SG_CLIENT_OK);
    return b;
}


/* ---- frame-rate controller ------------------------------------------------------------------ */

typedef struct matrix_row {
    double battery;
    bool active;
    double motion;
    sg_rate_mode mode;
    double fps;
    const char *why;
} matrix_row;

static void test_config_matrix(void)
{
    static const matrix_row rows[] = {
        /* the guide's configuration matrix, as the issue states the rule */
        {100, true, 0.8, SG_RATE_MEDIUM, 15, "> 60 %, active, high motion: 15 fps"},
        {100, true, 0.1, SG_RATE_MEDIUM, 10, "> 60 %, active, low motion: the default 10 fps"},
        {100, false, 0.1, SG_RATE_MEDIUM, 10, "> 60 %, idle: MEDIUM per the rule (the guide's matrix says 5)"},
        {100, false, 0.8, SG_RATE_MEDIUM, 15, "> 60 %, idle, motion: boosted"},
        {45, true, 0.0, SG_RATE_MEDIUM, 10, "30-60 %, active: 10"},
        {45, true, 0.8, SG_RATE_MEDIUM, 15, "30-60 %, active, motion: 15"},
        {45, false, 0.0, SG_RATE_LOW, 5, "30-60 %, idle: 5"},
        {45, false, 0.8, SG_RATE_LOW, 7.5, "30-60 %, idle, motion: 7.5"},
        {20, true, 0.8, SG_RATE_LOW, 5, "15-30 %: 5 whatever else"},
        {20, false, 0.0, SG_RATE_LOW, 5, "15-30 %, idle"},
        {10, true, 0.9, SG_RATE_MINIMAL, 1, "< 15 %: 1 fps critical mode"},
        {0, false, 1.0, SG_RATE_MINIMAL, 1, "empty battery"},
        /* boundaries */
        {60, false, 0.0, SG_RATE_MEDIUM, 10, "60 % is not < 60"},
        {59.9, false, 0.0, SG_RATE_LOW, 5, "just below 60, idle"},
        {30, false, 0.9, SG_RATE_LOW, 5, "30 %, idle: LOW; no boost at exactly 30"},
        {30, true, 0.9, SG_RATE_MEDIUM, 10, "30 %, active: MEDIUM, still no boost (needs > 30)"},
        {30.5, true, 0.9, SG_RATE_MEDIUM, 15, "just above 30: boost"},
        {29.9, true, 0.9, SG_RATE_LOW, 5, "just below 30: LOW, no boost"},
        {15, false, 0.0, SG_RATE_LOW, 5, "15 % is not < 15"},
        {14.9, true, 0.0, SG_RATE_MINIMAL, 1, "just below 15"},
        {100, true, 0.3, SG_RATE_MEDIUM, 10, "motion exactly 0.3 is not > 0.3"},
        {100, true, 0.3001, SG_RATE_MEDIUM, 15, "motion just above 0.3"},
        /* bad input */
        {NAN, true, 0.9, SG_RATE_MINIMAL, 1, "unknown battery counts as empty"},
        {-5, true, 0.0, SG_RATE_MINIMAL, 1, "negative battery"},
        {150, false, 0.0, SG_RATE_MEDIUM, 10, "over 100 % clamps to 100"},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const matrix_row *r = &rows[i];
        sg_rate_mode m = sg_rate_mode_for(r->battery, r->active);
        double fps = sg_rate_target_fps(NULL, r->battery, r->active, r->motion);
        CHECK_MSG(m == r->mode, "row %zu (%s): mode %s, want %s", i, r->why, sg_rate_mode_name(m),
                  sg_rate_mode_name(r->mode));
        CHECK_MSG(fabs(fps - r->fps) < 1e-9, "row %zu (%s): %g fps, want %g", i, r->why, fps, r->fps);
    }
    CHECK_EQ_INT(sg_rate_mode_fps(SG_RATE_HIGH), 30);
    CHECK_EQ_INT(sg_rate_mode_fps(SG_RATE_MEDIUM), 10);
    CHECK_EQ_INT(sg_rate_mode_fps(SG_RATE_LOW), 5);
    CHECK_EQ_INT(sg_rate_mode_fps(SG_RATE_MINIMAL), 1);
    /* HIGH is only reachable by forcing it; its boost is capped at the camera's 30 fps */
    sg_rate_config c;
    sg_rate_config_default(&c);
    c.forced_mode = SG_RATE_HIGH;
    CHECK_NEAR(sg_rate_target_fps(&c, 100, true, 0.0), 30, 1e-9);
    CHECK_NEAR(sg_rate_target_fps(&c, 100, true, 0.9), 30, 1e-9);
}

/* Captured frames over `seconds` of a 30 fps camera in a fixed state. */
static long long captures(double battery, bool active, double motion, int forced, double seconds,
                          long long *first_gap)
{
    sg_rate_config c;
    sg_rate_config_default(&c);
    c.forced_mode = forced;
    sg_rate_controller *rc = new_rate(&c);
    long long n = 0, last = -1;
    *first_gap = -1;
    for (long long k = 0; k < (long long)(seconds * 30); k++) {
        double t = (double)k * 1000.0 / 30.0;
        if (active)
            sg_rate_interaction(rc, t);
        sg_rate_decision d = sg_rate_on_frame(rc, t, battery, motion);
        if (d.capture) {
            if (last >= 0 && *first_gap < 0)
                *first_gap = k - last;
            if (k == 0)
                CHECK(n == 0);
            last = k;
            n++;
        }
    }
    sg_rate_stats st;
    sg_rate_get_stats(rc, &st);
    CHECK_EQ_INT(st.captured, n);
    CHECK_EQ_INT(st.frames, (long long)(seconds * 30));
    sg_rate_controller_free(rc);
    return n;
}

static void test_capture_counts(void)
{
    long long gap;
    CHECK_EQ_INT(captures(100, true, 0.0, -1, 10, &gap), 100); /* MEDIUM: 10 a second */
    CHECK_EQ_INT(gap, 3);
    CHECK_EQ_INT(captures(45, false, 0.0, -1, 10, &gap), 50); /* LOW */
    CHECK_EQ_INT(gap, 6);
    CHECK_EQ_INT(captures(10, true, 0.0, -1, 10, &gap), 10); /* MINIMAL */
    CHECK_EQ_INT(gap, 30);
    CHECK_EQ_INT(captures(100, true, 0.9, -1, 10, &gap), 150); /* MEDIUM x 1.5 */
    CHECK_EQ_INT(gap, 2);
    CHECK_EQ_INT(captures(45, false, 0.9, -1, 10, &gap), 75); /* LOW x 1.5 = 7.5, every 4th */
    CHECK_EQ_INT(gap, 4);
    CHECK_EQ_INT(captures(100, true, 0.0, SG_RATE_HIGH, 10, &gap), 300); /* forced HIGH */
    CHECK_EQ_INT(gap, 1);

    /* activity expires after 10 s: battery 45, one interaction at t = 0 -> MEDIUM for 10 s
     * (100 frames), then LOW (50 frames in the next 10 s) */
    sg_rate_controller *rc = new_rate(NULL);
    sg_rate_interaction(rc, 0.0);
    long long first = 0, second = 0;
    for (long long k = 0; k < 600; k++) {
        double t = (double)k * 1000.0 / 30.0;
        sg_rate_decision d = sg_rate_on_frame(rc, t, 45, 0.0);
        if (k < 300) {
            first += d.capture;
            CHECK(d.user_active && d.mode == SG_RATE_MEDIUM);
        } else {
            second += d.capture;
            CHECK(!d.user_active && d.mode == SG_RATE_LOW);
        }
    }
    CHECK_EQ_INT(first, 100);
    CHECK_NEAR(second, 50, 1);
    CHECK(sg_rate_user_active(rc, 20000.0) == false);
    sg_rate_interaction(rc, 20000.0);
    CHECK(sg_rate_user_active(rc, 29999.0));
    CHECK(!sg_rate_user_active(rc, 30000.0));

    /* one high-motion frame (a scene cut) boosts for motion_hold_ms = 1 s, then the rate falls back */
    sg_rate_controller_free(rc);
    rc = new_rate(NULL);
    long long boosted = 0, in_hold = 0, after = 0;
    for (long long k = 0; k < 90; k++) {
        double t = (double)k * 1000.0 / 30.0;
        sg_rate_decision d = sg_rate_on_frame(rc, t, 100, k == 30 ? 0.9 : 0.0);
        boosted += d.boosted;
        if (k >= 30 && k < 60)
            in_hold += d.capture;
        if (k >= 60)
            after += d.capture;
    }
    CHECK_EQ_INT(boosted, 30);
    CHECK_NEAR(in_hold, 15, 1);
    CHECK_NEAR(after, 10, 1);

    /* with motion_hold_ms = 0 the boost lasts exactly the frame whose score was high */
    sg_rate_config c;
    sg_rate_config_default(&c);
    c.motion_hold_ms = 0;
    sg_rate_controller_free(rc);
    rc = new_rate(&c);
    boosted = 0;
    for (long long k = 0; k < 60; k++)
        boosted += sg_rate_on_frame(rc, (double)k * 1000.0 / 30.0, 100, k == 10 ? 0.9 : 0.0).boosted;
    CHECK_EQ_INT(boosted, 1);

    /* a rate change never bursts: from MINIMAL to forced HIGH, at most one capture per frame and the
     * long-run rate follows at once */
    sg_rate_controller_free(rc);
    rc = new_rate(NULL);
    long long n = 0;
    for (long long k = 0; k < 45; k++)
        n += sg_rate_on_frame(rc, (double)k * 1000.0 / 30.0, 5, 0.0).capture;
    CHECK_EQ_INT(n, 2); /* frames 0 and 30 */
    sg_rate_force_mode(rc, SG_RATE_HIGH);
    n = 0;
    for (long long k = 45; k < 75; k++)
        n += sg_rate_on_frame(rc, (double)k * 1000.0 / 30.0, 5, 0.0).capture;
    CHECK_EQ_INT(n, 30);
    sg_rate_controller_free(rc);
}

/* ---- motion ------------------------------------------------------------------------------------ */

/* The guide's detectMotion: packed ARGB ints subtracted, normalised by (w/10)*(h/10)*255*3 and
 * clamped to 1. Reproduced here only to show that it is wrong. */
static double packed_argb_score(const uint8_t *a, const uint8_t *b, int w, int h)
{
    long long total = 0;
    for (int x = 0; x < w; x += 10)
        for (int y = 0; y < h; y += 10) {
            const uint8_t *pa = a + ((size_t)y * w + x) * 3, *pb = b + ((size_t)y * w + x) * 3;
            int32_t p1 = (int32_t)(0xFF000000u | (uint32_t)pa[0] << 16 | (uint32_t)pa[1] << 8 | pa[2]);
            int32_t p2 = (int32_t)(0xFF000000u | (uint32_t)pb[0] << 16 | (uint32_t)pb[1] << 8 | pb[2]);
            total += llabs((long long)p1 - (long long)p2);
        }
    double max = (double)(w / 10) * (h / 10) * 255.0 * 3.0;
    double s = (double)total / max;
    return s > 1.0 ? 1.0 : s;
}

static void fill(uint8_t *p, int w, int h, uint8_t r, uint8_t g, uint8_t b)
{
    for (int i = 0; i < w * h; i++) {
        p[i * 3] = r;
        p[i * 3 + 1] = g;
        p[i * 3 + 2] = b;
    }
}

static void test_motion(void)
{
    enum { W = 64, H = 48 };
    static uint8_t a[W * H * 3], b[W * H * 3];
    fill(a, W, H, 10, 20, 30);
    memcpy(b, a, sizeof a);
    CHECK_NEAR(sg_motion_score(a, b, W, H, W * 3, 3, 10), 0.0, 0);
    fill(a, W, H, 0, 0, 0);
    fill(b, W, H, 255, 255, 255);
    CHECK_NEAR(sg_motion_score(a, b, W, H, W * 3, 3, 10), 1.0, 1e-12);
    CHECK_NEAR(sg_motion_score(a, b, W, H, W * 3, 3, 1), 1.0, 1e-12);

    /* green 1 -> 0 and blue 0 -> 255: a real change of 256/765 = 0.335 per sample (motion);
     * the packed subtraction sees 0x000100 - 0x0000FF = 1 (static) */
    fill(a, W, H, 0, 1, 0);
    fill(b, W, H, 0, 0, 255);
    double right = sg_motion_score(a, b, W, H, W * 3, 3, 10);
    double wrong = packed_argb_score(a, b, W, H);
    CHECK_NEAR(right, 256.0 / 765.0, 1e-12);
    CHECK(right > 0.3);
    CHECK(wrong < 0.01);
    /* red 100 -> 101, invisible: per channel 1/765; packed 65536 per pixel -> clamped to full motion */
    fill(a, W, H, 100, 50, 50);
    fill(b, W, H, 101, 50, 50);
    right = sg_motion_score(a, b, W, H, W * 3, 3, 10);
    wrong = packed_argb_score(a, b, W, H);
    CHECK_NEAR(right, 1.0 / 765.0, 1e-12);
    CHECK(wrong == 1.0);
    /* half the sampled pixels change in one channel by 255: 1/6 */
    fill(a, W, H, 0, 0, 0);
    fill(b, W, H, 0, 0, 0);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            if ((x / 10) % 2 == 0)
                b[((size_t)y * W + x) * 3 + 1] = 255;
    /* samples at x = 0,10,...,60 (7 columns): columns 0,20,40,60 changed = 4/7 of samples */
    CHECK_NEAR(sg_motion_score(a, b, W, H, W * 3, 3, 10), 4.0 / 7.0 / 3.0, 1e-12);

    /* 4 bytes a pixel: alpha (the 4th byte) is ignored, a stride with padding is honoured */
    enum { S4 = W * 4 + 8 };
    static uint8_t c4[S4 * H], d4[S4 * H];
    memset(c4, 0, sizeof c4);
    memset(d4, 0, sizeof d4);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            d4[(size_t)y * S4 + (size_t)x * 4 + 3] = 255; /* alpha only */
            d4[(size_t)y * S4 + (size_t)W * 4 + 4] = 255; /* padding */
        }
    CHECK_NEAR(sg_motion_score(c4, d4, W, H, S4, 4, 10), 0.0, 0);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++)
            d4[(size_t)y * S4 + (size_t)x * 4] = 255; /* red */
    CHECK_NEAR(sg_motion_score(c4, d4, W, H, S4, 4, 10), 1.0 / 3.0, 1e-12);
    /* bad input is 0, not a crash */
    CHECK(sg_motion_score(NULL, d4, W, H, S4, 4, 10) == 0.0);
    CHECK(sg_motion_score(c4, d4, W, H, 10, 4, 10) == 0.0);
    CHECK(sg_motion_score(c4, d4, W, H, S4, 2, 10) == 0.0);

    /* the tracker gives the same score from its stored samples */
    sg_motion_tracker *t;
    CHECK(sg_motion_tracker_new(10, &t) == SG_CLIENT_OK);
    fill(a, W, H, 0, 1, 0);
    fill(b, W, H, 0, 0, 255);
    CHECK(sg_motion_tracker_push(t, a, W, H, W * 3, 3) == 0.0);
    CHECK_NEAR(sg_motion_tracker_push(t, b, W, H, W * 3, 3), 256.0 / 765.0, 1e-12);
    CHECK_NEAR(sg_motion_tracker_push(t, b, W, H, W * 3, 3), 0.0, 0);
    CHECK(sg_motion_tracker_push(t, a, W / 2, H, W * 3, 3) == 0.0); /* size change: restart */
    CHECK_NEAR(sg_motion_tracker_push(t, b, W / 2, H, W * 3, 3), 256.0 / 765.0, 1e-12);
    sg_motion_tracker_free(t);
}

/* ---- JPEG quality and uplink ------------------------------------------------------------------ */

static void test_jpeg_quality(void)
{
    static const struct {
        double battery, kbps;
        int q;
    } rows[] = {
        {100, -1, 85}, {50, -1, 85},   {49.9, -1, 75}, {20, -1, 75},   {19.9, -1, 60},
        {0, -1, 60},   {NAN, -1, 60},  {100, 0, 85},   {100, NAN, 85}, {100, 50000, 85},
        {100, 2000, 85}, {100, 1999, 75}, {100, 500, 75}, {100, 499, 65}, {40, 1000, 65},
        {40, 100, 55}, {10, 1500, 50}, {10, 100, 40},  {10, 1, 40},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        int q = sg_jpeg_quality_for(rows[i].battery, rows[i].kbps);
        CHECK_MSG(q == rows[i].q, "battery %g uplink %g: q%d, want q%d", rows[i].battery,
                  rows[i].kbps, q, rows[i].q);
    }
    sg_uplink *u;
    CHECK(sg_uplink_new(&u) == SG_CLIENT_OK);
    CHECK(sg_uplink_kbps(u) <= 0);
    sg_uplink_observe(u, 1000, 1.0); /* too small to measure the link */
    CHECK(sg_uplink_samples(u) == 0 && sg_uplink_kbps(u) <= 0);
    sg_uplink_observe(u, 50000, 400.0); /* 1000 kbit/s */
    CHECK_NEAR(sg_uplink_kbps(u), 1000.0, 1e-9);
    sg_uplink_observe(u, 50000, 100.0); /* 4000: the mean moves a quarter of the way */
    CHECK_NEAR(sg_uplink_kbps(u), 1750.0, 1e-9);
    sg_uplink_observe(u, 50000, NAN);
    sg_uplink_observe(u, 50000, -1);
    CHECK_EQ_INT(sg_uplink_samples(u), 2);
    sg_uplink_observe(u, 50000, 0.0); /* clamped, not infinite */
    CHECK(isfinite(sg_uplink_kbps(u)));
    sg_uplink_free(u);
}

/* ---- thumbnail and pre-filter ----------------------------------------------------------------- */

static uint64_t lcg = 12345;
static uint32_t rnd(void)
{
    lcg = lcg * 6364136223846793005ull + 1442695040888963407ull;
    return (uint32_t)(lcg >> 33);
}

static void test_thumb_and_prefilter(void)
{
    /* The thumbnail (sg_prefilter_thumb: src/media/thumb.c, the one function client and server
     * both call) against a
     * plain double-precision area average on odd sizes: pixel x covers [x/W, (x+1)/W) of the width,
     * cell j covers [j/8, (j+1)/8). */
    static const int sizes[][2] = {{1, 1}, {7, 5}, {8, 8}, {9, 13}, {64, 48}, {641, 479}, {640, 480}};
    for (size_t s = 0; s < sizeof sizes / sizeof sizes[0]; s++) {
        int w = sizes[s][0], h = sizes[s][1];
        uint8_t *rgb = malloc((size_t)w * h * 3);
        for (size_t i = 0; i < (size_t)w * h * 3; i++)
            rgb[i] = (uint8_t)rnd();
        float got[64];
        sg_prefilter_thumb(rgb, w, h, got);
        double ref[64] = {0};
        for (int y = 0; y < h; y++)
            for (int x = 0; x < w; x++) {
                const uint8_t *p = rgb + ((size_t)y * w + x) * 3;
                double luma = (299.0 * p[0] + 587.0 * p[1] + 114.0 * p[2]) / 1000.0;
                for (int i = 0; i < 8; i++) {
                    double oy = fmin((y + 1.0) / h, (i + 1) / 8.0) - fmax((double)y / h, i / 8.0);
                    for (int j = 0; oy > 0 && j < 8; j++) {
                        double ox = fmin((x + 1.0) / w, (j + 1) / 8.0) - fmax((double)x / w, j / 8.0);
                        if (ox > 0)
                            ref[i * 8 + j] += luma * ox * oy * 64.0;
                    }
                }
            }
        double worst = 0;
        for (int i = 0; i < 64; i++)
            worst = fmax(worst, fabs(got[i] - ref[i]));
        CHECK_MSG(worst < 1e-3, "thumbnail off by %g at %dx%d", worst, w, h);
        free(rgb);
    }
    float none[64];
    none[7] = 5.0f;
    sg_prefilter_thumb(NULL, 4, 4, none);
    CHECK(none[7] == 0.0f);

    /* End to end on real photos: the thumbnail the phone takes of its raw frame against the one the
     * server's path (sg_jpeg_encode -> sg_image_decode -> sg_image_thumb8) takes of the upload, which
     * differ only by the JPEG's loss: a fraction of a grey level. */
    const char *photos[] = {"../shared/data/images/coffee.jpg", "../shared/data/images/text.jpg"};
    sg_jpeg_encoder *enc = NULL;
    CHECK(sg_jpeg_encoder_new(&enc) == SG_CLIENT_OK);
    for (size_t p = 0; enc && p < 2; p++) {
        size_t len;
        char *data = check_read_file(photos[p], &len);
        CHECK(data != NULL);
        if (!data)
            continue;
        sg_image raw, up;
        sg_error err = {0};
        CHECK(sg_image_decode((const uint8_t *)data, len, 0, &raw, &err) == SG_OK);
        uint8_t *jpeg = NULL;
        size_t jlen = 0;
        char why[SG_CLIENT_ERROR_SIZE];
        CHECK(sg_jpeg_encode(enc, raw.rgb, raw.width, raw.height, 0, 0, 85, &jpeg, &jlen, why) ==
              SG_CLIENT_OK);
        CHECK(sg_image_decode(jpeg, jlen, 0, &up, &err) == SG_OK);
        CHECK_EQ_INT(up.width, raw.width);
        float phone[64], server[64];
        sg_prefilter_thumb(raw.rgb, raw.width, raw.height, phone);
        sg_image_thumb8(&up, server);
        double mean = 0, spread = 0;
        for (int i = 0; i < 64; i++) {
            mean += fabs(phone[i] - server[i]) / 64.0;
            spread += fabs(phone[i] - phone[0]);
        }
        CHECK_MSG(mean < 1.0, "%s: phone and server thumbnails differ by %.3f", photos[p], mean);
        CHECK(spread > 64.0); /* a real picture, not a flat grey */
        free(jpeg);
        sg_image_free(&up);
        sg_image_free(&raw);
        free(data);
    }
    sg_jpeg_encoder_free(enc);

    /* the pre-filter decides exactly as the server's gate on the same thumbnails: a random walk of
     * small drifts, still stretches and jumps */
    sg_prefilter *pf;
    CHECK(sg_prefilter_new(0, 0, &pf) == SG_CLIENT_OK);
    sg_keyframe_gate gate;
    sg_keyframe_gate_init(&gate, SG_KEYFRAME_DIFF_TAU, SG_KEYFRAME_MIN_GAP);
    float th[64];
    for (int i = 0; i < 64; i++)
        th[i] = 128;
    long long agree = 0, keys = 0, skips = 0;
    const int N = 5000;
    for (int f = 0; f < N; f++) {
        uint32_t r = rnd() % 100;
        if (r < 5) { /* a scene cut */
            for (int i = 0; i < 64; i++)
                th[i] = (float)(rnd() % 256);
        } else if (r < 60) { /* drift */
            for (int i = 0; i < 64; i++) {
                th[i] += (float)((int)(rnd() % 7) - 3);
                th[i] = th[i] < 0 ? 0 : (th[i] > 255 ? 255 : th[i]);
            }
        } /* else: still */
        bool mine = sg_prefilter_push(pf, th);
        bool server = sg_keyframe_gate_push(&gate, th, false).keyframe;
        agree += mine == server;
        keys += mine;
        skips += !mine;
    }
    CHECK_EQ_INT(agree, N);
    CHECK(keys > 100 && skips > 1000); /* both decisions exercised */
    CHECK_EQ_INT(sg_prefilter_frames(pf), N);
    CHECK_EQ_INT(sg_prefilter_keyframes(pf), keys);
    sg_prefilter_free(pf);

    /* a still scene: only the first frame is uploaded */
    CHECK(sg_prefilter_new(0, 0, &pf) == SG_CLIENT_OK);
    for (int f = 0; f < 100; f++)
        CHECK(sg_prefilter_push(pf, th) == (f == 0));
    sg_prefilter_free(pf);
}

/* ---- resize -------------------------------------------------------------------------------------- */

static void test_fit(void)
{
    enum { SW = 80, SH = 40 };
    static uint8_t src[SW * SH * 3], dst[64 * 48 * 3];
    fill(src, SW, SH, 10, 200, 30);
    CHECK(sg_rgb_fit(src, SW, SH, dst, 40, 30) == SG_CLIENT_OK); /* crop to 4:3 (53x40), shrink */
    bool same = true;
    for (int i = 0; i < 40 * 30; i++)
        same &= dst[i * 3] == 10 && dst[i * 3 + 1] == 200 && dst[i * 3 + 2] == 30;
    CHECK(same);
    CHECK(sg_rgb_fit(src, SW, SH, dst, 64, 48) == SG_CLIENT_OK); /* enlarge */
    same = true;
    for (int i = 0; i < 64 * 48; i++)
        same &= dst[i * 3] == 10 && dst[i * 3 + 1] == 200 && dst[i * 3 + 2] == 30;
    CHECK(same);
    /* the centre crop drops the sides: paint the outer 10 columns, they must not show */
    for (int y = 0; y < SH; y++)
        for (int x = 0; x < SW; x++)
            if (x < 10 || x >= SW - 10)
                src[((size_t)y * SW + x) * 3] = 255;
    CHECK(sg_rgb_fit(src, SW, SH, dst, 40, 30) == SG_CLIENT_OK);
    int maxr = 0;
    for (int i = 0; i < 40 * 30; i++)
        maxr = dst[i * 3] > maxr ? dst[i * 3] : maxr;
    CHECK_EQ_INT(maxr, 10);
    /* area average: a 2x2 checker of 0/255 shrinks to 127.5 -> 128 */
    static uint8_t chk[4 * 4 * 3];
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            memset(chk + ((size_t)y * 4 + x) * 3, ((x + y) % 2) ? 255 : 0, 3);
    CHECK(sg_rgb_fit(chk, 4, 4, dst, 2, 2) == SG_CLIENT_OK);
    CHECK(dst[0] == 128 && dst[3] == 128 && dst[9] == 128);
    /* same size is a copy */
    CHECK(sg_rgb_fit(chk, 4, 4, dst, 4, 4) == SG_CLIENT_OK);
    CHECK(memcmp(chk, dst, sizeof chk) == 0);
    CHECK(sg_rgb_fit(chk, 0, 4, dst, 2, 2) == SG_CLIENT_EINVAL);
    CHECK(sg_rgb_fit(chk, 4, 4, dst, 0, 2) == SG_CLIENT_EINVAL);
    CHECK(sg_rgb_fit(NULL, 4, 4, dst, 2, 2) == SG_CLIENT_EINVAL);
}

/* ---- upload queue ---------------------------------------------------------------------------- */

static sg_upload_item item(sg_upload_kind k, long long tag)
{
    sg_upload_item it = {.kind = k, .data = NULL, .len = 0, .t_ms = 0, .tag = tag};
    return it;
}

/* Counts an item taken out of the queue: audio must come out in the order it went in. */
static void took_out(const sg_upload_item *out, long long *audio_out, long long *last_audio_out,
                     bool *ordered, long long *frames_out)
{
    if (out->kind == SG_UPLOAD_AUDIO) {
        (*audio_out)++;
        *ordered &= out->tag == *last_audio_out + 1;
        *last_audio_out = out->tag;
    } else {
        (*frames_out)++;
    }
}

static void test_queue(void)
{
    sg_upload_queue *q;
    CHECK(sg_upload_queue_new(0, 0, &q) == SG_CLIENT_EINVAL && q == NULL);
    CHECK(sg_upload_queue_new(4, 2, &q) == SG_CLIENT_OK);
    sg_upload_queue_stats qs;
    sg_upload_item ev, out;
    CHECK(sg_upload_queue_push(q, item(SG_UPLOAD_FRAME, 1), &ev) == SG_CLIENT_OK);
    CHECK(sg_upload_queue_push(q, item(SG_UPLOAD_FRAME, 2), &ev) == SG_CLIENT_OK);
    /* a third frame: over max_frames, the oldest frame goes */
    CHECK(sg_upload_queue_push(q, item(SG_UPLOAD_FRAME, 3), &ev) == SG_CLIENT_DROPPED_OLDEST);
    CHECK_EQ_INT(ev.tag, 1);
    CHECK(sg_upload_queue_has_newer_frame(q, 2) && !sg_upload_queue_has_newer_frame(q, 3));
    CHECK(sg_upload_queue_push(q, item(SG_UPLOAD_AUDIO, 10), &ev) == SG_CLIENT_OK);
    CHECK(sg_upload_queue_push(q, item(SG_UPLOAD_AUDIO, 11), &ev) == SG_CLIENT_OK);
    CHECK_EQ_INT(sg_upload_queue_count(q, SG_UPLOAD_KINDS), 4);
    /* full: audio evicts the oldest frame, never other audio */
    CHECK(sg_upload_queue_push(q, item(SG_UPLOAD_AUDIO, 12), &ev) == SG_CLIENT_DROPPED_OLDEST);
    CHECK_EQ_INT(ev.tag, 2);
    CHECK(sg_upload_queue_push(q, item(SG_UPLOAD_QUERY, 20), &ev) == SG_CLIENT_DROPPED_OLDEST);
    CHECK_EQ_INT(ev.tag, 3);
    /* now full of audio and a query: more audio is refused, not dropped; a frame is dropped */
    CHECK(sg_upload_queue_push(q, item(SG_UPLOAD_AUDIO, 13), &ev) == SG_CLIENT_FULL);
    CHECK(sg_upload_queue_push(q, item(SG_UPLOAD_FRAME, 4), &ev) == SG_CLIENT_DROPPED_NEW);
    CHECK_EQ_INT(sg_upload_queue_count(q, SG_UPLOAD_KINDS), 4);
    sg_upload_queue_get_stats(q, &qs);
    CHECK_EQ_INT(qs.evicted_frames, 3);
    CHECK_EQ_INT(qs.dropped_new_frames, 1);
    CHECK_EQ_INT(qs.refused[SG_UPLOAD_AUDIO], 1);
    CHECK(sg_upload_queue_push(q, item(SG_UPLOAD_CONTROL, 0), &ev) == SG_CLIENT_EINVAL);
    /* pop: the query first, then audio in order */
    CHECK(sg_upload_queue_pop(q, &out) && out.kind == SG_UPLOAD_QUERY);
    CHECK(sg_upload_queue_pop(q, &out) && out.tag == 10);
    CHECK(sg_upload_queue_push(q, item(SG_UPLOAD_FRAME, 5), &ev) == SG_CLIENT_OK);
    CHECK(sg_upload_queue_pop(q, &out) && out.tag == 11);
    CHECK(sg_upload_queue_pop(q, &out) && out.tag == 12);
    CHECK(sg_upload_queue_pop(q, &out) && out.tag == 5);
    CHECK(!sg_upload_queue_pop(q, &out));
    sg_upload_queue_free(q);

    /* random traffic: bounded, frames bounded, every accepted audio chunk comes out, in order */
    CHECK(sg_upload_queue_new(8, 4, &q) == SG_CLIENT_OK);
    long long audio_in = 0, audio_out = 0, next_audio = 0, last_audio_out = -1, frames_pushed = 0;
    long long frames_out = 0, frames_lost = 0;
    bool bounded = true, ordered = true;
    for (int step = 0; step < 20000; step++) {
        uint32_t r = rnd() % 10;
        if (r < 5) {
            frames_pushed++;
            sg_client_status st = sg_upload_queue_push(q, item(SG_UPLOAD_FRAME, step), &ev);
            frames_lost += st == SG_CLIENT_DROPPED_OLDEST || st == SG_CLIENT_DROPPED_NEW;
        } else if (r < 7) {
            sg_client_status st = sg_upload_queue_push(q, item(SG_UPLOAD_AUDIO, next_audio), &ev);
            if (st == SG_CLIENT_OK || st == SG_CLIENT_DROPPED_OLDEST) {
                audio_in++;
                next_audio++;
                frames_lost += st == SG_CLIENT_DROPPED_OLDEST;
            } /* FULL: the producer keeps the chunk and offers it again (same tag) */
        } else if (sg_upload_queue_pop(q, &out)) {
            took_out(&out, &audio_out, &last_audio_out, &ordered, &frames_out);
        }
        bounded &= sg_upload_queue_count(q, SG_UPLOAD_KINDS) <= 8 && sg_upload_queue_count(q, SG_UPLOAD_FRAME) <= 4;
    }
    while (sg_upload_queue_pop(q, &out))
        took_out(&out, &audio_out, &last_audio_out, &ordered, &frames_out);
    CHECK(bounded);
    CHECK(ordered);
    CHECK_EQ_INT(audio_in, audio_out);
    CHECK(frames_lost > 0);
    CHECK_EQ_INT(frames_out + frames_lost, frames_pushed);
    sg_upload_queue_get_stats(q, &qs);
    CHECK_EQ_INT(qs.evicted_frames + qs.dropped_new_frames, frames_lost);
    sg_upload_queue_free(q);
}

/* ---- retries ------------------------------------------------------------------------------------ */

typedef struct fake_rng {
    double seq[8];
    int n, i;
} fake_rng;
static double fake_uniform(void *ud)
{
    fake_rng *r = ud;
    return r->seq[r->i++ % r->n];
}

/* sg_upload_queue_requeue: an undelivered item goes back to its place (the link was down). */
static void test_queue_requeue(void)
{
    sg_upload_queue *q;
    CHECK(sg_upload_queue_new(4, 2, &q) == SG_CLIENT_OK);
    sg_upload_item ev, out;
    CHECK(sg_upload_queue_push(q, item(SG_UPLOAD_FRAME, 1), &ev) == SG_CLIENT_OK);
    CHECK(sg_upload_queue_push(q, item(SG_UPLOAD_FRAME, 2), &ev) == SG_CLIENT_OK);
    CHECK(sg_upload_queue_pop(q, &out) && out.tag == 1);
    long long seq1 = out.seq;
    CHECK(sg_upload_queue_requeue(q, out, &ev) == SG_CLIENT_OK);
    CHECK(sg_upload_queue_pop(q, &out) && out.tag == 1 && out.seq == seq1); /* first again */
    CHECK(sg_upload_queue_push(q, item(SG_UPLOAD_FRAME, 3), &ev) == SG_CLIENT_OK);
    /* two newer frames queued, max 2 frames: the requeued oldest is the one that goes */
    CHECK(sg_upload_queue_requeue(q, out, &ev) == SG_CLIENT_DROPPED_NEW);
    CHECK_EQ_INT(sg_upload_queue_count(q, SG_UPLOAD_FRAME), 2);
    /* audio goes back ahead of later audio; a full queue evicts the oldest frame for it */
    CHECK(sg_upload_queue_push(q, item(SG_UPLOAD_AUDIO, 10), &ev) == SG_CLIENT_OK);
    CHECK(sg_upload_queue_push(q, item(SG_UPLOAD_AUDIO, 11), &ev) == SG_CLIENT_OK);
    CHECK(sg_upload_queue_pop(q, &out) && out.tag == 10);
    CHECK(sg_upload_queue_requeue(q, out, &ev) == SG_CLIENT_OK);
    CHECK(sg_upload_queue_pop(q, &out) && out.tag == 10);
    CHECK(sg_upload_queue_push(q, item(SG_UPLOAD_QUERY, 20), &ev) == SG_CLIENT_OK); /* 4 queued */
    CHECK(sg_upload_queue_requeue(q, out, &ev) == SG_CLIENT_DROPPED_OLDEST && ev.tag == 2);
    CHECK(sg_upload_queue_pop(q, &out) && out.tag == 20);
    CHECK(sg_upload_queue_pop(q, &out) && out.tag == 10);
    CHECK(sg_upload_queue_pop(q, &out) && out.tag == 11);
    CHECK(sg_upload_queue_pop(q, &out) && out.tag == 3);
    CHECK(!sg_upload_queue_pop(q, &out));
    CHECK(sg_upload_queue_requeue(q, item(SG_UPLOAD_CONTROL, 0), &ev) == SG_CLIENT_EINVAL);
    sg_upload_queue_free(q);
}

static void test_retry(void)
{
    static const struct {
        int status;
        double ra;
        const char *code;
        sg_retry_class c;
    } cls[] = {
        {0, -1, NULL, SG_RETRY_TRANSIENT},   {200, -1, NULL, SG_RETRY_SUCCESS},
        {201, -1, NULL, SG_RETRY_SUCCESS},   {400, -1, "INVALID_REQUEST", SG_RETRY_PERMANENT},
        {401, -1, NULL, SG_RETRY_PERMANENT}, {404, -1, "INVALID_SESSION", SG_RETRY_PERMANENT},
        {405, -1, NULL, SG_RETRY_PERMANENT}, {413, -1, "PAYLOAD_TOO_LARGE", SG_RETRY_PERMANENT},
        {415, -1, NULL, SG_RETRY_PERMANENT}, {422, -1, NULL, SG_RETRY_PERMANENT},
        {429, 1000, "RATE_LIMITED", SG_RETRY_TRANSIENT}, {429, -1, NULL, SG_RETRY_TRANSIENT},
        {500, -1, "INTERNAL_ERROR", SG_RETRY_TRANSIENT}, {502, -1, NULL, SG_RETRY_TRANSIENT},
        {503, 1000, "OVERLOADED", SG_RETRY_TRANSIENT}, {503, -1, NULL, SG_RETRY_TRANSIENT},
        {504, -1, NULL, SG_RETRY_TRANSIENT}, {503, 1000, "MODEL_UNAVAILABLE", SG_RETRY_TRANSIENT},
        {503, -1, "MODEL_UNAVAILABLE", SG_RETRY_PERMANENT}, {302, -1, NULL, SG_RETRY_PERMANENT},
    };
    for (size_t i = 0; i < sizeof cls / sizeof cls[0]; i++)
        CHECK_MSG(sg_retry_classify(cls[i].status, cls[i].ra, cls[i].code) == cls[i].c,
                  "status %d (%s)", cls[i].status, cls[i].code ? cls[i].code : "-");

    sg_retry_policy p;
    sg_retry_policy_default(&p);
    /* growth without jitter (u = 0): 250, 500, 1000, 2000, 4000, 8000, capped at 8000 */
    double want[] = {250, 500, 1000, 2000, 4000, 8000, 8000, 8000};
    for (int f = 1; f <= 8; f++)
        CHECK_NEAR(sg_retry_backoff_ms(&p, f, 0.0), want[f - 1], 1e-9);
    CHECK_NEAR(sg_retry_backoff_ms(&p, 1000000, 0.0), 8000, 1e-9); /* no overflow */
    /* jitter: uniform in [d/2, d] */
    sg_rng rng;
    sg_rng_seed(&rng, 42);
    for (int f = 1; f <= 6; f++) {
        double d = want[f - 1], lo = 1e30, hi = 0;
        for (int i = 0; i < 2000; i++) {
            double w = sg_retry_backoff_ms(&p, f, sg_rng_uniform(&rng));
            lo = w < lo ? w : lo;
            hi = w > hi ? w : hi;
        }
        CHECK_MSG(lo >= d * 0.5 && hi <= d, "failure %d: [%g, %g] outside [%g, %g]", f, lo, hi, d / 2, d);
        CHECK_MSG(lo < d * 0.52 && hi > d * 0.98, "failure %d: jitter does not spread: [%g, %g]", f, lo, hi);
    }
    double u;
    bool in01 = true;
    for (int i = 0; i < 100000; i++) {
        u = sg_rng_uniform(&rng);
        in01 &= u >= 0.0 && u < 1.0;
    }
    CHECK(in01);

    /* a request against a scripted server on a fake clock: 503 + Retry-After 3 s, network error,
     * 429 + Retry-After 0.1 s (shorter than the backoff), 500, then 200 */
    fake_rng fr = {{0.0, 1.0 - 1e-12, 0.5, 0.25}, 4, 0};
    struct {
        int status;
        double ra;
    } script[] = {{503, 3000}, {0, -1}, {429, 100}, {500, -1}, {200, -1}};
    sg_retry_state st = {0};
    double clock = 0, waits[8];
    int nw = 0;
    sg_retry_action a = SG_RETRY_WAIT;
    for (int i = 0; i < 5; i++) {
        clock += 20; /* the attempt itself */
        a = sg_retry_next(&p, &st, script[i].status, script[i].ra, "OVERLOADED", clock, fake_uniform, &fr);
        if (a != SG_RETRY_WAIT)
            break;
        waits[nw++] = st.next_at_ms - clock;
        clock = st.next_at_ms;
    }
    CHECK(a == SG_RETRY_DONE);
    CHECK_EQ_INT(st.attempts, 5);
    CHECK_EQ_INT(nw, 4);
    CHECK_NEAR(waits[0], 3000, 1e-9);            /* Retry-After wins over a 250 ms backoff */
    CHECK_NEAR(waits[1], 500 * (1 - 0.5 * (1 - 1e-12)), 1e-6); /* 2nd failure, u ~ 1: 250 */
    CHECK_NEAR(waits[2], 1000 * (1 - 0.5 * 0.5), 1e-9); /* backoff 750 > Retry-After 100 */
    CHECK_NEAR(waits[3], 2000 * (1 - 0.5 * 0.25), 1e-9);

    /* permanent failures are not retried */
    int perm[] = {400, 404, 413, 422, 401, 415};
    for (size_t i = 0; i < sizeof perm / sizeof perm[0]; i++) {
        sg_retry_state s2 = {0};
        CHECK(sg_retry_next(&p, &s2, perm[i], -1, "INVALID_REQUEST", 0, fake_uniform, &fr) == SG_RETRY_DONE);
        CHECK_EQ_INT(s2.attempts, 1);
    }
    sg_retry_state s3 = {0};
    CHECK(sg_retry_next(&p, &s3, 503, -1, "MODEL_UNAVAILABLE", 0, fake_uniform, &fr) == SG_RETRY_DONE);
    /* retried ones give up after max_attempts */
    int trans[] = {0, 429, 500, 503};
    for (size_t i = 0; i < sizeof trans / sizeof trans[0]; i++) {
        sg_retry_state s4 = {0};
        int waits_n = 0;
        while (sg_retry_next(&p, &s4, trans[i], -1, NULL, 0, fake_uniform, &fr) == SG_RETRY_WAIT)
            waits_n++;
        CHECK_EQ_INT(waits_n, p.max_attempts - 1);
        CHECK_EQ_INT(s4.attempts, p.max_attempts);
    }
    /* a Retry-After beyond what we wait for: give up rather than come back early */
    sg_retry_state s5 = {0};
    CHECK(sg_retry_next(&p, &s5, 503, 60000, "OVERLOADED", 0, fake_uniform, &fr) == SG_RETRY_GIVE_UP);

    /* Retry-After values */
    CHECK_NEAR(sg_retry_after_parse("1", 0), 1000, 0);
    CHECK_NEAR(sg_retry_after_parse(" 120\r\n", 0), 120000, 0);
    CHECK_NEAR(sg_retry_after_parse("0", 0), 0, 0);
    CHECK(sg_retry_after_parse("", 0) < 0);
    CHECK(sg_retry_after_parse("-1", 0) < 0);
    CHECK(sg_retry_after_parse("1.5", 0) < 0);
    CHECK(sg_retry_after_parse("12abc", 0) < 0);
    CHECK(sg_retry_after_parse("99999999999", 0) < 0);
    CHECK(sg_retry_after_parse(NULL, 0) < 0);
    /* 1994-11-06 08:49:37 UTC = 784111777 */
    CHECK_NEAR(sg_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", 784111767.0), 10000, 1e-6);
    CHECK_NEAR(sg_retry_after_parse("Sun, 06 Nov 1994 08:49:37 GMT", 784111800.0), 0, 0);
    CHECK_NEAR(sg_retry_after_parse("Thu, 01 Jan 1970 00:00:05 GMT", 0.0), 5000, 1e-6);
    CHECK_NEAR(sg_retry_after_parse("Mon, 29 Feb 2016 12:00:00 GMT", 1456747200.0 - 2.0), 2000, 1e-6);
    CHECK(sg_retry_after_parse("Sun, 06 Foo 1994 08:49:37 GMT", 0) < 0);
    CHECK(sg_retry_after_parse("Sun, 06 Nov 1994 25:49:37 GMT", 0) < 0);
    CHECK(sg_retry_after_parse("Sun, 06 Nov 1994 08:49:37 UTC", 0) < 0);
    CHECK(sg_retry_after_parse("Sun, 06 Nov 1994", 0) < 0);
}

/* ---- Y4M --------------------------------------------------------------------------------------- */

static void test_y4m(void)
{
    char err[SG_CLIENT_ERROR_SIZE];
    sg_y4m_info in;
    const char *h = "YUV4MPEG2 W4 H2 F15:1 Ip A1:1 C420jpeg XYSCSS=420JPEG\n";
    CHECK(sg_y4m_parse_header((const uint8_t *)h, strlen(h), &in, err) == SG_CLIENT_OK);
    CHECK(in.width == 4 && in.height == 2 && in.fps_num == 15 && in.fps_den == 1 && in.chroma == 420);
    CHECK_EQ_INT(in.frame_bytes, 8 + 2 * 2);
    CHECK_EQ_INT(in.header_len, strlen(h));
    const char *h2 = "YUV4MPEG2 W5 H3 C444\n";
    CHECK(sg_y4m_parse_header((const uint8_t *)h2, strlen(h2), &in, err) == SG_CLIENT_OK);
    CHECK(in.chroma == 444 && in.frame_bytes == 45 && in.fps_num == 30);
    const char *h3 = "YUV4MPEG2 W5 H3 C422\n";
    CHECK(sg_y4m_parse_header((const uint8_t *)h3, strlen(h3), &in, err) == SG_CLIENT_OK);
    CHECK_EQ_INT(in.frame_bytes, 15 + 2 * 3 * 3);
    const char *h4 = "YUV4MPEG2 W5 H3 Cmono\n";
    CHECK(sg_y4m_parse_header((const uint8_t *)h4, strlen(h4), &in, err) == SG_CLIENT_OK);
    CHECK_EQ_INT(in.frame_bytes, 15);
    const char *bad[] = {"YUV4MPEG2 W4 H2 C420p10\n", "YUV4MPEG2 W0 H2\n", "YUV4MPEG2 H2\n",
                         "YUV4MPEG2 W4 H2", "YUV4MPEG W4 H2\n", "YUV4MPEG2 W99999 H2\n",
                         "YUV4MPEG2 W16384 H16384\n", "YUV4MPEG2 W4 H2 F0:1\n", "YUV4MPEG2 W4 H2 F30\n",
                         "YUV4MPEG2 Wx H2\n", "YUV4MPEG2 W4 H2 C420paldvx\n"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        err[0] = 0;
        CHECK_MSG(sg_y4m_parse_header((const uint8_t *)bad[i], strlen(bad[i]), &in, err) == SG_CLIENT_EFORMAT,
                  "accepted: %s", bad[i]);
        CHECK(err[0] != 0);
    }
    CHECK_EQ_INT(sg_y4m_frame_header_len((const uint8_t *)"FRAME\nxxxx", 10), 6);
    CHECK_EQ_INT(sg_y4m_frame_header_len((const uint8_t *)"FRAME Ixyz\n", 11), 11);
    CHECK_EQ_INT(sg_y4m_frame_header_len((const uint8_t *)"FRAMEX\n", 7), 0);
    CHECK_EQ_INT(sg_y4m_frame_header_len((const uint8_t *)"FRAME", 5), 0);
    CHECK_EQ_INT(sg_y4m_frame_header_len((const uint8_t *)"FRAME    ", 9), 0);

    /* limited-range BT.601: Y 16 = black, 235 = white, grey stays grey; pure red */
    sg_y4m_parse_header((const uint8_t *)h, strlen(h), &in, err);
    uint8_t planes[12] = {16, 235, 126, 126, 16, 235, 126, 126, 128, 128, 128, 128};
    uint8_t rgb[4 * 2 * 3];
    sg_y4m_to_rgb(&in, planes, rgb);
    CHECK(rgb[0] == 0 && rgb[1] == 0 && rgb[2] == 0);
    CHECK(rgb[3] == 255 && rgb[4] == 255 && rgb[5] == 255);
    CHECK(rgb[6] == 128 && rgb[7] == 128 && rgb[8] == 128);
    uint8_t red[12] = {82, 82, 82, 82, 82, 82, 82, 82, 90, 90, 240, 240}; /* BT.601 red */
    sg_y4m_to_rgb(&in, red, rgb);
    CHECK(rgb[0] >= 250 && rgb[1] <= 5 && rgb[2] <= 5);
}

/* ---- statistics --------------------------------------------------------------------------------- */

static void test_stats(void)
{
    double v[] = {4, 1, 3, 2};
    CHECK_NEAR(sg_client_percentile(v, 4, 50), 2.5, 1e-12);
    CHECK_NEAR(sg_client_percentile(v, 4, 95), 3.85, 1e-12); /* numpy: 3.85 */
    CHECK_NEAR(sg_client_percentile(v, 4, 0), 1, 0);
    CHECK_NEAR(sg_client_percentile(v, 4, 100), 4, 0);
    CHECK(isnan(sg_client_percentile(v, 0, 50)));
    double one = 7;
    CHECK_NEAR(sg_client_percentile(&one, 1, 95), 7, 0);
    CHECK_NEAR(sg_client_kb_per_min(10 * 1024, 60000), 10, 1e-12);
    CHECK_NEAR(sg_client_kb_per_min(10 * 1024, 30000), 20, 1e-12);
    CHECK(sg_client_kb_per_min(100, 0) == 0);
}

/* ---- upload budget ----------------------------------------------------------------------------- */

/* A fake encoder: a scene whose JPEG weighs kb85 KB at q85 and follows the size curve. */
typedef struct fake_enc {
    double kb85;
    int calls;
    int last_q;
    bool fail;
} fake_enc;

static size_t fake_size(const fake_enc *f, int q) { return (size_t)(f->kb85 * 1024.0 * sg_jpeg_size_ratio(q)); }

static sg_client_status fake_encode(void *ud, int q, size_t *bytes)
{
    fake_enc *f = ud;
    f->calls++;
    f->last_q = q;
    *bytes = f->fail ? 0 : fake_size(f, q);
    return f->fail ? SG_CLIENT_ECODEC : SG_CLIENT_OK;
}

/* The budget's bucket holds `bytes` at now_ms (below 0: overdrawn), reached by a charge or refund. */
static void set_tokens(sg_budget *b, double now_ms, double bytes)
{
    sg_budget_spend(b, now_ms, SG_UPLOAD_CONTROL, sg_budget_available(b, now_ms) - bytes);
}

static double bucket_bytes(const sg_budget *b)
{
    sg_budget_config c;
    sg_budget_get_config(b, &c);
    return c.burst_kb * 1024.0;
}

static void test_budget_bands(void)
{
    static const struct {
        double battery, kb;
    } rows[] = {{100, 600}, {50, 600}, {49.9, 450}, {20, 450}, {19.9, 300}, {0, 300}, {-5, 300}};
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++)
        CHECK_MSG(sg_budget_kb_per_min_for(rows[i].battery) == rows[i].kb, "battery %g: %g",
                  rows[i].battery, sg_budget_kb_per_min_for(rows[i].battery));
    CHECK(sg_budget_kb_per_min_for(NAN) == 300);
    /* the size curve: 1 at q85, increasing, the measured points */
    CHECK_NEAR(sg_jpeg_size_ratio(85), 1.0, 1e-12);
    CHECK_NEAR(sg_jpeg_size_ratio(40), 0.450, 1e-12);
    CHECK_NEAR(sg_jpeg_size_ratio(87), 1.0 + 0.4 * 0.248, 1e-12);
    for (int q = 2; q <= 100; q++)
        CHECK_MSG(sg_jpeg_size_ratio(q) > sg_jpeg_size_ratio(q - 1), "q%d", q);
    /* configuration: burst 10 % by default, unlimited for 0, negative or NaN */
    sg_budget *b = new_budget(NULL);
    sg_budget_config used;
    sg_budget_get_config(b, &used);
    CHECK(used.kb_per_min == 600 && used.burst_kb == 60 && used.min_quality == 40);
    /* the refill: 540 KB a minute, 9 KB in a second */
    sg_budget_available(b, 0);
    set_tokens(b, 0, 0);
    CHECK_NEAR(sg_budget_available(b, 1000) * 60.0 / 1024.0, 540, 1e-9);
    CHECK(!sg_budget_unlimited(b));
    sg_budget_free(b);
    double bad[] = {0, -1, NAN, INFINITY};
    for (size_t i = 0; i < 4; i++) {
        sg_budget_config c;
        sg_budget_config_default(&c, 100);
        c.kb_per_min = bad[i];
        b = new_budget(&c);
        CHECK_MSG(sg_budget_unlimited(b), "kb_per_min %g", bad[i]);
        sg_budget_free(b);
    }
    sg_budget_config c;
    sg_budget_config_default(&c, 30);
    b = new_budget(&c); /* 10 % would be 45 KB: too small for a detailed q40 frame */
    sg_budget_get_config(b, &used);
    CHECK(used.kb_per_min == 450 && used.burst_kb == SG_BUDGET_MIN_BURST_KB);
    sg_budget_free(b);
    c.burst_kb = 1000; /* larger than the budget: half of it */
    b = new_budget(&c);
    sg_budget_get_config(b, &used);
    CHECK(used.burst_kb == 225);
    sg_budget_free(b);
    c.burst_kb = 20; /* given explicitly: kept */
    b = new_budget(&c);
    sg_budget_get_config(b, &used);
    CHECK(used.burst_kb == 20);
    sg_budget_free(b);
}

static void test_budget_bucket(void)
{
    sg_budget *b = new_budget(NULL); /* 600 KB/min, burst 60 KB, refill 540 KB/min = 9 KB/s */
    CHECK_NEAR(sg_budget_available(b, 1000), 60 * 1024, 1e-9); /* starts full, at the first call */
    sg_budget_spend(b, 1000, SG_UPLOAD_AUDIO, 50 * 1024);
    CHECK_NEAR(sg_budget_available(b, 1000), 10 * 1024, 1e-9);
    CHECK_NEAR(sg_budget_available(b, 2000), 19 * 1024, 1e-6); /* +9 KB in 1 s */
    CHECK_NEAR(sg_budget_available(b, 60000), 60 * 1024, 1e-9); /* never above the burst */
    sg_budget_spend(b, 60000, SG_UPLOAD_AUDIO, 100 * 1024); /* audio is never refused */
    CHECK_NEAR(sg_budget_available(b, 60000), -40 * 1024, 1e-9);
    sg_budget_spend(b, 60000, SG_UPLOAD_FRAME, -200 * 1024); /* a refund stops at the burst */
    CHECK_NEAR(sg_budget_available(b, 60000), 60 * 1024, 1e-9);
    sg_budget_stats st;
    sg_budget_get_stats(b, &st);
    CHECK_NEAR(st.spent[SG_UPLOAD_AUDIO], 150 * 1024, 1e-9);
    CHECK_NEAR(st.spent[SG_UPLOAD_FRAME], -200 * 1024, 1e-9);
    /* time going backwards changes nothing */
    sg_budget_spend(b, 60000, SG_UPLOAD_AUDIO, 30 * 1024);
    CHECK_NEAR(sg_budget_available(b, 30000), 30 * 1024, 1e-9);
    sg_budget_free(b);
}

typedef struct fit_row {
    const char *why;
    double kb_per_min;  /* 0: unlimited */
    double tokens_kb;   /* set the bucket to this before the frame */
    double est_kb85;    /* the budget's size estimate at q85 */
    double scene_kb85;  /* what the encoder really produces at q85 */
    int want;           /* wanted quality */
    int min_q;          /* min_quality */
    int quality;        /* expected result (0 = skipped) */
    int encodes;        /* expected encoder calls */
} fit_row;

static void test_budget_fit(void)
{
    const double oh = SG_BUDGET_OVERHEAD_BYTES / 1024.0;
    static const fit_row rows[] = {
        {"fits at the wanted quality", 600, 60, 50, 50, 85, 40, 85, 1},
        {"one step down", 600, 44, 50, 50, 85, 40, 80, 1},
        {"q60 is the first that fits 30 KB", 600, 30, 50, 50, 85, 40, 60, 1},
        {"the floor", 600, 23, 50, 50, 85, 40, 40, 1},
        {"below the floor: skipped without encoding", 600, 22, 50, 50, 85, 40, 0, 0},
        {"a bigger scene than estimated: re-encode lower", 600, 30, 40, 50, 85, 40, 60, 2},
        {"far bigger: encoded once, then the estimate rules out the rest", 600, 30, 50, 100, 85, 40, 0, 1},
        {"an overestimate wastes nothing: q85 tried first", 600, 60, 200, 50, 85, 40, 0, 0},
        {"want below the floor: only the wanted quality", 600, 60, 50, 50, 30, 40, 30, 1},
        {"want below the floor, too big: skipped", 600, 10, 50, 50, 30, 40, 0, 0},
        {"a lower floor", 600, 18, 50, 50, 85, 20, 25, 1},
        {"steps of 5 from an odd quality", 600, 52, 50, 50, 87, 40, 85, 1},
        {"unlimited: the wanted quality, whatever the tokens", 0, -100, 50, 500, 85, 40, 85, 1},
        {"an empty bucket (audio overspent)", 600, -5, 50, 50, 85, 40, 0, 0},
    };
    for (size_t i = 0; i < sizeof rows / sizeof rows[0]; i++) {
        const fit_row *r = &rows[i];
        sg_budget_config c;
        sg_budget_config_default(&c, 100);
        c.kb_per_min = r->kb_per_min;
        c.min_quality = r->min_q;
        c.initial_kb_q85 = r->est_kb85;
        sg_budget *b = new_budget(&c);
        sg_budget_available(b, 0);
        set_tokens(b, 0, r->tokens_kb * 1024.0);
        fake_enc fe = {r->scene_kb85, 0, 0, false};
        sg_budget_frame f;
        CHECK(sg_budget_fit_frame(b, 0, r->want, fake_encode, &fe, &f) == SG_CLIENT_OK);
        sg_budget_stats st;
        sg_budget_get_stats(b, &st);
        double tokens = sg_budget_available(b, 0);
        CHECK_MSG(f.quality == r->quality, "%s: quality %d, want %d", r->why, f.quality, r->quality);
        CHECK_MSG(f.encodes == r->encodes && fe.calls == r->encodes, "%s: %d encodes, want %d",
                  r->why, f.encodes, r->encodes);
         if (f.quality) {
            CHECK_MSG(fe.last_q == f.quality, "%s: the last encode is the one sent", r->why);
            CHECK_EQ_INT(f.bytes, fake_size(&fe, f.quality));
            CHECK(f.lowered == (f.quality < r->want));
            CHECK(!sg_budget_due(b, false) && st.frames_sent == 1 && st.frames_skipped == 0);
            if (r->kb_per_min > 0) {
                /* what was spent fitted: tokens never go negative because of a frame */
                CHECK_MSG(tokens >= -1e-9, "%s: tokens %g", r->why, tokens);
                CHECK_NEAR(tokens, r->tokens_kb * 1024.0 - ((double)f.bytes + oh * 1024.0), 1e-6);
            }
        } else {
            CHECK(sg_budget_due(b, false) && st.frames_skipped == 1 && st.frames_sent == 0);
            CHECK_NEAR(tokens, r->tokens_kb * 1024.0, 1e-9); /* a skip costs nothing */
        }
        sg_budget_free(b);
    }
    /* an encoder error is neither sent nor skipped */
    sg_budget *b = new_budget(NULL);
    fake_enc fe = {50, 0, 0, true};
    sg_budget_frame f;
    CHECK(sg_budget_fit_frame(b, 0, 85, fake_encode, &fe, &f) == SG_CLIENT_ECODEC);
    sg_budget_stats st;
    sg_budget_get_stats(b, &st);
    CHECK(f.quality == 0 && st.frames_skipped == 0 && !sg_budget_due(b, false));
    sg_budget_free(b);
    /* the estimate learns the scene: after a 100 KB-at-q85 frame the next plan starts lower */
    b = new_budget(NULL);
    fe = (fake_enc){100, 0, 0, false};
    /* 58 KB at q60: fits the 60 KB burst */
    CHECK(sg_budget_fit_frame(b, 0, 60, fake_encode, &fe, &f) == SG_CLIENT_OK);
    CHECK_EQ_INT(f.quality, 60);
    /* the estimate at q85, without the overhead, is the learned scene size */
    CHECK_NEAR(sg_budget_frame_estimate(b, 85) - SG_BUDGET_OVERHEAD_BYTES,
               0.5 * 50 * 1024 + 0.5 * 100 * 1024, 2);
    CHECK(sg_budget_frame_estimate(b, 85) > 75 * 1024);
    sg_budget_free(b);
}

static void test_budget_owed(void)
{
    sg_budget *b = new_budget(NULL);
    fake_enc fe = {50, 0, 0, false};
    sg_budget_frame f;
    CHECK(!sg_budget_due(b, false) && sg_budget_due(b, true));
    sg_budget_available(b, 0);
    set_tokens(b, 0, 5 * 1024); /* too little for anything */
    CHECK(sg_budget_fit_frame(b, 0, 85, fake_encode, &fe, &f) == SG_CLIENT_OK);
    CHECK_EQ_INT(f.quality, 0);
    /* the skipped keyframe is owed: the next frames are due although the pre-filter says no */
    CHECK(sg_budget_due(b, false));
    CHECK(sg_budget_fit_frame(b, 100, 85, fake_encode, &fe, &f) == SG_CLIENT_OK);
    CHECK_EQ_INT(f.quality, 0);
    CHECK(sg_budget_due(b, false));
    /* 3 s later 27 KB more: a frame fits at a lower quality and the debt is paid */
    CHECK(sg_budget_fit_frame(b, 3100, 85, fake_encode, &fe, &f) == SG_CLIENT_OK);
    CHECK(f.quality >= 40 && f.quality < 85);
    CHECK(!sg_budget_due(b, false));
    sg_budget_stats st;
    sg_budget_get_stats(b, &st);
    CHECK_EQ_INT(st.frames_due, 3);
    CHECK_EQ_INT(st.frames_skipped, 2);
    CHECK_EQ_INT(st.frames_sent, 1);
    CHECK_EQ_INT(st.frames_lowered, 1);
    sg_budget_free(b);
}

/* Ten simulated minutes: a second of Opus audio (3.4 KB with headers) every second, a question
 * every 15 s, keyframes due 50 times a minute from a scene of 50 KB at q85. Every 60 s window of
 * what was charged stays within the budget; frames go out at >= 40; none is larger than the
 * bucket. With PCM audio (32 KB/s, over the budget on its own) audio still all goes, frames none
 * after the first burst. */
static void budget_sim(double battery, double audio_kb, double scene_kb85, int expect_frames_min,
                       int expect_frames_max)
{
    enum { SECONDS = 600 };
    static double per_second[SECONDS];
    memset(per_second, 0, sizeof per_second);
    sg_budget_config c;
    sg_budget_config_default(&c, battery);
    sg_budget *b = new_budget(&c);
    fake_enc fe = {scene_kb85, 0, 0, false};
    long long frames = 0, audio_chunks = 0;
    double min_q = 100;
    for (int t10 = 0; t10 < SECONDS * 10; t10++) { /* 100 ms steps */
        double now = t10 * 100.0;
        int sec = t10 / 10;
        if (t10 % 10 == 0) {
            sg_budget_spend(b, now, SG_UPLOAD_AUDIO, audio_kb * 1024);
            per_second[sec] += audio_kb * 1024;
            audio_chunks++;
        }
        if (t10 % 150 == 75) {
            sg_budget_spend(b, now, SG_UPLOAD_QUERY, 400);
            per_second[sec] += 400;
        }
        if (t10 % 12 == 0 && sg_budget_due(b, true)) {
            sg_budget_frame f;
            CHECK(sg_budget_fit_frame(b, now, sg_jpeg_quality_for(battery, 0), fake_encode, &fe,
                                      &f) == SG_CLIENT_OK);
            if (f.quality) {
                frames++;
                per_second[sec] += (double)f.bytes + SG_BUDGET_OVERHEAD_BYTES;
                min_q = fmin(min_q, f.quality);
                CHECK(f.bytes + SG_BUDGET_OVERHEAD_BYTES <= bucket_bytes(b));
            }
        }
    }
    CHECK_EQ_INT(audio_chunks, SECONDS);
    double worst = 0;
    for (int w = 0; w + 60 <= SECONDS; w++) {
        double sum = 0;
        for (int k = 0; k < 60; k++)
            sum += per_second[w + k];
        worst = fmax(worst, sum);
    }
    double budget = sg_budget_kb_per_min_for(battery) * 1024;
    double audio_min = audio_kb * 1024 * 60 + 4 * 400;
    printf("budget sim: battery %g%%, audio %.1f KB/s, scene %g KB at q85: %lld frames in %d min "
           "(q >= %g), worst 60 s window %.0f KB of %.0f\n", battery, audio_kb, scene_kb85, frames,
           SECONDS / 60, frames ? min_q : 0, worst / 1024, budget / 1024);
    if (audio_min <= budget)
        CHECK_MSG(worst <= budget + 1e-6, "worst window %.0f > budget %.0f", worst, budget);
    else
        CHECK_MSG(worst <= audio_min + bucket_bytes(b) + 1e-6, "worst %.0f", worst);
    CHECK_MSG(frames >= expect_frames_min && frames <= expect_frames_max, "%lld frames", frames);
    if (frames)
        CHECK(min_q >= 40);
    sg_budget_free(b);
}

static void test_budget_simulation(void)
{
    /* full battery: (540 - 205) KB/min for frames at about 23 KB (q40) -> ~14 a minute */
    budget_sim(100, 3.4, 50, 10 * 10, 10 * 20);
    budget_sim(30, 3.4, 50, 10 * 5, 10 * 14); /* 450 KB/min */
    budget_sim(10, 3.4, 50, 10 * 1, 10 * 7);  /* 300 KB/min */
    /* a detailed scene, 29 KB at q40: with a bucket of 10 % (30 KB) minus the audio charged
     * between refills it would never fit; the 48 KB minimum lets it through */
    budget_sim(10, 3.4, 64, 10 * 1, 10 * 5);
    budget_sim(100, 3.4, 64, 10 * 8, 10 * 16);
    budget_sim(100, 32.3, 50, 0, 2);          /* PCM audio alone is over the budget */
}

/* ---- status codes and version ------------------------------------------------------------------ */

static void test_status_and_version(void)
{
    for (int st = SG_CLIENT_OK; st <= SG_CLIENT_CANCELLED; st++) {
        CHECK_MSG(strcmp(sg_client_status_name((sg_client_status)st), "?") != 0, "status %d", st);
        CHECK_MSG(strcmp(sg_client_strerror((sg_client_status)st), "unknown status") != 0, "status %d", st);
    }
    CHECK(strcmp(sg_client_status_name(SG_CLIENT_GAVE_UP), "gave_up") == 0);
    CHECK(strcmp(sg_client_status_name((sg_client_status)99), "?") == 0);
    CHECK(strcmp(sg_client_strerror((sg_client_status)-1), "unknown status") == 0);
    char v[32];
    snprintf(v, sizeof v, "%d.%d.%d", SGCLIENT_VERSION_MAJOR, SGCLIENT_VERSION_MINOR,
             SGCLIENT_VERSION_PATCH);
    CHECK(strcmp(sg_client_version(), v) == 0 && strcmp(SGCLIENT_VERSION, v) == 0);
    CHECK_EQ_INT(sg_client_version_num(), SGCLIENT_VERSION_NUM);
    CHECK_EQ_INT(SGCLIENT_VERSION_NUM >> 16, SGCLIENT_VERSION_MAJOR);
}

int main(void)
{
    test_status_and_version();
    test_config_matrix();
    test_capture_counts();
    test_motion();
    test_jpeg_quality();
    test_thumb_and_prefilter();
    test_fit();
    test_queue();
    test_queue_requeue();
    test_retry();
    test_y4m();
    test_stats();
    test_budget_bands();
    test_budget_bucket();
    test_budget_fit();
    test_budget_owed();
    test_budget_simulation();
    return check_report("test_client_policy");
}
