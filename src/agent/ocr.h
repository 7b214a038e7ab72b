/* Reading text in a camera frame: the engine-independent half. Real signs are small, tilted and
 * on busy backgrounds, and a text engine given a whole 640x480 photo reads almost nothing, so the
 * pipeline finds the text regions first (from the describer's stroke map, agent/describe.h), then
 * gives the engine one clean image per region: cropped, deskewed, upscaled to a good text height,
 * binarised (Otsu) with the ink black on white. The engine (agent/ocr_tesseract.h) reads those.
 * A frame with no text-like region costs the describer's statistics only: no engine call. */
#ifndef SG_AGENT_OCR_H
#define SG_AGENT_OCR_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "agent/describe.h"
#include "base/error.h"
#include "media/image.h"

/* Regions read per frame at most: the biggest first (a frame full of small print is read where
 * the text is densest, and the time a frame costs stays bounded). */
#define SG_OCR_MAX_REGIONS 6
/* A prepared region image is at most this many pixels (after upscaling): bounds engine time and
 * memory whatever the frame size. */
#define SG_OCR_MAX_REGION_PIXELS (1200u * 1000u)
/* Frames larger than this are refused for OCR (SG_ETOOBIG): the image decoder's own limit is far
 * above what a camera frame is, and reading a whole poster at 64 Mpixel is not a glasses task. */
#define SG_OCR_MAX_FRAME_PIXELS (24u * 1024u * 1024u)

/* A text region in frame coordinates, as fractions of the width and height (0..1), so the region
 * found on a DCT-scaled decode maps onto the full-size one. */
typedef struct sg_ocr_region {
    float x, y, w, h;
    bool light_text; /* light glyphs on a dark plate (white on green, blue, red, black) */
    int cells;       /* text-like tiles in it: the region's weight */
} sg_ocr_region;

/* Finds up to max text regions from a stroke map and the image it was made from (the same
 * decode); returns how many. 0 on a frame without text (that is the "no OCR cost" gate). */
int sg_ocr_find_regions(const sg_stroke_map *map, const sg_image *img, sg_ocr_region *out,
                        int max);

/* One region ready for the engine: 8-bit grey, ink 0 on paper 255, with a white margin. scale is
 * prepared pixels per frame pixel; (x0, y0) the crop's top-left in frame pixels; angle_deg the
 * rotation that was undone. */
typedef struct sg_ocr_prepared {
    uint8_t *pix;
    int width, height;
    float scale;
    int x0, y0, margin;
    float angle_deg;
} sg_ocr_prepared;

/* Crops region r from img (full size), deskews, upscales, binarises. Errors: SG_ENOMEM, SG_EINVAL
 * (an empty crop). */
sg_status sg_ocr_prepare(const sg_image *img, const sg_ocr_region *r, sg_ocr_prepared *out,
                         sg_error *err);
void sg_ocr_prepared_free(sg_ocr_prepared *p);

/* What was read. */
typedef struct sg_ocr_line {
    char *text;       /* UTF-8, malloc'ed, no trailing newline */
    float confidence; /* 0..100, the engine's */
    int x, y, w, h;   /* box in frame pixels (of the image given) */
} sg_ocr_line;

typedef struct sg_ocr_result {
    char *text;          /* the lines joined by '\n' ("" when nothing was read), malloc'ed */
    sg_ocr_line *lines;
    int nlines;
    int regions;         /* text-like regions found (0: nothing else ran) */
    int engine_runs;     /* regions that held a row of letter shapes and went to the engine */
    double find_ms, prepare_ms, recognize_ms, total_ms;
} sg_ocr_result;

void sg_ocr_result_free(sg_ocr_result *r);
/* Appends a line (copies text). */
sg_status sg_ocr_result_add_line(sg_ocr_result *r, const char *text, float confidence, int x,
                                 int y, int w, int h, sg_error *err);
/* Sets r->text from the lines. */
sg_status sg_ocr_result_join(sg_ocr_result *r, sg_error *err);
/* {"text","lines":[{"text","confidence","box":[x,y,w,h]}],"regions","engine_runs",
 *  "timings_ms":{"find","prepare","recognize","total"}} */
json_t *sg_ocr_result_to_json(const sg_ocr_result *r);

/* Character error rate of hyp against ref: Levenshtein distance over Unicode characters of both
 * normalised (case folded, runs of whitespace one space, trimmed) divided by the reference's
 * length; 0 for two empty texts, 1 for a non-empty hypothesis of an empty reference. For tests
 * and benchmarks. */
double sg_ocr_cer(const char *ref, const char *hyp);

#endif
