/* The vision fallback used while no CLIP model is configured: a cheap, deterministic, honest
 * low-level description of the pixels (brightness, dominant named colours, sharpness, edge and
 * text-like density, change since the last keyframe). It never claims to recognise an object. */
#ifndef SG_AGENT_DESCRIBE_H
#define SG_AGENT_DESCRIBE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdint.h>

#include "media/image.h"

/* Short side the describer wants; the frame pipeline decodes JPEGs with DCT scaling to at least
 * this. */
#define SG_DESCRIBE_MIN_SIDE 128

typedef struct sg_scene_color {
    char name[16];   /* "red", "orange", "yellow", "green", "cyan", "blue", "purple", "pink",
                        "brown", "white", "gray", "black" */
    float fraction;  /* share of pixels, 0..1 */
} sg_scene_color;

typedef struct sg_scene {
    int width, height;         /* source image size */
    float brightness;          /* mean luma 0..255 */
    const char *brightness_label; /* "very dark", "dark", "dim", "moderately lit", "bright", "very bright" */
    float contrast;            /* luma standard deviation 0..255 */
    sg_scene_color colors[3];  /* dominant colours, most frequent first */
    int ncolors;
    float sharpness;           /* variance of the Laplacian of luma */
    const char *sharpness_label; /* "blurry", "soft", "sharp" */
    float edge_density;        /* share of pixels on strong edges, 0..1 */
    bool text_like;            /* dense fine high-contrast structure, as printed text gives */
    float change;              /* mean |luma diff| to the last keyframe thumbnail, -1 = none */
    char summary[384];         /* one honest sentence, see sg_describe_image */
} sg_scene;

/* Describes img. prev_key_thumb (8x8 luma of the previous keyframe, or NULL) sets `change`.
 * summary reads e.g. "Low-level image analysis (no vision model loaded): a bright, sharp image,
 * mostly gray and blue, with dense fine detail that may be text; large change since the previous
 * keyframe." */
void sg_describe_image(const sg_image *img, const float *prev_key_thumb, sg_scene *out);

/* The per-cell stroke map behind text_like, kept for the OCR region finder (agent/ocr.h) so it
 * reads the same statistics instead of measuring the frame again. One cell is factor x factor
 * pixels of the decoded image (factor = img_w / gw, rounded down); cells on the 2-cell border
 * carry no stroke flags. */
enum { SG_CELL_DARK = 1, SG_CELL_LIGHT = 2, SG_CELL_EDGE = 4 };
typedef struct sg_stroke_map {
    int gw, gh;       /* cells */
    int img_w, img_h; /* the decoded image the cells cover */
    uint8_t *cells;   /* gw*gh SG_CELL_* flags, malloc'ed; NULL when there is no map */
} sg_stroke_map;

/* sg_describe_image, also filling *map (freed with sg_stroke_map_free; map->cells stays NULL when
 * the image is empty or memory ran out). */
void sg_describe_image_map(const sg_image *img, const float *prev_key_thumb, sg_scene *out,
                           sg_stroke_map *map);
void sg_stroke_map_free(sg_stroke_map *map);

/* {"width","height","brightness","brightness_label","contrast","colors":[{"name","fraction"}],
 *  "sharpness","sharpness_label","edge_density","text_like","change","summary","source":"pixel-stats"} */
json_t *sg_scene_to_json(const sg_scene *s);

#endif
