/* libFuzzer target for OCR's own pixel work on an upload (agent/ocr.c): decode, the describer's
 * stroke map, the text regions, and each region's preparation (crop, letter shapes, deskew,
 * upscale, binarise) - everything before the Tesseract engine, which is not ours to fuzz. Any
 * crash, leak, sanitizer report or over-limit allocation is a bug; so is a prepared image over
 * SG_OCR_MAX_REGION_PIXELS. */
#include <stddef.h>
#include <stdint.h>
#include <stdlib.h>

#include "agent/describe.h"
#include "agent/ocr.h"
#include "media/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    sg_image img;
    sg_error err;
    if (sg_image_decode(data, size, 0, &img, &err) != SG_OK)
        return 0;
    if ((size_t)img.width * img.height <= 1024 * 1024) { /* a fuzzing run's time, not a limit */
        sg_scene scene;
        sg_stroke_map map;
        sg_describe_image_map(&img, NULL, &scene, &map);
        sg_ocr_region regions[SG_OCR_MAX_REGIONS];
        int n = sg_ocr_find_regions(&map, &img, regions, SG_OCR_MAX_REGIONS);
        for (int i = 0; i < n; i++) {
            sg_ocr_prepared p;
            if (sg_ocr_prepare(&img, &regions[i], &p, &err) == SG_OK) {
                if ((size_t)p.width * p.height > SG_OCR_MAX_REGION_PIXELS + 200000u)
                    abort();
                sg_ocr_prepared_free(&p);
            }
        }
        sg_stroke_map_free(&map);
    }
    sg_image_free(&img);
    return 0;
}
