/* The SNN student's forward pass, greedy generation, and text in and out. Loading is in
 * snn_load.c, quantisation in snn_quant.c, the model's structures in snn_model.h.
 *
 * A block (post-norm, as the reference) is
 *     s1 = spike(attn.norm(x + attention(x)))        exact 0/1 at the metadata threshold
 *     x' = norm(s1 + ff.3(spike(GELU(ff.0(s1)))))
 * forward_step() runs the blocks, block_rows_task() is the line above for a row.
 *
 * Attention has no mask, so every position of every block depends on every token and the
 * reference re-runs the whole sequence for each new token. This decoder gives the same numbers
 * (up to float summation order) without redoing what cannot have changed:
 *  - Block 0 reads the embedding, which has no position term: a position's q, k, v and the
 *    out_proj of each head's slice of its v are computed once. out_proj distributes over the
 *    attention's weighted sum, and with the softmax shifted by a constant per row (the row's
 *    score with its own key) each row's numerator and denominator only gain a term per new key,
 *    so a step costs O(L d) there instead of O(L^2 d + L d^2) (first_attention).
 *  - A block's output row depends on its attention only through the row's first spikes s1.
 *    When they are the same as at the previous step the row's output, and the next block's k/v
 *    of that row, are reused bit for bit.
 *  - The last block is needed at the last position only: k/v of the rows whose input changed,
 *    then one query, one attention row, one feed-forward, and the head (last_attention).
 *  - The feed-forward reads spikes: ff.0 and ff.3 are sums of the weight columns of the inputs
 *    that fired (nn/spike.h); the residual adds 1 where a spike fired.
 *  - Greedy decoding needs the head's argmax, not its logits. In f32 the head's int8 copy screens
 *    the vocabulary with a rigorous bound on its error and only rows that could be the maximum
 *    are computed from the f32 weights (in double): ~6 MB read per token instead of ~26 MB, and
 *    still the exact argmax (head_argmax).
 * No malloc in the token loop: a call's buffers come from the model's arena, sized once per call
 * from the context length. */
#include "models/snn_model.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "nn/ops.h"
#include "nn/vec.h"

/* ================================================================================================
 * One call's state
 * ============================================================================================= */

/* Block 0's attention, kept from step to step (first_attention). s_ij is row i's score against
 * key j in head h. */
typedef struct first_sums {
    float *qkv;      /* [lmax][3d] q|k|v of each position */
    float *vproj;    /* [lmax][heads][d] out_proj (without bias) of each head's slice of v */
    float *num;      /* [lmax][heads][d] sum over keys j of exp(s_ij - shift_ih) vproj[j][h] */
    float *den;      /* [lmax][heads]    sum over keys j of exp(s_ij - shift_ih) */
    float *shift;    /* [lmax][heads]    s_ii, the row's score against its own key */
    uint8_t *rescan; /* [lmax] rows past the shift limit: summed from their maximum every step */
} first_sums;

/* Carved from the arena once per call; rows are positions. What persists from step to step is
 * what a step reuses. */
typedef struct gen {
    int lmax, ntasks, spike_words, from; /* rows [from, L) are new this step */
    const sg_vec_kernels *vk;
    int32_t *ids;            /* [lmax] */
    float *embedding;        /* [lmax][d] block 0's input: each position's token embedding */
    first_sums first;
    /* per block */
    float *out[SNN_MAX_DEPTH];      /* [lmax][d] the block's output rows */
    uint64_t *spikes[SNN_MAX_DEPTH]; /* [lmax][spike_words] each row's first spikes, as bits */
    uint8_t *changed[SNN_MAX_DEPTH]; /* [lmax] rows whose output changed this step */
    float *qkv[SNN_MAX_DEPTH];      /* [lmax][3d] q|k|v of middle blocks, k|v of the last */
    /* temporaries of a step */
    float *gathered;         /* [lmax * max(heads, 3)][d] rows gathered as a layer's input */
    float *gathered_out;     /* [lmax][3d] its output */
    float *attn;             /* [lmax][d] attention, before out_proj */
    float *attn_out;         /* [lmax][d] after out_proj */
    float *query;            /* [d] the last block's one query */
    float *scores;           /* [lmax] */
    float *logits;           /* [vocab] */
    int8_t *q8_row;          /* [d] */
    int *rows;               /* [lmax] a list of rows */
    int *candidates;         /* [vocab] head rows the screening keeps */
    float *task_floats;      /* per task (task_floats floats): u[d], f[hidden], y[d] */
    uint16_t *task_spikes;   /* per task (task_spikes indices): s1[d], s2[hidden] */
    long *fired, *sites;     /* per task spike counters */
    size_t scratch_mark;
} gen;

static int call_tasks(const sg_snn *m)
{
    int t = sg_pool_size(m->pool);
    return t < 1 ? 1 : t * 4;
}

static int spike_words(const sg_snn *m) { return (m->info.dim + 63) / 64; }

/* a task's stretch of task_floats / task_spikes, kept to whole cache lines */
static size_t task_floats(const sg_snn *m)
{
    return ((size_t)(2 * m->info.dim + m->info.hidden) * sizeof(float) + 63) / 64 * 64 / sizeof(float);
}

static size_t task_spikes(const sg_snn *m)
{
    return ((size_t)(m->info.dim + m->info.hidden) * sizeof(uint16_t) + 63) / 64 * 64 / sizeof(uint16_t);
}

/* Carves one call's buffers from the arena, or with no arena only adds up what they take. */
typedef struct carver {
    sg_arena *arena;
    size_t bytes;
    bool short_of_room;
} carver;

static void *carve(carver *c, size_t bytes)
{
    c->bytes += (bytes + 63) / 64 * 64; /* the arena's alignment */
    if (!c->arena)
        return NULL;
    void *p = sg_arena_alloc(c->arena, bytes);
    c->short_of_room |= !p;
    return p;
}

static void gen_layout(const sg_snn *m, gen *g, int lmax, carver *c)
{
    const size_t d = (size_t)m->info.dim, L = (size_t)lmax;
    const size_t H = (size_t)m->info.heads, V = (size_t)m->info.vocab, nt = (size_t)call_tasks(m);
    g->ids = carve(c, L * sizeof(int32_t));
    g->embedding = carve(c, L * d * 4);
    g->first.qkv = carve(c, L * 3 * d * 4);
    g->first.vproj = carve(c, L * H * d * 4);
    g->first.num = carve(c, L * H * d * 4);
    g->first.den = carve(c, L * H * 4);
    g->first.shift = carve(c, L * H * 4);
    g->first.rescan = carve(c, L);
    for (int b = 0; b < m->info.depth; b++) {
        g->out[b] = carve(c, L * d * 4);
        g->spikes[b] = carve(c, L * (size_t)spike_words(m) * 8);
        g->changed[b] = carve(c, L);
        g->qkv[b] = carve(c, L * 3 * d * 4);
    }
    g->gathered = carve(c, L * (H > 3 ? H : 3) * d * 4);
    g->gathered_out = carve(c, L * 3 * d * 4);
    g->attn = carve(c, L * d * 4);
    g->attn_out = carve(c, L * d * 4);
    g->query = carve(c, d * 4);
    g->scores = carve(c, L * 4);
    g->logits = carve(c, V * 4);
    g->q8_row = carve(c, d);
    g->rows = carve(c, L * sizeof(int));
    g->candidates = carve(c, V * sizeof(int));
    g->task_floats = carve(c, nt * task_floats(m) * sizeof(float));
    g->task_spikes = carve(c, nt * task_spikes(m) * sizeof(uint16_t));
    g->fired = carve(c, nt * sizeof(long));
    g->sites = carve(c, nt * sizeof(long));
}

size_t snn_call_bytes(const sg_snn *m, int lmax)
{
    gen g;
    carver c = {0};
    gen_layout(m, &g, lmax, &c);
    /* and the largest scratch of a kernel a step calls */
    const int gathered_rows = lmax * (m->info.heads > 3 ? m->info.heads : 3);
    size_t k = sg_attention_scratch_bytes(lmax, m->info.dim, m->info.heads, sg_pool_size(m->pool));
    for (int i = 0; i < m->info.depth; i++) {
        const snn_block *B = &m->blk[i];
        const sg_linear *ls[4] = {&B->qkv, &B->q, &B->kv, &B->out};
        for (int j = 0; j < 4; j++)
            if (ls[j]->n) {
                size_t s = sg_linear_scratch_bytes(ls[j], gathered_rows);
                k = s > k ? s : k;
            }
    }
    size_t hs = sg_linear_scratch_bytes(&m->head.q8, 1);
    return c.bytes + (k > hs ? k : hs) + 64 * 64;
}

static sg_status gen_setup(sg_snn *m, gen *g, int lmax, sg_error *err)
{
    if (sg_arena_reserve(&m->arena, snn_call_bytes(m, lmax)) != 0)
        return sg_error_set(err, SG_ENOMEM, "out of memory for a context of %d tokens", lmax);
    sg_arena_reset(&m->arena);
    memset(g, 0, sizeof *g);
    g->lmax = lmax;
    g->ntasks = call_tasks(m);
    g->spike_words = spike_words(m);
    carver c = {.arena = &m->arena};
    gen_layout(m, g, lmax, &c);
    if (c.short_of_room)
        return sg_error_set(err, SG_EINTERNAL, "snn: arena too small");
    memset(g->fired, 0, (size_t)g->ntasks * sizeof(long));
    memset(g->sites, 0, (size_t)g->ntasks * sizeof(long));
    memset(g->first.rescan, 0, (size_t)lmax);
    g->scratch_mark = m->arena.used;
    return SG_OK;
}

/* ================================================================================================
 * The blocks
 * ============================================================================================= */

/* Token id's embedding row as f32. In int8 the row is quantised and dequantised as the int8 file
 * stores it (symmetric per row), whether it comes from that file or from f32 weights. */
static void embed_row(const sg_snn *m, int32_t id, float *out, int8_t *tmp)
{
    const int d = m->info.dim;
    const snn_embedding *E = &m->emb;
    const size_t at = (size_t)id * d;
    if (E->dtype == SG_DT_I8) {
        const int8_t *q = (const int8_t *)E->rows + at;
        for (int j = 0; j < d; j++)
            out[j] = (float)q[j] * E->scale[id];
        return;
    }
    sg_dtype_to_f32(E->dtype, (const char *)E->rows + at * sg_dtype_size(E->dtype), (size_t)d, out);
    if (m->info.precision == SG_PREC_Q8) {
        float s;
        sg_q8_quantize_scalar(out, d, 1, d, d, tmp, d, &s);
        for (int j = 0; j < d; j++)
            out[j] = (float)tmp[j] * s;
    }
}

/* The rows of src (row stride lds floats) listed in rows, through L, into dst rows (stride ldd). */
static void linear_rows(sg_snn *m, gen *g, const sg_linear *L, const float *src, int lds,
                        const int *rows, int n, float *dst, int ldd)
{
    if (n <= 0)
        return;
    const int k = L->k, out = L->n;
    bool contiguous = true;
    for (int i = 1; i < n && contiguous; i++)
        contiguous = rows[i] == rows[0] + i;
    if (contiguous) {
        sg_linear_forward(L, src + (size_t)rows[0] * lds, n, lds, dst + (size_t)rows[0] * ldd, ldd,
                          m->pool, &m->arena);
        return;
    }
    for (int i = 0; i < n; i++)
        memcpy(g->gathered + (size_t)i * k, src + (size_t)rows[i] * lds, (size_t)k * sizeof(float));
    sg_linear_forward(L, g->gathered, n, k, g->gathered_out, out, m->pool, &m->arena);
    for (int i = 0; i < n; i++)
        memcpy(dst + (size_t)rows[i] * ldd, g->gathered_out + (size_t)i * out, (size_t)out * sizeof(float));
}

/* The rows flagged in changed, into g->rows; returns how many. */
static int changed_rows(gen *g, const uint8_t *changed, int L)
{
    int n = 0;
    for (int i = 0; i < L; i++)
        if (changed[i])
            g->rows[n++] = i;
    return n;
}

/* ---- block 0's attention ---- */

/* Adds key j to row i's sums (or marks the row for a rescan). */
static void first_add_key(const sg_snn *m, gen *g, int i, int j, float scale)
{
    const int d = m->info.dim, H = m->info.heads, hd = d / H;
    first_sums *F = &g->first;
    const float *q = F->qkv + (size_t)i * 3 * d, *k = F->qkv + (size_t)j * 3 * d + d;
    for (int h = 0; h < H; h++) {
        const float s = g->vk->dot(q + h * hd, k + h * hd, hd) * scale - F->shift[(size_t)i * H + h];
        if (s > m->shift_limit) {
            F->rescan[i] = 1;
            return;
        }
        const float e = expf(s);
        F->den[(size_t)i * H + h] += e;
        g->vk->axpy(F->num + ((size_t)i * H + h) * d, e, F->vproj + ((size_t)j * H + h) * d, d);
    }
}

/* A rescanned row's sums over keys [0, L) from scratch, shifted by the row's maximum. */
static void first_rescan_row(const sg_snn *m, gen *g, int i, int L, float scale)
{
    const int d = m->info.dim, H = m->info.heads, hd = d / H;
    first_sums *F = &g->first;
    const float *q = F->qkv + (size_t)i * 3 * d;
    for (int h = 0; h < H; h++) {
        float mx = -INFINITY;
        for (int j = 0; j < L; j++) {
            g->scores[j] = g->vk->dot(q + h * hd, F->qkv + (size_t)j * 3 * d + d + h * hd, hd) * scale;
            mx = g->scores[j] > mx ? g->scores[j] : mx;
        }
        float z = 0.0f, *num = F->num + ((size_t)i * H + h) * d;
        for (int c = 0; c < d; c++)
            num[c] = 0.0f;
        for (int j = 0; j < L; j++) {
            const float e = expf(g->scores[j] - mx);
            z += e;
            g->vk->axpy(num, e, F->vproj + ((size_t)j * H + h) * d, d);
        }
        F->den[(size_t)i * H + h] = z;
    }
}

/* Block 0. Its input is the embedding, so a position's q, k, v and the out_proj of each head's
 * slice of v (vproj) are computed once. out_proj distributes over the attention's weighted sum:
 *   out_proj(attn_i) = b + sum_h (sum_j exp(s_ij - c) vproj[j][h]) / (sum_j exp(s_ij - c)),
 * and with a shift c fixed per row (its score against its own key, so the denominator is >= 1)
 * both sums of a row only gain one term per new key: O(L d) per step instead of O(L^2 d + L d^2).
 * The terms are added in key order whether a row is new or old, so a step gives the same floats
 * as a forward from scratch. The rows read the result with first_attention_out. */
static void first_attention(sg_snn *m, gen *g, int from, int L)
{
    const snn_block *B = &m->blk[0];
    const int d = m->info.dim, H = m->info.heads, hd = d / H;
    const float scale = 1.0f / sqrtf((float)hd);
    first_sums *F = &g->first;
    sg_arena *a = &m->arena;
    /* new positions */
    for (int i = from; i < L; i++)
        embed_row(m, g->ids[i], g->embedding + (size_t)i * d, g->q8_row);
    sg_linear_forward(&B->qkv, g->embedding + (size_t)from * d, L - from, d,
                      F->qkv + (size_t)from * 3 * d, 3 * d, m->pool, a);
    const int nr = (L - from) * H;
    memset(g->gathered, 0, (size_t)nr * d * sizeof(float));
    for (int j = from; j < L; j++)
        for (int h = 0; h < H; h++)
            memcpy(g->gathered + ((size_t)(j - from) * H + h) * d + h * hd,
                   F->qkv + (size_t)j * 3 * d + 2 * d + h * hd, (size_t)hd * sizeof(float));
    sg_linear_forward(&B->out, g->gathered, nr, d, F->vproj + (size_t)from * H * d, d, m->pool, a);
    /* softmax sums: old rows gain the new keys, new rows get every key */
    for (int i = 0; i < from; i++)
        for (int j = from; j < L && !F->rescan[i]; j++)
            first_add_key(m, g, i, j, scale);
    for (int i = from; i < L; i++) {
        const float *q = F->qkv + (size_t)i * 3 * d;
        for (int h = 0; h < H; h++)
            F->shift[(size_t)i * H + h] = g->vk->dot(q + h * hd, q + d + h * hd, hd) * scale;
        memset(F->den + (size_t)i * H, 0, (size_t)H * sizeof(float));
        memset(F->num + (size_t)i * H * d, 0, (size_t)H * d * sizeof(float));
        for (int j = 0; j < L && !F->rescan[i]; j++)
            first_add_key(m, g, i, j, scale);
    }
    for (int i = 0; i < L; i++)
        if (F->rescan[i])
            first_rescan_row(m, g, i, L, scale);
}

/* Row r of block 0's attention output: out_proj's bias plus, per head, the softmax-weighted sum
 * of the keys' projected values (num / den). */
static void first_attention_out(const sg_snn *m, const gen *g, int r, float *u)
{
    const int d = m->info.dim, H = m->info.heads;
    const float *bias = m->blk[0].out_bias;
    for (int j = 0; j < d; j++)
        u[j] = bias[j];
    for (int h = 0; h < H; h++)
        g->vk->axpy(u, 1.0f / g->first.den[(size_t)r * H + h], g->first.num + ((size_t)r * H + h) * d, d);
}

/* ---- the other blocks' attention: g->attn_out ---- */

/* Attention of one query row against rows [0, L) of k and v (row stride ld), all heads: what
 * nn.MultiheadAttention computes for that row (there is no mask). */
static void attention_one_query(const sg_vec_kernels *vk, const float *q, const float *k,
                                const float *v, long ld, int L, int d, int heads, float *scores,
                                float *out)
{
    const int hd = d / heads;
    const float scale = 1.0f / sqrtf((float)hd);
    for (int h = 0; h < heads; h++) {
        for (int j = 0; j < L; j++)
            scores[j] = vk->dot(q + h * hd, k + j * ld + h * hd, hd) * scale;
        sg_softmax_rows(scores, 1, L);
        float *oh = out + h * hd;
        for (int c = 0; c < hd; c++)
            oh[c] = 0.0f;
        for (int j = 0; j < L; j++)
            vk->axpy(oh, scores[j], v + j * ld + h * hd, hd);
    }
}

/* A block between the first and the last: q|k|v of the rows whose input changed, then attention
 * and out_proj for every row (any changed key moves them all). False when no input row changed:
 * then nothing of the block has to be recomputed. */
static bool middle_attention(sg_snn *m, gen *g, int b, int L)
{
    const snn_block *B = &m->blk[b];
    const int d = m->info.dim;
    const int n = changed_rows(g, g->changed[b - 1], L);
    if (n == 0)
        return false;
    linear_rows(m, g, &B->qkv, g->out[b - 1], d, g->rows, n, g->qkv[b], 3 * d);
    sg_attention(g->qkv[b], g->attn, L, d, m->info.heads, false, m->pool, &m->arena);
    sg_linear_forward(&B->out, g->attn, L, d, g->attn_out, d, m->pool, &m->arena);
    return true;
}

/* The last block (not the first), needed at the last position only: k|v of the rows whose input
 * changed, then that row's query, attention and out_proj. */
static void last_attention(sg_snn *m, gen *g, int b, int L)
{
    const snn_block *B = &m->blk[b];
    const int d = m->info.dim;
    const float *x = g->out[b - 1];
    const int n = changed_rows(g, g->changed[b - 1], L);
    linear_rows(m, g, &B->kv, x, d, g->rows, n, g->qkv[b], 2 * d);
    sg_linear_forward(&B->q, x + (size_t)(L - 1) * d, 1, d, g->query, d, m->pool, &m->arena);
    float *att = g->attn + (size_t)(L - 1) * d;
    attention_one_query(g->vk, g->query, g->qkv[b], g->qkv[b] + d, 2 * d, L, d, m->info.heads,
                        g->scores, att);
    sg_linear_forward(&B->out, att, 1, d, g->attn_out + (size_t)(L - 1) * d, d, m->pool, &m->arena);
}

/* ---- the rest of a block, row by row ---- */

typedef struct block_job {
    const sg_snn *m;
    gen *g;
    const snn_block *B;
    const float *x_in;
    const float *attn_out; /* NULL: block 0's running sums */
    float *x_out;
    uint64_t *spikes;      /* NULL: always compute (the last block) */
    uint8_t *changed;      /* NULL with spikes */
    const int *rows;
    int n;
} block_job;

/* The spikes of v: the indices where v > threshold, ascending, into idx (and as bits when bits is
 * not NULL); returns how many. */
static inline int spike(const float *v, int n, float threshold, uint16_t *idx, uint64_t *bits,
                        int words)
{
    if (bits)
        memset(bits, 0, (size_t)words * 8);
    int c = 0;
    for (int j = 0; j < n; j++)
        if (v[j] > threshold) {
            idx[c++] = (uint16_t)j;
            if (bits)
                bits[j / 64] |= 1ull << (j % 64);
        }
    return c;
}

/* Whether row r's first spikes are the ones it had at the previous step: then its output stands
 * (changed[r] = 0). Otherwise they are recorded. New rows always compute. */
static bool spikes_unchanged(const block_job *J, int r, const uint64_t *bits)
{
    const int words = J->g->spike_words;
    if (!J->spikes)
        return false;
    uint64_t *before = J->spikes + (size_t)r * words;
    if (r < J->g->from && memcmp(before, bits, (size_t)words * 8) == 0) {
        J->changed[r] = 0;
        return true;
    }
    memcpy(before, bits, (size_t)words * 8);
    return false;
}

/* The block after its attention, for this task's share of the rows:
 *     s1 = spike(attn.norm(x + attention))
 *     x' = norm(s1 + ff.3(spike(GELU(ff.0(s1)))))
 * (block 0 adds x to its attention, the others the attention to x: the same floats). */
static void block_rows_task(void *ctx, int task, int ntasks)
{
    const block_job *J = ctx;
    const sg_snn *m = J->m;
    gen *g = J->g;
    const snn_block *B = J->B;
    const int d = m->info.dim, hid = m->info.hidden;
    const float threshold = m->info.spike_threshold;
    float *u = g->task_floats + (size_t)task * task_floats(m), *f = u + d, *y = f + hid;
    uint16_t *s1 = g->task_spikes + (size_t)task * task_spikes(m), *s2 = s1 + d;
    long fired = 0, sites = 0;
    const int begin = (int)((long)J->n * task / ntasks), end = (int)((long)J->n * (task + 1) / ntasks);
    for (int t = begin; t < end; t++) {
        const int r = J->rows[t];
        const float *x = J->x_in + (size_t)r * d;
        /* the residual around the attention, attn.norm, the first spikes */
        if (J->attn_out) {
            const float *h = J->attn_out + (size_t)r * d;
            for (int j = 0; j < d; j++)
                u[j] = x[j] + h[j];
        } else {
            first_attention_out(m, g, r, u);
            for (int j = 0; j < d; j++)
                u[j] += x[j];
        }
        sg_layernorm(u, u, 1, d, B->attn_norm_g, B->attn_norm_b, SNN_LN_EPS);
        uint64_t bits[SNN_MAX_DIM / 64];
        const int n1 = spike(u, d, threshold, s1, bits, g->spike_words);
        fired += n1;
        sites += d;
        if (spikes_unchanged(J, r, bits))
            continue;
        /* the feed-forward, on spikes */
        sg_spike_linear_row(&B->ff0, s1, n1, f);
        sg_gelu_erf(f, hid);
        const int n2 = spike(f, hid, threshold, s2, NULL, 0);
        sg_spike_linear_row(&B->ff3, s2, n2, y);
        /* the residual s1 + ff(s1), and norm */
        for (int i = 0; i < n1; i++)
            y[s1[i]] += 1.0f;
        sg_layernorm(y, J->x_out + (size_t)r * d, 1, d, B->norm_g, B->norm_b, SNN_LN_EPS);
        if (J->changed)
            J->changed[r] = 1;
        fired += n2;
        sites += hid;
    }
    g->fired[task] += fired;
    g->sites[task] += sites;
}

/* Block b after its attention for the n rows in g->rows, on the pool. */
static void block_rows(sg_snn *m, gen *g, int b, const float *attn_out, int n)
{
    const bool last = b == m->info.depth - 1;
    block_job J = {m, g, &m->blk[b], b ? g->out[b - 1] : g->embedding, attn_out, g->out[b],
                   last ? NULL : g->spikes[b], last ? NULL : g->changed[b], g->rows, n};
    int nt = n < g->ntasks ? n : g->ntasks;
    /* a row costs a microsecond or a few: split only when every thread gets several */
    if (n < 8 * sg_pool_size(m->pool))
        nt = 1;
    if (nt <= 1)
        block_rows_task(&J, 0, 1);
    else
        sg_pool_run(m->pool, block_rows_task, &J, nt);
}

/* ================================================================================================
 * The head and the step
 * ============================================================================================= */

static double dot_f64(const float *w, const float *x, int d)
{
    double s = 0.0;
    for (int j = 0; j < d; j++)
        s += (double)w[j] * x[j];
    return s;
}

/* The head at x: its argmax, and its logits in g->logits (int8: the Q8 head's; f32 with dense:
 * every row from the f32 weights, in double). f32 without dense screens the vocabulary with the
 * Q8 logits y_n, which are within B_n of the exact ones (snn_load.c: load_head):
 *   B_n = qabs[n] max_j |x_j - xs qx_j| + werr[n] sum_j |x_j| + 2e-6 |b_n| + 1e-6 max_m |y_m|
 * (the last two cover the float rounding of the Q8 epilogue). The exact maximum is at least
 * lo = y_k - B_k for k the Q8 argmax, so only rows with y_n + B_n >= lo can hold it; those are
 * computed exactly. A first pass keeps the rows with y_n >= lo - max_n B_n. */
static int32_t head_argmax(sg_snn *m, gen *g, const float *x, bool dense)
{
    snn_head *H = &m->head;
    const int V = m->info.vocab, d = m->info.dim;
    float *y = g->logits, yabs;
    if (m->info.precision == SG_PREC_F32 && dense) {
        for (int n = 0; n < V; n++)
            y[n] = (float)(dot_f64(H->w + (size_t)n * d, x, d) + H->bias[n]);
        return g->vk->argmax(y, V, &yabs);
    }
    sg_linear_forward(&H->q8, x, 1, d, y, V, m->pool, &m->arena);
    const int top = g->vk->argmax(y, V, &yabs);
    if (m->info.precision == SG_PREC_Q8)
        return top;
    float sx;
    sg_q8_quantize_scalar(x, d, 1, d, d, g->q8_row, d, &sx);
    double x1 = 0.0, exmax = 0.0;
    for (int j = 0; j < d; j++) {
        x1 += fabs((double)x[j]);
        const double e = fabs((double)x[j] - (double)sx * g->q8_row[j]);
        exmax = e > exmax ? e : exmax;
    }
    const float ea = (float)(exmax * 1.001), ee = (float)(x1 * 1.001), slack = 1e-6f * yabs + 1e-30f;
#define BOUND(n) (H->qabs[n] * ea + H->werr[n] * ee + 2e-6f * fabsf(H->bias[n]) + slack)
    const float lo = y[top] - BOUND(top);
    const float bmax = (H->qabs_max * ea + H->werr_max * ee + 2e-6f * H->bias_max + slack) * 1.0001f;
    const int nc = g->vk->collect(y, V, lo - bmax, g->candidates);
    int best = -1;
    double bestv = 0.0;
    for (int c = 0; c < nc; c++) {
        const int n = g->candidates[c];
        if (!(y[n] + BOUND(n) >= lo))
            continue;
        const double v = dot_f64(H->w + (size_t)n * d, x, d) + H->bias[n];
        if (best < 0 || v > bestv) {
            best = n;
            bestv = v;
        }
    }
#undef BOUND
    H->rows_computed += nc;
    if (best < 0) /* non-finite activations: no bound holds; every row then */
        return head_argmax(m, g, x, true);
    return best;
}

/* One step: positions [from, L) of g->ids are new. Brings every block's state up to date and
 * returns the argmax of the last position's logits. Each block: its attention (what has to be
 * recomputed depends on the block's place), then the rest of the block for every row, or the
 * last row only in the last block. */
static int32_t forward_step(sg_snn *m, gen *g, int from, int L, bool dense)
{
    const int depth = m->info.depth;
    m->arena.used = g->scratch_mark;
    g->from = from;
    g->vk = sg_vec_kernels_get();
    for (int b = 0; b < depth; b++) {
        const bool last = b == depth - 1;
        const float *attn_out = g->attn_out;
        if (b == 0) {
            first_attention(m, g, from, L);
            attn_out = NULL; /* the rows read block 0's sums */
        } else if (last) {
            last_attention(m, g, b, L);
        } else if (!middle_attention(m, g, b, L)) {
            memset(g->changed[b], 0, (size_t)L);
            continue;
        }
        int n = 0;
        if (last)
            g->rows[n++] = L - 1;
        else
            for (int i = 0; i < L; i++)
                g->rows[n++] = i;
        block_rows(m, g, b, attn_out, n);
    }
    return head_argmax(m, g, g->out[depth - 1] + (size_t)(L - 1) * m->info.dim, dense);
}

/* ================================================================================================
 * Generation
 * ============================================================================================= */

static sg_status check_ids(const sg_snn *m, const int32_t *ids, int n, sg_error *err)
{
    for (int i = 0; i < n; i++)
        if (ids[i] < 0 || ids[i] >= m->info.vocab)
            return sg_error_set(err, SG_EINVAL, "token id %d at position %d is outside the model's "
                                "vocabulary of %d", ids[i], i, m->info.vocab);
    return SG_OK;
}

/* ================================================================================================
 * Sampling (temperature > 0): softmax(logits / T), nucleus top_p, splitmix64
 * ============================================================================================= */

static bool sampling_on(const sg_snn_sampling *s) { return s && s->temperature > 0.0f; }

static sg_status check_sampling(const sg_snn_sampling *s, sg_error *err)
{
    if (!s)
        return SG_OK;
    if (!isfinite(s->temperature) || s->temperature < 0.0f)
        return sg_error_set(err, SG_EINVAL, "temperature must be a finite number >= 0 (got %g)",
                            (double)s->temperature);
    if (!(s->top_p >= 0.0f && s->top_p <= 1.0f))
        return sg_error_set(err, SG_EINVAL, "top_p must be between 0 and 1 (got %g)",
                            (double)s->top_p);
    return SG_OK;
}

static uint64_t splitmix64(uint64_t *state)
{
    uint64_t z = (*state += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

/* A call's sampling state: the generator and two vocabulary-sized buffers, allocated once. */
typedef struct sampler {
    float temperature, top_p;
    uint64_t state;
    double *p;     /* [vocab] exp((logit - max) / T) */
    int32_t *order; /* [vocab] ids by p, for top_p */
} sampler;

static int by_p_desc(const void *a, const void *b, void *ud)
{
    const double *p = ud;
    const int32_t x = *(const int32_t *)a, y = *(const int32_t *)b;
    if (p[x] != p[y])
        return p[x] > p[y] ? -1 : 1;
    return x < y ? -1 : x > y; /* equal weights: lower id first, so the order is deterministic */
}

/* One token from logits[0..V): argmax when the distribution degenerates (non-finite or zero mass). */
static int32_t sample_token(sampler *S, const float *logits, int V, int32_t argmax)
{
    float mx = -INFINITY;
    for (int i = 0; i < V; i++)
        if (logits[i] > mx)
            mx = logits[i];
    if (!isfinite(mx))
        return argmax;
    double total = 0.0;
    for (int i = 0; i < V; i++) {
        const double e = exp(((double)logits[i] - mx) / S->temperature);
        S->p[i] = isfinite(e) ? e : 0.0; /* NaN logits weigh nothing */
        total += S->p[i];
    }
    if (!(total > 0.0) || !isfinite(total))
        return argmax;
    /* uniform in [0, 1) from the top 53 bits */
    const double u = (double)(splitmix64(&S->state) >> 11) * 0x1.0p-53;
    if (S->top_p > 0.0f && S->top_p < 1.0f) {
        /* the smallest set of most probable tokens whose probability reaches top_p */
        for (int i = 0; i < V; i++)
            S->order[i] = i;
        qsort_r(S->order, (size_t)V, sizeof *S->order, by_p_desc, S->p);
        const double want = (double)S->top_p * total;
        double kept = 0.0;
        int n = 0;
        while (n < V && (n == 0 || kept < want))
            kept += S->p[S->order[n++]];
        const double target = u * kept;
        double c = 0.0;
        for (int i = 0; i < n; i++) {
            c += S->p[S->order[i]];
            if (target < c)
                return S->order[i];
        }
        return S->order[n - 1];
    }
    const double target = u * total;
    double c = 0.0;
    int32_t last = argmax;
    for (int i = 0; i < V; i++) {
        if (S->p[i] <= 0.0)
            continue;
        c += S->p[i];
        last = i;
        if (target < c)
            return i;
    }
    return last; /* rounding left target at the very end */
}

/* on_token (may be NULL) hears each new token as it is made; false from it stops generating.
 * smp NULL or temperature 0: greedy, the argmax of the screened head exactly as before. */
static sg_status generate_locked(sg_snn *m, const int32_t *prompt, int n, int max_tokens,
                                 bool stop_at_eos, const sg_snn_sampling *smp, int32_t *out,
                                 int *n_out, bool (*on_token)(void *ud, int32_t id), void *ud,
                                 sg_error *err)
{
    *n_out = 0;
    if (max_tokens < 0 || n < 0)
        return sg_error_set(err, SG_EINVAL, "max_tokens and the prompt length must be >= 0");
    if ((long)n + max_tokens > SG_SNN_MAX_CONTEXT)
        return sg_error_set(err, SG_ETOOBIG, "a prompt of %d tokens plus %d new tokens exceeds the "
                            "context limit of %d tokens", n, max_tokens, SG_SNN_MAX_CONTEXT);
    sg_status st = check_sampling(smp, err);
    if (st == SG_OK)
        st = check_ids(m, prompt, n, err);
    if (st != SG_OK || n == 0 || max_tokens == 0)
        return st; /* an empty prompt generates nothing, as the reference */
    sampler S = {0};
    if (sampling_on(smp)) {
        S.temperature = smp->temperature;
        S.top_p = smp->top_p;
        S.state = smp->seed;
        S.p = malloc((size_t)m->info.vocab * sizeof *S.p);
        S.order = malloc((size_t)m->info.vocab * sizeof *S.order);
        if (!S.p || !S.order) {
            free(S.p);
            free(S.order);
            return sg_error_set(err, SG_ENOMEM, "out of memory");
        }
    }
    gen g;
    if ((st = gen_setup(m, &g, n + max_tokens, err)) != SG_OK) {
        free(S.p);
        free(S.order);
        return st;
    }
    memcpy(g.ids, prompt, (size_t)n * sizeof(int32_t));
    int L = n, from = 0;
    while (*n_out < max_tokens) {
        /* sampling needs every logit: the dense head */
        int32_t t = forward_step(m, &g, from, L, S.p != NULL);
        if (S.p)
            t = sample_token(&S, g.logits, m->info.vocab, t);
        if (stop_at_eos && t == m->info.eos)
            break;
        out[(*n_out)++] = t;
        g.ids[L] = t;
        from = L++;
        if (on_token && !on_token(ud, t))
            break;
    }
    long f = 0, s = 0;
    for (int i = 0; i < g.ntasks; i++) {
        f += g.fired[i];
        s += g.sites[i];
    }
    m->firing = s ? (double)f / (double)s : 0.0;
    free(S.p);
    free(S.order);
    return SG_OK;
}

sg_status sg_snn_generate_ids(sg_snn *m, const int32_t *prompt, int n, int max_tokens,
                              bool stop_at_eos, int32_t *out, int *n_out, sg_error *err)
{
    return sg_snn_generate_ids_ex(m, prompt, n, max_tokens, stop_at_eos, NULL, out, n_out, err);
}

sg_status sg_snn_generate_ids_ex(sg_snn *m, const int32_t *prompt, int n, int max_tokens,
                                 bool stop_at_eos, const sg_snn_sampling *sampling, int32_t *out,
                                 int *n_out, sg_error *err)
{
    pthread_mutex_lock(&m->lock);
    sg_status st = generate_locked(m, prompt, n, max_tokens, stop_at_eos, sampling, out, n_out,
                                   NULL, NULL, err);
    pthread_mutex_unlock(&m->lock);
    return st;
}

sg_status sg_snn_last_logits(sg_snn *m, const int32_t *ids, int n, float *logits, sg_error *err)
{
    if (n < 1 || n > SG_SNN_MAX_CONTEXT)
        return sg_error_set(err, SG_EINVAL, "need 1..%d token ids", SG_SNN_MAX_CONTEXT);
    sg_status st = check_ids(m, ids, n, err);
    if (st != SG_OK)
        return st;
    pthread_mutex_lock(&m->lock);
    gen g;
    st = gen_setup(m, &g, n, err);
    if (st == SG_OK) {
        memcpy(g.ids, ids, (size_t)n * sizeof(int32_t));
        forward_step(m, &g, 0, n, true);
        memcpy(logits, g.logits, (size_t)m->info.vocab * sizeof(float));
    }
    pthread_mutex_unlock(&m->lock);
    return st;
}

double sg_snn_last_firing(const sg_snn *m) { return m->firing; }

void sg_snn_set_shift_limit(sg_snn *m, float limit)
{
    pthread_mutex_lock(&m->lock);
    m->shift_limit = limit;
    pthread_mutex_unlock(&m->lock);
}

/* ================================================================================================
 * Text in, text out
 * ============================================================================================= */

/* The continuation bytes a UTF-8 lead byte c >= 0x80 needs (1..3) and the range of the first of
 * them; 0 when c cannot start a sequence. */
static int utf8_lead(unsigned c, unsigned *lo, unsigned *hi)
{
    *lo = 0x80;
    *hi = 0xBF;
    if (c >= 0xC2 && c <= 0xDF)
        return 1;
    if (c >= 0xE0 && c <= 0xEF) {
        *lo = c == 0xE0 ? 0xA0 : 0x80;
        *hi = c == 0xED ? 0x9F : 0xBF;
        return 2;
    }
    if (c >= 0xF0 && c <= 0xF4) {
        *lo = c == 0xF0 ? 0x90 : 0x80;
        *hi = c == 0xF4 ? 0x8F : 0xBF;
        return 3;
    }
    return 0;
}

/* Invalid UTF-8 becomes U+FFFD per maximal ill-formed subsequence, as Python's
 * bytes.decode("utf-8", errors="replace") does (so the text matches the reference's decode). */
static char *utf8_sanitize(const char *s, size_t n)
{
    char *out = malloc(n * 3 + 1), *o = out;
    if (!out)
        return NULL;
    const unsigned char *p = (const unsigned char *)s;
    size_t i = 0;
    while (i < n) {
        const unsigned c = p[i];
        if (c < 0x80) {
            *o++ = (char)c;
            i++;
            continue;
        }
        unsigned lo, hi;
        const int need = utf8_lead(c, &lo, &hi);
        size_t j = i + 1;
        int got = 0;
        while (need && got < need && j < n) {
            const unsigned b = p[j];
            if (b < (got == 0 ? lo : 0x80) || b > (got == 0 ? hi : 0xBF))
                break;
            j++;
            got++;
        }
        if (need && got == need) {
            memcpy(o, p + i, j - i);
            o += j - i;
        } else {
            memcpy(o, "\xEF\xBF\xBD", 3);
            o += 3;
        }
        i = j;
    }
    *o = 0;
    return out;
}

void sg_snn_result_free(sg_snn_result *r)
{
    if (r) {
        free(r->text);
        free(r->tokens);
        free(r->prompt_tokens);
        *r = (sg_snn_result){0};
    }
}

/* Where the text of bytes[0..n) is settled: n, or the start of a UTF-8 sequence at the end that
 * is valid so far but incomplete (more bytes may complete it). No sequence of utf8_sanitize
 * crosses that point (it is a lead byte), so sanitising the settled parts one after the other
 * gives the text of sanitising the whole. */
static size_t utf8_settled(const unsigned char *p, size_t n)
{
    for (size_t back = 1; back <= 4 && back <= n; back++) {
        const size_t i = n - back;
        const unsigned c = p[i];
        if (c < 0x80)
            return n;
        if (c < 0xC0)
            continue; /* a continuation byte: its lead is further back */
        unsigned lo, hi;
        const int need = utf8_lead(c, &lo, &hi);
        if (need == 0)
            return n; /* not a lead byte: ill-formed, settled */
        if (back - 1 >= (size_t)need)
            return n; /* complete (or followed by stray bytes: settled either way) */
        for (size_t j = i + 1; j < n; j++) {
            const unsigned b = p[j];
            if (b < (j == i + 1 ? lo : 0x80) || b > (j == i + 1 ? hi : 0xBF))
                return n; /* already ill-formed */
        }
        return i;
    }
    return n;
}

/* The text stream of a generation: each token's bytes, handed on as settled text. */
typedef struct text_stream {
    const sg_bpe *tok;
    sg_snn_text_fn on_text;
    void *ud;
    char *bytes;
    size_t len, cap, sent; /* bytes[0..sent) have been handed on */
    bool stopped;          /* on_text said stop */
    sg_status st;          /* out of memory while streaming */
} text_stream;

static bool stream_flush(text_stream *ts, size_t upto)
{
    if (upto <= ts->sent)
        return true;
    char *piece = utf8_sanitize(ts->bytes + ts->sent, upto - ts->sent);
    if (!piece) {
        ts->st = SG_ENOMEM;
        return false;
    }
    ts->sent = upto;
    bool go_on = ts->on_text(ts->ud, piece, strlen(piece));
    free(piece);
    ts->stopped |= !go_on;
    return go_on;
}

static bool stream_token(void *ud, int32_t id)
{
    text_stream *ts = ud;
    char *b = NULL;
    size_t n = 0;
    if (sg_bpe_decode(ts->tok, &id, 1, &b, &n, NULL) != SG_OK) {
        ts->st = SG_ENOMEM;
        return false;
    }
    if (ts->len + n > ts->cap) {
        size_t cap = (ts->len + n) * 2 + 64;
        char *nb = realloc(ts->bytes, cap);
        if (!nb) {
            free(b);
            ts->st = SG_ENOMEM;
            return false;
        }
        ts->bytes = nb;
        ts->cap = cap;
    }
    memcpy(ts->bytes + ts->len, b, n);
    ts->len += n;
    free(b);
    return stream_flush(ts, utf8_settled((const unsigned char *)ts->bytes, ts->len));
}

sg_status sg_snn_generate(sg_snn *m, const char *system, const char *prompt, int max_tokens,
                          bool stop_at_eos, sg_snn_result *out, sg_error *err)
{
    return sg_snn_generate_stream(m, system, prompt, max_tokens, stop_at_eos, NULL, NULL, out, err);
}

sg_status sg_snn_generate_stream(sg_snn *m, const char *system, const char *prompt, int max_tokens,
                                 bool stop_at_eos, sg_snn_text_fn on_text, void *ud,
                                 sg_snn_result *out, sg_error *err)
{
    return sg_snn_generate_ex(m, system, prompt, max_tokens, stop_at_eos, NULL, on_text, ud, out,
                              err);
}

sg_status sg_snn_generate_ex(sg_snn *m, const char *system, const char *prompt, int max_tokens,
                             bool stop_at_eos, const sg_snn_sampling *sampling,
                             sg_snn_text_fn on_text, void *ud, sg_snn_result *out, sg_error *err)
{
    memset(out, 0, sizeof *out);
    if (!m->tok)
        return sg_error_set(err, SG_EUNSUPPORTED, "no tokenizer: put vocab.json + merges.txt or a "
                            "*.tiktoken file in the model directory, or name one (--tokenizer)");
    if (!prompt)
        prompt = "";
    if (max_tokens < 0)
        return sg_error_set(err, SG_EINVAL, "max_tokens must be >= 0");
    double t0 = sg_now_ms();
    char *full = NULL;
    if (system) {
        if (asprintf(&full, "%s\n\n%s", system, prompt) < 0)
            return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    const char *text = full ? full : prompt;
    size_t n = 0;
    int32_t *ids = NULL;
    sg_status st = sg_bpe_encode(m->tok, text, strlen(text), &ids, &n, err);
    free(full);
    if (st != SG_OK)
        return st;
    out->prompt_tokens = ids;
    out->n_prompt = (int)n;
    double t1 = sg_now_ms();
    out->tokenize_ms = t1 - t0;
    if ((long long)n + max_tokens > SG_SNN_MAX_CONTEXT) {
        sg_snn_result_free(out);
        return sg_error_set(err, SG_ETOOBIG, "a prompt of %zu tokens plus %d new tokens exceeds the "
                            "context limit of %d tokens", n, max_tokens, SG_SNN_MAX_CONTEXT);
    }
    out->tokens = malloc((size_t)(max_tokens ? max_tokens : 1) * sizeof(int32_t));
    if (!out->tokens) {
        sg_snn_result_free(out);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    text_stream ts = {m->tok, on_text, ud, NULL, 0, 0, 0, false, SG_OK};
    pthread_mutex_lock(&m->lock);
    st = generate_locked(m, ids, (int)n, max_tokens, stop_at_eos, sampling, out->tokens,
                         &out->n_tokens, on_text ? stream_token : NULL, &ts, err);
    pthread_mutex_unlock(&m->lock);
    if (st == SG_OK && on_text && !ts.stopped && ts.st == SG_OK)
        stream_flush(&ts, ts.len); /* an incomplete sequence at the very end */
    free(ts.bytes);
    if (st == SG_OK && ts.st != SG_OK)
        st = sg_error_set(err, ts.st, "out of memory");
    out->stopped = ts.stopped;
    out->generate_ms = sg_now_ms() - t1;
    char *bytes = NULL;
    size_t len = 0;
    if (st == SG_OK)
        st = sg_bpe_decode(m->tok, out->tokens, (size_t)out->n_tokens, &bytes, &len, err);
    if (st == SG_OK) {
        out->text = utf8_sanitize(bytes, len);
        if (!out->text)
            st = sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    free(bytes);
    if (st != SG_OK)
        sg_snn_result_free(out);
    return st;
}
