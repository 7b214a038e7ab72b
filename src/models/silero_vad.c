/* Silero VAD v6.2 (16 kHz): the loader for whisper.cpp's ggml file, the forward pass and the
 * segment rules.
 *
 * The graph is silero's (snakers4/silero-vad: tinygrad_model.py, utils_vad.py), per 512-sample
 * window w of the audio:
 *   x     = the 64 samples before the window (zeros before the audio) + its 512 samples (zeros past
 *           the end), reflection-padded by 64 on the right: 640 samples
 *   stft  = conv1d(x, 258 fixed filters of 256 taps, stride 128): 4 frames; the filters are the
 *           real and imaginary parts of 129 DFT bins, magnitude sqrt(re^2 + im^2): 4 x 129
 *   enc   = 4 x (conv1d k3 pad 1 + ReLU): 129->128 stride 1, 128->64 s2, 64->64 s2, 64->128 s1;
 *           4 frames -> 4 -> 2 -> 1 -> 1, so one vector of 128
 *   h, c  = LSTM cell(enc; h, c), the state carried from window to window (gates i, f, g, o)
 *   p     = sigmoid(w . ReLU(h) + b)
 * (whisper.cpp instead reflects each bare 512-sample window by 64 on both sides; silero's own
 * models and this file use the previous window's samples as the left context.)
 *
 * Only the LSTM depends on earlier windows. Everything before it, and the LSTM's input product
 * W_ih x, runs on blocks of BLOCK windows at once as matrix products (nn/linear.h, with
 * im2col for the convolutions); then the recurrence runs window by window with W_hh h. */
#include "models/silero_vad.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/file.h"
#include "nn/linear.h"

#define GGML_MAGIC 0x67676D6Cu /* "ggml", little-endian */
#define MODEL_TYPE "silero-16k"
#define N_FFT 256
#define HOP 128
#define N_BINS (N_FFT / 2 + 1)     /* 129 */
#define N_FRAMES 4                 /* STFT frames per window */
#define RIGHT_PAD 64               /* reflection on the right */
#define PADDED (SG_SILERO_CONTEXT + SG_SILERO_WINDOW + RIGHT_PAD) /* 640 */
#define HIDDEN 128
#define N_ENC 4
#define KSIZE 3
#define BLOCK 32                   /* windows per batched front-end pass */
#define MAX_FILE_BYTES (64u << 20) /* the real file is 0.9 MB */
#define MAX_NAME 128

/* The encoder: channels in/out and stride of each conv1d (k3, pad 1). */
static const struct {
    int in, out, stride;
} ENC[N_ENC] = {{N_BINS, 128, 1}, {128, 64, 2}, {64, 64, 2}, {64, HIDDEN, 1}};

struct sg_silero {
    char version[40];
    sg_linear stft;       /* 258 x 256: rows 0..128 the real parts, 129..257 the imaginary */
    sg_linear enc[N_ENC]; /* out x (3 * in): weights permuted to [out][tap][in] for im2col */
    sg_linear lstm_x;     /* 512 x 128: W_ih, bias b_ih + b_hh */
    sg_linear lstm_h;     /* 512 x 128: W_hh, no bias */
    float head_w[HIDDEN];
    float head_b;
};

/* ---- loading ---------------------------------------------------------------------------------- */

typedef struct reader {
    const uint8_t *p;
    size_t len, off;
} reader;

static int rd_i32(reader *r, int32_t *v)
{
    if (r->len - r->off < 4)
        return -1;
    const uint8_t *b = r->p + r->off;
    *v = (int32_t)((uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 |
                   (uint32_t)b[3] << 24);
    r->off += 4;
    return 0;
}

/* IEEE binary16 -> float (exact; subnormals, inf and NaN included). */
static float half_to_float(uint16_t h)
{
    const int e = (h >> 10) & 0x1F, f = h & 0x3FF;
    float v;
    if (e == 0)
        v = ldexpf((float)f, -24);
    else if (e == 31)
        v = f ? NAN : INFINITY;
    else
        v = ldexpf((float)(f | 0x400), e - 25);
    return (h & 0x8000) ? -v : v;
}

/* One tensor the architecture needs: its name, ggml dimensions (fastest first, padded with 1s)
 * and, once read, its values as f32 in the file's (row-major, slowest first) order. */
typedef struct tensor_spec {
    char name[64];
    int32_t ne[4];
    float *data;
} tensor_spec;

enum {
    T_ENC_W0 = 0, /* T_ENC_W0 + 2 * i: weight of encoder layer i, + 1: its bias */
    T_IH = 2 * N_ENC,
    T_HH,
    T_B_IH,
    T_B_HH,
    T_HEAD_W,
    T_HEAD_B,
    T_STFT,
    T_COUNT
};

static void spec_set(tensor_spec *s, const char *name, int32_t a, int32_t b, int32_t c)
{
    snprintf(s->name, sizeof s->name, "%s", name);
    s->ne[0] = a;
    s->ne[1] = b;
    s->ne[2] = c;
    s->ne[3] = 1;
    s->data = NULL;
}

static void specs_init(tensor_spec *t)
{
    char name[64];
    for (int i = 0; i < N_ENC; i++) {
        snprintf(name, sizeof name, "_model.encoder.%d.reparam_conv.weight", i);
        spec_set(&t[T_ENC_W0 + 2 * i], name, KSIZE, ENC[i].in, ENC[i].out);
        snprintf(name, sizeof name, "_model.encoder.%d.reparam_conv.bias", i);
        spec_set(&t[T_ENC_W0 + 2 * i + 1], name, ENC[i].out, 1, 1);
    }
    spec_set(&t[T_IH], "_model.decoder.rnn.weight_ih", HIDDEN, 4 * HIDDEN, 1);
    spec_set(&t[T_HH], "_model.decoder.rnn.weight_hh", HIDDEN, 4 * HIDDEN, 1);
    spec_set(&t[T_B_IH], "_model.decoder.rnn.bias_ih", 4 * HIDDEN, 1, 1);
    spec_set(&t[T_B_HH], "_model.decoder.rnn.bias_hh", 4 * HIDDEN, 1, 1);
    spec_set(&t[T_HEAD_W], "_model.decoder.decoder.2.weight", HIDDEN, 1, 1);
    spec_set(&t[T_HEAD_B], "_model.decoder.decoder.2.bias", 1, 1, 1);
    spec_set(&t[T_STFT], "_model.stft.forward_basis_buffer", N_FFT, 1, 2 * N_BINS);
}

static void specs_free(tensor_spec *t)
{
    for (int i = 0; i < T_COUNT; i++)
        free(t[i].data);
}

/* The header: magic, model type, version, then hparams that must be this architecture's. */
static sg_status read_header(reader *r, char *version, size_t vsize, sg_error *err)
{
    int32_t magic, len;
    if (rd_i32(r, &magic) != 0)
        return sg_error_set(err, SG_EINVAL, "silero: file too short for a ggml header");
    if ((uint32_t)magic != GGML_MAGIC)
        return sg_error_set(err, SG_EINVAL, "silero: not a ggml file (magic 0x%08x)",
                            (unsigned)magic);
    if (rd_i32(r, &len) != 0)
        return sg_error_set(err, SG_EINVAL, "silero: truncated header (model type)");
    if (len != (int32_t)strlen(MODEL_TYPE) || r->len - r->off < (size_t)len ||
        memcmp(r->p + r->off, MODEL_TYPE, (size_t)len) != 0)
        return sg_error_set(err, SG_EINVAL, "silero: model type is not \"%s\" (a 16 kHz Silero VAD)",
                            MODEL_TYPE);
    r->off += (size_t)len;
    int32_t ver[3];
    for (int i = 0; i < 3; i++)
        if (rd_i32(r, &ver[i]) != 0)
            return sg_error_set(err, SG_EINVAL, "silero: truncated header (version)");
    for (int i = 0; i < 3; i++)
        if (ver[i] < 0 || ver[i] > 9999)
            return sg_error_set(err, SG_EINVAL, "silero: implausible version %d.%d.%d", ver[0],
                                ver[1], ver[2]);
    snprintf(version, vsize, "%d.%d.%d", (int)ver[0], (int)ver[1], (int)ver[2]);

    /* hparams in file order, each with the value this implementation is built for */
    struct {
        const char *what;
        int32_t want;
    } hp[3 + 3 * N_ENC + 4];
    int n = 0;
    hp[n].what = "window";
    hp[n++].want = SG_SILERO_WINDOW;
    hp[n].what = "context";
    hp[n++].want = SG_SILERO_CONTEXT;
    hp[n].what = "encoder layers";
    hp[n++].want = N_ENC;
    for (int i = 0; i < N_ENC; i++) {
        hp[n].what = "encoder in channels";
        hp[n++].want = ENC[i].in;
        hp[n].what = "encoder out channels";
        hp[n++].want = ENC[i].out;
        hp[n].what = "encoder kernel size";
        hp[n++].want = KSIZE;
    }
    hp[n].what = "lstm input size";
    hp[n++].want = HIDDEN;
    hp[n].what = "lstm hidden size";
    hp[n++].want = HIDDEN;
    hp[n].what = "final conv in";
    hp[n++].want = HIDDEN;
    hp[n].what = "final conv out";
    hp[n++].want = 1;
    for (int i = 0; i < n; i++) {
        int32_t v;
        if (rd_i32(r, &v) != 0)
            return sg_error_set(err, SG_EINVAL, "silero: truncated header (hparams)");
        if (v != hp[i].want)
            return sg_error_set(err, SG_EINVAL,
                                "silero: unsupported hparams: %s is %d (this model needs %d)",
                                hp[i].what, (int)v, (int)hp[i].want);
    }
    return SG_OK;
}

/* Reads one tensor record into the matching spec. */
static sg_status read_tensor(reader *r, tensor_spec *specs, sg_error *err)
{
    const size_t at = r->off;
    int32_t ndims, nlen, type;
    if (rd_i32(r, &ndims) != 0 || rd_i32(r, &nlen) != 0 || rd_i32(r, &type) != 0)
        return sg_error_set(err, SG_EINVAL, "silero: truncated tensor header at byte %zu", at);
    if (ndims < 0 || ndims > 4)
        return sg_error_set(err, SG_EINVAL, "silero: tensor at byte %zu has %d dimensions", at,
                            (int)ndims);
    if (nlen <= 0 || nlen > MAX_NAME)
        return sg_error_set(err, SG_EINVAL, "silero: tensor at byte %zu has a name of %d bytes",
                            at, (int)nlen);
    if (type != 0 && type != 1)
        return sg_error_set(err, SG_EINVAL,
                            "silero: tensor at byte %zu has type %d (only F32 = 0 and F16 = 1)",
                            at, (int)type);
    int32_t ne[4] = {1, 1, 1, 1};
    for (int i = 0; i < ndims; i++) {
        if (rd_i32(r, &ne[i]) != 0)
            return sg_error_set(err, SG_EINVAL, "silero: truncated tensor header at byte %zu", at);
        if (ne[i] <= 0)
            return sg_error_set(err, SG_EINVAL, "silero: tensor at byte %zu has dimension %d",
                                at, (int)ne[i]);
    }
    if (r->len - r->off < (size_t)nlen)
        return sg_error_set(err, SG_EINVAL, "silero: truncated tensor name at byte %zu", at);
    char name[MAX_NAME + 1];
    memcpy(name, r->p + r->off, (size_t)nlen);
    name[nlen] = 0;
    r->off += (size_t)nlen;
    if (strlen(name) != (size_t)nlen)
        return sg_error_set(err, SG_EINVAL, "silero: tensor name at byte %zu contains NUL", at);
    tensor_spec *s = NULL;
    for (int i = 0; i < T_COUNT && !s; i++)
        if (strcmp(specs[i].name, name) == 0)
            s = &specs[i];
    if (!s)
        return sg_error_set(err, SG_EINVAL, "silero: unknown tensor '%.64s'", name);
    if (s->data)
        return sg_error_set(err, SG_EINVAL, "silero: tensor '%s' appears twice", name);
    if (memcmp(ne, s->ne, sizeof ne) != 0)
        return sg_error_set(err, SG_EINVAL,
                            "silero: tensor '%s' has shape [%d, %d, %d, %d], expected [%d, %d, %d, %d]",
                            name, (int)ne[0], (int)ne[1], (int)ne[2], (int)ne[3], (int)s->ne[0],
                            (int)s->ne[1], (int)s->ne[2], (int)s->ne[3]);
    /* the shape is one we know, so the count is small */
    const size_t count = (size_t)ne[0] * (size_t)ne[1] * (size_t)ne[2] * (size_t)ne[3];
    const size_t esize = type == 0 ? 4 : 2;
    if ((r->len - r->off) / esize < count)
        return sg_error_set(err, SG_EINVAL, "silero: tensor '%s' is truncated (%zu of %zu bytes)",
                            name, r->len - r->off, count * esize);
    float *v = malloc(count * sizeof(float));
    if (!v)
        return sg_error_set(err, SG_ENOMEM, "silero: out of memory");
    const uint8_t *b = r->p + r->off;
    for (size_t i = 0; i < count; i++) {
        if (type == 0) {
            uint32_t u = (uint32_t)b[4 * i] | (uint32_t)b[4 * i + 1] << 8 |
                         (uint32_t)b[4 * i + 2] << 16 | (uint32_t)b[4 * i + 3] << 24;
            memcpy(&v[i], &u, sizeof u);
        } else {
            v[i] = half_to_float((uint16_t)(b[2 * i] | b[2 * i + 1] << 8));
        }
        if (!isfinite(v[i])) {
            free(v);
            return sg_error_set(err, SG_EINVAL, "silero: tensor '%s' has a non-finite value at %zu",
                                name, i);
        }
    }
    r->off += count * esize;
    s->data = v;
    return SG_OK;
}

/* Builds the layers from the tensors (file order: encoder weights [out][in][tap]). */
static sg_status build(sg_silero *m, tensor_spec *t, sg_error *err)
{
    sg_status st = sg_linear_init(&m->stft, t[T_STFT].data, NULL, 2 * N_BINS, N_FFT, SG_PREC_F32,
                                  err);
    for (int i = 0; i < N_ENC && st == SG_OK; i++) {
        const int in = ENC[i].in, out = ENC[i].out;
        const float *w = t[T_ENC_W0 + 2 * i].data;
        float *perm = malloc((size_t)out * KSIZE * in * sizeof(float));
        if (!perm)
            return sg_error_set(err, SG_ENOMEM, "silero: out of memory");
        for (int o = 0; o < out; o++)
            for (int c = 0; c < in; c++)
                for (int j = 0; j < KSIZE; j++)
                    perm[((size_t)o * KSIZE + j) * in + c] = w[((size_t)o * in + c) * KSIZE + j];
        st = sg_linear_init(&m->enc[i], perm, t[T_ENC_W0 + 2 * i + 1].data, out, KSIZE * in,
                            SG_PREC_F32, err);
        free(perm);
    }
    if (st != SG_OK)
        return st;
    float bias[4 * HIDDEN];
    for (int i = 0; i < 4 * HIDDEN; i++)
        bias[i] = t[T_B_IH].data[i] + t[T_B_HH].data[i];
    if ((st = sg_linear_init(&m->lstm_x, t[T_IH].data, bias, 4 * HIDDEN, HIDDEN, SG_PREC_F32,
                             err)) != SG_OK ||
        (st = sg_linear_init(&m->lstm_h, t[T_HH].data, NULL, 4 * HIDDEN, HIDDEN, SG_PREC_F32,
                             err)) != SG_OK)
        return st;
    memcpy(m->head_w, t[T_HEAD_W].data, sizeof m->head_w);
    m->head_b = t[T_HEAD_B].data[0];
    return SG_OK;
}

sg_silero *sg_silero_load_memory(const uint8_t *buf, size_t len, sg_error *err)
{
    if (!buf && len) {
        sg_error_set(err, SG_EINVAL, "silero: no data");
        return NULL;
    }
    reader r = {buf, len, 0};
    sg_silero *m = calloc(1, sizeof *m);
    if (!m) {
        sg_error_set(err, SG_ENOMEM, "silero: out of memory");
        return NULL;
    }
    tensor_spec specs[T_COUNT];
    specs_init(specs);
    sg_status st = read_header(&r, m->version, sizeof m->version, err);
    while (st == SG_OK && r.off < r.len)
        st = read_tensor(&r, specs, err);
    for (int i = 0; i < T_COUNT && st == SG_OK; i++)
        if (!specs[i].data)
            st = sg_error_set(err, SG_EINVAL, "silero: missing tensor '%s' (file truncated?)",
                              specs[i].name);
    if (st == SG_OK)
        st = build(m, specs, err);
    specs_free(specs);
    if (st != SG_OK) {
        sg_silero_free(m);
        return NULL;
    }
    return m;
}

sg_silero *sg_silero_load(const char *path, sg_error *err)
{
    if (!path) {
        sg_error_set(err, SG_EINVAL, "silero: no model path");
        return NULL;
    }
    char *buf;
    size_t len;
    if (sg_file_read(path, MAX_FILE_BYTES, &buf, &len, err) != SG_OK)
        return NULL;
    sg_silero *m = sg_silero_load_memory((const uint8_t *)buf, len, err);
    free(buf);
    return m;
}

void sg_silero_free(sg_silero *m)
{
    if (!m)
        return;
    sg_linear_free(&m->stft);
    for (int i = 0; i < N_ENC; i++)
        sg_linear_free(&m->enc[i]);
    sg_linear_free(&m->lstm_x);
    sg_linear_free(&m->lstm_h);
    free(m);
}

const char *sg_silero_version(const sg_silero *m) { return m->version; }

/* ---- forward ---------------------------------------------------------------------------------- */

static inline float sigmoid(float x) { return 1.0f / (1.0f + expf(-x)); }

/* Per-call buffers for a block of BLOCK windows (rows are time steps, columns channels). */
typedef struct work {
    float *frames; /* [BLOCK * 4][256] */
    float *spec;   /* [BLOCK * 4][258] */
    float *act[2]; /* ping-pong activations, [BLOCK * 4][129] at most */
    float *cols;   /* im2col rows, [BLOCK * 4][3 * 129] at most */
    float *gates;  /* [BLOCK][512]: W_ih x + b */
    float *block;  /* the one allocation */
} work;

static int work_alloc(work *w)
{
    const size_t frames = (size_t)BLOCK * N_FRAMES * N_FFT, spec = (size_t)BLOCK * N_FRAMES * 2 * N_BINS,
                 act = (size_t)BLOCK * N_FRAMES * N_BINS, cols = (size_t)BLOCK * N_FRAMES * KSIZE * N_BINS,
                 gates = (size_t)BLOCK * 4 * HIDDEN;
    w->block = malloc((frames + spec + 2 * act + cols + gates) * sizeof(float));
    if (!w->block)
        return -1;
    w->frames = w->block;
    w->spec = w->frames + frames;
    w->act[0] = w->spec + spec;
    w->act[1] = w->act[0] + act;
    w->cols = w->act[1] + act;
    w->gates = w->cols + cols;
    return 0;
}

/* The 4 STFT frames of window w: 64 samples of context and the window's 512 (zeros outside the
 * audio), reflected by 64 at the right end (x[575 + k] = x[575 - k]). The window's context starts
 * at pcm[w * 512 - shift]: shift 64 for whole audio (the context of window 0 is zeros before the
 * audio), 0 for a stream's buffer, which holds the real context in front of its windows. */
static void window_frames(const float *pcm, size_t n, size_t w, long shift, float *frames)
{
    float x[PADDED];
    const long start = (long)(w * SG_SILERO_WINDOW) - shift;
    for (int i = 0; i < SG_SILERO_CONTEXT + SG_SILERO_WINDOW; i++) {
        const long j = start + i;
        x[i] = j >= 0 && (size_t)j < n ? pcm[j] : 0.0f;
    }
    const int last = SG_SILERO_CONTEXT + SG_SILERO_WINDOW - 1;
    for (int k = 1; k <= RIGHT_PAD; k++)
        x[last + k] = x[last - k];
    for (int f = 0; f < N_FRAMES; f++)
        memcpy(frames + (size_t)f * N_FFT, x + f * HOP, N_FFT * sizeof(float));
}

/* conv1d (k3, pad 1, stride s) + ReLU over each of nb windows: x is [nb * t_in][c_in], y is
 * [nb * t_out][c_out]. Each output step's im2col row is the three input steps it reads, side by
 * side ([tap][c_in], the order the weights were permuted to), zeros at the edges. */
static int conv_relu(const sg_linear *L, int c_in, int stride, int t_in, int nb, const float *x,
                     float *cols, float *y)
{
    const int t_out = (t_in - 1) / stride + 1;
    for (int b = 0; b < nb; b++)
        for (int t = 0; t < t_out; t++) {
            float *row = cols + ((size_t)b * t_out + t) * KSIZE * c_in;
            for (int j = 0; j < KSIZE; j++) {
                const int ti = t * stride + j - 1;
                if (ti >= 0 && ti < t_in)
                    memcpy(row + j * c_in, x + ((size_t)b * t_in + ti) * c_in, c_in * sizeof(float));
                else
                    memset(row + j * c_in, 0, c_in * sizeof(float));
            }
        }
    sg_linear_forward(L, cols, nb * t_out, KSIZE * c_in, y, L->n, NULL, NULL);
    for (size_t i = 0; i < (size_t)nb * t_out * L->n; i++)
        y[i] = y[i] > 0.0f ? y[i] : 0.0f;
    return t_out;
}

/* Windows w0 .. w0 + nb - 1 up to the LSTM: w->gates[b] = W_ih enc(window) + b_ih + b_hh. */
static void front_end(const sg_silero *m, const float *pcm, size_t n, long shift, size_t w0, int nb,
                      work *w)
{
    for (int b = 0; b < nb; b++)
        window_frames(pcm, n, w0 + (size_t)b, shift, w->frames + (size_t)b * N_FRAMES * N_FFT);
    const int rows = nb * N_FRAMES;
    sg_linear_forward(&m->stft, w->frames, rows, N_FFT, w->spec, 2 * N_BINS, NULL, NULL);
    float *mag = w->act[0];
    for (int r = 0; r < rows; r++) {
        const float *re = w->spec + (size_t)r * 2 * N_BINS, *im = re + N_BINS;
        for (int c = 0; c < N_BINS; c++)
            mag[(size_t)r * N_BINS + c] = sqrtf(re[c] * re[c] + im[c] * im[c]);
    }
    int t = N_FRAMES, cur = 0;
    for (int i = 0; i < N_ENC; i++, cur ^= 1)
        t = conv_relu(&m->enc[i], ENC[i].in, ENC[i].stride, t, nb, w->act[cur], w->cols,
                      w->act[cur ^ 1]);
    /* t == 1: one 128-vector per window */
    sg_linear_forward(&m->lstm_x, w->act[cur], nb, HIDDEN, w->gates, 4 * HIDDEN, NULL, NULL);
}

/* One LSTM step from the input part gx = W_ih x + b, then the head: the window's probability. */
static float recur(const sg_silero *m, const float *gx, float *h, float *c)
{
    float g[4 * HIDDEN];
    sg_linear_forward(&m->lstm_h, h, 1, HIDDEN, g, 4 * HIDDEN, NULL, NULL);
    float z = m->head_b;
    for (int j = 0; j < HIDDEN; j++) {
        const float i_t = sigmoid(gx[j] + g[j]);
        const float f_t = sigmoid(gx[HIDDEN + j] + g[HIDDEN + j]);
        const float g_t = tanhf(gx[2 * HIDDEN + j] + g[2 * HIDDEN + j]);
        const float o_t = sigmoid(gx[3 * HIDDEN + j] + g[3 * HIDDEN + j]);
        c[j] = f_t * c[j] + i_t * g_t;
        h[j] = o_t * tanhf(c[j]);
        z += m->head_w[j] * (h[j] > 0.0f ? h[j] : 0.0f);
    }
    return sigmoid(z);
}

sg_status sg_silero_probs(const sg_silero *m, const float *pcm16k, size_t n, float **probs,
                          size_t *nprobs, sg_error *err)
{
    if (!probs || !nprobs)
        return sg_error_set(err, SG_EINVAL, "silero: no output");
    *probs = NULL;
    *nprobs = 0;
    if (!m || (!pcm16k && n))
        return sg_error_set(err, SG_EINVAL, "silero: no model or no audio");
    for (size_t i = 0; i < n; i++)
        if (!isfinite(pcm16k[i]))
            return sg_error_set(err, SG_EINVAL, "silero: audio sample %zu is not finite", i);
    if (n == 0)
        return SG_OK;
    const size_t nwin = n / SG_SILERO_WINDOW + (n % SG_SILERO_WINDOW != 0);
    float *out = malloc(nwin * sizeof(float));
    work w;
    if (!out || work_alloc(&w) != 0) {
        free(out);
        return sg_error_set(err, SG_ENOMEM, "silero: out of memory");
    }
    float h[HIDDEN] = {0}, c[HIDDEN] = {0};
    for (size_t w0 = 0; w0 < nwin; w0 += BLOCK) {
        const int nb = nwin - w0 < BLOCK ? (int)(nwin - w0) : BLOCK;
        front_end(m, pcm16k, n, SG_SILERO_CONTEXT, w0, nb, &w);
        for (int b = 0; b < nb; b++)
            out[w0 + (size_t)b] = recur(m, w.gates + (size_t)b * 4 * HIDDEN, h, c);
    }
    free(w.block);
    /* finite audio of any sane amplitude cannot get here with the real weights; a sample near
     * 1e19 overflows the STFT's squares (and odd weights can overflow too) */
    for (size_t i = 0; i < nwin; i++)
        if (isnan(out[i])) {
            free(out);
            return sg_error_set(err, SG_EINVAL,
                                "silero: activations overflowed at window %zu (audio amplitude "
                                "out of range?)", i);
        }
    *probs = out;
    *nprobs = nwin;
    return SG_OK;
}

/* ---- streaming ------------------------------------------------------------------------------- */

/* buf holds the 64 context samples, then the samples not yet in a window; whole windows are run
 * BLOCK at a time through the same front end as sg_silero_probs (shift 0: the context is real),
 * then the recurrence continues from the stream's h and c. So the probabilities are those of the
 * concatenated audio, whatever the chunking. */
struct sg_silero_stream {
    const sg_silero *m;
    float h[HIDDEN], c[HIDDEN];
    float *buf;     /* SG_SILERO_CONTEXT + BLOCK * SG_SILERO_WINDOW */
    size_t pending; /* samples after the context */
    size_t windows; /* windows done since the start */
    bool broken;    /* activations overflowed: the state is garbage until a reset */
    work w;
};

sg_silero_stream *sg_silero_stream_new(const sg_silero *m, sg_error *err)
{
    if (!m) {
        sg_error_set(err, SG_EINVAL, "silero: no model");
        return NULL;
    }
    sg_silero_stream *s = calloc(1, sizeof *s);
    if (s)
        s->buf = calloc(SG_SILERO_CONTEXT + (size_t)BLOCK * SG_SILERO_WINDOW, sizeof(float));
    if (!s || !s->buf || work_alloc(&s->w) != 0) {
        if (s)
            free(s->buf);
        free(s);
        sg_error_set(err, SG_ENOMEM, "silero: out of memory");
        return NULL;
    }
    s->m = m;
    return s;
}

void sg_silero_stream_free(sg_silero_stream *s)
{
    if (!s)
        return;
    free(s->w.block);
    free(s->buf);
    free(s);
}

void sg_silero_stream_reset(sg_silero_stream *s)
{
    memset(s->h, 0, sizeof s->h);
    memset(s->c, 0, sizeof s->c);
    memset(s->buf, 0, SG_SILERO_CONTEXT * sizeof(float));
    s->pending = 0;
    s->windows = 0;
    s->broken = false;
}

size_t sg_silero_stream_capacity(const sg_silero_stream *s, size_t n)
{
    return (s->pending + n) / SG_SILERO_WINDOW;
}

size_t sg_silero_stream_windows(const sg_silero_stream *s) { return s->windows; }

/* Runs nb windows of buf (nb * 512 samples after the context, or fewer for the zero-padded last
 * window: valid = samples that are audio) and appends their probabilities to out. */
static sg_status stream_run(sg_silero_stream *s, int nb, size_t valid, float *out, sg_error *err)
{
    front_end(s->m, s->buf, SG_SILERO_CONTEXT + valid, 0, 0, nb, &s->w);
    for (int b = 0; b < nb; b++) {
        out[b] = recur(s->m, s->w.gates + (size_t)b * 4 * HIDDEN, s->h, s->c);
        if (isnan(out[b])) {
            s->broken = true;
            return sg_error_set(err, SG_EINVAL,
                                "silero: activations overflowed at window %zu (audio amplitude "
                                "out of range?)", s->windows + (size_t)b);
        }
    }
    s->windows += (size_t)nb;
    return SG_OK;
}

sg_status sg_silero_stream_feed(sg_silero_stream *s, const float *pcm, size_t n, float *probs,
                                size_t cap, size_t *nprobs, sg_error *err)
{
    *nprobs = 0;
    if (!s || (!pcm && n))
        return sg_error_set(err, SG_EINVAL, "silero: no stream or no audio");
    if (s->broken)
        return sg_error_set(err, SG_EINVAL, "silero: the stream overflowed earlier; reset it");
    if (cap < sg_silero_stream_capacity(s, n))
        return sg_error_set(err, SG_EINVAL, "silero: room for %zu probabilities, %zu needed", cap,
                            sg_silero_stream_capacity(s, n));
    for (size_t i = 0; i < n; i++)
        if (!isfinite(pcm[i]))
            return sg_error_set(err, SG_EINVAL, "silero: audio sample %zu is not finite", i);
    const size_t room = (size_t)BLOCK * SG_SILERO_WINDOW;
    size_t done = 0;
    while (done < n) {
        size_t take = room - s->pending;
        if (take > n - done)
            take = n - done;
        memcpy(s->buf + SG_SILERO_CONTEXT + s->pending, pcm + done, take * sizeof(float));
        s->pending += take;
        done += take;
        const int nb = (int)(s->pending / SG_SILERO_WINDOW);
        if (nb == 0 || (done < n && s->pending < room))
            continue; /* collect a full block while more input is at hand */
        sg_status st = stream_run(s, nb, (size_t)nb * SG_SILERO_WINDOW, probs + *nprobs, err);
        if (st != SG_OK)
            return st;
        *nprobs += (size_t)nb;
        /* the last 64 samples of the last window become the context; the rest moves up */
        const size_t consumed = (size_t)nb * SG_SILERO_WINDOW;
        memmove(s->buf, s->buf + consumed,
                (SG_SILERO_CONTEXT + s->pending - consumed) * sizeof(float));
        s->pending -= consumed;
    }
    return SG_OK;
}

sg_status sg_silero_stream_finish(sg_silero_stream *s, float *prob, size_t *nprobs, sg_error *err)
{
    *nprobs = 0;
    if (!s)
        return sg_error_set(err, SG_EINVAL, "silero: no stream");
    sg_status st = SG_OK;
    if (s->broken) {
        st = sg_error_set(err, SG_EINVAL, "silero: the stream overflowed earlier");
    } else if (s->pending) {
        /* the partial last window, zero-padded as sg_silero_probs pads the end of the audio */
        memset(s->buf + SG_SILERO_CONTEXT + s->pending, 0,
               (SG_SILERO_WINDOW - s->pending) * sizeof(float));
        st = stream_run(s, 1, s->pending, prob, err);
        if (st == SG_OK)
            *nprobs = 1;
    }
    sg_silero_stream_reset(s);
    return st;
}

/* ---- segments --------------------------------------------------------------------------------- */

sg_vad_params sg_vad_params_default(void)
{
    return (sg_vad_params){.threshold = 0.5f, .neg_threshold = 0.0f, .min_speech_ms = 250,
                           .min_silence_ms = 100, .speech_pad_ms = 30};
}

typedef struct span {
    long long start, end; /* samples */
} span;

/* silero's get_speech_timestamps after its model loop, with max_speech_duration_s = inf (so its
 * prev_end / next_start / possible_ends bookkeeping never acts and is left out). Positions are
 * window starts in samples; the thresholds in samples are floats in silero (ms * 16 here, always
 * whole numbers) and the comparisons are its strict / non-strict ones. */
sg_status sg_vad_segments(const float *probs, size_t nprobs, size_t n_samples,
                          const sg_vad_params *p, sg_vad_segment **segs, size_t *nsegs,
                          sg_error *err)
{
    if (!segs || !nsegs)
        return sg_error_set(err, SG_EINVAL, "vad: no output");
    *segs = NULL;
    *nsegs = 0;
    const sg_vad_params def = sg_vad_params_default();
    if (!p)
        p = &def;
    if (!(p->threshold >= 0.0f && p->threshold <= 1.0f) || !(p->neg_threshold <= 1.0f) ||
        p->min_speech_ms < 0 || p->min_silence_ms < 0 || p->speech_pad_ms < 0 ||
        p->min_speech_ms > 3600000 || p->min_silence_ms > 3600000 || p->speech_pad_ms > 3600000)
        return sg_error_set(err, SG_EINVAL, "vad: parameters out of range");
    if (!probs && nprobs)
        return sg_error_set(err, SG_EINVAL, "vad: no probabilities");
    const size_t want = n_samples / SG_SILERO_WINDOW + (n_samples % SG_SILERO_WINDOW != 0);
    if (nprobs != want)
        return sg_error_set(err, SG_EINVAL, "vad: %zu probabilities for %zu samples (need %zu)",
                            nprobs, n_samples, want);
    const double thr = p->threshold;
    const double neg = p->neg_threshold > 0.0f ? (double)p->neg_threshold
                                               : fmax(thr - 0.15, 0.01);
    const double rate = SG_SILERO_RATE;
    const double min_speech = rate * p->min_speech_ms / 1000.0;
    const double min_silence = rate * p->min_silence_ms / 1000.0;
    const double pad = rate * p->speech_pad_ms / 1000.0;
    const long long len = (long long)n_samples;

    /* at most one segment per two windows: a start and an end */
    span *sp = malloc((nprobs / 2 + 1) * sizeof *sp);
    if (!sp)
        return sg_error_set(err, SG_ENOMEM, "vad: out of memory");
    size_t ns = 0;
    int triggered = 0;
    long long start = 0, temp_end = 0;
    for (size_t i = 0; i < nprobs; i++) {
        const double prob = probs[i];
        const long long pos = (long long)i * SG_SILERO_WINDOW;
        if (prob >= thr && temp_end)
            temp_end = 0;
        if (prob >= thr && !triggered) {
            triggered = 1;
            start = pos;
            continue;
        }
        if (prob < neg && triggered) {
            if (!temp_end)
                temp_end = pos;
            if ((double)(pos - temp_end) < min_silence)
                continue;
            if ((double)(temp_end - start) > min_speech)
                sp[ns++] = (span){start, temp_end};
            temp_end = 0;
            triggered = 0;
        }
    }
    if (triggered && (double)(len - start) > min_speech)
        sp[ns++] = (span){start, len};

    /* padding: pad on each side, or half the gap each when two segments are closer than 2 pads */
    for (size_t i = 0; i < ns; i++) {
        if (i == 0)
            sp[i].start = (long long)fmax(0.0, (double)sp[i].start - pad);
        if (i + 1 < ns) {
            const long long gap = sp[i + 1].start - sp[i].end; /* > 0 */
            if ((double)gap < 2.0 * pad) {
                sp[i].end += gap / 2;
                sp[i + 1].start = sp[i + 1].start - gap / 2 > 0 ? sp[i + 1].start - gap / 2 : 0;
            } else {
                sp[i].end = (long long)fmin((double)len, (double)sp[i].end + pad);
                sp[i + 1].start = (long long)fmax(0.0, (double)sp[i + 1].start - pad);
            }
        } else {
            sp[i].end = (long long)fmin((double)len, (double)sp[i].end + pad);
        }
    }
    if (ns == 0) {
        free(sp);
        return SG_OK;
    }
    sg_vad_segment *out = malloc(ns * sizeof *out);
    if (!out) {
        free(sp);
        return sg_error_set(err, SG_ENOMEM, "vad: out of memory");
    }
    for (size_t i = 0; i < ns; i++) {
        out[i].start_s = (double)sp[i].start / rate;
        out[i].end_s = (double)sp[i].end / rate;
    }
    free(sp);
    *segs = out;
    *nsegs = ns;
    return SG_OK;
}

/* ---- streaming segments ------------------------------------------------------------------------ */

sg_status sg_vad_tracker_init(sg_vad_tracker *t, const sg_vad_params *p, sg_error *err)
{
    memset(t, 0, sizeof *t);
    sg_vad_segment *none;
    size_t n;
    sg_status st = sg_vad_segments(NULL, 0, 0, p, &none, &n, err); /* validates p */
    if (st != SG_OK)
        return st;
    const sg_vad_params def = sg_vad_params_default();
    if (!p)
        p = &def;
    t->thr = p->threshold;
    t->neg = p->neg_threshold > 0.0f ? (double)p->neg_threshold : fmax(t->thr - 0.15, 0.01);
    t->min_speech = SG_SILERO_RATE * p->min_speech_ms / 1000.0;
    t->min_silence = SG_SILERO_RATE * p->min_silence_ms / 1000.0;
    t->pad = SG_SILERO_RATE * p->speech_pad_ms / 1000.0;
    return SG_OK;
}

void sg_vad_tracker_reset(sg_vad_tracker *t)
{
    t->triggered = false;
    t->start = t->temp_end = t->pos = t->prev_end = 0;
}

/* The padded start of a segment starting at raw sample start. */
static long long padded_start(const sg_vad_tracker *t, long long start)
{
    double s = fmax(0.0, (double)start - t->pad);
    if (s < (double)t->prev_end)
        s = (double)t->prev_end;
    return (long long)s;
}

/* The loop body of sg_vad_segments for one window, as events. */
bool sg_vad_tracker_push(sg_vad_tracker *t, float prob, sg_vad_tracker_event *ev)
{
    const double p = prob;
    const long long pos = t->pos;
    t->pos += SG_SILERO_WINDOW;
    ev->at = t->pos;
    if (p >= t->thr && t->temp_end)
        t->temp_end = 0;
    if (p >= t->thr && !t->triggered) {
        t->triggered = true;
        t->start = pos;
        ev->kind = SG_VAD_TRACK_START;
        ev->start = padded_start(t, pos);
        ev->end = pos;
        return true;
    }
    if (p < t->neg && t->triggered) {
        if (!t->temp_end)
            t->temp_end = pos;
        if ((double)(pos - t->temp_end) < t->min_silence)
            return false;
        t->triggered = false;
        const long long start = t->start, end = t->temp_end;
        t->temp_end = 0;
        if ((double)(end - start) > t->min_speech) {
            ev->kind = SG_VAD_TRACK_END;
            ev->start = padded_start(t, start);
            /* sg_vad_segments' min(len, end + pad); the audio reaches at least to this window */
            ev->end = (long long)fmin((double)end + t->pad, (double)t->pos);
            t->prev_end = ev->end;
        } else {
            ev->kind = SG_VAD_TRACK_DROP;
            ev->start = start;
            ev->end = end;
        }
        return true;
    }
    return false;
}

bool sg_vad_tracker_finish(sg_vad_tracker *t, size_t n_samples, sg_vad_tracker_event *ev)
{
    const bool open = t->triggered;
    const long long start = t->start, len = (long long)n_samples;
    if (open) {
        ev->at = len;
        ev->end = len;
        if ((double)(len - start) > t->min_speech) {
            ev->kind = SG_VAD_TRACK_END;
            ev->start = padded_start(t, start);
        } else {
            ev->kind = SG_VAD_TRACK_DROP;
            ev->start = start;
        }
    }
    sg_vad_tracker_reset(t);
    return open;
}
