/* Tests for media/audio: the real jfk.wav, every WAV encoding built in memory, downmix,
 * resampling (length, frequency and amplitude preserved), headerless PCM, the malformed
 * inputs the RIFF walker must turn into errors rather than crashes, and FLAC / Ogg Opus / Ogg
 * Vorbis files encoded here with libsndfile itself (FLAC must decode bit-identical to the WAV
 * path, the lossy codecs close to it; garbage behind a fLaC/OggS magic is an error). */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <sndfile.h>

#include "check.h"
#include "media/audio.h"

#define PI 3.14159265358979323846

/* ---- a tiny WAV writer ---- */

typedef struct bytes {
    uint8_t *p;
    size_t n, cap;
} bytes;

static void put(bytes *b, const void *src, size_t n)
{
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 64;
        while (cap < b->n + n)
            cap *= 2;
        uint8_t *p = realloc(b->p, cap);
        if (!p) {
            fprintf(stderr, "out of memory\n");
            exit(2);
        }
        b->p = p;
        b->cap = cap;
    }
    memcpy(b->p + b->n, src, n);
    b->n += n;
}

static void put16(bytes *b, unsigned v)
{
    uint8_t x[2] = {(uint8_t)v, (uint8_t)(v >> 8)};
    put(b, x, 2);
}

static void put32(bytes *b, uint32_t v)
{
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}

static void set16(bytes *b, size_t off, unsigned v)
{
    b->p[off] = (uint8_t)v;
    b->p[off + 1] = (uint8_t)(v >> 8);
}

static void set32(bytes *b, size_t off, uint32_t v)
{
    for (int i = 0; i < 4; i++)
        b->p[off + (size_t)i] = (uint8_t)(v >> (8 * i));
}

/* Appends one sample in the given encoding (tag 1 = PCM, 3 = float). */
static void put_sample(bytes *b, int tag, int bits, double v)
{
    if (tag == 3 && bits == 32) {
        float f = (float)v;
        uint32_t u;
        memcpy(&u, &f, 4);
        put32(b, u);
    } else if (tag == 3) {
        uint64_t u;
        memcpy(&u, &v, 8);
        put32(b, (uint32_t)u);
        put32(b, (uint32_t)(u >> 32));
    } else if (bits == 8) {
        long q = lround(v * 128.0 + 128.0);
        uint8_t x = (uint8_t)(q < 0 ? 0 : q > 255 ? 255 : q);
        put(b, &x, 1);
    } else {
        double scale = ldexp(1.0, bits - 1);
        double q = round(v * scale);
        if (q > scale - 1)
            q = scale - 1;
        if (q < -scale)
            q = -scale;
        int64_t s = (int64_t)q;
        uint32_t u = (uint32_t)(s & 0xFFFFFFFF);
        for (int i = 0; i < bits / 8; i++) {
            uint8_t x = (uint8_t)(u >> (8 * i));
            put(b, &x, 1);
        }
    }
}

/* Header with the canonical 16-byte fmt chunk: tag at 20, channels 22, rate 24, block_align 32,
 * bits 34, data size at 40, data from 44. */
static void wav_header(bytes *b, int tag, int channels, int rate, int bits, uint32_t data_bytes)
{
    put(b, "RIFF", 4);
    put32(b, 36 + data_bytes);
    put(b, "WAVE", 4);
    put(b, "fmt ", 4);
    put32(b, 16);
    put16(b, (unsigned)tag);
    put16(b, (unsigned)channels);
    put32(b, (uint32_t)rate);
    put32(b, (uint32_t)(rate * channels * bits / 8));
    put16(b, (unsigned)(channels * bits / 8));
    put16(b, (unsigned)bits);
    put(b, "data", 4);
    put32(b, data_bytes);
}

/* A WAV of `frames` frames; sample (f, c) = gen(f, c). */
typedef double (*gen_fn)(size_t f, int c, void *ctx);

static bytes make_wav(int tag, int channels, int rate, int bits, size_t frames, gen_fn gen,
                      void *ctx)
{
    bytes b = {0};
    wav_header(&b, tag, channels, rate, bits, (uint32_t)(frames * (size_t)channels * (size_t)bits / 8));
    for (size_t f = 0; f < frames; f++)
        for (int c = 0; c < channels; c++)
            put_sample(&b, tag, bits, gen(f, c, ctx));
    return b;
}

static bytes make_wav_values(int tag, int bits, const double *v, size_t n)
{
    bytes b = {0};
    wav_header(&b, tag, 1, 16000, bits, (uint32_t)(n * (size_t)bits / 8));
    for (size_t i = 0; i < n; i++)
        put_sample(&b, tag, bits, v[i]);
    return b;
}

typedef struct sine {
    double freq, amp;
    int rate;
} sine;

static double gen_sine(size_t f, int c, void *ctx)
{
    (void)c;
    const sine *s = ctx;
    return s->amp * sin(2 * PI * s->freq * (double)f / s->rate);
}

static double gen_antiphase(size_t f, int c, void *ctx)
{
    double x = gen_sine(f, 0, ctx);
    return c == 0 ? x : -x;
}

static double gen_same(size_t f, int c, void *ctx)
{
    (void)c;
    return gen_sine(f, 0, ctx);
}

/* ---- signal measurements ---- */

/* Goertzel power of x at freq (rate 16 kHz), normalised to amplitude: a sine of amplitude A
 * spanning whole cycles gives about A. */
static double tone_amplitude(const float *x, size_t n, double freq)
{
    double w = 2 * PI * freq / SG_AUDIO_RATE, c = 2 * cos(w), s1 = 0, s2 = 0;
    for (size_t i = 0; i < n; i++) {
        double s = x[i] + c * s1 - s2;
        s2 = s1;
        s1 = s;
    }
    double power = s1 * s1 + s2 * s2 - c * s1 * s2;
    return 2 * sqrt(fmax(power, 0)) / (double)n;
}

static double rms(const float *x, size_t n)
{
    double acc = 0;
    for (size_t i = 0; i < n; i++)
        acc += (double)x[i] * x[i];
    return sqrt(acc / (double)n);
}

static size_t zero_crossings(const float *x, size_t n)
{
    size_t z = 0;
    for (size_t i = 1; i < n; i++)
        z += (x[i - 1] < 0) != (x[i] < 0);
    return z;
}

/* Checks that a decoded 440 Hz sine of amplitude amp over dur seconds kept its length,
 * frequency and amplitude through the resampler. */
static void check_sine_16k(const sg_audio *a, double dur, double amp)
{
    CHECK_NEAR((double)a->n, dur * SG_AUDIO_RATE, 4);
    /* measure away from the filter's edge transients */
    size_t lo = a->n / 10, span = a->n * 8 / 10;
    const float *mid = a->samples + lo;
    CHECK_NEAR(rms(mid, span) * sqrt(2.0), amp, amp * 0.02);
    double at440 = tone_amplitude(mid, span, 440), at1k = tone_amplitude(mid, span, 1000);
    CHECK_NEAR(at440, amp, amp * 0.05);
    CHECK_MSG(at1k < amp * 0.01, "1 kHz leak %g", at1k);
    CHECK_NEAR((double)zero_crossings(a->samples, a->n), 2 * 440 * dur, 4);
}

/* ---- tests ---- */

static void test_jfk(void)
{
    size_t len;
    uint8_t *wav = check_read_file("../shared/data/audio/jfk.wav", &len);
    CHECK_MSG(wav != NULL, "cannot read ../shared/data/audio/jfk.wav (run from the project root)");
    if (!wav)
        return;
    sg_audio a;
    sg_error err = {0};
    CHECK_EQ_INT(sg_audio_decode(wav, len, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_OK);
    CHECK_EQ_INT(a.src_rate, 16000);
    CHECK_EQ_INT(a.src_channels, 1);
    CHECK_EQ_INT(a.n, 176000);
    CHECK_NEAR(a.duration_s, 11.0, 1e-9);
    /* the data chunk follows a LIST chunk; find it and compare every sample exactly */
    const uint8_t *d = NULL;
    for (size_t i = 12; i + 8 <= len; i++)
        if (memcmp(wav + i, "data", 4) == 0) {
            d = wav + i + 8;
            break;
        }
    CHECK(d != NULL);
    size_t mismatches = 0;
    for (size_t i = 0; d && i < a.n; i++) {
        int16_t s = (int16_t)(d[2 * i] | d[2 * i + 1] << 8);
        mismatches += a.samples[i] != (float)s / 32768.0f;
    }
    CHECK_EQ_INT(mismatches, 0);
    CHECK(rms(a.samples, a.n) > 0.01); /* it is speech, not silence */
    sg_audio_free(&a);
    CHECK(a.samples == NULL);

    /* decode_tail keeps exactly the last seconds, sample for sample */
    CHECK_EQ_INT(sg_audio_decode_tail(wav, len, SG_AUDIO_AUTO, 0, 2.5, &a, &err), SG_OK);
    CHECK_EQ_INT(a.n, 40000);
    CHECK_NEAR(a.duration_s, 2.5, 1e-9);
    mismatches = 0;
    for (size_t i = 0; d && i < a.n; i++) {
        size_t j = 176000 - 40000 + i;
        int16_t s = (int16_t)(d[2 * j] | d[2 * j + 1] << 8);
        mismatches += a.samples[i] != (float)s / 32768.0f;
    }
    CHECK_EQ_INT(mismatches, 0);
    sg_audio_free(&a);
    CHECK_EQ_INT(sg_audio_decode_tail(wav, len, SG_AUDIO_AUTO, 0, 60, &a, &err), SG_OK);
    CHECK_EQ_INT(a.n, 176000); /* shorter than the limit: all of it */
    sg_audio_free(&a);

    /* also through the explicit format, and against a time limit */
    CHECK_EQ_INT(sg_audio_decode(wav, len, SG_AUDIO_WAV, 0, 30, &a, &err), SG_OK);
    sg_audio_free(&a);
    CHECK_EQ_INT(sg_audio_decode(wav, len, SG_AUDIO_WAV, 0, 5, &a, &err), SG_ETOOBIG);
    CHECK(a.samples == NULL);
    CHECK(strstr(err.msg, "limit") != NULL);
    free(wav);
}

static void check_values(int tag, int bits, const double *v, const float *want, size_t n)
{
    bytes b = make_wav_values(tag, bits, v, n);
    sg_audio a;
    sg_error err = {0};
    sg_status st = sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 0, 0, &a, &err);
    CHECK_MSG(st == SG_OK, "tag %d bits %d: %s", tag, bits, err.msg);
    if (st == SG_OK) {
        CHECK_EQ_INT(a.n, n);
        for (size_t i = 0; i < n && i < a.n; i++)
            CHECK_MSG(a.samples[i] == want[i], "tag %d bits %d [%zu]: %.9g != %.9g", tag, bits,
                      i, a.samples[i], want[i]);
        sg_audio_free(&a);
    }
    free(b.p);
}

static void test_encodings(void)
{
    /* 8-bit unsigned: 0 -> -1, 128 -> 0, 255 -> 127/128 */
    const double u8[] = {-1.0, 0.0, 127.0 / 128, -0.5, 0.25};
    const float u8w[] = {-1.0f, 0.0f, 127.0f / 128, -0.5f, 0.25f};
    check_values(1, 8, u8, u8w, 5);

    const double s16[] = {-1.0, 0.0, 32767.0 / 32768, 0.5, -1.0 / 32768};
    const float s16w[] = {-1.0f, 0.0f, 32767.0f / 32768, 0.5f, -1.0f / 32768};
    check_values(1, 16, s16, s16w, 5);

    const double s24[] = {-1.0, 8388607.0 / 8388608, 1.0 / 8388608, -1.0 / 8388608, 0.5};
    const float s24w[] = {-1.0f, (float)(8388607.0 / 8388608), (float)(1.0 / 8388608),
                          (float)(-1.0 / 8388608), 0.5f};
    check_values(1, 24, s24, s24w, 5);

    const double s32[] = {-1.0, 0.5, -0.5, 0.25, 0.0, 1.0 / 65536};
    const float s32w[] = {-1.0f, 0.5f, -0.5f, 0.25f, 0.0f, 1.0f / 65536};
    check_values(1, 32, s32, s32w, 6);

    /* float: finite values beyond full scale are clipped */
    const double f32[] = {0.25, -0.5, 0.999, 1.5, -3.0, 0.0};
    const float f32w[] = {0.25f, -0.5f, 0.999f, 1.0f, -1.0f, 0.0f};
    check_values(3, 32, f32, f32w, 6);

    const double f64[] = {0.125, -0.75, 0.1, 2.0};
    const float f64w[] = {0.125f, -0.75f, 0.1f, 1.0f};
    check_values(3, 64, f64, f64w, 4);

    /* 12-bit PCM, 16-bit float: unsupported depths */
    bytes b = make_wav_values(1, 16, s16, 5);
    set16(&b, 34, 12);
    sg_audio a;
    sg_error err = {0};
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_EAUDIO);
    set16(&b, 20, 3);
    set16(&b, 34, 16);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_EAUDIO);
    free(b.p);
}

/* WAVE_FORMAT_EXTENSIBLE with a 40-byte fmt chunk. */
static bytes make_extensible(int sub_tag, int channels, int bits, int valid_bits,
                             const double *v, size_t n_samples)
{
    static const uint8_t tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                     0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
    uint32_t data_bytes = (uint32_t)(n_samples * (size_t)bits / 8);
    bytes b = {0};
    put(&b, "RIFF", 4);
    put32(&b, 60 + data_bytes);
    put(&b, "WAVE", 4);
    put(&b, "fmt ", 4);
    put32(&b, 40);
    put16(&b, 0xFFFE);
    put16(&b, (unsigned)channels);
    put32(&b, 16000);
    put32(&b, (uint32_t)(16000 * channels * bits / 8));
    put16(&b, (unsigned)(channels * bits / 8));
    put16(&b, (unsigned)bits);
    put16(&b, 22);
    put16(&b, (unsigned)valid_bits);
    put32(&b, channels == 2 ? 3 : 4); /* FL|FR or FC */
    put16(&b, (unsigned)sub_tag);
    put(&b, tail, sizeof tail);
    put(&b, "data", 4);
    put32(&b, data_bytes);
    for (size_t i = 0; i < n_samples; i++) {
        if (sub_tag == 1 && bits == 32 && valid_bits == 24) {
            /* 24 valid bits MSB-aligned in a 32-bit container */
            int32_t s = (int32_t)lround(v[i] * 8388608.0);
            put32(&b, (uint32_t)s << 8);
        } else {
            put_sample(&b, sub_tag, bits, v[i]);
        }
    }
    return b;
}

static void test_extensible(void)
{
    const double v[] = {0.5, -0.25, 0.75, -1.0};
    sg_audio a;
    sg_error err = {0};

    bytes b = make_extensible(1, 1, 16, 16, v, 4);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_OK);
    CHECK_EQ_INT(a.n, 4);
    if (a.n == 4)
        CHECK(a.samples[0] == 0.5f && a.samples[1] == -0.25f && a.samples[3] == -1.0f);
    sg_audio_free(&a);
    /* a GUID that is not KSDATAFORMAT_SUBTYPE_* is refused */
    b.p[12 + 8 + 24 + 15] ^= 0xFF;
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_EAUDIO);
    free(b.p);

    b = make_extensible(3, 1, 32, 32, v, 4);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_OK);
    CHECK_EQ_INT(a.n, 4);
    if (a.n == 4)
        CHECK(a.samples[0] == 0.5f && a.samples[2] == 0.75f);
    sg_audio_free(&a);
    free(b.p);

    b = make_extensible(1, 1, 32, 24, v, 4);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_OK);
    CHECK_EQ_INT(a.n, 4);
    if (a.n == 4)
        CHECK(a.samples[0] == 0.5f && a.samples[1] == -0.25f && a.samples[3] == -1.0f);
    sg_audio_free(&a);
    free(b.p);

    /* stereo extensible: (0.5 + -0.25) / 2, (0.75 + -1) / 2 */
    b = make_extensible(1, 2, 16, 16, v, 4);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_OK);
    CHECK_EQ_INT(a.n, 2);
    CHECK_EQ_INT(a.src_channels, 2);
    if (a.n == 2)
        CHECK(a.samples[0] == 0.125f && a.samples[1] == -0.125f);
    sg_audio_free(&a);

    /* extensible with a truncated extension, and with sub-format ADPCM */
    set32(&b, 16, 18);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_EAUDIO);
    set32(&b, 16, 40);
    set16(&b, 44, 2);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_EAUDIO);
    free(b.p);
}

static void test_channels(void)
{
    sine s = {440, 0.5, 16000};
    sg_audio a;
    sg_error err = {0};

    bytes b = make_wav(1, 2, 16000, 16, 1600, gen_antiphase, &s);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_OK);
    CHECK_EQ_INT(a.n, 1600);
    CHECK_EQ_INT(a.src_channels, 2);
    float maxabs = 0;
    for (size_t i = 0; i < a.n; i++)
        maxabs = fmaxf(maxabs, fabsf(a.samples[i]));
    CHECK(maxabs == 0.0f);
    sg_audio_free(&a);
    free(b.p);

    b = make_wav(1, 2, 16000, 16, 1600, gen_same, &s);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_OK);
    size_t mismatches = 0;
    for (size_t i = 0; i < a.n; i++) {
        int16_t q = (int16_t)(b.p[44 + 4 * i] | b.p[44 + 4 * i + 1] << 8);
        mismatches += a.samples[i] != (float)q / 32768.0f;
    }
    CHECK_EQ_INT(mismatches, 0);
    sg_audio_free(&a);
    free(b.p);

    /* 8 channels is the maximum; 9 is refused */
    b = make_wav(3, 8, 16000, 32, 100, gen_same, &s);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_OK);
    CHECK_EQ_INT(a.src_channels, 8);
    CHECK_EQ_INT(a.n, 100);
    if (a.n == 100)
        CHECK_NEAR(a.samples[10], 0.5 * sin(2 * PI * 440 * 10 / 16000.0), 1e-6);
    sg_audio_free(&a);
    free(b.p);
    b = make_wav(1, 9, 16000, 16, 10, gen_same, &s);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_EAUDIO);
    CHECK(strstr(err.msg, "channel") != NULL);
    free(b.p);
}

static void test_resample_rates(void)
{
    const int rates[] = {44100, 48000, 8000, 22050, 11025};
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        sine s = {440, 0.5, rates[i]};
        double dur = 2.0;
        bytes b = make_wav(1, 1, rates[i], 16, (size_t)(dur * rates[i]), gen_sine, &s);
        sg_audio a;
        sg_error err = {0};
        sg_status st = sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 0, 0, &a, &err);
        CHECK_MSG(st == SG_OK, "%d Hz: %s", rates[i], err.msg);
        if (st == SG_OK) {
            CHECK_EQ_INT(a.src_rate, rates[i]);
            CHECK_NEAR(a.duration_s, dur, 1e-9);
            check_sine_16k(&a, dur, 0.5);
            sg_audio_free(&a);
        }
        free(b.p);
    }

    /* stereo 48 kHz float, L=R */
    sine s = {440, 0.8, 48000};
    bytes b = make_wav(3, 2, 48000, 32, 96000, gen_same, &s);
    sg_audio a;
    sg_error err = {0};
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_OK);
    check_sine_16k(&a, 2.0, 0.8);
    float peak = 0;
    for (size_t i = 0; i < a.n; i++)
        peak = fmaxf(peak, fabsf(a.samples[i]));
    CHECK(peak <= 1.0f);
    sg_audio_free(&a);
    free(b.p);

    /* sg_audio_resample directly */
    float in[480];
    for (int i = 0; i < 480; i++)
        in[i] = (float)(0.5 * sin(2 * PI * 440 * i / 48000.0));
    float *o;
    size_t on;
    CHECK_EQ_INT(sg_audio_resample(in, 480, 48000, 16000, &o, &on, &err), SG_OK);
    CHECK_NEAR((double)on, 160, 2);
    free(o);
    CHECK_EQ_INT(sg_audio_resample(in, 480, 16000, 16000, &o, &on, &err), SG_OK);
    CHECK_EQ_INT(on, 480);
    CHECK(o && memcmp(o, in, sizeof in) == 0);
    free(o);
    CHECK_EQ_INT(sg_audio_resample(in, 480, 1, 1000000, &o, &on, &err), SG_EINVAL);
    CHECK(o == NULL);
    CHECK_EQ_INT(sg_audio_resample(in, 0, 48000, 16000, &o, &on, &err), SG_EINVAL);
    CHECK_EQ_INT(sg_audio_resample(in, 480, 0, 16000, &o, &on, &err), SG_EINVAL);
}

static void test_headerless(void)
{
    sg_audio a;
    sg_error err = {0};
    /* s16le at 16 kHz: exact */
    bytes b = {0};
    const double v[] = {0.5, -0.5, 0.25, -1.0, 0.0};
    for (int i = 0; i < 5; i++)
        put_sample(&b, 1, 16, v[i]);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_PCM_S16LE, 16000, 0, &a, &err), SG_OK);
    CHECK_EQ_INT(a.n, 5);
    CHECK_EQ_INT(a.src_channels, 1);
    if (a.n == 5)
        CHECK(a.samples[0] == 0.5f && a.samples[3] == -1.0f && a.samples[4] == 0.0f);
    sg_audio_free(&a);
    /* odd byte count */
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n - 1, SG_AUDIO_PCM_S16LE, 16000, 0, &a, &err), SG_EAUDIO);
    CHECK(strstr(err.msg, "whole number") != NULL);
    /* rate missing, too low, too high */
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_PCM_S16LE, 0, 0, &a, &err), SG_EINVAL);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_PCM_S16LE, 7999, 0, &a, &err), SG_EINVAL);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_PCM_F32LE, 192001, 0, &a, &err), SG_EINVAL);
    /* without a format, raw PCM is not guessed */
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 16000, 0, &a, &err), SG_EAUDIO);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_WAV, 16000, 0, &a, &err), SG_EAUDIO);
    free(b.p);

    /* f32le at 16 kHz: exact; NaN, Inf and a partial sample refused */
    b = (bytes){0};
    for (int i = 0; i < 5; i++)
        put_sample(&b, 3, 32, v[i]);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_PCM_F32LE, 16000, 0, &a, &err), SG_OK);
    CHECK_EQ_INT(a.n, 5);
    if (a.n == 5)
        CHECK(a.samples[0] == 0.5f && a.samples[2] == 0.25f);
    sg_audio_free(&a);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n - 2, SG_AUDIO_PCM_F32LE, 16000, 0, &a, &err), SG_EAUDIO);
    float bad = NAN;
    memcpy(b.p + 8, &bad, 4);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_PCM_F32LE, 16000, 0, &a, &err), SG_EAUDIO);
    CHECK(strstr(err.msg, "non-finite") != NULL);
    bad = -INFINITY;
    memcpy(b.p + 8, &bad, 4);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_PCM_F32LE, 16000, 0, &a, &err), SG_EAUDIO);
    free(b.p);

    /* 48 kHz sines through both headerless formats */
    for (int fmt = 0; fmt < 2; fmt++) {
        b = (bytes){0};
        sine s = {440, 0.5, 48000};
        for (size_t i = 0; i < 48000; i++)
            put_sample(&b, fmt ? 3 : 1, fmt ? 32 : 16, gen_sine(i, 0, &s));
        sg_status st = sg_audio_decode(b.p, b.n, fmt ? SG_AUDIO_PCM_F32LE : SG_AUDIO_PCM_S16LE,
                                       48000, 0, &a, &err);
        CHECK_EQ_INT(st, SG_OK);
        if (st == SG_OK) {
            CHECK_EQ_INT(a.src_rate, 48000);
            CHECK_NEAR(a.duration_s, 1.0, 1e-9);
            check_sine_16k(&a, 1.0, 0.5);
            sg_audio_free(&a);
        }
        /* the limit applies to the input duration */
        CHECK_EQ_INT(sg_audio_decode(b.p, b.n, fmt ? SG_AUDIO_PCM_F32LE : SG_AUDIO_PCM_S16LE,
                                     48000, 0.99, &a, &err), SG_ETOOBIG);
        CHECK_EQ_INT(sg_audio_decode(b.p, b.n, fmt ? SG_AUDIO_PCM_F32LE : SG_AUDIO_PCM_S16LE,
                                     48000, 1.0, &a, &err), SG_OK);
        sg_audio_free(&a);
        free(b.p);
    }
    /* empty PCM */
    CHECK_EQ_INT(sg_audio_decode((const uint8_t *)"", 0, SG_AUDIO_PCM_S16LE, 16000, 0, &a, &err),
                 SG_EAUDIO);
    CHECK(strstr(err.msg, "no audio samples") != NULL);
}

static double gen_ramp(size_t f, int c, void *ctx)
{
    (void)c;
    (void)ctx;
    return ((double)(f % 200) - 100.0) / 128.0;
}

/* Decodes and returns the status; on success also frees the audio and reports n in *n. */
static sg_status try_decode(const bytes *b, size_t *n, sg_error *err)
{
    sg_audio a;
    sg_status st = sg_audio_decode(b->p, b->n, SG_AUDIO_AUTO, 0, 0, &a, err);
    if (n)
        *n = a.n;
    if (st == SG_OK)
        sg_audio_free(&a);
    else
        CHECK(a.samples == NULL && a.n == 0);
    return st;
}

static void test_chunk_walk(void)
{
    sg_error err = {0};
    size_t n = 0;

    /* an odd-sized chunk (with its pad byte) before fmt, one after fmt */
    bytes b = {0};
    put(&b, "RIFF", 4);
    put32(&b, 0);
    put(&b, "WAVE", 4);
    put(&b, "junk", 4);
    put32(&b, 3);
    put(&b, "abc\0", 4);
    put(&b, "fmt ", 4);
    put32(&b, 16);
    put16(&b, 1);
    put16(&b, 1);
    put32(&b, 16000);
    put32(&b, 32000);
    put16(&b, 2);
    put16(&b, 16);
    put(&b, "LIST", 4);
    put32(&b, 5);
    put(&b, "INFOx\0", 6);
    put(&b, "data", 4);
    put32(&b, 6);
    put(&b, "\x00\x40\x00\xc0\x00\x00", 6);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_OK);
    CHECK_EQ_INT(n, 3);
    /* a missing final pad byte of an odd chunk after the data is fine: the walk stops at data */
    put(&b, "tail", 4);
    put32(&b, 1);
    put(&b, "x", 1);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_OK);
    free(b.p);

    sine s = {440, 0.5, 16000};
    b = make_wav(1, 1, 16000, 16, 100, gen_ramp, &s);
    /* data size larger than the buffer: truncated */
    set32(&b, 40, 202);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    CHECK(strstr(err.msg, "truncated") != NULL);
    /* streaming placeholders 0xFFFFFFFF and 0: all whole frames present */
    set32(&b, 40, 0xFFFFFFFF);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_OK);
    CHECK_EQ_INT(n, 100);
    set32(&b, 40, 0);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_OK);
    CHECK_EQ_INT(n, 100);
    /* ... and a trailing partial frame is dropped */
    put(&b, "\x01", 1);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_OK);
    CHECK_EQ_INT(n, 100);
    /* a declared size shorter than the buffer wins (trailing chunks ignored) */
    set32(&b, 40, 20);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_OK);
    CHECK_EQ_INT(n, 10);
    /* a declared size with a partial frame: whole frames only */
    set32(&b, 40, 21);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_OK);
    CHECK_EQ_INT(n, 10);
    /* a one-byte data chunk holds no whole 16-bit frame */
    set32(&b, 40, 1);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    CHECK(strstr(err.msg, "no audio samples") != NULL);
    /* a RIFF size of 0 or garbage does not matter */
    set32(&b, 40, 200);
    set32(&b, 4, 0);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_OK);
    set32(&b, 4, 0xFFFFFFFF);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_OK);
    free(b.p);

    /* a header-only WAV: data size 0 and nothing after it */
    b = make_wav(1, 1, 16000, 16, 0, gen_ramp, &s);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    CHECK(strstr(err.msg, "no audio samples") != NULL);
    free(b.p);

    /* a non-data chunk overrunning the buffer */
    b = (bytes){0};
    put(&b, "RIFF\0\0\0\0WAVE", 12);
    put(&b, "LIST", 4);
    put32(&b, 1000);
    put(&b, "INFO", 4);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    CHECK(strstr(err.msg, "LIST") != NULL && strstr(err.msg, "overruns") != NULL);
    free(b.p);
}

static void test_errors(void)
{
    sg_error err = {0};
    sg_audio a;
    size_t n;
    bytes b = {0};

    /* empty, "RIFF" only, RIFF without WAVE, WAVE with no chunks */
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    CHECK_EQ_INT(sg_audio_decode(NULL, 0, SG_AUDIO_WAV, 0, 0, &a, &err), SG_EAUDIO);
    CHECK_EQ_INT(sg_audio_decode(NULL, 10, SG_AUDIO_WAV, 0, 0, &a, &err), SG_EINVAL);
    put(&b, "RIFF", 4);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    CHECK(strstr(err.msg, "RIFF/WAVE") != NULL);
    put(&b, "\0\0\0\0AVI ", 8);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    memcpy(b.p + 8, "WAVE", 4);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    CHECK(strstr(err.msg, "no fmt") != NULL);
    free(b.p);

    sine s = {440, 0.5, 16000};
    /* fmt chunk too short */
    b = make_wav(1, 1, 16000, 16, 50, gen_ramp, &s);
    set32(&b, 16, 14);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    free(b.p);

    /* data before fmt */
    b = (bytes){0};
    put(&b, "RIFF\0\0\0\0WAVE", 12);
    put(&b, "data", 4);
    put32(&b, 4);
    put(&b, "\0\0\0\0", 4);
    put(&b, "fmt ", 4);
    put32(&b, 16);
    put16(&b, 1);
    put16(&b, 1);
    put32(&b, 16000);
    put32(&b, 32000);
    put16(&b, 2);
    put16(&b, 16);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    CHECK(strstr(err.msg, "before fmt") != NULL);
    free(b.p);

    /* two fmt chunks */
    b = (bytes){0};
    put(&b, "RIFF\0\0\0\0WAVE", 12);
    for (int k = 0; k < 2; k++) {
        put(&b, "fmt ", 4);
        put32(&b, 16);
        put16(&b, 1);
        put16(&b, 1);
        put32(&b, 16000);
        put32(&b, 32000);
        put16(&b, 2);
        put16(&b, 16);
    }
    put(&b, "data", 4);
    put32(&b, 4);
    put(&b, "\1\0\2\0", 4);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    CHECK(strstr(err.msg, "two fmt") != NULL);
    free(b.p);

    /* fmt but no data */
    b = make_wav(1, 1, 16000, 16, 0, gen_ramp, &s);
    b.n = 36;
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    CHECK(strstr(err.msg, "no data") != NULL);
    free(b.p);

    b = make_wav(1, 1, 16000, 16, 50, gen_ramp, &s);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_OK);
    /* ADPCM (tag 2), mu-law (7) */
    set16(&b, 20, 2);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    CHECK(strstr(err.msg, "format tag 0x0002") != NULL);
    set16(&b, 20, 7);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    set16(&b, 20, 1);
    /* zero channels */
    set16(&b, 22, 0);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    set16(&b, 22, 1);
    /* rates outside 1000..384000 */
    set32(&b, 24, 0);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    set32(&b, 24, 999);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    set32(&b, 24, 384001);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    set32(&b, 24, 1000);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_OK);
    set32(&b, 24, 16000);
    /* block_align mismatch, including 0 */
    set16(&b, 32, 4);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    CHECK(strstr(err.msg, "block_align") != NULL);
    set16(&b, 32, 0);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    set16(&b, 32, 2);
    /* zero bits */
    set16(&b, 34, 0);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    set16(&b, 34, 16);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_OK);
    /* truncated data chunk: every prefix shorter than the full file fails cleanly */
    size_t full = b.n;
    int bad = 0;
    for (size_t cut = 0; cut < full; cut++) {
        b.n = cut;
        if (try_decode(&b, &n, &err) != SG_EAUDIO)
            bad++;
    }
    CHECK_EQ_INT(bad, 0);
    b.n = full;
    /* max_seconds: 50 frames at 16 kHz is 3.125 ms */
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 0, 0.003, &a, &err), SG_ETOOBIG);
    CHECK_EQ_INT(sg_audio_decode(b.p, b.n, SG_AUDIO_AUTO, 0, 0.004, &a, &err), SG_OK);
    sg_audio_free(&a);
    free(b.p);

    /* float WAV with NaN and with +Inf in the second channel */
    const double f[] = {0.1, 0.2, 0.3, 0.4};
    b = make_wav_values(3, 32, f, 4);
    float nan = NAN;
    memcpy(b.p + 44 + 8, &nan, 4);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    free(b.p);
    b = make_wav_values(3, 64, f, 4);
    double inf = INFINITY;
    memcpy(b.p + 44 + 8, &inf, 8);
    CHECK_EQ_INT(try_decode(&b, &n, &err), SG_EAUDIO);
    free(b.p);

    /* an unknown enum value */
    CHECK_EQ_INT(sg_audio_decode((const uint8_t *)"xx", 2, (sg_audio_format)42, 16000, 0, &a, &err),
                 SG_EINVAL);
}

static void test_format_parse(void)
{
    sg_audio_format f = SG_AUDIO_PCM_F32LE;
    sg_error err = {0};
    CHECK_EQ_INT(sg_audio_format_parse("wav", &f, &err), SG_OK);
    CHECK_EQ_INT(f, SG_AUDIO_WAV);
    CHECK_EQ_INT(sg_audio_format_parse("pcm_s16le", &f, &err), SG_OK);
    CHECK_EQ_INT(f, SG_AUDIO_PCM_S16LE);
    CHECK_EQ_INT(sg_audio_format_parse("pcm_f32le", &f, &err), SG_OK);
    CHECK_EQ_INT(f, SG_AUDIO_PCM_F32LE);
    CHECK_EQ_INT(sg_audio_format_parse("pcm", &f, &err), SG_OK);
    CHECK_EQ_INT(f, SG_AUDIO_PCM_S16LE);
    CHECK_EQ_INT(sg_audio_format_parse("s16le", &f, &err), SG_OK);
    CHECK_EQ_INT(f, SG_AUDIO_PCM_S16LE);
    CHECK_EQ_INT(sg_audio_format_parse("f32le", &f, &err), SG_OK);
    CHECK_EQ_INT(f, SG_AUDIO_PCM_F32LE);
    CHECK_EQ_INT(sg_audio_format_parse("", &f, &err), SG_OK);
    CHECK_EQ_INT(f, SG_AUDIO_AUTO);
    f = SG_AUDIO_WAV;
    CHECK_EQ_INT(sg_audio_format_parse(NULL, &f, &err), SG_OK);
    CHECK_EQ_INT(f, SG_AUDIO_AUTO);
    CHECK_EQ_INT(sg_audio_format_parse("flac", &f, &err), SG_OK);
    CHECK_EQ_INT(f, SG_AUDIO_FLAC);
    CHECK_EQ_INT(sg_audio_format_parse("ogg", &f, &err), SG_OK);
    CHECK_EQ_INT(f, SG_AUDIO_OGG);
    CHECK_EQ_INT(sg_audio_format_parse("opus", &f, &err), SG_OK);
    CHECK_EQ_INT(f, SG_AUDIO_OGG);
    CHECK(strcmp(sg_audio_format_name(SG_AUDIO_FLAC), "flac") == 0);
    CHECK(strcmp(sg_audio_format_name(SG_AUDIO_OGG), "ogg") == 0);
    CHECK_EQ_INT(sg_audio_sniff((const uint8_t *)"RIFF\0\0\0\0WAVE", 12), SG_AUDIO_WAV);
    CHECK_EQ_INT(sg_audio_sniff((const uint8_t *)"RIFF\0\0\0\0AVI ", 12), SG_AUDIO_AUTO);
    CHECK_EQ_INT(sg_audio_sniff((const uint8_t *)"fLa", 3), SG_AUDIO_AUTO);
    CHECK_EQ_INT(sg_audio_sniff(NULL, 10), SG_AUDIO_AUTO);
    CHECK_EQ_INT(sg_audio_format_parse("bogus", &f, &err), SG_EINVAL);
    CHECK(strstr(err.msg, "bogus") != NULL);
    CHECK_EQ_INT(sg_audio_format_parse("WAV ", &f, &err), SG_EINVAL);
}

/* ---- FLAC and Ogg, encoded here with libsndfile ---- */

typedef struct wmem {
    bytes b;
    sf_count_t pos;
} wmem;

static sf_count_t wm_len(void *ud) { return (sf_count_t)((wmem *)ud)->b.n; }
static sf_count_t wm_tell(void *ud) { return ((wmem *)ud)->pos; }
static sf_count_t wm_seek(sf_count_t off, int whence, void *ud)
{
    wmem *m = ud;
    sf_count_t p = whence == SEEK_SET ? off : whence == SEEK_CUR ? m->pos + off : (sf_count_t)m->b.n + off;
    if (p < 0)
        return -1;
    m->pos = p;
    return p;
}
static sf_count_t wm_read(void *dst, sf_count_t n, void *ud)
{
    wmem *m = ud;
    if (m->pos >= (sf_count_t)m->b.n)
        return 0;
    if (n > (sf_count_t)m->b.n - m->pos)
        n = (sf_count_t)m->b.n - m->pos;
    memcpy(dst, m->b.p + m->pos, (size_t)n);
    m->pos += n;
    return n;
}
static sf_count_t wm_write(const void *src, sf_count_t n, void *ud)
{
    wmem *m = ud;
    size_t end = (size_t)m->pos + (size_t)n;
    if (end > m->b.n) {
        size_t old = m->b.n;
        uint8_t zero = 0;
        while (m->b.n < end) /* grows (and zero-fills a gap after a seek) */
            put(&m->b, &zero, 1);
        (void)old;
    }
    memcpy(m->b.p + m->pos, src, (size_t)n);
    m->pos += n;
    return n;
}

/* Encodes interleaved float frames into an in-memory file of the given libsndfile format;
 * level >= 0 sets SFC_SET_COMPRESSION_LEVEL (Opus: bitrate = 6 + 250 * (1 - level) kbit/s).
 * as_s16: the floats are exact multiples of 1/32768 and are written as 16-bit integers (libsndfile
 * scales floats by 32767 on the way in, so only this is a lossless round trip). */
static bytes sf_encode_ex(const float *x, size_t frames, int channels, int rate, int format,
                          double level, bool as_s16)
{
    wmem m = {{0}, 0};
    SF_VIRTUAL_IO io = {wm_len, wm_seek, wm_read, wm_write, wm_tell};
    SF_INFO info = {.samplerate = rate, .channels = channels, .format = format};
    SNDFILE *sf = sf_open_virtual(&io, SFM_WRITE, &info, &m);
    CHECK_MSG(sf != NULL, "libsndfile cannot write format 0x%x: %s", format, sf_strerror(NULL));
    if (!sf)
        return m.b;
    if (level >= 0)
        CHECK(sf_command(sf, SFC_SET_COMPRESSION_LEVEL, &level, sizeof level) == SF_TRUE);
    if (as_s16) {
        size_t ns = frames * (size_t)channels;
        int16_t *s16 = malloc(ns * sizeof *s16);
        CHECK(s16 != NULL);
        for (size_t i = 0; s16 && i < ns; i++)
            s16[i] = (int16_t)lrintf(x[i] * 32768.0f);
        if (s16)
            CHECK_EQ_INT(sf_writef_short(sf, s16, (sf_count_t)frames), frames);
        free(s16);
    } else {
        CHECK_EQ_INT(sf_writef_float(sf, x, (sf_count_t)frames), frames);
    }
    sf_close(sf);
    return m.b;
}

static bytes sf_encode(const float *x, size_t frames, int channels, int rate, int format,
                       double level)
{
    return sf_encode_ex(x, frames, channels, rate, format, level, false);
}

static float *jfk_reference(size_t *n)
{
    size_t len;
    uint8_t *wav = check_read_file("../shared/data/audio/jfk.wav", &len);
    CHECK_MSG(wav != NULL, "cannot read ../shared/data/audio/jfk.wav (run from the project root)");
    if (!wav)
        return NULL;
    sg_audio a;
    sg_error err = {0};
    sg_status st = sg_audio_decode(wav, len, SG_AUDIO_AUTO, 0, 0, &a, &err);
    free(wav);
    CHECK_EQ_INT(st, SG_OK);
    if (st != SG_OK)
        return NULL;
    *n = a.n;
    return a.samples; /* the caller frees */
}

/* Pearson correlation at the best lag within +-maxlag, and the SNR (dB) at that lag. */
static double best_corr(const float *ref, size_t nref, const float *x, size_t nx, int maxlag,
                        int *lag_out, double *snr_db)
{
    double best = -2;
    int best_lag = 0;
    for (int lag = -maxlag; lag <= maxlag; lag++) {
        double sxy = 0, sxx = 0, syy = 0;
        for (size_t i = (size_t)maxlag; i + (size_t)maxlag < nref; i++) {
            long j = (long)i + lag;
            if (j < 0 || (size_t)j >= nx)
                continue;
            sxy += (double)ref[i] * x[j];
            sxx += (double)ref[i] * ref[i];
            syy += (double)x[j] * x[j];
        }
        double c = sxx > 0 && syy > 0 ? sxy / sqrt(sxx * syy) : 0;
        if (c > best) {
            best = c;
            best_lag = lag;
        }
    }
    double sig = 0, noise = 0;
    for (size_t i = (size_t)maxlag; i + (size_t)maxlag < nref; i++) {
        long j = (long)i + best_lag;
        if (j < 0 || (size_t)j >= nx)
            continue;
        sig += (double)ref[i] * ref[i];
        noise += ((double)ref[i] - x[j]) * ((double)ref[i] - x[j]);
    }
    *lag_out = best_lag;
    *snr_db = 10 * log10(sig / fmax(noise, 1e-30));
    return best;
}

static void test_flac(void)
{
    size_t n = 0;
    float *ref = jfk_reference(&n);
    if (!ref)
        return;
    bytes f = sf_encode_ex(ref, n, 1, 16000, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, -1, true);
    CHECK(f.n > 4 && memcmp(f.p, "fLaC", 4) == 0);
    CHECK_MSG(f.n < n * 2 * 8 / 10, "FLAC of jfk is %zu bytes", f.n); /* smaller than the WAV */
    CHECK_EQ_INT(sg_audio_sniff(f.p, f.n), SG_AUDIO_FLAC);
    sg_audio_format fmts[2] = {SG_AUDIO_AUTO, SG_AUDIO_FLAC};
    for (int k = 0; k < 2; k++) {
        sg_audio a;
        sg_error err = {0};
        sg_status st = sg_audio_decode(f.p, f.n, fmts[k], 0, 30, &a, &err);
        CHECK_MSG(st == SG_OK, "%s", err.msg);
        if (st != SG_OK)
            continue;
        CHECK_EQ_INT(a.n, n);
        CHECK_EQ_INT(a.src_rate, 16000);
        CHECK_EQ_INT(a.src_channels, 1);
        CHECK_NEAR(a.duration_s, 11.0, 1e-9);
        size_t diff = 0;
        for (size_t i = 0; i < n && i < a.n; i++)
            diff += a.samples[i] != ref[i];
        CHECK_EQ_INT(diff, 0); /* lossless: bit-identical to the WAV path */
        sg_audio_free(&a);
    }
    /* the tail, and the time limit (the STREAMINFO length refuses early) */
    sg_audio a;
    sg_error err = {0};
    CHECK_EQ_INT(sg_audio_decode_tail(f.p, f.n, SG_AUDIO_FLAC, 0, 2.5, &a, &err), SG_OK);
    CHECK_EQ_INT(a.n, 40000);
    CHECK_NEAR(a.duration_s, 2.5, 1e-9);
    size_t diff = 0;
    for (size_t i = 0; i < a.n && a.n == 40000; i++)
        diff += a.samples[i] != ref[n - 40000 + i];
    CHECK_EQ_INT(diff, 0);
    sg_audio_free(&a);
    CHECK_EQ_INT(sg_audio_decode(f.p, f.n, SG_AUDIO_FLAC, 0, 5, &a, &err), SG_ETOOBIG);
    CHECK(a.samples == NULL && strstr(err.msg, "limit") != NULL);

    /* FLAC at 48 kHz stereo, 24-bit: downmix and resampling as for WAV */
    sine sn = {440, 0.5, 48000};
    size_t frames = 48000;
    float *st48 = malloc(frames * 2 * sizeof *st48);
    for (size_t i = 0; st48 && i < frames; i++)
        st48[2 * i] = st48[2 * i + 1] = (float)gen_sine(i, 0, &sn);
    if (st48) {
        bytes f48 = sf_encode(st48, frames, 2, 48000, SF_FORMAT_FLAC | SF_FORMAT_PCM_24, -1);
        CHECK_EQ_INT(sg_audio_decode(f48.p, f48.n, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_OK);
        CHECK_EQ_INT(a.src_rate, 48000);
        CHECK_EQ_INT(a.src_channels, 2);
        if (a.samples)
            check_sine_16k(&a, 1.0, 0.5);
        sg_audio_free(&a);
        free(f48.p);
    }
    free(st48);

    /* a long FLAC (12 x jfk = 132 s) whose STREAMINFO does not say its length (total samples 0,
     * as a streaming encoder writes it): the limit must be enforced while decoding, and the
     * tail must be exactly the last seconds (the ring buffer wraps many times) */
    float *longx = malloc(12 * n * sizeof *longx);
    if (longx) {
        for (int r = 0; r < 12; r++)
            memcpy(longx + (size_t)r * n, ref, n * sizeof *ref);
        bytes lf = sf_encode_ex(longx, 12 * n, 1, 16000, SF_FORMAT_FLAC | SF_FORMAT_PCM_16, -1, true);
        /* fLaC, block header (4), STREAMINFO: total samples = low 36 bits of bytes 21..25 */
        CHECK(lf.n > 42 && (lf.p[4] & 0x7F) == 0);
        if (lf.n > 42) {
            lf.p[21] &= 0xF0;
            lf.p[22] = lf.p[23] = lf.p[24] = lf.p[25] = 0;
        }
        CHECK_EQ_INT(sg_audio_decode(lf.p, lf.n, SG_AUDIO_AUTO, 0, 120, &a, &err), SG_ETOOBIG);
        CHECK_MSG(strstr(err.msg, "decodes to more") != NULL, "%s", err.msg);
        CHECK_EQ_INT(sg_audio_decode_tail(lf.p, lf.n, SG_AUDIO_AUTO, 0, 2.5, &a, &err), SG_OK);
        CHECK_EQ_INT(a.n, 40000);
        diff = 0;
        for (size_t i = 0; i < a.n && a.n == 40000; i++)
            diff += a.samples[i] != ref[n - 40000 + i];
        CHECK_EQ_INT(diff, 0);
        sg_audio_free(&a);
        free(lf.p);
        free(longx);
    }

    /* broken FLAC: truncated after the header, garbage behind the magic, wrong format name */
    CHECK_EQ_INT(sg_audio_decode(f.p, 42, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_EAUDIO);
    CHECK(a.samples == NULL && a.n == 0);
    uint8_t junk[600];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 37 + 11);
    memcpy(junk, "fLaC", 4);
    CHECK_EQ_INT(sg_audio_decode(junk, sizeof junk, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_EAUDIO);
    CHECK_MSG(strstr(err.msg, "FLAC") != NULL, "%s", err.msg);
    CHECK_EQ_INT(sg_audio_decode(junk, 4, SG_AUDIO_FLAC, 0, 0, &a, &err), SG_EAUDIO);
    CHECK_EQ_INT(sg_audio_decode(f.p, f.n, SG_AUDIO_OGG, 0, 0, &a, &err), SG_EAUDIO);
    CHECK_MSG(strstr(err.msg, "OggS") != NULL, "%s", err.msg);
    CHECK_EQ_INT(sg_audio_decode(NULL, 0, SG_AUDIO_FLAC, 0, 0, &a, &err), SG_EAUDIO);
    /* a corrupted frame in the middle: an error or fewer samples, never a crash */
    bytes bad = {0};
    put(&bad, f.p, f.n);
    for (size_t i = f.n / 2; i < f.n / 2 + 64; i++)
        bad.p[i] ^= 0x5A;
    sg_status st = sg_audio_decode(bad.p, bad.n, SG_AUDIO_AUTO, 0, 0, &a, &err);
    CHECK(st == SG_OK || st == SG_EAUDIO);
    if (st == SG_OK) {
        CHECK(a.n <= n + 4096);
        for (size_t i = 0; i < a.n; i++)
            if (!(a.samples[i] >= -1.0f && a.samples[i] <= 1.0f)) {
                CHECK_MSG(0, "sample %zu out of range", i);
                break;
            }
    }
    sg_audio_free(&a);
    free(bad.p);
    free(f.p);
    free(ref);
}

static void test_ogg(void)
{
    size_t n = 0;
    float *ref = jfk_reference(&n);
    if (!ref)
        return;
    static const struct {
        const char *name;
        int format;
        double level;
        double min_corr, min_snr;
        size_t max_bytes;
    } cases[] = {
        /* 24 kbit/s Opus (what libsgclient sends): level = 1 - (24 - 6) / 250 */
        {"opus 24k", SF_FORMAT_OGG | SF_FORMAT_OPUS, 0.928, 0.98, 14.0, 11 * 3600},
        {"vorbis", SF_FORMAT_OGG | SF_FORMAT_VORBIS, -1, 0.98, 14.0, 11 * 12000},
    };
    for (size_t k = 0; k < sizeof cases / sizeof cases[0]; k++) {
        bytes o = sf_encode(ref, n, 1, 16000, cases[k].format, cases[k].level);
        CHECK(o.n > 4 && memcmp(o.p, "OggS", 4) == 0);
        CHECK_MSG(o.n < cases[k].max_bytes, "%s: %zu bytes", cases[k].name, o.n);
        CHECK_EQ_INT(sg_audio_sniff(o.p, o.n), SG_AUDIO_OGG);
        sg_audio a;
        sg_error err = {0};
        sg_status st = sg_audio_decode(o.p, o.n, SG_AUDIO_AUTO, 0, 30, &a, &err);
        CHECK_MSG(st == SG_OK, "%s: %s", cases[k].name, err.msg);
        if (st == SG_OK) {
            CHECK_NEAR((double)a.n, (double)n, 16); /* pre-skip and end trim applied */
            CHECK_EQ_INT(a.src_channels, 1);
            CHECK_EQ_INT(a.src_rate, 16000);
            int lag;
            double snr;
            double c = best_corr(ref, n, a.samples, a.n, 64, &lag, &snr);
            printf("%s: %zu bytes (%.1f kbit/s), correlation %.4f, SNR %.1f dB, lag %d\n",
                   cases[k].name, o.n, o.n * 8.0 / 11.0 / 1000.0, c, snr, lag);
            CHECK_MSG(c >= cases[k].min_corr, "%s: correlation %.4f", cases[k].name, c);
            CHECK_MSG(snr >= cases[k].min_snr, "%s: SNR %.1f dB", cases[k].name, snr);
            CHECK_MSG(abs(lag) <= 2, "%s: lag %d", cases[k].name, lag);
            sg_audio_free(&a);
            /* explicit names, the tail, the limit */
            sg_audio_format f;
            CHECK_EQ_INT(sg_audio_format_parse(k == 0 ? "opus" : "vorbis", &f, &err), SG_OK);
            CHECK_EQ_INT(sg_audio_decode(o.p, o.n, f, 0, 30, &a, &err), SG_OK);
            sg_audio_free(&a);
            CHECK_EQ_INT(sg_audio_decode_tail(o.p, o.n, SG_AUDIO_OGG, 0, 3, &a, &err), SG_OK);
            CHECK_EQ_INT(a.n, 48000);
            sg_audio_free(&a);
            CHECK_EQ_INT(sg_audio_decode(o.p, o.n, SG_AUDIO_OGG, 0, 5, &a, &err), SG_ETOOBIG);
            CHECK(a.samples == NULL);
        }
        /* truncated to the header pages, and broken in the middle (Vorbis: its headers are
         * checked before libsndfile, whose failure path leaks; ASan runs this test) */
        CHECK_EQ_INT(sg_audio_decode(o.p, 200, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_EAUDIO);
        CHECK(a.samples == NULL && a.n == 0);
        if (k == 1)
            CHECK_MSG(strstr(err.msg, "Vorbis headers") != NULL, "%s", err.msg);
        bytes bad = {0};
        put(&bad, o.p, o.n);
        for (size_t i = o.n / 2; i < o.n / 2 + 64; i++)
            bad.p[i] ^= 0xA5;
        st = sg_audio_decode(bad.p, bad.n, SG_AUDIO_AUTO, 0, 0, &a, &err);
        CHECK(st == SG_OK || st == SG_EAUDIO);
        sg_audio_free(&a);
        free(bad.p);
        free(o.p);
    }

    /* Opus at 48 kHz stereo: decoded at 48 kHz, downmixed, resampled */
    sine sn = {440, 0.5, 48000};
    size_t frames = 48000;
    float *st48 = malloc(frames * 2 * sizeof *st48);
    for (size_t i = 0; st48 && i < frames; i++)
        st48[2 * i] = st48[2 * i + 1] = (float)gen_sine(i, 0, &sn);
    if (st48) {
        bytes o = sf_encode(st48, frames, 2, 48000, SF_FORMAT_OGG | SF_FORMAT_OPUS, -1);
        sg_audio a;
        sg_error err = {0};
        CHECK_EQ_INT(sg_audio_decode(o.p, o.n, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_OK);
        CHECK_EQ_INT(a.src_rate, 48000);
        CHECK_EQ_INT(a.src_channels, 2);
        if (a.samples) {
            CHECK_NEAR((double)a.n, 16000, 8);
            size_t lo = a.n / 10, span = a.n * 8 / 10;
            CHECK_NEAR(tone_amplitude(a.samples + lo, span, 440), 0.5, 0.05);
            CHECK(tone_amplitude(a.samples + lo, span, 1000) < 0.01);
        }
        sg_audio_free(&a);
        free(o.p);
    }
    free(st48);

    /* garbage behind OggS: a page header that is no page, a page of no known codec */
    sg_audio a;
    sg_error err = {0};
    uint8_t junk[400];
    for (size_t i = 0; i < sizeof junk; i++)
        junk[i] = (uint8_t)(i * 91 + 7);
    memcpy(junk, "OggS", 4);
    CHECK_EQ_INT(sg_audio_decode(junk, sizeof junk, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_EAUDIO);
    CHECK_MSG(strstr(err.msg, "Ogg") != NULL, "%s", err.msg);
    CHECK(a.samples == NULL && a.n == 0);
    CHECK_EQ_INT(sg_audio_decode(junk, 4, SG_AUDIO_AUTO, 0, 0, &a, &err), SG_EAUDIO);
    free(ref);
}

int main(void)
{
    test_jfk();
    test_encodings();
    test_extensible();
    test_channels();
    test_resample_rates();
    test_headerless();
    test_chunk_walk();
    test_errors();
    test_format_parse();
    test_flac();
    test_ogg();
    return check_report("test_audio");
}
