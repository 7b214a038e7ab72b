/* Frame pipeline benchmark: the shared photos re-encoded as 640x480 JPEG q85 (what the phone
 * uploads), then base64 decode -> DCT-scaled JPEG decode -> 8x8 thumbnail -> keyframe gate, and the
 * pixel describer on keyframes. Prints medians per stage and one JSON line at the end.
 *   bench_frame [--runs N] [--write DIR]   (DIR: also write the 640x480 JPEGs and a frame JSON body) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <turbojpeg.h>

#include "agent/describe.h"
#include "agent/keyframe.h"
#include "base/base64.h"
#include "base/clock.h"
#include "base/file.h"
#include "media/image.h"

static const char *photos[] = {"astronaut", "camera", "chelsea", "coffee", "motorcycle_left",
                               "motorcycle_right", "rocket", "text"};
#define NPHOTOS 8

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double pct(double *v, int n, double p)
{
    qsort(v, (size_t)n, sizeof *v, cmp);
    int i = (int)(p / 100.0 * (n - 1) + 0.5);
    return v[i];
}

/* Bilinear resize to 640x480 and JPEG q85, as a phone camera pipeline would send. */
static uint8_t *make_640x480(const sg_image *src, unsigned long *out_len)
{
    enum { W = 640, H = 480 };
    uint8_t *dst = malloc(W * H * 3);
    for (int y = 0; y < H; y++) {
        float fy = ((float)y + 0.5f) * (float)src->height / H - 0.5f;
        int y0 = fy < 0 ? 0 : (int)fy;
        int y1 = y0 + 1 < src->height ? y0 + 1 : y0;
        float wy = fy - (float)y0;
        if (wy < 0)
            wy = 0;
        for (int x = 0; x < W; x++) {
            float fx = ((float)x + 0.5f) * (float)src->width / W - 0.5f;
            int x0 = fx < 0 ? 0 : (int)fx;
            int x1 = x0 + 1 < src->width ? x0 + 1 : x0;
            float wx = fx - (float)x0;
            if (wx < 0)
                wx = 0;
            for (int c = 0; c < 3; c++) {
                float a = src->rgb[(y0 * src->width + x0) * 3 + c], b = src->rgb[(y0 * src->width + x1) * 3 + c];
                float d = src->rgb[(y1 * src->width + x0) * 3 + c], e = src->rgb[(y1 * src->width + x1) * 3 + c];
                float v = (a * (1 - wx) + b * wx) * (1 - wy) + (d * (1 - wx) + e * wx) * wy;
                dst[(y * W + x) * 3 + c] = (uint8_t)(v + 0.5f);
            }
        }
    }
    tjhandle tj = tjInitCompress();
    unsigned char *jpeg = NULL;
    *out_len = 0;
    tjCompress2(tj, dst, W, 0, H, TJPF_RGB, &jpeg, out_len, TJSAMP_420, 85, TJFLAG_FASTDCT);
    tjDestroy(tj);
    free(dst);
    uint8_t *copy = malloc(*out_len);
    memcpy(copy, jpeg, *out_len);
    tjFree(jpeg);
    return copy;
}

int main(int argc, char **argv)
{
    int runs = 200;
    const char *write_dir = NULL;
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--write") == 0 && i + 1 < argc)
            write_dir = argv[++i];
    }
    if (runs < 1)
        runs = 1;
    uint8_t *jpeg[NPHOTOS];
    char *b64[NPHOTOS];
    size_t total_kb = 0;
    for (int p = 0; p < NPHOTOS; p++) {
        char path[256];
        snprintf(path, sizeof path, "../shared/data/images/%s.jpg", photos[p]);
        size_t len;
        char *orig;
        sg_image full;
        sg_error err;
        if (sg_file_read(path, (size_t)1 << 30, &orig, &len, &err) != SG_OK ||
            sg_image_decode((const uint8_t *)orig, len, 0, &full, &err) != SG_OK) {
            fprintf(stderr, "bench_frame: %s (run from the project root)\n", err.msg);
            return 1;
        }
        unsigned long jl;
        jpeg[p] = make_640x480(&full, &jl);
        total_kb += jl;
        b64[p] = sg_base64_encode(jpeg[p], jl, NULL);
        sg_image_free(&full);
        free(orig);
        if (write_dir) {
            snprintf(path, sizeof path, "%s/%s_640x480_q85.jpg", write_dir, photos[p]);
            FILE *f = fopen(path, "wb");
            if (f) {
                fwrite(jpeg[p], 1, jl, f);
                fclose(f);
            }
            snprintf(path, sizeof path, "%s/%s_frame.json", write_dir, photos[p]);
            f = fopen(path, "wb");
            if (f) {
                fprintf(f, "{\"image_base64\":\"%s\"}", b64[p]);
                fclose(f);
            }
        }
    }
    int n = runs * NPHOTOS;
    double *t_b64 = malloc(sizeof(double) * (size_t)n), *t_dec = malloc(sizeof(double) * (size_t)n),
           *t_full = malloc(sizeof(double) * (size_t)n), *t_gate = malloc(sizeof(double) * (size_t)n),
           *t_ingest = malloc(sizeof(double) * (size_t)n), *t_desc = malloc(sizeof(double) * (size_t)n);
    sg_keyframe_gate gate;
    sg_keyframe_gate_init(&gate, SG_KEYFRAME_DIFF_TAU, SG_KEYFRAME_MIN_GAP);
    int k = 0;
    for (int r = 0; r < runs; r++) {
        for (int p = 0; p < NPHOTOS; p++, k++) {
            sg_error err;
            double t0 = sg_now_ms();
            uint8_t *bytes;
            size_t blen;
            sg_base64_decode(b64[p], strlen(b64[p]), &bytes, &blen, &err);
            double t1 = sg_now_ms();
            sg_image img;
            sg_image_decode(bytes, blen, SG_DESCRIBE_MIN_SIDE, &img, &err);
            double t2 = sg_now_ms();
            float thumb[64];
            sg_image_thumb8(&img, thumb);
            sg_keyframe_gate_push(&gate, thumb, false);
            double t3 = sg_now_ms();
            sg_scene scene;
            sg_describe_image(&img, gate.key, &scene);
            double t4 = sg_now_ms();
            sg_image_free(&img);
            sg_image full;
            double t5 = sg_now_ms();
            sg_image_decode(bytes, blen, 0, &full, &err);
            double t6 = sg_now_ms();
            sg_image_free(&full);
            free(bytes);
            t_b64[k] = t1 - t0;
            t_dec[k] = t2 - t1;
            t_gate[k] = t3 - t2;
            t_ingest[k] = t3 - t0;
            t_desc[k] = t4 - t3;
            t_full[k] = t6 - t5;
        }
    }
    printf("frame pipeline, %d photos as 640x480 q85 JPEG (avg %.1f KB), %d runs each\n", NPHOTOS,
           (double)total_kb / NPHOTOS / 1024.0, runs);
    printf("  %-34s %8s %8s\n", "stage", "p50 ms", "p90 ms");
    struct { const char *name; double *v; } rows[] = {
        {"base64 decode", t_b64}, {"JPEG decode, DCT-scaled (>=128px)", t_dec},
        {"thumbnail + keyframe gate", t_gate}, {"ingest = b64 + decode + gate", t_ingest},
        {"pixel describe (keyframes)", t_desc}, {"JPEG decode, full 640x480", t_full}};
    double med[6];
    for (int i = 0; i < 6; i++) {
        med[i] = pct(rows[i].v, n, 50);
        printf("  %-34s %8.3f %8.3f\n", rows[i].name, med[i], pct(rows[i].v, n, 90));
    }
    printf("{\"ingest_p50_ms\":%.4f,\"decode_scaled_p50_ms\":%.4f,\"decode_full_p50_ms\":%.4f,"
           "\"describe_p50_ms\":%.4f,\"runs\":%d}\n", med[3], med[1], med[5], med[4], n);
    for (int p = 0; p < NPHOTOS; p++) {
        free(jpeg[p]);
        free(b64[p]);
    }
    free(t_b64); free(t_dec); free(t_full); free(t_gate); free(t_ingest); free(t_desc);
    return 0;
}
