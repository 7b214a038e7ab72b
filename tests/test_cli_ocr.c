/* `sg ocr` through the real binary: a sign's text with lines, boxes, confidences and timings as
 * JSON, one object per image; a photo without text reads ""; a file that is not an image, a
 * missing file, missing Tesseract data and no operand are errors with a status. */
#include <jansson.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "check.h"
#include "sgtest_cli.h"

int main(void)
{
    char cmd[1024], *out;
    snprintf(cmd, sizeof cmd, "%s ocr tests/fixtures/signs/sign_09.jpg ../shared/data/images/chelsea.jpg",
             SG_CLI_BIN);
    CHECK_EQ_INT(sgt_run(cmd, &out), 0);
    char *nl = strchr(out, '\n');
    CHECK(nl != NULL);
    if (nl) {
        *nl = '\0';
        json_error_t e;
        json_t *a = json_loads(out, 0, &e), *b = json_loads(nl + 1, 0, &e);
        CHECK_MSG(a && b, "output: %s", out);
        CHECK_MSG(strcmp(json_string_value(json_object_get(a, "text")), "WET FLOOR") == 0, "%s", out);
        json_t *line = json_array_get(json_object_get(a, "lines"), 0);
        CHECK(strcmp(json_string_value(json_object_get(line, "text")), "WET FLOOR") == 0);
        CHECK(json_number_value(json_object_get(line, "confidence")) > 50);
        CHECK_EQ_INT(json_array_size(json_object_get(line, "box")), 4);
        json_t *t = json_object_get(a, "timings_ms");
        CHECK(json_number_value(json_object_get(t, "total")) > 0 &&
              json_object_get(t, "decode") && json_object_get(t, "recognize"));
        CHECK(strcmp(json_string_value(json_object_get(b, "text")), "") == 0);
        CHECK(json_array_size(json_object_get(b, "lines")) == 0);
        json_decref(a);
        json_decref(b);
    }
    free(out);

    /* not an image: an error object for it, status 1, the other image still read */
    snprintf(cmd, sizeof cmd, "%s ocr tests/fixtures/signs/truth.json tests/fixtures/signs/sign_09.jpg",
             SG_CLI_BIN);
    CHECK(sgt_prints(cmd, 1, "\"error\":\"not a JPEG or PNG image\""));
    CHECK(sgt_prints(cmd, 1, "WET FLOOR"));
    snprintf(cmd, sizeof cmd, "%s ocr /nonexistent.jpg", SG_CLI_BIN);
    CHECK(sgt_prints(cmd, 1, "cannot read the file"));
    /* a truncated JPEG */
    char tmp[64];
    snprintf(tmp, sizeof tmp, "/tmp/sg_test_cli_ocr_%d.jpg", (int)getpid());
    size_t len;
    char *data = check_read_file("tests/fixtures/signs/sign_09.jpg", &len);
    FILE *f = fopen(tmp, "wb");
    CHECK(data && f && fwrite(data, 1, len / 2, f) == len / 2);
    if (f)
        fclose(f);
    free(data);
    snprintf(cmd, sizeof cmd, "%s ocr %s", SG_CLI_BIN, tmp);
    CHECK(sgt_prints(cmd, 1, "\"error\""));
    unlink(tmp);
    /* missing data: said on stderr, status 1; no operand: usage error */
    snprintf(cmd, sizeof cmd, "%s ocr --tessdata /nonexistent x.jpg 2>&1", SG_CLI_BIN);
    CHECK(sgt_prints(cmd, 1, "OCR unavailable"));
    snprintf(cmd, sizeof cmd, "%s ocr 2>/dev/null", SG_CLI_BIN);
    CHECK_EQ_INT(sgt_status(cmd), 2);
    snprintf(cmd, sizeof cmd, "%s ocr --help", SG_CLI_BIN);
    CHECK(sgt_prints(cmd, 0, "usage: sg ocr"));
    return check_report("test_cli_ocr");
}
