/* The per-session keyframe gate (see keyframe.h): accumulate frame-to-frame change, fire when it
 * reaches diff_tau and min_gap frames have passed.
 *
 * Reference: farmountain/SmartGlass-AI-Agent, src/perception/vision_keyframe.py,
 * select_keyframes(frames, diff_tau=8.0, min_gap=3). Frame 0 is always a keyframe; for every
 * later frame the difference to the *previous* frame's 8x8 average-pooled thumbnail is added to
 * an accumulator first, then the frame is skipped while idx - last_key < min_gap, otherwise it
 * becomes a keyframe when the accumulator >= diff_tau, which resets the accumulator to 0. So
 * change seen during the gap still counts. Differences from the reference, on purpose: its
 * thumbnail is the plain channel mean and its distance is the L1 sum (one version) or a scaled
 * L2 norm (a later one) of the 64 cells, while here it is the mean |diff| of BT.601 luma cells, so
 * diff_tau = 8 means "8 grey levels on average"; and its batch-only rule that the last frame of
 * a clip is always kept has no online equivalent. */
#include "agent/keyframe.h"

#include <limits.h>
#include <math.h>
#include <string.h>

void sg_keyframe_gate_init(sg_keyframe_gate *g, float diff_tau, int min_gap)
{
    memset(g, 0, sizeof *g);
    /* A NaN or negative threshold would make every frame (or none) a keyframe silently. */
    g->diff_tau = (isfinite(diff_tau) && diff_tau >= 0.0f) ? diff_tau : SG_KEYFRAME_DIFF_TAU;
    g->min_gap = min_gap >= 1 ? min_gap : 1;
}

static float mean_abs_diff(const float a[64], const float b[64])
{
    float sum = 0.0f;
    for (int i = 0; i < 64; i++)
        sum += fabsf(a[i] - b[i]);
    return sum / 64.0f;
}

sg_keyframe_result sg_keyframe_gate_push(sg_keyframe_gate *g, const float thumb[64], bool force)
{
    sg_keyframe_result r = {.keyframe = false, .diff = 0.0f, .acc = 0.0f, .change_since_key = -1.0f};
    g->frames++;
    if (!g->has_prev) {
        g->has_prev = true;
        r.keyframe = true;
    } else {
        r.diff = mean_abs_diff(thumb, g->prev);
        if (!isfinite(r.diff)) /* a broken thumbnail counts as a big change, not a stuck gate */
            r.diff = g->diff_tau;
        r.change_since_key = mean_abs_diff(thumb, g->key);
        g->acc += r.diff;
        if (g->since_key < INT_MAX) /* a static scene for years must not wrap */
            g->since_key++;
        r.acc = g->acc;
        r.keyframe = force || (g->since_key >= g->min_gap && g->acc >= g->diff_tau);
    }
    memcpy(g->prev, thumb, sizeof g->prev);
    if (r.keyframe) {
        memcpy(g->key, thumb, sizeof g->key);
        g->acc = 0.0f;
        g->since_key = 0;
        g->keyframes++;
    }
    return r;
}
