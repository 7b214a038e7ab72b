/* The 8x8 keyframe thumbnail of packed RGB, shared by the server (sg_image_thumb8, media/image.c)
 * and libsgclient's on-device pre-filter (which exports it as sg_prefilter_thumb, client/frame.c),
 * so both compute the same floats from the same pixels. Pure code (libc only): sgclient_policy
 * compiles this file too, without the image decoders. */
#ifndef SG_MEDIA_THUMB_H
#define SG_MEDIA_THUMB_H

#include <stdint.h>

/* Mean BT.601 luma, (299 R + 587 G + 114 B) / 1000 in 0..255, over an 8x8 grid of equal cells (an
 * exact area average) of packed RGB rows of width*3 bytes. No picture or an empty size gives zeros. */
void sg_thumb8_rgb(const uint8_t *rgb, int width, int height, float thumb[64]);

#endif
