/* Image decoding for the frame pipeline: JPEG through TurboJPEG with DCT scaling straight to the
 * smallest size the consumer needs, PNG through libpng. Output is always packed 8-bit RGB. */
#ifndef SG_MEDIA_IMAGE_H
#define SG_MEDIA_IMAGE_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

typedef enum sg_image_format { SG_IMAGE_UNKNOWN = 0, SG_IMAGE_JPEG, SG_IMAGE_PNG } sg_image_format;

typedef struct sg_image {
    int width, height;         /* decoded size */
    int src_width, src_height; /* size stored in the file */
    sg_image_format format;
    uint8_t *rgb;              /* width*height*3 bytes, row-major, owned */
} sg_image;

/* Largest width or height accepted (decompression-bomb guard); larger gives SG_ETOOBIG. */
#define SG_IMAGE_MAX_DIM 16384
#define SG_IMAGE_MAX_PIXELS (64u * 1024u * 1024u)
/* PNG is decoded whole before it is scaled down (JPEG is decoded at the scale the analysis needs),
 * so a PNG holds 3 bytes per pixel while it decodes: 16 Mpixel (48 MB) bounds what one 100 KB
 * upload can make a worker allocate, above any camera frame a pair of glasses sends (12 Mpixel). */
#define SG_IMAGE_MAX_PNG_PIXELS (16u * 1024u * 1024u)

/* Detects JPEG/PNG from magic bytes. */
sg_image_format sg_image_sniff(const uint8_t *buf, size_t len);

/* Decodes buf into out. min_short_side > 0 asks for the smallest output whose shorter side is at
 * least min_short_side (or the full size when the image is smaller): JPEG uses TurboJPEG's DCT
 * scaling factors, PNG is decoded fully and then area-downscaled. min_short_side <= 0 decodes at full
 * size. Errors: SG_EIMAGE (not an image, truncated, corrupt), SG_ETOOBIG (dimensions over the limits
 * above), SG_ENOMEM. A truncated or corrupt JPEG is an error, not a partially grey picture. */
sg_status sg_image_decode(const uint8_t *buf, size_t len, int min_short_side, sg_image *out,
                          sg_error *err);
void sg_image_free(sg_image *img);

/* Mean luma (BT.601, 0..255) over an 8x8 grid of equal cells (area average): the keyframe
 * thumbnail, sg_thumb8_rgb (media/thumb.h) of the decoded pixels. */
void sg_image_thumb8(const sg_image *img, float thumb[64]);

#endif
