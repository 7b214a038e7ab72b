/* Model input preparation for the vision tower: a bicubic resize that matches Pillow byte for
 * byte, and Hugging Face CLIPImageProcessor (shortest-edge resize, center crop, rescale,
 * normalise) on top of it, so our pixel_values equal the reference Python pipeline's. */
#ifndef SG_MEDIA_PREPROCESS_H
#define SG_MEDIA_PREPROCESS_H

#include "base/error.h"
#include "media/image.h"

/* Resizes packed RGB8 src to out_w x out_h exactly as Pillow's Image.resize(size, Image.BICUBIC)
 * does for mode "RGB": Keys cubic (a = -0.5) whose support widens by the downscale factor
 * (antialiasing), a horizontal pass then a vertical pass, each rounded to 8 bits with Pillow's
 * 22-bit fixed-point weights. A pass whose size does not change is skipped, as Pillow skips it.
 * On success out holds a new image the caller frees with sg_image_free(); out->src_width,
 * src_height and format are carried over from src. Errors: SG_EINVAL (NULL or empty arguments),
 * SG_ETOOBIG (output over the SG_IMAGE_MAX_* limits), SG_ENOMEM; out is zeroed on error. */
sg_status sg_image_resize_bicubic(const sg_image *src, int out_w, int out_h, sg_image *out,
                                  sg_error *err);

typedef struct sg_clip_preprocess_cfg {
    int shortest_edge;  /* the resized short side */
    int crop_w, crop_h; /* center crop, the model's input size */
    float mean[3], std[3];
} sg_clip_preprocess_cfg;

/* openai/clip-vit-*: 224, 224x224, the CLIP mean/std (as float32, the way numpy rounds them). */
void sg_clip_preprocess_defaults(sg_clip_preprocess_cfg *c);

/* The size CLIPImageProcessor resizes a w x h image to (transformers'
 * get_resize_output_image_size with default_to_square=False): the short side becomes
 * shortest_edge and the long side int(shortest_edge * long / short), in double precision. Errors:
 * SG_EINVAL (a size <= 0), SG_ETOOBIG (the long side does not fit in an int). */
sg_status sg_clip_resize_dims(int w, int h, int shortest_edge, int *out_w, int *out_h,
                              sg_error *err);

/* CLIPImageProcessor on an RGB8 image: Pillow bicubic resize to sg_clip_resize_dims(), center crop
 * to crop_w x crop_h (top = floor((h - crop_h) / 2), left likewise; where the resized image is
 * smaller than the crop it is zero-padded, centred, as transformers' center_crop does), then
 * ((float32)(pixel * (1/255.0)) - mean) / std in float32, written planar [3][crop_h][crop_w] to
 * chw_out (3 * crop_w * crop_h floats, caller-owned). Only the resized pixels the crop keeps are
 * computed, which is exact because every output pixel of the separable filter depends only on
 * its own row and column weights. cfg NULL means the defaults. Errors: SG_EINVAL (NULL/empty
 * image, bad cfg), SG_ETOOBIG, SG_ENOMEM. */
sg_status sg_clip_preprocess(const sg_image *img, const sg_clip_preprocess_cfg *cfg,
                             float *chw_out, sg_error *err);

#endif
