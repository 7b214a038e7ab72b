/* libFuzzer target for the image path a client upload takes: sniff + decode (full size and
 * DCT-scaled to the describer's size), then the keyframe thumbnail, the describer and its JSON on
 * whatever decoded. Any crash, leak, sanitizer report or over-limit allocation is a bug. */
#include <stddef.h>
#include <stdint.h>

#include "agent/describe.h"
#include "media/image.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const int sides[2] = {0, SG_DESCRIBE_MIN_SIDE};
    for (int i = 0; i < 2; i++) {
        sg_image img;
        sg_error err;
        if (sg_image_decode(data, size, sides[i], &img, &err) != SG_OK)
            continue;
        float thumb[64];
        sg_image_thumb8(&img, thumb);
        sg_scene scene;
        sg_describe_image(&img, thumb, &scene);
        json_decref(sg_scene_to_json(&scene));
        sg_image_free(&img);
    }
    return 0;
}
