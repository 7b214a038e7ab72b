/* The keyframe gate: first frame, static scenes, the min_gap hold-off (with change during the gap
 * still counted, as the reference runtime does), slow drift accumulating, and force. */
#include <math.h>
#include <string.h>

#include "agent/keyframe.h"
#include "check.h"

static void fill(float t[64], float v)
{
    for (int i = 0; i < 64; i++)
        t[i] = v;
}

static void test_first_and_static(void)
{
    sg_keyframe_gate g;
    sg_keyframe_gate_init(&g, SG_KEYFRAME_DIFF_TAU, SG_KEYFRAME_MIN_GAP);
    float t[64];
    fill(t, 100.0f);
    sg_keyframe_result r = sg_keyframe_gate_push(&g, t, false);
    CHECK(r.keyframe);
    CHECK_NEAR(r.diff, 0.0, 0.0);
    CHECK_NEAR(r.change_since_key, -1.0, 0.0);
    int keys = 0;
    for (int i = 0; i < 100; i++) {
        r = sg_keyframe_gate_push(&g, t, false);
        keys += r.keyframe;
        CHECK_NEAR(r.diff, 0.0, 0.0);
    }
    CHECK_EQ_INT(keys, 0);
    CHECK_EQ_INT(g.frames, 101);
    CHECK_EQ_INT(g.keyframes, 1);
    CHECK_NEAR(r.change_since_key, 0.0, 0.0);
}

static void test_big_change_and_gap(void)
{
    sg_keyframe_gate g;
    sg_keyframe_gate_init(&g, 8.0f, 3);
    float a[64], b[64];
    fill(a, 50.0f);
    fill(b, 200.0f);

    /* A cut right after a keyframe waits out min_gap, then fires on the change it saw. */
    CHECK(sg_keyframe_gate_push(&g, a, false).keyframe);
    sg_keyframe_result r = sg_keyframe_gate_push(&g, b, false); /* 1 since key */
    CHECK(!r.keyframe);
    CHECK_NEAR(r.diff, 150.0, 1e-4);
    CHECK_NEAR(r.acc, 150.0, 1e-4);
    CHECK_NEAR(r.change_since_key, 150.0, 1e-4);
    CHECK(!sg_keyframe_gate_push(&g, b, false).keyframe); /* 2 */
    r = sg_keyframe_gate_push(&g, b, false);              /* 3: gap over, acc still 150 */
    CHECK(r.keyframe);
    CHECK_NEAR(r.diff, 0.0, 0.0);
    CHECK_NEAR(r.acc, 150.0, 1e-4);
    /* The accumulator restarted at the keyframe. */
    r = sg_keyframe_gate_push(&g, b, false);
    CHECK(!r.keyframe);
    CHECK_NEAR(r.acc, 0.0, 0.0);
    CHECK_NEAR(r.change_since_key, 0.0, 0.0);

    /* After a quiet stretch longer than min_gap a cut fires at once. */
    sg_keyframe_gate_init(&g, 8.0f, 3);
    CHECK(sg_keyframe_gate_push(&g, a, false).keyframe);
    for (int i = 0; i < 5; i++)
        CHECK(!sg_keyframe_gate_push(&g, a, false).keyframe);
    r = sg_keyframe_gate_push(&g, b, false);
    CHECK(r.keyframe);
    CHECK_NEAR(r.change_since_key, 150.0, 1e-4);
    CHECK_EQ_INT(g.keyframes, 2);
    CHECK(memcmp(g.key, b, sizeof b) == 0);

    /* A change of exactly diff_tau is enough (>=). */
    fill(b, 58.0f);
    sg_keyframe_gate_init(&g, 8.0f, 1);
    CHECK(sg_keyframe_gate_push(&g, a, false).keyframe);
    CHECK(sg_keyframe_gate_push(&g, b, false).keyframe);
}

static void test_drift(void)
{
    /* One grey level per frame: the 8th frame after the keyframe carries the sum to 8. */
    sg_keyframe_gate g;
    sg_keyframe_gate_init(&g, 8.0f, 3);
    float t[64];
    int key_at[4], nkeys = 0;
    for (int i = 0; i < 30; i++) {
        fill(t, 100.0f + (float)i);
        sg_keyframe_result r = sg_keyframe_gate_push(&g, t, false);
        if (r.keyframe && nkeys < 4)
            key_at[nkeys++] = i;
        if (i > 0)
            CHECK_NEAR(r.diff, 1.0, 1e-4);
        if (i == 5)
            CHECK_NEAR(r.change_since_key, 5.0, 1e-4);
    }
    CHECK_EQ_INT(nkeys, 4);
    CHECK_EQ_INT(key_at[0], 0);
    CHECK_EQ_INT(key_at[1], 8);
    CHECK_EQ_INT(key_at[2], 16);
    CHECK_EQ_INT(key_at[3], 24);

    /* Drift that is only local: one cell in 64 moving by 64 is a mean change of 1 per frame. */
    sg_keyframe_gate_init(&g, 8.0f, 3);
    fill(t, 0.0f);
    CHECK(sg_keyframe_gate_push(&g, t, false).keyframe);
    int first = -1;
    for (int i = 1; i <= 10 && first < 0; i++) {
        t[0] = (i & 1) ? 64.0f : 0.0f; /* flickers: each frame differs from the last */
        if (sg_keyframe_gate_push(&g, t, false).keyframe)
            first = i;
    }
    CHECK_EQ_INT(first, 8);
}

static void test_force(void)
{
    sg_keyframe_gate g;
    sg_keyframe_gate_init(&g, 8.0f, 3);
    float a[64], b[64];
    fill(a, 10.0f);
    fill(b, 14.0f);
    CHECK(sg_keyframe_gate_push(&g, a, true).keyframe);
    /* Forced one frame after a keyframe, with no change at all. */
    sg_keyframe_result r = sg_keyframe_gate_push(&g, a, true);
    CHECK(r.keyframe);
    CHECK_NEAR(r.change_since_key, 0.0, 0.0);
    /* Force resets the accumulator and the gap like any keyframe. */
    CHECK(!sg_keyframe_gate_push(&g, b, false).keyframe); /* acc 4 */
    CHECK(sg_keyframe_gate_push(&g, a, true).keyframe);
    CHECK(!sg_keyframe_gate_push(&g, b, false).keyframe); /* acc 4 again, not 8 */
    CHECK(!sg_keyframe_gate_push(&g, b, false).keyframe); /* no change: acc stays 4 */
    r = sg_keyframe_gate_push(&g, a, false);              /* acc 8, gap 3 */
    CHECK(r.keyframe);
    CHECK_EQ_INT(g.keyframes, 4);
    CHECK_EQ_INT(g.frames, 7);
}

static void test_bad_parameters(void)
{
    sg_keyframe_gate g;
    sg_keyframe_gate_init(&g, NAN, 0);
    CHECK_NEAR(g.diff_tau, SG_KEYFRAME_DIFF_TAU, 0.0);
    CHECK_EQ_INT(g.min_gap, 1);
    sg_keyframe_gate_init(&g, -1.0f, -5);
    CHECK_NEAR(g.diff_tau, SG_KEYFRAME_DIFF_TAU, 0.0);
    CHECK_EQ_INT(g.min_gap, 1);
    /* A NaN thumbnail counts as a large change instead of wedging the accumulator. */
    sg_keyframe_gate_init(&g, 8.0f, 1);
    float t[64];
    fill(t, 1.0f);
    CHECK(sg_keyframe_gate_push(&g, t, false).keyframe);
    t[3] = NAN;
    CHECK(sg_keyframe_gate_push(&g, t, false).keyframe);
    fill(t, 1.0f);
    sg_keyframe_gate_push(&g, t, false);
    CHECK(isfinite(g.acc));
}

int main(void)
{
    test_first_and_static();
    test_big_change_and_gap();
    test_drift();
    test_force();
    test_bad_parameters();
    return check_report("test_keyframe");
}
