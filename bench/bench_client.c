/* The phone side's JPEG table, re-measured: each photo fitted to the upload size (640x480 by
 * default, libsgclient's sg_rgb_fit), encoded by libsgclient (TurboJPEG, 4:2:0) at each quality:
 * size, encode time (median of --runs), PSNR against the uncompressed frame, and what the server's
 * vision makes of it: the pixel describer (the fallback every server has) compared with its
 * description of the q95 frame, and with --clip DIR the CLIP image embedding's cosine to q95's
 * (decoded as the server decodes: DCT-scaled to the model's short side).
 *   build/bench/bench_client [--runs N] [--size WxH] [--qualities 40,60,75,85,95]
 *                            [--clip DIR [--precision f32|int8] [--threads N]] IMAGE...
 * Prints one JSON object per image and quality, then a Markdown table of the means per quality. */
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/describe.h"
#include "base/clock.h"
#include "base/file.h"
#include "media/image.h"
#include "models/clip.h"
#include "nn/pool.h"
#include "sgclient.h"

#define MAXQ 12

static int cmp_d(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

static double psnr(const uint8_t *a, const uint8_t *b, size_t n)
{
    double se = 0;
    for (size_t i = 0; i < n; i++) {
        double d = (double)a[i] - b[i];
        se += d * d;
    }
    return se == 0 ? 99.0 : 10.0 * log10(255.0 * 255.0 / (se / (double)n));
}

static double cosine(const float *a, const float *b, int n)
{
    double ab = 0, aa = 0, bb = 0;
    for (int i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

typedef struct sums {
    double kb, ms, psnr, cos, cos_min, bright, contrast, sharp_ratio;
    int color_same, text_same, sharp_same, summary_same, n, ncos;
} sums;

int main(int argc, char **argv)
{
    int runs = 20, W = 640, H = 480, threads = 2, nq = 0, qs[MAXQ];
    const char *clip_dir = NULL;
    sg_precision prec = SG_PREC_F32;
    int first = 1;
    for (; first < argc && strncmp(argv[first], "--", 2) == 0; first++) {
        const char *a = argv[first], *v = first + 1 < argc ? argv[first + 1] : NULL;
        if (!v) {
            fprintf(stderr, "%s needs a value\n", a);
            return 2;
        }
        if (strcmp(a, "--runs") == 0)
            runs = atoi(v);
        else if (strcmp(a, "--size") == 0 && sscanf(v, "%dx%d", &W, &H) == 2)
            ;
        else if (strcmp(a, "--clip") == 0)
            clip_dir = v;
        else if (strcmp(a, "--threads") == 0)
            threads = atoi(v);
        else if (strcmp(a, "--precision") == 0)
            prec = strcmp(v, "int8") == 0 ? SG_PREC_Q8 : SG_PREC_F32;
        else if (strcmp(a, "--qualities") == 0) {
            char *s = strdup(v);
            for (char *t = strtok(s, ","); t && nq < MAXQ; t = strtok(NULL, ","))
                qs[nq++] = atoi(t);
            free(s);
        } else {
            fprintf(stderr, "unknown option %s\n", a);
            return 2;
        }
        first++;
    }
    if (nq == 0) {
        static const int def[] = {40, 60, 75, 85, 95};
        nq = 5;
        memcpy(qs, def, sizeof def);
    }
    int ref = -1; /* index of q95, the reference */
    for (int i = 0; i < nq; i++)
        if (qs[i] == 95)
            ref = i;
    if (first >= argc || runs < 1 || W < 16 || H < 16 || ref < 0) {
        fprintf(stderr, "usage: bench_client [--runs N] [--size WxH] [--qualities ...,95,...] "
                        "[--clip DIR [--precision f32|int8] [--threads N]] IMAGE...\n");
        return 2;
    }
    sg_pool *pool = NULL;
    sg_clip *clip = NULL;
    sg_error err = {0};
    if (clip_dir) {
        pool = sg_pool_new(threads);
        clip = sg_clip_load(clip_dir, prec, pool, &err);
        if (!clip) {
            fprintf(stderr, "cannot load %s: %s\n", clip_dir, err.msg);
            return 1;
        }
    }
    int dim = clip ? sg_clip_get_info(clip)->embed_dim : 0;
    sg_jpeg_encoder *enc = NULL;
    if (sg_jpeg_encoder_new(&enc) != SG_CLIENT_OK) {
        fprintf(stderr, "cannot start TurboJPEG\n");
        return 1;
    }
    uint8_t *frame = malloc((size_t)W * H * 3);
    double *times = malloc((size_t)runs * sizeof *times);
    float *emb = clip ? malloc((size_t)nq * dim * sizeof *emb) : NULL;
    sums sum[MAXQ];
    memset(sum, 0, sizeof sum);
    for (int i = 0; i < nq; i++)
        sum[i].cos_min = 1.0;

    for (int a = first; a < argc; a++) {
        size_t len;
        char *data;
        sg_image src;
        if (sg_file_read(argv[a], (size_t)1 << 30, &data, &len, &err) != SG_OK ||
            sg_image_decode((const uint8_t *)data, len, 0, &src, &err) != SG_OK) {
            fprintf(stderr, "skip %s: %s\n", argv[a], err.msg);
            free(data);
            continue;
        }
        free(data);
        sg_rgb_fit(src.rgb, src.width, src.height, frame, W, H);
        sg_image_free(&src);
        sg_scene scene[MAXQ];
        size_t bytes[MAXQ];
        double ms[MAXQ], ps[MAXQ];
        for (int qi = 0; qi < nq; qi++) {
            uint8_t *jpeg = NULL;
            size_t jl = 0;
            char e[SG_CLIENT_ERROR_SIZE];
            for (int r = 0; r < runs; r++) {
                free(jpeg);
                double t0 = sg_now_ms();
                if (sg_jpeg_encode(enc, frame, W, H, 0, 0, qs[qi], &jpeg, &jl, e) != SG_CLIENT_OK) {
                    fprintf(stderr, "encode: %s\n", e);
                    return 1;
                }
                times[r] = sg_now_ms() - t0;
            }
            qsort(times, (size_t)runs, sizeof *times, cmp_d);
            ms[qi] = times[runs / 2];
            bytes[qi] = jl;
            /* as the server sees it: the describer's decode (DCT-scaled), full decode for PSNR */
            sg_image full, small;
            sg_image_decode(jpeg, jl, 0, &full, &err);
            ps[qi] = psnr(frame, full.rgb, (size_t)W * H * 3);
            sg_image_free(&full);
            sg_image_decode(jpeg, jl, SG_DESCRIBE_MIN_SIDE, &small, &err);
            sg_describe_image(&small, NULL, &scene[qi]);
            sg_image_free(&small);
            if (clip) {
                sg_image ci;
                if (sg_image_decode(jpeg, jl, sg_clip_min_short_side(clip), &ci, &err) != SG_OK ||
                    sg_clip_encode_image(clip, &ci, emb + (size_t)qi * dim, &err) != SG_OK) {
                    fprintf(stderr, "clip: %s\n", err.msg);
                    return 1;
                }
                sg_image_free(&ci);
            }
            free(jpeg);
        }
        for (int qi = 0; qi < nq; qi++) {
            const sg_scene *s = &scene[qi], *r = &scene[ref];
            bool color = s->ncolors > 0 && r->ncolors > 0 && strcmp(s->colors[0].name, r->colors[0].name) == 0;
            bool summary = strcmp(s->summary, r->summary) == 0;
            double sharp_ratio = r->sharpness > 0 ? s->sharpness / r->sharpness : 1.0;
            sums *u = &sum[qi];
            u->kb += bytes[qi] / 1024.0;
            u->ms += ms[qi];
            u->psnr += ps[qi];
            u->bright += fabs(s->brightness - r->brightness);
            u->contrast += fabs(s->contrast - r->contrast);
            u->sharp_ratio += sharp_ratio;
            u->color_same += color;
            u->text_same += s->text_like == r->text_like;
            u->sharp_same += strcmp(s->sharpness_label, r->sharpness_label) == 0;
            u->summary_same += summary;
            u->n++;
            printf("{\"image\":\"%s\",\"quality\":%d,\"kb\":%.1f,\"encode_ms\":%.3f,\"psnr_db\":%.2f,"
                   "\"describer\":{\"brightness_diff\":%.2f,\"contrast_diff\":%.2f,\"sharpness_ratio\":%.3f,"
                   "\"top_color_same\":%s,\"text_like_same\":%s,\"summary_same\":%s}",
                   argv[a], qs[qi], bytes[qi] / 1024.0, ms[qi], ps[qi], fabs(s->brightness - r->brightness),
                   fabs(s->contrast - r->contrast), sharp_ratio, color ? "true" : "false",
                   s->text_like == r->text_like ? "true" : "false", summary ? "true" : "false");
            if (clip) {
                double c = cosine(emb + (size_t)qi * dim, emb + (size_t)ref * dim, dim);
                u->cos += c;
                u->cos_min = c < u->cos_min ? c : u->cos_min;
                u->ncos++;
                printf(",\"clip_cosine_vs_q95\":%.5f", c);
            }
            printf("}\n");
        }
    }
    printf("\n| quality | KB (mean) | encode ms (median, mean over photos) | PSNR dB | describer: same summary as q95 | same top colour | same sharpness label | brightness diff | sharpness vs q95 |%s\n",
           clip ? " CLIP cosine vs q95 (mean / min) |" : "");
    printf("|---|---|---|---|---|---|---|---|---|%s\n", clip ? "---|" : "");
    for (int qi = 0; qi < nq; qi++) {
        sums *u = &sum[qi];
        if (!u->n)
            continue;
        printf("| %d | %.1f | %.2f | %.1f | %d/%d | %d/%d | %d/%d | %.2f | %.2f |", qs[qi], u->kb / u->n,
               u->ms / u->n, u->psnr / u->n, u->summary_same, u->n, u->color_same, u->n, u->sharp_same,
               u->n, u->bright / u->n, u->sharp_ratio / u->n);
        if (clip)
            printf(" %.5f / %.5f |", u->cos / u->ncos, u->cos_min);
        printf("\n");
    }
    free(emb);
    free(times);
    free(frame);
    sg_jpeg_encoder_free(enc);
    sg_clip_free(clip);
    if (pool)
        sg_pool_free(pool);
    return 0;
}
