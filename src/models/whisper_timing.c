/* Word timestamps, following openai/whisper's timing.py step by step (find_alignment, dtw_cpu and
 * backtrace, median_filter, merge_punctuations, add_word_timestamps) and tokenizer.py's
 * split_to_word_tokens / split_tokens_on_spaces / split_tokens_on_unicode. Python's substring
 * tests ("x in s", true for an empty x) are strstr on UTF-8 (the same for valid UTF-8); str.strip()
 * removes Python's whitespace characters. Times are doubles as numpy's float64 until they are
 * stored in the segments' floats; round(x, 2) is Python's (the double nearest the correctly
 * rounded decimal). Memory: the scores of one decoder layer's alignment heads (heads x tokens x
 * num_frames / 2 floats; a layer at a time), their sum (doubles),
 * the DTW tables ((tokens + 1) x (num_frames / 2 + 1) floats and bytes) and the words. */
#include "models/whisper_timing.h"

#include <math.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/utf8.h"
#include "nn/ops.h"

#define TOKENS_PER_SECOND 50.0 /* openai's audio.TOKENS_PER_SECOND: 20 ms per encoder position */
#define MEDFILT_WIDTH 7

/* ---- median filter and DTW ----------------------------------------------------------------- */

/* torch's sort order: NaN after every number */
static bool f_less(float x, float y)
{
    return isnan(y) ? !isnan(x) : x < y;
}

/* the middle of w[0..n) sorted (insertion sort: n is the filter width, 7) */
static float middle(float *w, int n)
{
    for (int i = 1; i < n; i++) {
        const float v = w[i];
        int j = i;
        for (; j > 0 && f_less(v, w[j - 1]); j--)
            w[j] = w[j - 1];
        w[j] = v;
    }
    return w[n / 2];
}

/* medians of the 7-wide windows of p[0..n + 6) without NaN: a 16-comparator sorting network
 * (checked on all 0/1 inputs), branch-free so that the loop over i vectorises */
#define CE(a, b)                       \
    do {                               \
        const float lo_ = a < b ? a : b; \
        b = a < b ? b : a;             \
        a = lo_;                       \
    } while (0)

static void median7(const float *p, int n, float *out)
{
    for (int i = 0; i < n; i++) {
        float a0 = p[i], a1 = p[i + 1], a2 = p[i + 2], a3 = p[i + 3], a4 = p[i + 4], a5 = p[i + 5],
              a6 = p[i + 6];
        CE(a0, a6);
        CE(a2, a3);
        CE(a4, a5);
        CE(a0, a2);
        CE(a1, a4);
        CE(a3, a6);
        CE(a0, a1);
        CE(a2, a5);
        CE(a3, a4);
        CE(a1, a2);
        CE(a4, a6);
        CE(a2, a3);
        CE(a4, a5);
        CE(a1, a2);
        CE(a3, a4);
        (void)a0, (void)a1, (void)a2, (void)a4, (void)a5, (void)a6;
        out[i] = a3;
    }
}
#undef CE

sg_status sg_whisper_median_filter(float *x, int rows, int n, int width, sg_error *err)
{
    if (!x || rows < 0 || n < 0 || width < 1 || width % 2 == 0 || width > 1001)
        return sg_error_set(err, SG_EINVAL, "median filter: bad arguments (width %d must be odd)",
                            width);
    const int pad = width / 2;
    if (n <= pad) /* openai: F.pad's reflection needs pad < n; x is returned as it is */
        return SG_OK;
    float *p = malloc(((size_t)n + 2 * (size_t)pad + (size_t)width) * sizeof(float));
    if (!p)
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    float *win = p + n + 2 * pad;
    for (int r = 0; r < rows; r++) {
        float *row = x + (size_t)r * n;
        /* reflect padding: .. x2 x1 | x0 .. x(n-1) | x(n-2) x(n-3) .. */
        for (int i = 0; i < n + 2 * pad; i++) {
            int s = i - pad;
            if (s < 0)
                s = -s;
            else if (s >= n)
                s = 2 * (n - 1) - s;
            p[i] = row[s];
        }
        bool nan = false;
        for (int i = 0; i < n + 2 * pad; i++)
            nan |= isnan(p[i]);
        if (width == 7 && !nan) {
            median7(p, n, row);
            continue;
        }
        for (int i = 0; i < n; i++) {
            memcpy(win, p + i, (size_t)width * sizeof(float));
            row[i] = middle(win, width);
        }
    }
    free(p);
    return SG_OK;
}

sg_status sg_whisper_dtw(const float *x, int N, int M, int *text_idx, int *time_idx, int *len,
                         sg_error *err)
{
    if (!x || !text_idx || !time_idx || !len || N < 1 || M < 1 || N > 100000 || M > 100000)
        return sg_error_set(err, SG_EINVAL, "dtw: bad arguments");
    const size_t W = (size_t)M + 1;
    float *cost = malloc((size_t)(N + 1) * W * sizeof(float));
    signed char *trace = malloc((size_t)(N + 1) * W);
    if (!cost || !trace) {
        free(cost);
        free(trace);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    /* dtw_cpu: float32 costs (the sum is formed in double, x being float64 there), ties go to
     * the last choice: c0 only when strictly below both, c1 likewise, else c2 */
    for (size_t i = 0; i < (size_t)(N + 1) * W; i++) {
        cost[i] = INFINITY;
        trace[i] = -1;
    }
    cost[0] = 0.0f;
    for (int j = 1; j <= M; j++)
        for (int i = 1; i <= N; i++) {
            const float c0 = cost[(size_t)(i - 1) * W + j - 1], c1 = cost[(size_t)(i - 1) * W + j],
                        c2 = cost[(size_t)i * W + j - 1];
            float c;
            signed char t;
            if (c0 < c1 && c0 < c2)
                c = c0, t = 0;
            else if (c1 < c0 && c1 < c2)
                c = c1, t = 1;
            else
                c = c2, t = 2;
            cost[(size_t)i * W + j] = (float)((double)x[(size_t)(i - 1) * M + j - 1] + (double)c);
            trace[(size_t)i * W + j] = t;
        }
    /* backtrace */
    for (int j = 0; j <= M; j++)
        trace[j] = 2;
    for (int i = 0; i <= N; i++)
        trace[(size_t)i * W] = 1;
    int i = N, j = M, k = 0;
    while (i > 0 || j > 0) {
        text_idx[k] = i - 1;
        time_idx[k] = j - 1;
        k++;
        const int t = trace[(size_t)i * W + j];
        if (t == 0)
            i--, j--;
        else if (t == 1)
            i--;
        else
            j--;
    }
    for (int a = 0, b = k - 1; a < b; a++, b--) {
        int s = text_idx[a];
        text_idx[a] = text_idx[b];
        text_idx[b] = s;
        s = time_idx[a];
        time_idx[a] = time_idx[b];
        time_idx[b] = s;
    }
    *len = k;
    free(cost);
    free(trace);
    return SG_OK;
}

/* ---- text helpers --------------------------------------------------------------------------- */

/* Python's str.isspace() characters (what str.strip() removes) */
static bool py_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || (c >= 0x1C && c <= 0x20) || c == 0x85 || c == 0xA0 ||
           c == 0x1680 || (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 ||
           c == 0x202F || c == 0x205F || c == 0x3000;
}

/* next code point of valid UTF-8 s at *i */
static uint32_t next_cp(const char *s, size_t *i)
{
    const unsigned char *u = (const unsigned char *)s + *i;
    uint32_t c;
    size_t k;
    if (u[0] < 0x80)
        c = u[0], k = 1;
    else if (u[0] < 0xE0)
        c = u[0] & 0x1F, k = 2;
    else if (u[0] < 0xF0)
        c = u[0] & 0x0F, k = 3;
    else
        c = u[0] & 0x07, k = 4;
    for (size_t j = 1; j < k && u[j]; j++)
        c = (c << 6) | (u[j] & 0x3F);
    *i += k;
    return c;
}

/* s.strip() in a (Python substring test; the empty string is in every string) */
static bool stripped_in(const char *s, const char *a)
{
    const size_t e = strlen(s);
    size_t b = e, i = 0;
    while (i < e) { /* first non-space */
        const size_t at = i;
        if (!py_space(next_cp(s, &i))) {
            b = at;
            break;
        }
    }
    size_t last_end = b; /* end of the last non-space */
    for (i = b; i < e;) {
        const uint32_t c = next_cp(s, &i);
        if (!py_space(c))
            last_end = i;
    }
    char tmp[256];
    const size_t n = last_end - b;
    if (n >= sizeof tmp)
        return false; /* longer than any punctuation string */
    memcpy(tmp, s + b, n);
    tmp[n] = 0;
    return strstr(a, tmp) != NULL;
}

static const char PUNCTUATION[] = "!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~"; /* string.punctuation */
static const char SENTENCE_END[] = ".\xe3\x80\x82!\xef\xbc\x81?\xef\xbc\x9f";   /* .。!！?？ */

/* Python's round(x, 2) */
static double round2(double x)
{
    char b[64];
    if (!isfinite(x) || fabs(x) > 1e15)
        return x;
    snprintf(b, sizeof b, "%.2f", x);
    return strtod(b, NULL);
}

/* ---- words ---------------------------------------------------------------------------------- */

typedef struct wt {
    char *word;
    int ntok;
    double start, end, prob;
} wt;

typedef struct tctx {
    sg_whisper *m;
    const int32_t *text;
    int nt, first;
    float *probs;
} tctx;

/* find_alignment's text_token_probs: softmax over logits[:eot] at the text token */
static void prob_row(void *ctx, int row, const float *logits, int vocab)
{
    (void)vocab;
    tctx *c = ctx;
    const int i = row - c->first;
    if (i < 0 || i >= c->nt)
        return;
    const int eot = sg_whisper_get_info(c->m)->eot;
    c->probs[i] = (float)exp((double)logits[c->text[i]] - sg_logsumexp(logits, eot));
}

/* openai's decode_with_timestamps of toks[0..n) (text tokens, possibly <|endoftext|> last) */
static char *decode_toks(const sg_whisper *m, const int32_t *toks, int n)
{
    const int32_t eot = sg_whisper_get_info(m)->eot;
    const bool with_eot = n > 0 && toks[n - 1] == eot;
    char *t = sg_whisper_detokenize(m, toks, (size_t)(n - with_eot));
    if (!t || !with_eot)
        return t;
    size_t l = strlen(t);
    char *r = realloc(t, l + 14);
    if (!r) {
        free(t);
        return NULL;
    }
    memcpy(r + l, "<|endoftext|>", 14);
    return r;
}

/* code points of UTF-8 s */
static size_t cp_len(const char *s)
{
    size_t n = 0;
    for (size_t i = 0; s[i]; i++)
        n += ((unsigned char)s[i] & 0xC0) != 0x80;
    return n;
}

/* code-point index of the first U+FFFD in s, or -1 */
static long fffd_index(const char *s)
{
    const char *p = strstr(s, "\xef\xbf\xbd");
    if (!p)
        return -1;
    long n = 0;
    for (const char *q = s; q < p; q++)
        n += ((unsigned char)*q & 0xC0) != 0x80;
    return n;
}

/* is the code point at index k of s U+FFFD */
static bool fffd_at(const char *s, long k)
{
    size_t i = 0;
    for (long c = 0; s[i]; c++) {
        size_t j = i;
        const uint32_t cp = next_cp(s, &j);
        if (c == k)
            return cp == 0xFFFD;
        i = j;
    }
    return false; /* openai would raise IndexError here; a valid decode cannot get there */
}

static void free_words(wt *w, int n)
{
    for (int i = 0; w && i < n; i++)
        free(w[i].word);
    free(w);
}

/* split_tokens_on_unicode (unicode) or split_tokens_on_spaces: words with their token counts */
static sg_status split_words(const sg_whisper *m, const int32_t *toks, int n, bool unicode,
                             wt **out, int *nout, sg_error *err)
{
    const int32_t eot = sg_whisper_get_info(m)->eot;
    wt *w = calloc((size_t)n + 1, sizeof *w);
    char *full = decode_toks(m, toks, n);
    int nw = 0;
    long offset = 0;
    sg_status st = SG_OK;
    if (!w || !full) {
        st = sg_error_set(err, SG_ENOMEM, "out of memory");
        goto done;
    }
    int start = 0;
    for (int i = 0; i < n; i++) {
        char *dec = decode_toks(m, toks + start, i + 1 - start);
        if (!dec) {
            st = sg_error_set(err, SG_ENOMEM, "out of memory");
            goto done;
        }
        const long r = fffd_index(dec);
        if (r < 0 || fffd_at(full, offset + r)) {
            offset += (long)cp_len(dec);
            const int ntok = i + 1 - start;
            const bool special = toks[start] >= eot;
            start = i + 1;
            if (unicode || nw == 0 || special || dec[0] == ' ' || stripped_in(dec, PUNCTUATION)) {
                w[nw].word = dec;
                w[nw].ntok = ntok;
                nw++;
            } else {
                const size_t a = strlen(w[nw - 1].word), b = strlen(dec);
                char *cat = realloc(w[nw - 1].word, a + b + 1);
                if (!cat) {
                    free(dec);
                    st = sg_error_set(err, SG_ENOMEM, "out of memory");
                    goto done;
                }
                memcpy(cat + a, dec, b + 1);
                w[nw - 1].word = cat;
                w[nw - 1].ntok += ntok;
                free(dec);
            }
        } else
            free(dec);
    }
done:
    free(full);
    if (st != SG_OK) {
        free_words(w, nw);
        return st;
    }
    *out = w;
    *nout = nw;
    return SG_OK;
}

static sg_status concat(char **dst, const char *a, const char *b, sg_error *err)
{
    const size_t la = strlen(a), lb = strlen(b);
    char *r = malloc(la + lb + 1);
    if (!r)
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    memcpy(r, a, la);
    memcpy(r + la, b, lb + 1);
    free(*dst);
    *dst = r;
    return SG_OK;
}

static sg_status set_empty(char **w, sg_error *err)
{
    char *e = malloc(1);
    if (!e)
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    e[0] = 0;
    free(*w);
    *w = e;
    return SG_OK;
}

/* merge_punctuations */
static sg_status merge_punct(wt *a, int n, const char *prepended, const char *appended, sg_error *err)
{
    for (int i = n - 2, j = n - 1; i >= 0; i--) {
        wt *p = &a[i], *f = &a[j];
        if (p->word[0] == ' ' && stripped_in(p->word, prepended)) {
            char *w = NULL;
            if (concat(&w, p->word, f->word, err) != SG_OK || set_empty(&p->word, err) != SG_OK) {
                free(w);
                return SG_ENOMEM;
            }
            free(f->word);
            f->word = w;
            f->ntok += p->ntok;
            p->ntok = 0;
        } else
            j = i;
    }
    for (int i = 0, j = 1; j < n; j++) {
        wt *p = &a[i], *f = &a[j];
        const size_t lp = strlen(p->word);
        if (!(lp > 0 && p->word[lp - 1] == ' ') && strstr(appended, f->word)) {
            char *w = NULL;
            if (concat(&w, p->word, f->word, err) != SG_OK || set_empty(&f->word, err) != SG_OK) {
                free(w);
                return SG_ENOMEM;
            }
            free(p->word);
            p->word = w;
            p->ntok += f->ntok;
            f->ntok = 0;
        } else
            i = j;
    }
    return SG_OK;
}

static int dcmp(const void *a, const void *b)
{
    const double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

/* ---- find_alignment ----------------------------------------------------------------------- */

/* One head's scores W [n][cols] (rows: the sot sequence, <|notimestamps|>, the nt text tokens,
 * <|endoftext|>): softmax over the frames, (w - mean) / std over the tokens (unbiased=False) and
 * the median filter, for the rows n_sot .. n_sot + nt that the mean over heads keeps
 * (matrix[len(sot_sequence):-1]); the statistics a row at a time, so the loops over columns
 * vectorise. Scratch: sum, sum2 [cols] doubles, fmean, fstd [cols] floats. */
static sg_status head_weights(float *W, int n, int cols, int n_sot, int nt, double *sum,
                              double *sum2, float *fmean, float *fstd)
{
    sg_softmax_rows(W, n, cols);
    for (int j = 0; j < cols; j++)
        sum[j] = sum2[j] = 0;
    for (int i = 0; i < n; i++) {
        const float *r = W + (size_t)i * cols;
        for (int j = 0; j < cols; j++)
            sum[j] += r[j];
    }
    for (int j = 0; j < cols; j++)
        sum[j] /= n;
    for (int i = 0; i < n; i++) {
        const float *r = W + (size_t)i * cols;
        for (int j = 0; j < cols; j++) {
            const double d = r[j] - sum[j];
            sum2[j] += d * d;
        }
    }
    for (int j = 0; j < cols; j++) {
        fmean[j] = (float)sum[j];
        fstd[j] = (float)sqrt(sum2[j] / n);
    }
    for (int i = n_sot; i <= n_sot + nt; i++) {
        float *r = W + (size_t)i * cols;
        for (int j = 0; j < cols; j++)
            r[j] = (r[j] - fmean[j]) / fstd[j];
    }
    return sg_whisper_median_filter(W + (size_t)n_sot * cols, nt + 1, cols, MEDFILT_WIDTH, NULL);
}

/* The alignment pass's state: the heads of each layer are processed as the decoder gives them
 * (sg_whisper_cross_qk's qk_fn), over the model's pool, and summed into acc in the order of the
 * model's heads (sorted by layer, head), whatever the threads. */
typedef struct heads_job {
    sg_pool *pool;
    float *const *qk; /* the current layer's heads */
    int count, n, cols, n_sot, nt, ntasks;
    double *sum;  /* per task: 2 * cols */
    float *fmean; /* per task: 2 * cols */
    int *fail;    /* per task */
    double *acc;  /* [nt + 1][cols] */
} heads_job;

static void heads_task(void *ctx, int task, int ntasks)
{
    const heads_job *J = ctx;
    double *sum = J->sum + (size_t)task * 2 * J->cols;
    float *fm = J->fmean + (size_t)task * 2 * J->cols;
    for (int h = task; h < J->count; h += ntasks)
        if (head_weights(J->qk[h], J->n, J->cols, J->n_sot, J->nt, sum, sum + J->cols, fm,
                         fm + J->cols) != SG_OK)
            J->fail[task] = 1;
}

static void heads_layer(void *ctx, int layer, const int *k, float *const *qk, int count, int n,
                        int cols)
{
    (void)layer, (void)k, (void)n, (void)cols;
    heads_job *J = ctx;
    J->qk = qk;
    J->count = count;
    sg_pool_run(J->pool, heads_task, J, count < J->ntasks ? count : J->ntasks);
    for (int h = 0; h < count; h++)
        for (int i = 0; i <= J->nt; i++) {
            const float *r = qk[h] + (size_t)(J->n_sot + i) * J->cols;
            double *a = J->acc + (size_t)i * J->cols;
            for (int j = 0; j < J->cols; j++)
                a[j] += r[j];
        }
}

/* the alignment pass's two callbacks share one context */
typedef struct pass_ctx {
    heads_job heads;
    tctx probs;
} pass_ctx;

static void pass_heads(void *ctx, int layer, const int *k, float *const *qk, int count, int n,
                       int cols)
{
    heads_layer(&((pass_ctx *)ctx)->heads, layer, k, qk, count, n, cols);
}

static void pass_row(void *ctx, int row, const float *logits, int vocab)
{
    prob_row(&((pass_ctx *)ctx)->probs, row, logits, vocab);
}

/* alignment words (the <|endoftext|> word dropped) of text[0..nt) */
static sg_status find_alignment(sg_whisper *m, const int32_t *sot, int n_sot, const int32_t *text,
                                int nt, int cols, wt **out, int *nout, sg_error *err)
{
    const sg_whisper_info *I = sg_whisper_get_info(m);
    *out = NULL;
    *nout = 0;
    if (nt == 0)
        return SG_OK;
    int H = 0;
    const sg_whisper_head *heads = sg_whisper_alignment_heads(m, &H);
    const int n = n_sot + nt + 2;
    if (n > I->n_text_ctx)
        return sg_error_set(err, SG_EINVAL, "word timestamps: %d tokens exceed the decoder's %d",
                            n, I->n_text_ctx);
    int32_t *seq = malloc((size_t)n * sizeof *seq);
    float *probs = malloc((size_t)nt * sizeof(float));
    float *mat = malloc((size_t)(nt + 1) * cols * sizeof(float));
    int *ti = malloc(((size_t)nt + 1 + cols) * sizeof(int));
    int *tj = malloc(((size_t)nt + 1 + cols) * sizeof(int));
    double *acc = malloc((size_t)(nt + 1) * cols * sizeof(double));
    double *jt = malloc(((size_t)nt + 2 + cols) * sizeof(double));
    double *sum = NULL;
    float *fmean = NULL;
    wt *w = NULL;
    int nw = 0;
    sg_status st = SG_OK;
    sg_pool *pool = sg_whisper_pool(m);
    const int ntasks = H < sg_pool_size(pool) ? H : sg_pool_size(pool);
    sum = malloc((size_t)ntasks * cols * 2 * sizeof(double));
    fmean = malloc((size_t)ntasks * cols * 2 * sizeof(float));
    int *fail = calloc((size_t)ntasks, sizeof *fail);
    if (!seq || !probs || !mat || !ti || !tj || !acc || !jt || !sum || !fmean || !fail) {
        free(fail);
        st = sg_error_set(err, SG_ENOMEM, "out of memory");
        goto done;
    }
    memcpy(seq, sot, (size_t)n_sot * sizeof *seq);
    seq[n_sot] = I->no_timestamps;
    memcpy(seq + n_sot + 1, text, (size_t)nt * sizeof *seq);
    seq[n - 1] = I->eot;
    /* per head: softmax over the frames, (w - mean) / std over the tokens, median filter; the
     * sum over heads of rows n_sot .. n - 2 (matrix[len(sot_sequence):-1]) */
    for (size_t i = 0; i < (size_t)(nt + 1) * cols; i++)
        acc[i] = 0;
    pass_ctx P = {{pool, NULL, 0, n, cols, n_sot, nt, ntasks, sum, fmean, fail, acc},
                  {m, text, nt, n_sot, probs}};
    st = sg_whisper_cross_qk(m, seq, n, heads, H, cols, pass_heads, n_sot, n_sot + nt, pass_row,
                             &P, err);
    for (int t = 0; st == SG_OK && t < ntasks; t++)
        if (fail[t])
            st = sg_error_set(err, SG_ENOMEM, "out of memory");
    free(fail);
    if (st != SG_OK)
        goto done;
    for (size_t i = 0; i < (size_t)(nt + 1) * cols; i++)
        mat[i] = -(float)(acc[i] / H);
    int len = 0;
    st = sg_whisper_dtw(mat, nt + 1, cols, ti, tj, &len, err);
    if (st != SG_OK)
        goto done;
    /* words of text + [eot] */
    seq[n_sot + 1 + nt] = I->eot;
    const char *lang = n_sot >= 2 ? sg_whisper_language_code(m, sot[1]) : NULL;
    static const char *const nospace[] = {"zh", "ja", "th", "lo", "my", "yue"};
    bool unicode = false;
    for (size_t k = 0; lang && k < sizeof nospace / sizeof *nospace; k++)
        unicode |= strcmp(lang, nospace[k]) == 0;
    st = split_words(m, seq + n_sot + 1, nt + 1, unicode, &w, &nw, err);
    if (st != SG_OK || nw <= 1) {
        free_words(w, nw);
        w = NULL;
        nw = 0;
        goto done;
    }
    /* jumps: where the text index changes (the first step counts) */
    int nj = 0;
    for (int k = 0; k < len; k++)
        if (k == 0 || ti[k] != ti[k - 1])
            jt[nj++] = tj[k] / TOKENS_PER_SECOND;
    int b = 0;
    for (int k = 0; k < nw - 1; k++) {
        const int e = b + w[k].ntok;
        /* word_boundaries index jump_times; a path has a jump per row, so b, e <= nt < nj */
        w[k].start = b < nj ? jt[b] : NAN;
        w[k].end = e < nj ? jt[e] : NAN;
        double s = 0;
        for (int t = b; t < e && t < nt; t++)
            s += probs[t];
        w[k].prob = s / (e - b);
        b = e;
    }
    free(w[nw - 1].word); /* the <|endoftext|> word has no time */
    nw--;
done:
    free(seq);
    free(probs);
    free(mat);
    free(ti);
    free(tj);
    free(acc);
    free(jt);
    free(sum);
    free(fmean);
    if (st != SG_OK) {
        free_words(w, nw);
        return st;
    }
    *out = w;
    *nout = nw;
    return SG_OK;
}

/* ---- add_word_timestamps -------------------------------------------------------------------- */

static void free_seg_words(sg_whisper_segment *s)
{
    for (size_t i = 0; s->words && i < s->n_words; i++)
        free(s->words[i].word);
    free(s->words);
    s->words = NULL;
    s->n_words = 0;
}

sg_status sg_whisper_add_word_timestamps(sg_whisper *m, sg_whisper_segment *segs, size_t nsegs,
                                         const int32_t *sot, int n_sot, int num_frames,
                                         float *last_speech_timestamp, sg_error *err)
{
    if (!m || (nsegs && !segs) || !sot || n_sot < 1 || n_sot > 8 || !last_speech_timestamp)
        return sg_error_set(err, SG_EINVAL, "word timestamps: bad arguments");
    const sg_whisper_info *I = sg_whisper_get_info(m);
    for (int i = 0; i < n_sot; i++)
        if (sot[i] < 0 || sot[i] >= I->vocab)
            return sg_error_set(err, SG_EINVAL, "word timestamps: sot sequence token %d outside "
                                "the vocabulary", (int)sot[i]);
    if (num_frames < 2)
        return sg_error_set(err, SG_EINVAL, "word timestamps: num_frames %d (at least 2)",
                            num_frames);
    if (!sg_whisper_has_vocab(m))
        return sg_error_set(err, SG_EINVAL, "word timestamps need the model's vocabulary");
    size_t ntext = 0;
    for (size_t s = 0; s < nsegs; s++) {
        if (segs[s].n_tokens && !segs[s].tokens)
            return sg_error_set(err, SG_EINVAL, "word timestamps: segment %zu has no tokens", s);
        for (size_t i = 0; i < segs[s].n_tokens; i++) {
            if (segs[s].tokens[i] < 0 || segs[s].tokens[i] >= I->vocab)
                return sg_error_set(err, SG_EINVAL, "word timestamps: token %d outside the "
                                    "vocabulary", (int)segs[s].tokens[i]);
            ntext += segs[s].tokens[i] < I->eot;
        }
        if (ntext > (size_t)I->n_text_ctx)
            return sg_error_set(err, SG_EINVAL, "word timestamps: more text tokens than the "
                                "decoder's %d positions", I->n_text_ctx);
    }
    if (nsegs == 0)
        return SG_OK;
    for (size_t s = 0; s < nsegs; s++)
        free_seg_words(&segs[s]);
    int cols = num_frames / 2;
    /* slicing past the window's encoded positions is a no-op in openai ([:, :, :num_frames // 2]) */
    const int n_src = sg_whisper_encoded_positions(m);
    if (n_src <= 0)
        return sg_error_set(err, SG_EINVAL, "no encoded audio: call sg_whisper_encode first");
    if (cols > n_src)
        cols = n_src;
    int32_t *text = malloc((ntext ? ntext : 1) * sizeof *text);
    if (!text)
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    size_t k = 0;
    for (size_t s = 0; s < nsegs; s++)
        for (size_t i = 0; i < segs[s].n_tokens; i++)
            if (segs[s].tokens[i] < I->eot)
                text[k++] = segs[s].tokens[i];
    wt *al = NULL;
    int na = 0;
    sg_status st = find_alignment(m, sot, n_sot, text, (int)ntext, cols, &al, &na, err);
    free(text);
    if (st != SG_OK)
        return st;
    /* median of the non-zero durations, at most 0.7 s */
    double *dur = malloc(((size_t)na + 1) * sizeof *dur);
    if (!dur) {
        free_words(al, na);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    int nd = 0;
    for (int i = 0; i < na; i++)
        if (al[i].end - al[i].start != 0)
            dur[nd++] = al[i].end - al[i].start;
    double median = 0.0;
    if (nd > 0) {
        qsort(dur, (size_t)nd, sizeof *dur, dcmp);
        median = nd % 2 ? dur[nd / 2] : (dur[nd / 2 - 1] + dur[nd / 2]) / 2;
    }
    free(dur);
    median = median < 0.7 ? median : 0.7;
    const double max_dur = median * 2;
    /* truncate long words at sentence boundaries */
    if (nd > 0)
        for (int i = 1; i < na; i++)
            if (al[i].end - al[i].start > max_dur) {
                if (strstr(SENTENCE_END, al[i].word))
                    al[i].end = al[i].start + max_dur;
                else if (strstr(SENTENCE_END, al[i - 1].word))
                    al[i].start = al[i].end - max_dur;
            }
    st = merge_punct(al, na, SG_WHISPER_PREPEND_PUNCTUATIONS, SG_WHISPER_APPEND_PUNCTUATIONS, err);
    if (st != SG_OK) {
        free_words(al, na);
        return st;
    }
    const double offset = segs[0].seek * 160.0 / 16000.0;
    double last = *last_speech_timestamp;
    bool any = false;
    double last_end = 0;
    int wi = 0;
    for (size_t s = 0; s < nsegs && st == SG_OK; s++) {
        sg_whisper_segment *sg = &segs[s];
        size_t nts = 0;
        for (size_t i = 0; i < sg->n_tokens; i++)
            nts += sg->tokens[i] < I->eot;
        size_t saved = 0, nw = 0;
        sg_whisper_word *words = calloc((size_t)na + 1, sizeof *words);
        double *ws = malloc(((size_t)na + 1) * 2 * sizeof(double)); /* start, end as doubles */
        if (!words || !ws) {
            free(words);
            free(ws);
            st = sg_error_set(err, SG_ENOMEM, "out of memory");
            break;
        }
        while (wi < na && saved < nts) {
            wt *t = &al[wi];
            if (t->word[0]) {
                words[nw].word = t->word;
                t->word = NULL;
                ws[2 * nw] = round2(offset + t->start);
                ws[2 * nw + 1] = round2(offset + t->end);
                words[nw].probability = (float)t->prob;
                nw++;
            }
            saved += (size_t)t->ntok;
            wi++;
        }
        double seg_start = sg->start, seg_end = sg->end;
        if (nw > 0) {
            double *s0 = &ws[0], *e0 = &ws[1];
            /* the first and second word after a pause no longer than twice the median */
            if (*e0 - last > median * 4 &&
                (*e0 - *s0 > max_dur || (nw > 1 && ws[3] - *s0 > max_dur * 2))) {
                if (nw > 1 && ws[3] - ws[2] > max_dur) {
                    const double a = ws[3] / 2, b2 = ws[3] - max_dur;
                    const double boundary = a > b2 ? a : b2;
                    *e0 = ws[2] = boundary;
                }
                const double v = *e0 - max_dur;
                *s0 = 0 > v ? 0 : v;
            }
            /* the segment's start when the first word is too long */
            if (seg_start < *e0 && seg_start - 0.5 > *s0) {
                const double v = *e0 - median < seg_start ? *e0 - median : seg_start;
                *s0 = 0 > v ? 0 : v;
            } else
                seg_start = *s0;
            double *sl = &ws[2 * (nw - 1)], *el = &ws[2 * (nw - 1) + 1];
            if (seg_end > *sl && seg_end + 0.5 < *el) {
                const double v = *sl + median;
                *el = v > seg_end ? v : seg_end;
            } else
                seg_end = *el;
            last = seg_end;
            any = true;
            last_end = *el;
            sg->start = (float)seg_start;
            sg->end = (float)seg_end;
        }
        for (size_t i = 0; i < nw; i++) {
            words[i].start = (float)ws[2 * i];
            words[i].end = (float)ws[2 * i + 1];
        }
        free(ws);
        if (nw == 0) {
            free(words);
            words = NULL;
        }
        sg->words = words;
        sg->n_words = nw;
    }
    free_words(al, na);
    if (st != SG_OK) {
        for (size_t s = 0; s < nsegs; s++)
            free_seg_words(&segs[s]);
        return st;
    }
    /* transcribe(): the last word's end becomes last_speech_timestamp */
    if (any)
        *last_speech_timestamp = (float)last_end;
    return SG_OK;
}
