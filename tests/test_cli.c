/* Tests of the sg CLI through the real binary: describe on real photos (one JSON object per line),
 * version, help, and errors. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "check.h"
#include "sgtest_cli.h"

int main(void)
{
    char *out;
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " describe ../shared/data/images/text.jpg ../shared/data/images/chelsea.jpg "
                                "../shared/data/images/rocket.jpg",
                     &out),
                 0);
    int lines = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        json_t *j = json_loads(line, 0, NULL);
        CHECK_MSG(j != NULL, "not JSON: %s", line);
        json_t *scene = json_object_get(j, "scene");
        const char *vc = json_string_value(json_object_get(j, "visual_context"));
        CHECK(vc && strncmp(vc, "Low-level image analysis", 24) == 0);
        CHECK(json_integer_value(json_object_get(j, "width")) > 0);
        CHECK(json_is_array(json_object_get(scene, "colors")));
        const char *img = json_string_value(json_object_get(j, "image"));
        if (img && strstr(img, "text.jpg"))
            CHECK(json_is_true(json_object_get(scene, "text_like")));
        if (img && strstr(img, "chelsea.jpg"))
            CHECK(json_is_false(json_object_get(scene, "text_like")));
        json_decref(j);
    }
    CHECK_EQ_INT(lines, 3);
    free(out);

    /* deterministic: the same file twice gives the same scene */
    char *a, *b;
    sgt_run(SG_CLI_BIN " describe ../shared/data/images/coffee.jpg | sed 's/,\"decode_ms.*//'", &a);
    sgt_run(SG_CLI_BIN " describe ../shared/data/images/coffee.jpg | sed 's/,\"decode_ms.*//'", &b);
    CHECK(strlen(a) > 50 && strcmp(a, b) == 0);
    free(a);
    free(b);

    /* a missing file and a non-image give an error line and exit 1, the good file still works */
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " describe /nonexistent.jpg ../shared/SOURCES.md ../shared/data/images/coffee.jpg", &out), 1);
    CHECK(strstr(out, "\"error\"") != NULL && strstr(out, "cannot read") != NULL);
    CHECK(strstr(out, "Low-level image analysis") != NULL);
    free(out);

    CHECK(sgt_prints(SG_CLI_BIN " version", 0, "\"version\""));
    CHECK(sgt_prints(SG_CLI_BIN " --help", 0, "describe"));
    CHECK_EQ_INT(sgt_status(SG_CLI_BIN " frobnicate 2>/dev/null"), 2);
    CHECK_EQ_INT(sgt_status(SG_CLI_BIN " describe 2>/dev/null"), 2);
    /* clip subcommands on the tiny Hugging Face-layout model */
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " clip embed --model tests/fixtures/clip_tiny --threads 2 "
                                "../shared/data/images/chelsea.jpg tests/fixtures/clip_tiny/synthetic_0.png", &out), 0);
    lines = 0;
    for (char *line = strtok(out, "\n"); line; line = strtok(NULL, "\n"), lines++) {
        json_t *j = json_loads(line, 0, NULL);
        CHECK_EQ_INT(json_array_size(json_object_get(j, "embedding")), 32);
        CHECK(json_is_string(json_object_get(j, "image")));
        json_decref(j);
    }
    CHECK_EQ_INT(lines, 2);
    free(out);
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " clip text --model tests/fixtures/clip_tiny --precision f32 'a photo of a cat' 'street scene'", &out), 0);
    CHECK(strstr(out, "\"text\":\"a photo of a cat\"") != NULL && strstr(out, "\"embedding\":[") != NULL);
    free(out);
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " clip classify --model tests/fixtures/clip_tiny ../shared/data/images/rocket.jpg "
                                "--labels 'a rocket,a cat,a cup of coffee'", &out), 0);
    json_t *cj = json_loads(out, 0, NULL);
    CHECK_EQ_INT(json_array_size(json_object_get(cj, "labels")), 3);
    double psum = 0;
    for (size_t i = 0; i < json_array_size(json_object_get(cj, "probs")); i++)
        psum += json_number_value(json_array_get(json_object_get(cj, "probs"), i));
    CHECK_NEAR(psum, 1.0, 1e-4);
    json_decref(cj);
    free(out);
    CHECK_EQ_INT(sgt_run(SG_CLI_BIN " bench clip --model tests/fixtures/clip_tiny --precision int8 --runs 3 "
                                "../shared/data/images/coffee.jpg 2>/dev/null", &out), 0);
    cj = json_loads(out, 0, NULL);
    CHECK(json_number_value(json_object_get(cj, "median_ms")) > 0 && json_integer_value(json_object_get(cj, "runs")) == 3);
    json_decref(cj);
    free(out);
    CHECK_EQ_INT(sgt_status(SG_CLI_BIN " clip embed ../shared/data/images/coffee.jpg 2>/dev/null"), 2); /* no --model */
    CHECK_EQ_INT(sgt_status(SG_CLI_BIN " clip embed --model /nonexistent x.jpg 2>/dev/null"), 1);
    CHECK(sgt_prints(SG_CLI_BIN " clip embed --model tests/fixtures/clip_tiny /nonexistent.jpg", 1,
                     "\"error\""));

    CHECK(sgt_prints(SG_EDGE_BIN " --version", 0, "sg-edge"));
    CHECK_EQ_INT(sgt_status(SG_EDGE_BIN " --port 99999 2>/dev/null"), 2);
    CHECK_EQ_INT(sgt_status(SG_EDGE_BIN " --bogus 2>/dev/null"), 2);
    return check_report("test_cli");
}
