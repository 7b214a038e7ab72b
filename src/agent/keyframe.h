/* The per-session keyframe gate: decides whether a new frame changed enough to deserve vision
 * work. It compares 8x8 luma thumbnails (sg_image_thumb8, 0..255 scale): the mean absolute
 * difference to the previous frame is accumulated since the last keyframe, and a frame becomes a
 * keyframe when the accumulated change reaches diff_tau and at least min_gap frames have passed
 * since the last keyframe (the reference runtime used diff_tau = 8.0 and min_gap = 3). The first
 * frame is always a keyframe. Not thread-safe: the session lock guards it. */
#ifndef SG_AGENT_KEYFRAME_H
#define SG_AGENT_KEYFRAME_H

#include <stdbool.h>

#define SG_KEYFRAME_DIFF_TAU 8.0f
#define SG_KEYFRAME_MIN_GAP 3

typedef struct sg_keyframe_gate {
    float diff_tau;
    int min_gap;
    bool has_prev;       /* a frame has been seen */
    float prev[64];      /* thumbnail of the previous frame */
    float key[64];       /* thumbnail of the last keyframe */
    float acc;           /* accumulated mean |diff| since the last keyframe */
    int since_key;       /* frames since the last keyframe */
    long frames, keyframes;
} sg_keyframe_gate;

typedef struct sg_keyframe_result {
    bool keyframe;
    float diff;             /* mean |diff| to the previous frame (0 for the first) */
    float acc;              /* accumulated change at the decision */
    float change_since_key; /* mean |diff| to the last keyframe's thumbnail, -1 for the first */
} sg_keyframe_result;

void sg_keyframe_gate_init(sg_keyframe_gate *g, float diff_tau, int min_gap);
/* Feeds one frame's thumbnail. force = true makes it a keyframe regardless (an image attached to a
 * query is always analysed). */
sg_keyframe_result sg_keyframe_gate_push(sg_keyframe_gate *g, const float thumb[64], bool force);

#endif
