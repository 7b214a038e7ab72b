/* OCR benchmark: the region pipeline (agent/ocr.c + Tesseract) against Tesseract's defaults on
 * the whole frame (page segmentation auto, what `tesseract IMAGE -` does), on the same sign
 * frames in the same run: mean character error rate and median ms per frame for each, and the
 * cost of the "is there text?" check on frames without text (the shared photos).
 *   bench_ocr [--dir DIR] [--runs N] [--threads T] [--verbose]
 * DIR: a py/gen_signs.py set with truth.json (default tests/fixtures/signs). With --threads T > 1
 * also T threads read every frame at once (the server's workers sharing the engine pool): median
 * and p90 ms per frame under that load, and frames per second.
 * Run from the project root with OMP_THREAD_LIMIT=1 set (as the programs set it). */
#include <jansson.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <tesseract/capi.h>

#include "agent/ocr.h"
#include "agent/ocr_tesseract.h"
#include "base/clock.h"
#include "base/file.h"
#include "media/image.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    return n ? v[n / 2] : 0;
}

static int load(const char *path, sg_image *img)
{
    char *data;
    size_t len;
    sg_error err = {0};
    if (sg_file_read(path, 1u << 26, &data, &len, &err) != SG_OK) {
        fprintf(stderr, "bench_ocr: %s\n", err.msg);
        return -1;
    }
    sg_status st = sg_image_decode((const uint8_t *)data, len, 0, img, &err);
    free(data);
    if (st != SG_OK) {
        fprintf(stderr, "bench_ocr: %s: %s\n", path, err.msg);
        return -1;
    }
    return 0;
}

/* Tesseract's defaults on the whole frame: grey, page segmentation auto. */
static char *whole_frame(TessBaseAPI *api, const sg_image *img)
{
    size_t n = (size_t)img->width * img->height;
    uint8_t *g = malloc(n);
    for (size_t i = 0; i < n; i++) {
        const uint8_t *p = img->rgb + 3 * i;
        g[i] = (uint8_t)((77 * p[0] + 150 * p[1] + 29 * p[2] + 128) >> 8);
    }
    TessBaseAPISetImage(api, g, img->width, img->height, 1, img->width);
    TessBaseAPISetSourceResolution(api, 70);
    char *t = TessBaseAPIGetUTF8Text(api);
    char *copy = strdup(t ? t : "");
    TessDeleteText(t);
    TessBaseAPIClear(api);
    free(g);
    return copy;
}

typedef struct worker {
    sg_ocr_backend *b;
    sg_image *imgs;
    size_t n;
    int runs;
    double *ms; /* n * runs */
} worker;

static void *work(void *arg)
{
    worker *w = arg;
    for (int k = 0; k < w->runs; k++)
        for (size_t i = 0; i < w->n; i++) {
            sg_ocr_result r;
            sg_error err;
            double t0 = sg_now_ms();
            if (sg_ocr_read_image(w->b, &w->imgs[i], &r, &err) == SG_OK)
                sg_ocr_result_free(&r);
            w->ms[(size_t)k * w->n + i] = sg_now_ms() - t0;
        }
    return NULL;
}

/* threads threads read every frame runs times at once; prints the per-frame latency. */
static void concurrent(sg_ocr_backend *b, sg_image *imgs, size_t n, int runs, int threads)
{
    worker w[16];
    pthread_t t[16];
    double t0 = sg_now_ms();
    for (int i = 0; i < threads; i++) {
        w[i] = (worker){b, imgs, n, runs, calloc(n * (size_t)runs, sizeof(double))};
        pthread_create(&t[i], NULL, work, &w[i]);
    }
    for (int i = 0; i < threads; i++)
        pthread_join(t[i], NULL);
    double wall = sg_now_ms() - t0;
    size_t total = n * (size_t)runs * (size_t)threads, k = 0;
    double *all = malloc(total * sizeof *all);
    for (int i = 0; i < threads; i++) {
        for (size_t j = 0; j < n * (size_t)runs; j++)
            all[k++] = w[i].ms[j];
        free(w[i].ms);
    }
    qsort(all, total, sizeof *all, cmp);
    printf("%d threads at once: median %.1f ms/frame, p90 %.1f ms, %.1f frames/s\n", threads,
           all[total / 2], all[(total * 9) / 10], (double)total / (wall / 1000.0));
    free(all);
}

int main(int argc, char **argv)
{
    const char *dir = "tests/fixtures/signs";
    int runs = 3, threads = 1;
    int verbose = 0;
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "--dir") && i + 1 < argc)
            dir = argv[++i];
        else if (!strcmp(argv[i], "--runs") && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--threads") && i + 1 < argc)
            threads = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--verbose"))
            verbose = 1;
        else {
            fprintf(stderr, "usage: bench_ocr [--dir DIR] [--runs N] [--threads T] [--verbose]\n");
            return 2;
        }
    }
    if (runs < 1)
        runs = 1;
    threads = threads < 1 ? 1 : threads > 16 ? 16 : threads;
    sg_ocr_tesseract_thread_env();
    char path[4096];
    snprintf(path, sizeof path, "%s/truth.json", dir);
    json_error_t jerr;
    json_t *truth = json_load_file(path, 0, &jerr);
    json_t *signs = json_object_get(truth, "signs");
    if (!json_is_array(signs)) {
        fprintf(stderr, "bench_ocr: %s: %s\n", path, jerr.text);
        return 1;
    }
    sg_error err = {0};
    sg_ocr_tesseract_options topt = {NULL, NULL, threads};
    sg_ocr_tesseract *t = sg_ocr_tesseract_open(&topt, &err);
    if (!t) {
        fprintf(stderr, "bench_ocr: %s\n", err.msg);
        return 1;
    }
    sg_ocr_backend *b = sg_ocr_tesseract_backend(t);
    TessBaseAPI *whole = TessBaseAPICreate();
    char *names[] = {"debug_file"}, *values[] = {"/dev/null"};
    TessBaseAPIInit4(whole, "/usr/share/tesseract-ocr/5/tessdata", "eng", OEM_LSTM_ONLY, NULL, 0,
                     names, values, 1, 0);

    size_t n = json_array_size(signs);
    sg_image *imgs = calloc(n, sizeof *imgs);
    double *ms = calloc(n * (size_t)runs, sizeof *ms), *wms = calloc(n, sizeof *wms);
    double cer_sum = 0, wcer_sum = 0;
    for (size_t i = 0; i < n; i++) {
        json_t *s = json_array_get(signs, i);
        const char *file = json_string_value(json_object_get(s, "file"));
        const char *ref = json_string_value(json_object_get(s, "text"));
        snprintf(path, sizeof path, "%s/%s", dir, file ? file : "");
        sg_image img;
        if (!ref || load(path, &img))
            return 1;
        sg_ocr_result r = {0};
        for (int k = 0; k < runs; k++) {
            sg_ocr_result_free(&r);
            if (sg_ocr_read_image(b, &img, &r, &err) != SG_OK) {
                fprintf(stderr, "bench_ocr: %s: %s\n", path, err.msg);
                return 1;
            }
            ms[i * (size_t)runs + (size_t)k] = r.total_ms;
        }
        double t0 = sg_now_ms();
        char *w = whole_frame(whole, &img);
        wms[i] = sg_now_ms() - t0;
        double cer = sg_ocr_cer(ref, r.text), wcer = sg_ocr_cer(ref, w);
        cer_sum += cer > 1 ? 1 : cer;
        wcer_sum += wcer > 1 ? 1 : wcer;
        if (verbose)
            printf("%s regions %d cer %.3f (whole %.3f) %.1f ms  [%s] / [%s]\n", file, r.regions,
                   cer, wcer, r.total_ms, r.text, w);
        free(w);
        sg_ocr_result_free(&r);
        imgs[i] = img;
    }
    /* frames without text: the shared photos but the page of print */
    static const char *const photos[] = {"astronaut", "camera", "chelsea", "coffee",
                                         "motorcycle_left", "motorcycle_right", "rocket"};
    double check[7 * 16];
    int nc = 0, false_regions = 0;
    for (int i = 0; i < 7; i++) {
        snprintf(path, sizeof path, "../shared/data/images/%s.jpg", photos[i]);
        sg_image img;
        if (load(path, &img))
            return 1;
        for (int k = 0; k < runs; k++) {
            sg_ocr_result r = {0};
            if (sg_ocr_read_image(b, &img, &r, &err) != SG_OK)
                return 1;
            check[nc++] = r.total_ms;
            if (k == 0) {
                false_regions += r.engine_runs;
                if (verbose)
                    printf("%s (no text): regions %d, engine runs %d, %.1f ms [%s]\n", photos[i],
                           r.regions, r.engine_runs, r.total_ms, r.text);
            }
            sg_ocr_result_free(&r);
        }
        sg_image_free(&img);
    }
    double med = median(ms, (int)(n * (size_t)runs)), wmed = median(wms, (int)n);
    double cmed = median(check, nc);
    printf("regions+tesseract: mean CER %.3f, median %.1f ms/frame\n", cer_sum / (double)n, med);
    printf("tesseract whole frame (PSM auto): mean CER %.3f, median %.1f ms/frame\n",
           wcer_sum / (double)n, wmed);
    printf("frames without text: median %.1f ms, %d engine runs on %d photos\n", cmed,
           false_regions, 7);
    printf("{\"frames\":%zu,\"cer\":%.4f,\"ms\":%.2f,\"whole_cer\":%.4f,\"whole_ms\":%.2f,"
           "\"notext_ms\":%.2f,\"notext_engine_runs\":%d}\n",
           n, cer_sum / (double)n, med, wcer_sum / (double)n, wmed, cmed, false_regions);
    if (threads > 1)
        concurrent(b, imgs, n, runs, threads);
    for (size_t i = 0; i < n; i++)
        sg_image_free(&imgs[i]);
    free(imgs);
    TessBaseAPIEnd(whole);
    TessBaseAPIDelete(whole);
    sg_ocr_tesseract_free(t);
    json_decref(truth);
    free(ms);
    free(wms);
    return 0;
}
