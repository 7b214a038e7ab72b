/* Whisper's log-mel spectrogram: librosa's Slaney mel filters, a small mixed-radix FFT (a 400-point
 * real transform done as a 200-point complex one), the centred STFT torch.stft computes, and the
 * log/clamp/scale steps of openai/whisper's log_mel_spectrogram. The transform runs in double on
 * eight frames at a time, so the result differs from PyTorch's float32 pipeline by PyTorch's
 * rounding (about 2e-5), not ours. */
#include "media/mel.h"

#include <limits.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#define PI 3.14159265358979323846
#define LOG10_E 0.43429448190325182765 /* 1 / ln 10 */

/* ---- mel filters, as librosa.filters.mel (htk=False, norm="slaney") ---- */

/* Slaney's auditory scale: linear below 1 kHz, logarithmic above. The constants and the order of
 * operations are librosa's, so the band edges come out bit for bit. */
static const double SLANEY_F_SP = 200.0 / 3;
static const double SLANEY_MIN_LOG_HZ = 1000.0;

static double slaney_logstep(void)
{
    return log(6.4) / 27.0;
}

static double hz_to_mel(double hz)
{
    double min_log_mel = SLANEY_MIN_LOG_HZ / SLANEY_F_SP;
    if (hz >= SLANEY_MIN_LOG_HZ)
        return min_log_mel + log(hz / SLANEY_MIN_LOG_HZ) / slaney_logstep();
    return hz / SLANEY_F_SP;
}

static double mel_to_hz(double mel)
{
    double min_log_mel = SLANEY_MIN_LOG_HZ / SLANEY_F_SP;
    if (mel >= min_log_mel)
        return SLANEY_MIN_LOG_HZ * exp(slaney_logstep() * (mel - min_log_mel));
    return SLANEY_F_SP * mel;
}

sg_status sg_mel_filters(int n_mels, int n_fft, int sample_rate, float *out, sg_error *err)
{
    if (n_mels < 1 || n_mels > SG_MEL_MAX_MELS)
        return sg_error_set(err, SG_EINVAL, "n_mels %d is outside 1..%d", n_mels, SG_MEL_MAX_MELS);
    if (n_fft < 2 || n_fft > (1 << 20) || sample_rate <= 0 || !out)
        return sg_error_set(err, SG_EINVAL, "bad mel filter arguments (n_fft %d, rate %d)", n_fft,
                            sample_rate);
    int bins = n_fft / 2 + 1;
    int n_edges = n_mels + 2;
    double *edges = malloc((size_t)n_edges * sizeof *edges);
    if (!edges)
        return sg_error_set(err, SG_ENOMEM, "out of memory for mel filters");

    /* Band edges: n_mels + 2 points evenly spaced in mel (numpy.linspace: i * step + start, the
     * last point set to the stop value) between 0 Hz and Nyquist, mapped back to Hz. */
    double min_mel = hz_to_mel(0.0), max_mel = hz_to_mel((double)sample_rate / 2);
    double step = (max_mel - min_mel) / (n_edges - 1);
    for (int i = 0; i < n_edges; i++)
        edges[i] = mel_to_hz(i == n_edges - 1 ? max_mel : i * step + min_mel);

    /* numpy.fft.rfftfreq: bin k is at k / (n_fft * d) Hz with d = 1 / sample_rate. */
    double bin_hz = 1.0 / (n_fft * (1.0 / sample_rate));
    for (int m = 0; m < n_mels; m++) {
        double lo_width = edges[m + 1] - edges[m], hi_width = edges[m + 2] - edges[m + 1];
        double enorm = 2.0 / (edges[m + 2] - edges[m]); /* "slaney": equal area per filter */
        for (int k = 0; k < bins; k++) {
            double f = k * bin_hz;
            double lower = -(edges[m] - f) / lo_width;
            double upper = (edges[m + 2] - f) / hi_width;
            double w = lower < upper ? lower : upper;
            /* librosa stores the triangle in float32, then scales it in double and stores again */
            float tri = (float)(w > 0 ? w : 0);
            out[(size_t)m * bins + k] = (float)((double)tri * enorm);
        }
    }
    free(edges);
    return SG_OK;
}

/* ---- a small mixed-radix FFT, run on several frames at once ---- */

/* Frames transformed together. Every butterfly is a loop over the lanes of a batch, which the
 * compiler turns into SIMD on any target (SSE2, AVX, NEON) without intrinsics or a scalar twin. */
#define LANES 8
#define FFT_N (SG_MEL_N_FFT / 2) /* the 400-point real transform is a 200-point complex one */
#define FFT_MAX_STAGES 8

typedef struct cplx {
    double re, im;
} cplx;

/* One complex value for each frame of a batch. */
typedef struct cvec {
    double re[LANES], im[LANES];
} cvec;

/* A Stockham autosort, decimation-in-frequency transform of length FFT_N = 200 = 4 * 2 * 5 * 5
 * (radix-4, 2 and 5 butterflies; any length 2^a 5^b would do). Stage st transforms sequences of
 * length len = FFT_N / (r0 ... r(st-1)) interleaved with stride s = FFT_N / len: the inputs
 * x[t + s (q + j m)], j < r, of butterfly q (m = len / r) become outputs y[t + s (r q + k)]
 * multiplied by the twiddle tw[st][q (r - 1) + k - 1] = exp(-2 pi i q k / len). */
typedef struct fft_plan {
    int stages;
    int radix[FFT_MAX_STAGES];
    cplx tw[FFT_MAX_STAGES][FFT_N];
} fft_plan;

static int fft_plan_init(fft_plan *p)
{
    p->stages = 0;
    int len = FFT_N;
    while (len > 1) {
        int r = len % 4 == 0 ? 4 : len % 2 == 0 ? 2 : len % 5 == 0 ? 5 : 0;
        if (!r || p->stages == FFT_MAX_STAGES)
            return -1;
        int m = len / r;
        for (int q = 0; q < m; q++)
            for (int k = 1; k < r; k++) {
                double a = -2.0 * PI * (double)q * k / len;
                p->tw[p->stages][q * (r - 1) + k - 1] = (cplx){cos(a), sin(a)};
            }
        p->radix[p->stages++] = r;
        len = m;
    }
    return 0;
}

/* Lane l of out = (re + i im) * w. */
static inline void twiddle(cvec *out, int l, double re, double im, cplx w)
{
    out->re[l] = re * w.re - im * w.im;
    out->im[l] = re * w.im + im * w.re;
}

static void fft_stage2(int m, int s, const cplx *tw, const cvec *restrict x, cvec *restrict y)
{
    for (int q = 0; q < m; q++) {
        cplx w1 = tw[q];
        for (int t = 0; t < s; t++) {
            const cvec *a0 = x + t + (size_t)s * q, *a1 = a0 + (size_t)s * m;
            cvec *b0 = y + t + (size_t)s * 2 * q, *b1 = b0 + s;
            for (int l = 0; l < LANES; l++) {
                b0->re[l] = a0->re[l] + a1->re[l];
                b0->im[l] = a0->im[l] + a1->im[l];
                twiddle(b1, l, a0->re[l] - a1->re[l], a0->im[l] - a1->im[l], w1);
            }
        }
    }
}

static void fft_stage4(int m, int s, const cplx *tw, const cvec *restrict x, cvec *restrict y)
{
    for (int q = 0; q < m; q++) {
        cplx w1 = tw[3 * q], w2 = tw[3 * q + 1], w3 = tw[3 * q + 2];
        for (int t = 0; t < s; t++) {
            size_t in = (size_t)s * m;
            const cvec *a0 = x + t + (size_t)s * q, *a1 = a0 + in, *a2 = a1 + in, *a3 = a2 + in;
            cvec *b0 = y + t + (size_t)s * 4 * q, *b1 = b0 + s, *b2 = b1 + s, *b3 = b2 + s;
            for (int l = 0; l < LANES; l++) {
                double s02r = a0->re[l] + a2->re[l], s02i = a0->im[l] + a2->im[l];
                double d02r = a0->re[l] - a2->re[l], d02i = a0->im[l] - a2->im[l];
                double s13r = a1->re[l] + a3->re[l], s13i = a1->im[l] + a3->im[l];
                /* -i (a1 - a3) */
                double d13r = a1->im[l] - a3->im[l], d13i = a3->re[l] - a1->re[l];
                b0->re[l] = s02r + s13r;
                b0->im[l] = s02i + s13i;
                twiddle(b1, l, d02r + d13r, d02i + d13i, w1);
                twiddle(b2, l, s02r - s13r, s02i - s13i, w2);
                twiddle(b3, l, d02r - d13r, d02i - d13i, w3);
            }
        }
    }
}

static void fft_stage5(int m, int s, const cplx *tw, const cvec *restrict x, cvec *restrict y)
{
    const double c1 = 0.30901699437494742410, s1 = 0.95105651629515357212;  /* of 2 pi / 5 */
    const double c2 = -0.80901699437494742410, s2 = 0.58778525229247312917; /* of 4 pi / 5 */
    for (int q = 0; q < m; q++) {
        const cplx *w = tw + 4 * q;
        cplx w1 = w[0], w2 = w[1], w3 = w[2], w4 = w[3];
        for (int t = 0; t < s; t++) {
            size_t in = (size_t)s * m;
            const cvec *a0 = x + t + (size_t)s * q, *a1 = a0 + in, *a2 = a1 + in, *a3 = a2 + in,
                       *a4 = a3 + in;
            cvec *b0 = y + t + (size_t)s * 5 * q, *b1 = b0 + s, *b2 = b1 + s, *b3 = b2 + s,
                 *b4 = b3 + s;
            for (int l = 0; l < LANES; l++) {
                /* X1,4 = a0 + c1 p1 + c2 p2 -/+ i (s1 d1 + s2 d2)
                 * X2,3 = a0 + c2 p1 + c1 p2 -/+ i (s2 d1 - s1 d2), with p1 = a1 + a4,
                 * p2 = a2 + a3, d1 = a1 - a4, d2 = a2 - a3 */
                double p1r = a1->re[l] + a4->re[l], p1i = a1->im[l] + a4->im[l];
                double p2r = a2->re[l] + a3->re[l], p2i = a2->im[l] + a3->im[l];
                double d1r = a1->re[l] - a4->re[l], d1i = a1->im[l] - a4->im[l];
                double d2r = a2->re[l] - a3->re[l], d2i = a2->im[l] - a3->im[l];
                double e1r = a0->re[l] + c1 * p1r + c2 * p2r, e1i = a0->im[l] + c1 * p1i + c2 * p2i;
                double e2r = a0->re[l] + c2 * p1r + c1 * p2r, e2i = a0->im[l] + c2 * p1i + c1 * p2i;
                double g1r = s1 * d1r + s2 * d2r, g1i = s1 * d1i + s2 * d2i;
                double g2r = s2 * d1r - s1 * d2r, g2i = s2 * d1i - s1 * d2i;
                b0->re[l] = a0->re[l] + p1r + p2r;
                b0->im[l] = a0->im[l] + p1i + p2i;
                /* -i g = (g.im, -g.re) */
                twiddle(b1, l, e1r + g1i, e1i - g1r, w1);
                twiddle(b4, l, e1r - g1i, e1i + g1r, w4);
                twiddle(b2, l, e2r + g2i, e2i - g2r, w2);
                twiddle(b3, l, e2r - g2i, e2i + g2r, w3);
            }
        }
    }
}

/* Transforms x in place (scratch holds FFT_N more values); forward, unnormalised. */
static void fft_run(const fft_plan *p, cvec *x, cvec *scratch)
{
    cvec *src = x, *dst = scratch;
    int len = FFT_N, s = 1;
    for (int st = 0; st < p->stages; st++) {
        int r = p->radix[st], m = len / r;
        if (r == 4)
            fft_stage4(m, s, p->tw[st], src, dst);
        else if (r == 2)
            fft_stage2(m, s, p->tw[st], src, dst);
        else
            fft_stage5(m, s, p->tw[st], src, dst);
        cvec *t = src;
        src = dst;
        dst = t;
        len = m;
        s *= r;
    }
    if (src != x)
        memcpy(x, src, FFT_N * sizeof *x);
}

/* ---- the STFT and the log-mel steps ---- */

/* What the STFT reads: the signal is pcm[0..n) followed by zeros up to len samples (len may also
 * be shorter than n, which trims); the STFT centres frame t on sample t * hop and reflects at both
 * ends of [0, len). */
typedef struct mel_signal {
    const float *pcm;
    size_t n, len;
} mel_signal;

/* numpy.pad's "reflect" (no edge repeat), folding as often as needed; torch.stft only differs by
 * refusing pads wider than the signal. */
static size_t reflect_index(long long i, size_t len)
{
    if (i >= 0 && (size_t)i < len)
        return (size_t)i;
    if (len == 1)
        return 0;
    long long period = 2 * ((long long)len - 1);
    i %= period;
    if (i < 0)
        i += period;
    if (i >= (long long)len)
        i = period - i;
    return (size_t)i;
}

/* Where each filter is non-zero, so the projection skips the zeros of the triangles (about 400
 * products per frame instead of n_mels * 201). */
typedef struct mel_band {
    int lo, hi; /* non-zero bins are in [lo, hi) */
} mel_band;

typedef struct mel_work {
    fft_plan plan;
    double window[SG_MEL_N_FFT];
    cplx post_tw[SG_MEL_BINS]; /* exp(-2 pi i k / 400), to split the half-length transform */
    cvec z[FFT_N], scratch[FFT_N];
    double power[SG_MEL_BINS][LANES];
} mel_work;

static int mel_work_init(mel_work *w)
{
    if (fft_plan_init(&w->plan) != 0)
        return -1;
    /* torch.hann_window(400), periodic: 0.5 - 0.5 cos(2 pi i / 400) */
    for (int i = 0; i < SG_MEL_N_FFT; i++)
        w->window[i] = 0.5 - 0.5 * cos(2.0 * PI * i / SG_MEL_N_FFT);
    for (int k = 0; k < SG_MEL_BINS; k++) {
        double a = -2.0 * PI * k / SG_MEL_N_FFT;
        w->post_tw[k] = (cplx){cos(a), sin(a)};
    }
    return 0;
}

static void lane_clear(mel_work *w, int l)
{
    for (int i = 0; i < FFT_N; i++)
        w->z[i].re[l] = w->z[i].im[l] = 0.0;
}

/* Loads frame t, windowed, into lane l of z as z[i] = x[2i] + i x[2i+1]; returns 0 when every
 * sample is zero (silence, or the zeros the signal is padded with). */
static int frame_load(mel_work *w, const mel_signal *sig, long long t, int l)
{
    long long start = t * SG_MEL_HOP - SG_MEL_N_FFT / 2;
    size_t have = sig->n < sig->len ? sig->n : sig->len;
    if (start >= 0 && (size_t)start + SG_MEL_N_FFT <= have) {
        const float *p = sig->pcm + start;
        for (int i = 0; i < FFT_N; i++) {
            w->z[i].re[l] = (double)p[2 * i] * w->window[2 * i];
            w->z[i].im[l] = (double)p[2 * i + 1] * w->window[2 * i + 1];
        }
        return 1;
    }
    int nonzero = 0;
    if (start < 0 || (size_t)start < have || (size_t)start + SG_MEL_N_FFT > sig->len) {
        for (int i = 0; i < SG_MEL_N_FFT; i++) {
            size_t j = reflect_index(start + i, sig->len);
            double v = j < have ? (double)sig->pcm[j] : 0.0;
            nonzero |= v != 0.0;
            if (i % 2 == 0)
                w->z[i / 2].re[l] = v * w->window[i];
            else
                w->z[i / 2].im[l] = v * w->window[i];
        }
    }
    if (!nonzero)
        lane_clear(w, l);
    return nonzero;
}

/* |X[k]|^2 for k = 0..200 of each lane's 400-point real frame from the 200-point transform Z of
 * z[m] = x[2m] + i x[2m+1]: E[k] = (Z[k] + conj Z[200-k]) / 2 and O[k] = (Z[k] - conj Z[200-k]) / 2i
 * are the transforms of the even and the odd samples, and X[k] = E[k] + exp(-2 pi i k / 400) O[k]. */
static void batch_power(mel_work *w)
{
    fft_run(&w->plan, w->z, w->scratch);
    for (int k = 0; k <= FFT_N; k++) {
        const cvec *zk = &w->z[k % FFT_N], *zc = &w->z[(FFT_N - k) % FFT_N];
        cplx tw = w->post_tw[k];
        for (int l = 0; l < LANES; l++) {
            double er = 0.5 * (zk->re[l] + zc->re[l]), ei = 0.5 * (zk->im[l] - zc->im[l]);
            double or_ = 0.5 * (zk->im[l] + zc->im[l]), oi = -0.5 * (zk->re[l] - zc->re[l]);
            double xr = er + or_ * tw.re - oi * tw.im, xi = ei + or_ * tw.im + oi * tw.re;
            w->power[k][l] = xr * xr + xi * xi;
        }
    }
}

/* The whole pipeline over frames [0, frames) of sig; the max - 8 clamp uses all of them. */
static sg_status log_mel_run(const mel_signal *sig, int n_mels, const float *filters_in,
                             int frames, float **out_p, sg_error *err)
{
    if ((size_t)frames > SIZE_MAX / sizeof(float) / (size_t)n_mels)
        return sg_error_set(err, SG_ETOOBIG, "log-mel of %d frames is too large", frames);
    float *out = malloc((size_t)n_mels * (size_t)frames * sizeof *out);
    float *own_filters = NULL;
    mel_band *bands = malloc((size_t)n_mels * sizeof *bands);
    mel_work *w = malloc(sizeof *w);
    const float *filters = filters_in;
    if (!filters_in)
        filters = own_filters = malloc((size_t)n_mels * SG_MEL_BINS * sizeof *own_filters);
    sg_status st = SG_OK;
    if (!out || !bands || !w || !filters) {
        st = sg_error_set(err, SG_ENOMEM, "out of memory for the log-mel spectrogram");
        goto done;
    }
    if (mel_work_init(w) != 0) {
        st = sg_error_set(err, SG_EINTERNAL, "log-mel: no FFT plan for %d points", FFT_N);
        goto done;
    }
    if (!filters_in && (st = sg_mel_filters(n_mels, SG_MEL_N_FFT, 16000, own_filters, err)))
        goto done;
    for (int m = 0; m < n_mels; m++) {
        const float *f = filters + (size_t)m * SG_MEL_BINS;
        int lo = 0, hi = SG_MEL_BINS;
        while (lo < hi && f[lo] == 0.0f)
            lo++;
        while (hi > lo && f[hi - 1] == 0.0f)
            hi--;
        bands[m] = (mel_band){lo, hi};
    }

    /* log10 of the mel power per frame, clamped below at 1e-10 as torch.clamp does in float32 */
    const float floor_power = 1e-10f;
    const float floor_log = log10f(floor_power);
    float vmax = -INFINITY;
    for (size_t t0 = 0; t0 < (size_t)frames; t0 += LANES) {
        int lanes = (size_t)frames - t0 < LANES ? (int)((size_t)frames - t0) : LANES, live = 0;
        for (int l = 0; l < LANES; l++) {
            if (l < lanes)
                live += frame_load(w, sig, (long long)t0 + l, l);
            else
                lane_clear(w, l); /* past the last frame: transformed, never stored */
        }
        if (!live) {
            for (int m = 0; m < n_mels; m++)
                for (int l = 0; l < lanes; l++)
                    out[(size_t)m * frames + t0 + l] = floor_log;
            vmax = vmax > floor_log ? vmax : floor_log;
            continue;
        }
        batch_power(w);
        for (int m = 0; m < n_mels; m++) {
            const float *f = filters + (size_t)m * SG_MEL_BINS;
            double acc[LANES] = {0};
            for (int k = bands[m].lo; k < bands[m].hi; k++)
                for (int l = 0; l < LANES; l++)
                    acc[l] += (double)f[k] * w->power[k][l];
            float *row = out + (size_t)m * frames + t0;
            for (int l = 0; l < lanes; l++) {
                float p = (float)acc[l];
                /* logf scaled: glibc's log10f is twice as slow, for no accuracy that matters */
                float v = p > floor_power ? logf(p) * (float)LOG10_E : floor_log;
                row[l] = v;
                vmax = v > vmax ? v : vmax;
            }
        }
    }
    /* whisper: maximum(x, x.max() - 8), then (x + 4) / 4, all in float32 */
    float lo = vmax - 8.0f;
    size_t total = (size_t)n_mels * frames;
    for (size_t i = 0; i < total; i++) {
        float v = out[i] > lo ? out[i] : lo;
        out[i] = (v + 4.0f) / 4.0f;
    }
    *out_p = out;
    out = NULL;
done:
    free(out);
    free(own_filters);
    free(bands);
    free(w);
    return st;
}

static sg_status check_args(const float *pcm, size_t n, int n_mels, float **out, int *frames,
                            sg_error *err)
{
    if (out)
        *out = NULL;
    if (frames)
        *frames = 0;
    if (!out || !frames)
        return sg_error_set(err, SG_EINVAL, "log-mel: no output given");
    if (!pcm || n == 0)
        return sg_error_set(err, SG_EINVAL, "log-mel of empty audio");
    if (n_mels < 1 || n_mels > SG_MEL_MAX_MELS)
        return sg_error_set(err, SG_EINVAL, "n_mels %d is outside 1..%d", n_mels, SG_MEL_MAX_MELS);
    for (size_t i = 0; i < n; i++)
        if (!isfinite(pcm[i]))
            return sg_error_set(err, SG_EINVAL, "audio sample %zu is not a finite number", i);
    return SG_OK;
}

sg_status sg_log_mel(const float *pcm16k, size_t n, int n_mels, const float *filters,
                     int pad_to_frames, float **out, int *frames, sg_error *err)
{
    sg_status st = check_args(pcm16k, n, n_mels, out, frames, err);
    if (st)
        return st;
    if (pad_to_frames < 0)
        return sg_error_set(err, SG_EINVAL, "pad_to_frames %d is negative", pad_to_frames);
    mel_signal sig = {pcm16k, n, n};
    size_t nframes = n / SG_MEL_HOP;
    if (pad_to_frames > 0) {
        sig.len = (size_t)pad_to_frames * SG_MEL_HOP;
        nframes = (size_t)pad_to_frames;
    } else if (nframes == 0) {
        nframes = 1;
    }
    if (nframes > INT_MAX)
        return sg_error_set(err, SG_ETOOBIG, "audio of %zu samples is too long", n);
    st = log_mel_run(&sig, n_mels, filters, (int)nframes, out, err);
    if (st == SG_OK)
        *frames = (int)nframes;
    return st;
}

sg_status sg_log_mel_padded(const float *pcm16k, size_t n, int n_mels, const float *filters,
                            size_t pad_samples, float **out, int *frames, sg_error *err)
{
    sg_status st = check_args(pcm16k, n, n_mels, out, frames, err);
    if (st)
        return st;
    if (pad_samples > SIZE_MAX - n || (n + pad_samples) / SG_MEL_HOP > INT_MAX)
        return sg_error_set(err, SG_ETOOBIG, "audio of %zu + %zu samples is too long", n,
                            pad_samples);
    mel_signal sig = {pcm16k, n, n + pad_samples};
    size_t nframes = (n + pad_samples) / SG_MEL_HOP;
    if (nframes == 0)
        nframes = 1;
    st = log_mel_run(&sig, n_mels, filters, (int)nframes, out, err);
    if (st == SG_OK)
        *frames = (int)nframes;
    return st;
}
