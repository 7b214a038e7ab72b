/* OCR (agent/ocr.c + agent/ocr_tesseract.c) on the committed sign frames of py/gen_signs.py:
 * mean character error rate at most 0.15 and every sign's words found; no engine work on the
 * shared photos without text; the character error rate itself; bad input (a corrupt file, a frame
 * over the pixel limit, a region outside the frame, missing language data, a malformed language
 * list) gets a clear error; two threads reading at once get what one gets alone. */
#include <jansson.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>

#include "agent/describe.h"
#include "agent/ocr.h"
#include "agent/ocr_tesseract.h"
#include "check.h"

#define SIGNS "tests/fixtures/signs"
#define MAX_CER 0.15

static sg_ocr_backend *backend;

static const char *sgt_json_str(json_t *o, const char *key)
{
    const char *s = json_string_value(json_object_get(o, key));
    return s ? s : "";
}

static int load(const char *path, sg_image *img)
{
    size_t len;
    char *data = check_read_file(path, &len);
    if (!data)
        return -1;
    sg_error err = {0};
    sg_status st = sg_image_decode((const uint8_t *)data, len, 0, img, &err);
    free(data);
    return st == SG_OK ? 0 : -1;
}

static void test_cer(void)
{
    CHECK_NEAR(sg_ocr_cer("EXIT", "EXIT"), 0.0, 1e-12);
    CHECK_NEAR(sg_ocr_cer("EXIT", "exit"), 0.0, 1e-12);             /* case folded */
    CHECK_NEAR(sg_ocr_cer("KEEP\nCLEAR", "KEEP  CLEAR "), 0.0, 1e-12); /* whitespace runs */
    CHECK_NEAR(sg_ocr_cer("EXIT", "EXT"), 0.25, 1e-12);             /* one deletion of four */
    CHECK_NEAR(sg_ocr_cer("EXIT", "EXITS"), 0.25, 1e-12);           /* one insertion */
    CHECK_NEAR(sg_ocr_cer("EXIT", ""), 1.0, 1e-12);
    CHECK_NEAR(sg_ocr_cer("", ""), 0.0, 1e-12);
    CHECK_NEAR(sg_ocr_cer("", "x"), 1.0, 1e-12);
    CHECK_NEAR(sg_ocr_cer("café", "cafe"), 0.25, 1e-12);            /* characters, not bytes */
    CHECK(sg_ocr_cer("AB", "xyzw") > 1.0);                          /* can exceed 1 */
}

/* Every sign of the committed set: mean CER, each sign's first word read, lines with boxes in the
 * frame and confidences. */
static void test_signs(void)
{
    json_error_t jerr;
    json_t *truth = json_load_file(SIGNS "/truth.json", 0, &jerr);
    json_t *signs = json_object_get(truth, "signs");
    CHECK_MSG(json_array_size(signs) >= 12, "truth.json: %s", jerr.text);
    double sum = 0;
    size_t n = json_array_size(signs), words_found = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(signs, i);
        char path[256];
        snprintf(path, sizeof path, SIGNS "/%s", sgt_json_str(s, "file"));
        const char *ref = sgt_json_str(s, "text");
        sg_image img;
        if (load(path, &img) != 0) {
            CHECK_MSG(0, "cannot load %s", path);
            continue;
        }
        sg_ocr_result r;
        sg_error err = {0};
        sg_status st = sg_ocr_read_image(backend, &img, &r, &err);
        CHECK_MSG(st == SG_OK, "%s: %s", path, err.msg);
        if (st != SG_OK) {
            sg_image_free(&img);
            continue;
        }
        double cer = sg_ocr_cer(ref, r.text);
        sum += cer > 1 ? 1 : cer;
        /* "read the sign": its first word is in what was read (case aside) */
        char first[64];
        snprintf(first, sizeof first, "%.*s", (int)strcspn(ref, " \n"), ref);
        words_found += strcasestr(r.text, first) != NULL;
        CHECK(r.regions >= 1 && r.engine_runs >= 1);
        for (int k = 0; k < r.nlines; k++) {
            const sg_ocr_line *l = &r.lines[k];
            CHECK_MSG(l->confidence > 0 && l->confidence <= 100, "%s: confidence %f", path,
                      (double)l->confidence);
            CHECK_MSG(l->x >= 0 && l->y >= 0 && l->w > 0 && l->h > 0 && l->x + l->w <= img.width + 2 &&
                          l->y + l->h <= img.height + 2,
                      "%s: box %d,%d %dx%d", path, l->x, l->y, l->w, l->h);
        }
        printf("%s: cer %.3f [%s]\n", sgt_json_str(s, "file"), cer, r.text);
        sg_ocr_result_free(&r);
        sg_image_free(&img);
    }
    double mean = n ? sum / (double)n : 1;
    printf("mean CER %.3f over %zu signs, first word found in %zu\n", mean, n, words_found);
    CHECK_MSG(mean <= MAX_CER, "mean CER %.3f > %.2f", mean, MAX_CER);
    CHECK_MSG(words_found * 10 >= n * 9, "first word found in %zu of %zu", words_found, n);
    json_decref(truth);
}

/* The shared photos have no text: nothing is read, and the engine runs at most once in seven
 * (a region whose shapes happened to line up); most stop at the describer's statistics. */
static void test_no_text(void)
{
    static const char *const photos[] = {"astronaut", "camera", "chelsea", "coffee",
                                         "motorcycle_left", "motorcycle_right", "rocket"};
    int runs = 0;
    for (int i = 0; i < 7; i++) {
        char path[256];
        snprintf(path, sizeof path, "../shared/data/images/%s.jpg", photos[i]);
        sg_image img;
        CHECK(load(path, &img) == 0);
        sg_ocr_result r;
        sg_error err = {0};
        CHECK(sg_ocr_read_image(backend, &img, &r, &err) == SG_OK);
        CHECK_MSG(r.text && r.text[0] == '\0', "%s read as [%s]", photos[i], r.text);
        runs += r.engine_runs;
        sg_ocr_result_free(&r);
        sg_image_free(&img);
    }
    CHECK_MSG(runs <= 1, "the engine ran %d times on 7 photos without text", runs);

    /* regions given as none: nothing runs at all */
    sg_image img;
    CHECK(load(SIGNS "/sign_00.jpg", &img) == 0);
    sg_ocr_region none[1];
    sg_ocr_result r;
    sg_error err = {0};
    CHECK(backend->read(backend->self, &img, none, 0, &r, &err) == SG_OK);
    CHECK(r.engine_runs == 0 && r.nlines == 0 && strcmp(r.text, "") == 0);
    sg_ocr_result_free(&r);
    sg_image_free(&img);
}

static void test_bad_input(void)
{
    sg_error err = {0};
    sg_ocr_result r;
    /* a corrupt frame never reaches OCR: the decoder says why */
    size_t len;
    char *data = check_read_file(SIGNS "/sign_00.jpg", &len);
    CHECK(data != NULL);
    if (data) {
        sg_image img;
        memset(data + len / 3, 0xFF, len / 3);
        CHECK(sg_image_decode((const uint8_t *)data, len / 2, 0, &img, &err) == SG_EIMAGE);
        free(data);
    }
    /* a frame over the OCR pixel limit: refused, not read for minutes */
    sg_image huge = {.width = 6000, .height = 5000};
    huge.rgb = calloc((size_t)huge.width * huge.height, 3);
    CHECK(huge.rgb != NULL);
    if (huge.rgb) {
        CHECK(sg_ocr_read_image(backend, &huge, &r, &err) == SG_ETOOBIG);
        CHECK(strstr(err.msg, "too large") != NULL);
        free(huge.rgb);
    }
    /* a large frame under the limit (4000x3000 of fine noise): a bounded result */
    sg_image big = {.width = 4000, .height = 3000};
    big.rgb = malloc((size_t)big.width * big.height * 3);
    if (big.rgb) {
        unsigned x = 12345;
        for (size_t i = 0; i < (size_t)big.width * big.height * 3; i++) {
            x = x * 1103515245u + 12345u;
            big.rgb[i] = (uint8_t)(x >> 24);
        }
        CHECK(sg_ocr_read_image(backend, &big, &r, &err) == SG_OK);
        CHECK(r.engine_runs <= SG_OCR_MAX_REGIONS);
        sg_ocr_result_free(&r);
        free(big.rgb);
    }
    /* no image; a region outside the frame; a stroke map of another decode */
    CHECK(sg_ocr_read_image(backend, NULL, &r, &err) == SG_EINVAL);
    sg_image img;
    CHECK(load(SIGNS "/sign_00.jpg", &img) == 0);
    sg_ocr_region out = {1.5f, 1.5f, 0.2f, 0.2f, false, 1};
    sg_ocr_prepared p;
    CHECK(sg_ocr_prepare(&img, &out, &p, &err) == SG_EINVAL);
    sg_scene sc;
    sg_stroke_map map;
    sg_describe_image_map(&img, NULL, &sc, &map);
    map.img_w++;
    sg_ocr_region regs[SG_OCR_MAX_REGIONS];
    CHECK(sg_ocr_find_regions(&map, &img, regs, SG_OCR_MAX_REGIONS) == 0);
    sg_stroke_map_free(&map);
    sg_image_free(&img);

    /* missing language data, a malformed language list: said, not crashed */
    sg_ocr_tesseract_options o = {"eng", "/nonexistent/tessdata", 1};
    CHECK(sg_ocr_tesseract_open(&o, &err) == NULL);
    CHECK(err.code == SG_EUNSUPPORTED && strstr(err.msg, "tesseract-ocr-eng"));
    o = (sg_ocr_tesseract_options){"xx_no_such_lang", NULL, 1};
    CHECK(sg_ocr_tesseract_open(&o, &err) == NULL && err.code == SG_EUNSUPPORTED);
    o = (sg_ocr_tesseract_options){"../eng", NULL, 1};
    CHECK(sg_ocr_tesseract_open(&o, &err) == NULL && err.code == SG_EINVAL);
    o = (sg_ocr_tesseract_options){"eng++deu", NULL, 1};
    CHECK(sg_ocr_tesseract_open(&o, &err) == NULL && err.code == SG_EINVAL);
}

typedef struct job {
    const char *path;
    char *text;
} job;

static void *read_job(void *arg)
{
    job *j = arg;
    sg_image img;
    if (load(j->path, &img) != 0)
        return NULL;
    for (int k = 0; k < 3; k++) {
        sg_ocr_result r;
        sg_error err = {0};
        if (sg_ocr_read_image(backend, &img, &r, &err) == SG_OK) {
            free(j->text);
            j->text = strdup(r.text);
            sg_ocr_result_free(&r);
        }
    }
    sg_image_free(&img);
    return NULL;
}

/* Two threads on the engine pool at once read what one thread reads alone. */
static void test_threads(void)
{
    job alone[2] = {{SIGNS "/sign_01.jpg", NULL}, {SIGNS "/sign_09.jpg", NULL}};
    read_job(&alone[0]);
    read_job(&alone[1]);
    job both[2] = {{SIGNS "/sign_01.jpg", NULL}, {SIGNS "/sign_09.jpg", NULL}};
    pthread_t t[2];
    for (int i = 0; i < 2; i++)
        pthread_create(&t[i], NULL, read_job, &both[i]);
    for (int i = 0; i < 2; i++)
        pthread_join(t[i], NULL);
    for (int i = 0; i < 2; i++) {
        CHECK(alone[i].text && both[i].text && strcmp(alone[i].text, both[i].text) == 0);
        CHECK(alone[i].text && alone[i].text[0]);
        free(alone[i].text);
        free(both[i].text);
    }
}

static void test_json(void)
{
    sg_ocr_result r = {0};
    sg_error err = {0};
    CHECK(sg_ocr_result_add_line(&r, "CAUTION", 95.25f, 10, 20, 30, 8, &err) == SG_OK);
    CHECK(sg_ocr_result_add_line(&r, "HOT SURFACE", 91.0f, 5, 31, 50, 8, &err) == SG_OK);
    CHECK(sg_ocr_result_join(&r, &err) == SG_OK);
    CHECK(strcmp(r.text, "CAUTION\nHOT SURFACE") == 0);
    json_t *j = sg_ocr_result_to_json(&r);
    CHECK(strcmp(sgt_json_str(j, "text"), "CAUTION\nHOT SURFACE") == 0);
    json_t *l0 = json_array_get(json_object_get(j, "lines"), 0);
    CHECK(strcmp(sgt_json_str(l0, "text"), "CAUTION") == 0);
    CHECK_NEAR(json_real_value(json_object_get(l0, "confidence")), 95.3, 0.051);
    CHECK_EQ_INT(json_array_size(json_object_get(l0, "box")), 4);
    CHECK(json_is_object(json_object_get(j, "timings_ms")));
    json_decref(j);
    sg_ocr_result_free(&r);
}

int main(void)
{
    sg_ocr_tesseract_thread_env();
    test_cer();
    test_json();
    sg_error err = {0};
    sg_ocr_tesseract_options o = {"eng", NULL, 2};
    sg_ocr_tesseract *t = sg_ocr_tesseract_open(&o, &err);
    CHECK_MSG(t != NULL, "OCR unavailable: %s (scripts/deps.sh installs tesseract-ocr-eng)", err.msg);
    if (t) {
        backend = sg_ocr_tesseract_backend(t);
        test_signs();
        test_no_text();
        test_bad_input();
        test_threads();
        sg_ocr_tesseract_free(t);
    }
    return check_report("test_ocr");
}
