/* Tests for media/mel: the mel filters against librosa's (the reference .npz whisper ships, read
 * here with a tiny zip + .npy reader), the log-mel of jfk.wav against PyTorch running whisper's own
 * code (tests/fixtures/mel, made by py/gen_mel_fixture.py), the STFT bin by bin against a
 * direct DFT, a sine landing in the right mel band, and the edge cases: empty, one sample,
 * non-finite samples. */
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <zlib.h>

#include "check.h"
#include "media/audio.h"
#include "media/mel.h"
#include "sgtest_npz.h"

#define PI 3.14159265358979323846

/* the .npz reader is shared with test_whisper_ggml (tests/sgtest_npz.h) */

/* ---- filters ---- */

static void test_filters(void)
{
    static const int mels[] = {80, 128};
    for (int i = 0; i < 2; i++) {
        char member[32];
        snprintf(member, sizeof member, "mel_%d.npy", mels[i]);
        int rows = 0, cols = 0;
        float *ref = npz_matrix("../shared/tokenizers/whisper_mel_filters.npz", member, &rows,
                                &cols);
        CHECK_MSG(ref != NULL, "cannot read %s from whisper_mel_filters.npz", member);
        if (!ref)
            continue;
        CHECK_EQ_INT(rows, mels[i]);
        CHECK_EQ_INT(cols, SG_MEL_BINS);
        float *got = malloc((size_t)mels[i] * SG_MEL_BINS * sizeof *got);
        sg_error err = {0};
        CHECK_EQ_INT(sg_mel_filters(mels[i], SG_MEL_N_FFT, 16000, got, &err), SG_OK);
        double max_diff = 0, max_ref = 0;
        int exact = 0;
        for (int k = 0; k < rows * cols; k++) {
            max_diff = fmax(max_diff, fabs((double)got[k] - ref[k]));
            max_ref = fmax(max_ref, fabs((double)ref[k]));
            exact += got[k] == ref[k];
        }
        printf("filters %d: max |diff| %.3g (max value %.4g), %d of %d bit-exact\n", mels[i],
               max_diff, max_ref, exact, rows * cols);
        CHECK_MSG(max_diff <= 1e-6 * max_ref, "mel_%d max diff %g", mels[i], max_diff);
        free(got);
        free(ref);
    }
    sg_error err = {0};
    float one[SG_MEL_BINS];
    CHECK_EQ_INT(sg_mel_filters(0, 400, 16000, one, &err), SG_EINVAL);
    CHECK_EQ_INT(sg_mel_filters(1, 1, 16000, one, &err), SG_EINVAL);
    CHECK_EQ_INT(sg_mel_filters(1, 400, 0, one, &err), SG_EINVAL);
    CHECK_EQ_INT(sg_mel_filters(1, 400, 16000, NULL, &err), SG_EINVAL);
}

/* ---- jfk.wav against the PyTorch fixture ---- */

static float *load_jfk(size_t *n)
{
    size_t len = 0;
    uint8_t *wav = check_read_file("../shared/data/audio/jfk.wav", &len);
    sg_audio a = {0};
    sg_error err = {0};
    *n = 0;
    if (!wav || sg_audio_decode(wav, len, SG_AUDIO_WAV, 0, 0, &a, &err) != SG_OK) {
        free(wav);
        return NULL;
    }
    free(wav);
    CHECK_EQ_INT(a.src_rate, 16000); /* so no resampler stands between us and the fixture */
    *n = a.n;
    return a.samples;
}

static float *read_floats(FILE *f, int count)
{
    float *v = malloc((size_t)(count > 0 ? count : 1) * sizeof *v);
    for (int i = 0; v && i < count; i++)
        if (fscanf(f, "%f", &v[i]) != 1) {
            free(v);
            return NULL;
        }
    return v;
}

static void test_jfk_fixture(void)
{
    size_t n = 0;
    float *jfk = load_jfk(&n);
    CHECK_MSG(jfk != NULL, "cannot decode ../shared/data/audio/jfk.wav");
    FILE *f = fopen("tests/fixtures/mel/jfk_logmel.txt", "r");
    CHECK_MSG(f != NULL, "cannot open tests/fixtures/mel/jfk_logmel.txt");
    if (!jfk || !f) {
        free(jfk);
        if (f)
            fclose(f);
        return;
    }
    char line[256];
    if (!fgets(line, sizeof line, f)) /* the comment line */
        CHECK(0);
    int variants = 0;
    for (;;) {
        char name[32], kind[16], word[16];
        int n_mels, arg, tile, frames, count;
        if (fscanf(f, " variant %31s n_mels %d kind %15s arg %d tile %d frames %d", name, &n_mels,
                   kind, &arg, &tile, &frames) != 6)
            break;
        variants++;
        float *mel_mean = NULL, *frame_mean = NULL;
        if (fscanf(f, " %15s", word) == 1 && strcmp(word, "mel_mean") == 0)
            mel_mean = read_floats(f, n_mels);
        if (fscanf(f, " %15s", word) == 1 && strcmp(word, "frame_mean") == 0)
            frame_mean = read_floats(f, frames);
        CHECK_MSG(mel_mean && frame_mean, "%s: malformed fixture", name);
        if (!mel_mean || !frame_mean || fscanf(f, " values %d", &count) != 1) {
            free(mel_mean);
            free(frame_mean);
            break;
        }

        /* the audio of this variant */
        size_t na = n * (size_t)tile;
        float *audio = malloc(na * sizeof *audio);
        for (int r = 0; r < tile; r++)
            memcpy(audio + (size_t)r * n, jfk, n * sizeof *jfk);
        float *mel = NULL;
        int got_frames = 0;
        sg_error err = {0};
        sg_status st = strcmp(kind, "trim") == 0
                           ? sg_log_mel(audio, na, n_mels, NULL, arg, &mel, &got_frames, &err)
                           : sg_log_mel_padded(audio, na, n_mels, NULL, (size_t)arg, &mel,
                                               &got_frames, &err);
        CHECK_MSG(st == SG_OK, "%s: %s", name, err.msg);
        CHECK_EQ_INT(got_frames, frames);

        double d_val = 0, d_mel = 0, d_frame = 0;
        for (int i = 0; i < count; i++) {
            int m, t;
            float v;
            if (fscanf(f, "%d %d %f", &m, &t, &v) != 3) {
                CHECK_MSG(0, "%s: malformed value %d", name, i);
                break;
            }
            if (mel && got_frames == frames && m >= 0 && m < n_mels && t >= 0 && t < frames)
                d_val = fmax(d_val, fabs((double)mel[(size_t)m * frames + t] - v));
        }
        if (mel && got_frames == frames) {
            for (int m = 0; m < n_mels; m++) {
                double s = 0;
                for (int t = 0; t < frames; t++)
                    s += mel[(size_t)m * frames + t];
                d_mel = fmax(d_mel, fabs(s / frames - mel_mean[m]));
            }
            for (int t = 0; t < frames; t++) {
                double s = 0;
                for (int m = 0; m < n_mels; m++)
                    s += mel[(size_t)m * frames + t];
                d_frame = fmax(d_frame, fabs(s / n_mels - frame_mean[t]));
            }
        }
        printf("jfk %-9s %3d x %4d: max |diff| sampled values %.3g, mel means %.3g, frame means "
               "%.3g\n", name, n_mels, frames, d_val, d_mel, d_frame);
        CHECK_MSG(d_val <= 1e-4, "%s: value diff %g", name, d_val);
        CHECK_MSG(d_mel <= 1e-4, "%s: mel mean diff %g", name, d_mel);
        CHECK_MSG(d_frame <= 1e-4, "%s: frame mean diff %g", name, d_frame);
        free(mel);
        free(audio);
        free(mel_mean);
        free(frame_mean);
    }
    CHECK_EQ_INT(variants, 5);
    fclose(f);

    /* the two padding variants agree on the first 3000 frames of audio shorter than 30 s */
    float *a = NULL, *b = NULL;
    int fa = 0, fb = 0;
    sg_error err = {0};
    CHECK_EQ_INT(sg_log_mel(jfk, n, 80, NULL, SG_MEL_FRAMES_30S, &a, &fa, &err), SG_OK);
    CHECK_EQ_INT(sg_log_mel_padded(jfk, n, 80, NULL, 480000, &b, &fb, &err), SG_OK);
    CHECK_EQ_INT(fb, (int)(n / SG_MEL_HOP) + 3000);
    if (a && b && fa == 3000 && fb >= 3000) {
        int same = 1;
        for (int m = 0; m < 80; m++)
            same &= memcmp(a + (size_t)m * fa, b + (size_t)m * fb, 3000 * sizeof *a) == 0;
        CHECK(same);
    }
    /* caller-supplied filters give the same as computed ones */
    float *filt = malloc(80 * SG_MEL_BINS * sizeof *filt), *c = NULL;
    int fc = 0;
    CHECK_EQ_INT(sg_mel_filters(80, SG_MEL_N_FFT, 16000, filt, &err), SG_OK);
    CHECK_EQ_INT(sg_log_mel(jfk, n, 80, filt, SG_MEL_FRAMES_30S, &c, &fc, &err), SG_OK);
    CHECK(a && c && fc == fa && memcmp(a, c, (size_t)80 * fa * sizeof *a) == 0);
    free(filt);
    free(a);
    free(b);
    free(c);
    free(jfk);
}

/* ---- the STFT bin by bin: identity "filters" expose the power spectrum ---- */

static void test_stft_against_dft(void)
{
    enum { N = 4321, B = SG_MEL_BINS };
    float *x = malloc(N * sizeof *x);
    uint32_t s = 12345;
    for (int i = 0; i < N; i++) {
        s = s * 1664525u + 1013904223u;
        x[i] = (float)((s >> 8) / 16777216.0 - 0.5) + 0.3f * (float)sin(0.05 * i);
    }
    float *eye = calloc((size_t)B * B, sizeof *eye);
    for (int k = 0; k < B; k++)
        eye[(size_t)k * B + k] = 1.0f;
    float *got = NULL;
    int frames = 0;
    sg_error err = {0};
    CHECK_EQ_INT(sg_log_mel(x, N, B, eye, 0, &got, &frames, &err), SG_OK);
    CHECK_EQ_INT(frames, N / SG_MEL_HOP);

    /* the same by definition: reflect-padded frames, periodic Hann, a direct DFT in double */
    double *ref = malloc((size_t)B * frames * sizeof *ref), vmax = -1e300;
    for (int t = 0; t < frames; t++) {
        double fr[SG_MEL_N_FFT];
        for (int i = 0; i < SG_MEL_N_FFT; i++) {
            int j = t * SG_MEL_HOP - SG_MEL_N_FFT / 2 + i;
            if (j < 0)
                j = -j;
            if (j >= N)
                j = 2 * (N - 1) - j;
            fr[i] = x[j] * (0.5 - 0.5 * cos(2 * PI * i / SG_MEL_N_FFT));
        }
        for (int k = 0; k < B; k++) {
            double re = 0, im = 0;
            for (int i = 0; i < SG_MEL_N_FFT; i++) {
                double a = -2 * PI * (double)((long)k * i % SG_MEL_N_FFT) / SG_MEL_N_FFT;
                re += fr[i] * cos(a);
                im += fr[i] * sin(a);
            }
            double p = re * re + im * im;
            ref[(size_t)k * frames + t] = log10(p > 1e-10 ? p : 1e-10);
            vmax = fmax(vmax, ref[(size_t)k * frames + t]);
        }
    }
    double worst = 0;
    for (size_t i = 0; got && i < (size_t)B * frames; i++) {
        double r = (fmax(ref[i], vmax - 8) + 4) / 4;
        worst = fmax(worst, fabs(got[i] - r));
    }
    printf("STFT vs direct DFT (%d frames x %d bins): max |diff| %.3g\n", frames, B, worst);
    CHECK_MSG(worst <= 1e-5, "STFT differs from the DFT by %g", worst);
    free(ref);
    free(got);
    free(eye);
    free(x);
}

/* ---- a sine lands in the band whose filter peaks at its frequency ---- */

static void test_sine(void)
{
    enum { N = 16000 };
    static const double freqs[] = {440.0, 1000.0, 3000.0, 6200.0};
    float *filt = malloc(80 * SG_MEL_BINS * sizeof *filt);
    sg_error err = {0};
    CHECK_EQ_INT(sg_mel_filters(80, SG_MEL_N_FFT, 16000, filt, &err), SG_OK);
    float *x = malloc(N * sizeof *x);
    for (int fi = 0; fi < 4; fi++) {
        double hz = freqs[fi];
        for (int i = 0; i < N; i++)
            x[i] = (float)(0.5 * sin(2 * PI * hz * i / 16000.0));
        /* the band with the largest weight at the sine's FFT bin (bins are 40 Hz apart) */
        int bin = (int)lround(hz / 40.0), want = 0;
        for (int m = 1; m < 80; m++)
            if (filt[m * SG_MEL_BINS + bin] > filt[want * SG_MEL_BINS + bin])
                want = m;
        float *mel = NULL;
        int frames = 0;
        CHECK_EQ_INT(sg_log_mel(x, N, 80, NULL, 0, &mel, &frames, &err), SG_OK);
        CHECK_EQ_INT(frames, 100);
        int right = 0;
        for (int t = 2; mel && t < frames - 2; t++) {
            int best = 0;
            for (int m = 1; m < 80; m++)
                if (mel[(size_t)m * frames + t] > mel[(size_t)best * frames + t])
                    best = m;
            right += best == want;
        }
        CHECK_MSG(right == frames - 4, "%.0f Hz: band %d in only %d of %d frames", hz, want, right,
                  frames - 4);
        free(mel);
    }
    free(x);
    free(filt);
}

/* ---- edge cases ---- */

static void test_edges(void)
{
    sg_error err = {0};
    float *out = (float *)&err; /* must be reset to NULL on error */
    int frames = 7;
    float one = 0.25f;
    CHECK_EQ_INT(sg_log_mel(&one, 0, 80, NULL, 3000, &out, &frames, &err), SG_EINVAL);
    CHECK(out == NULL && frames == 0);
    CHECK(strlen(err.msg) > 0);
    CHECK_EQ_INT(sg_log_mel(NULL, 10, 80, NULL, 0, &out, &frames, &err), SG_EINVAL);
    CHECK_EQ_INT(sg_log_mel_padded(&one, 0, 80, NULL, 480000, &out, &frames, &err), SG_EINVAL);
    CHECK_EQ_INT(sg_log_mel(&one, 1, 0, NULL, 0, &out, &frames, &err), SG_EINVAL);
    CHECK_EQ_INT(sg_log_mel(&one, 1, SG_MEL_MAX_MELS + 1, NULL, 0, &out, &frames, &err),
                 SG_EINVAL);
    CHECK_EQ_INT(sg_log_mel(&one, 1, 80, NULL, -1, &out, &frames, &err), SG_EINVAL);
    CHECK_EQ_INT(sg_log_mel(&one, 1, 80, NULL, 0, NULL, &frames, &err), SG_EINVAL);
    float bad[3] = {0.1f, NAN, 0.2f};
    CHECK_EQ_INT(sg_log_mel(bad, 3, 80, NULL, 0, &out, &frames, &err), SG_EINVAL);
    bad[1] = INFINITY;
    CHECK_EQ_INT(sg_log_mel(bad, 3, 80, NULL, 0, &out, &frames, &err), SG_EINVAL);

    /* one sample: a whole 30 s window, and one natural frame */
    CHECK_EQ_INT(sg_log_mel(&one, 1, 80, NULL, 3000, &out, &frames, &err), SG_OK);
    CHECK_EQ_INT(frames, 3000);
    int finite = 1;
    for (size_t i = 0; out && i < 80 * 3000; i++)
        finite &= isfinite(out[i]) && out[i] <= 1.5f;
    CHECK(out && finite);
    /* the sample sits at the centre of frame 0 only; later frames are clamped to max - 8 */
    if (out)
        CHECK(out[0] > out[2999] && out[2999] == out[(size_t)79 * 3000 + 2999]);
    free(out);
    CHECK_EQ_INT(sg_log_mel(&one, 1, 80, NULL, 0, &out, &frames, &err), SG_OK);
    CHECK_EQ_INT(frames, 1);
    CHECK(out && isfinite(out[0]));
    free(out);
    CHECK_EQ_INT(sg_log_mel_padded(&one, 1, 80, NULL, 0, &out, &frames, &err), SG_OK);
    CHECK_EQ_INT(frames, 1);
    free(out);

    /* silence: everything at the floor, which is (-10 + 4) / 4 */
    float zeros[4000] = {0};
    CHECK_EQ_INT(sg_log_mel(zeros, 4000, 80, NULL, 0, &out, &frames, &err), SG_OK);
    CHECK_EQ_INT(frames, 25);
    if (out)
        CHECK_NEAR(out[0], -1.5, 1e-6);
    free(out);
}

int main(void)
{
    test_filters();
    test_jfk_fixture();
    test_stft_against_dft();
    test_sine();
    test_edges();
    return check_report("test_mel");
}
