/* Log-mel benchmark: whisper's front end on 30 s of speech (jfk.wav repeated to 480000 samples),
 * on jfk.wav padded to the 30 s window, and with 128 mels; one thread. Prints the median and the
 * best of N runs per case, then one JSON line.
 *   bench_mel [--runs N] [--wav PATH]   (run from the project root for the default PATH) */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/file.h"
#include "media/audio.h"
#include "media/mel.h"

static int cmp(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

typedef struct mel_case {
    const char *name;
    size_t n;         /* samples of the clip */
    int n_mels;
    int filters;      /* pass precomputed filters instead of NULL */
    int pad_to;       /* pad_to_frames */
    double median_ms, best_ms;
} mel_case;

static int run_case(mel_case *c, const float *pcm, const float *filters, int runs)
{
    double *ms = malloc((size_t)runs * sizeof *ms);
    if (!ms)
        return -1;
    for (int r = 0; r < runs; r++) {
        float *out = NULL;
        int frames = 0;
        sg_error err = {0};
        double t0 = sg_now_ms();
        sg_status st = sg_log_mel(pcm, c->n, c->n_mels, c->filters ? filters : NULL, c->pad_to,
                                  &out, &frames, &err);
        ms[r] = sg_now_ms() - t0;
        free(out);
        if (st != SG_OK) {
            fprintf(stderr, "%s: %s\n", c->name, err.msg);
            free(ms);
            return -1;
        }
    }
    qsort(ms, (size_t)runs, sizeof *ms, cmp);
    c->median_ms = ms[runs / 2];
    c->best_ms = ms[0];
    free(ms);
    return 0;
}

int main(int argc, char **argv)
{
    int runs = 20;
    const char *wav_path = "../shared/data/audio/jfk.wav";
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--runs") == 0 && i + 1 < argc)
            runs = atoi(argv[++i]);
        else if (strcmp(argv[i], "--wav") == 0 && i + 1 < argc)
            wav_path = argv[++i];
        else {
            fprintf(stderr, "usage: bench_mel [--runs N] [--wav PATH]\n");
            return 2;
        }
    }
    if (runs < 1)
        runs = 1;

    char *buf;
    size_t len;
    sg_audio clip = {0};
    sg_error err = {0};
    if (sg_file_read(wav_path, (size_t)1 << 30, &buf, &len, &err) != SG_OK ||
        sg_audio_decode((const uint8_t *)buf, len, SG_AUDIO_AUTO, 0, 0, &clip, &err) != SG_OK) {
        fprintf(stderr, "%s: %s\n", wav_path, err.msg);
        return 1;
    }
    free(buf);

    enum { N30 = 30 * 16000 };
    float *pcm = malloc(N30 * sizeof *pcm);
    for (size_t i = 0; i < N30; i++)
        pcm[i] = clip.samples[i % clip.n];
    float *filters = malloc(128 * SG_MEL_BINS * sizeof *filters);
    sg_mel_filters(80, SG_MEL_N_FFT, 16000, filters, &err);
    float *filters128 = malloc(128 * SG_MEL_BINS * sizeof *filters128);
    sg_mel_filters(128, SG_MEL_N_FFT, 16000, filters128, &err);

    mel_case cases[] = {
        {"30s_speech_80", N30, 80, 0, 3000, 0, 0},
        {"30s_speech_80_given_filters", N30, 80, 1, 3000, 0, 0},
        {"30s_speech_128", N30, 128, 0, 3000, 0, 0},
        {"jfk_11s_padded_to_3000", clip.n, 80, 0, 3000, 0, 0},
        {"jfk_11s_natural", clip.n, 80, 0, 0, 0, 0},
    };
    int ncases = (int)(sizeof cases / sizeof cases[0]);
    printf("log-mel, one thread, %d runs each (median / best):\n", runs);
    for (int i = 0; i < ncases; i++) {
        mel_case *c = &cases[i];
        const float *src = c->n == N30 ? pcm : clip.samples;
        if (run_case(c, src, c->n_mels == 128 ? filters128 : filters, runs) != 0)
            return 1;
        printf("  %-30s %8.3f ms  %8.3f ms\n", c->name, c->median_ms, c->best_ms);
    }
    printf("{\"bench\":\"mel\",\"runs\":%d", runs);
    for (int i = 0; i < ncases; i++)
        printf(",\"%s_ms\":%.3f", cases[i].name, cases[i].median_ms);
    printf("}\n");
    free(filters);
    free(filters128);
    free(pcm);
    sg_audio_free(&clip);
    return 0;
}
