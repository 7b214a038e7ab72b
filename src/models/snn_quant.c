/* Quantisation of the SNN student: a weight matrix as int8 rows and per-row scales, read from the
 * int8 file or quantised at load (nn/vec's quantize_row, the rows split over the pool), and
 * `sg quantize`, which writes them all as the int8 file (format in models/snn.h) with
 * metadata.json and the tokenizer files beside it. */
#include "models/snn_model.h"

#include <dirent.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "nn/vec.h"

/* ---- at load ---- */

typedef struct quant_job {
    const sg_vec_kernels *vk;
    const float *w;
    int n, k;
    int8_t *q;
    float *scale, *qabs, *err;
} quant_job;

static void quant_task(void *ctx, int task, int ntasks)
{
    const quant_job *J = ctx;
    const int a = (int)((long)J->n * task / ntasks), b = (int)((long)J->n * (task + 1) / ntasks);
    for (int r = a; r < b; r++)
        J->vk->quantize_row(J->w + (size_t)r * J->k, J->k, J->q + (size_t)r * J->k, J->scale + r,
                            J->qabs ? J->qabs + r : NULL, J->err ? J->err + r : NULL);
}

void snn_quantize_rows(sg_pool *pool, const float *w, int n, int k, int8_t *q, float *scale,
                       float *qabs, float *err)
{
    quant_job J = {sg_vec_kernels_get(), w, n, k, q, scale, qabs, err};
    const int nt = n >= 1024 ? 4 * sg_pool_size(pool) : 1;
    if (nt > 1)
        sg_pool_run(pool, quant_task, &J, nt);
    else
        quant_task(&J, 0, 1);
}

sg_status snn_get_q8(snn_loader *l, const char *name, int n, int k, int8_t **q, float **scale)
{
    *q = NULL;
    *scale = NULL;
    if (l->w.st != SG_OK)
        return l->w.st;
    *q = malloc((size_t)n * k);
    if (!*q)
        return l->w.st = sg_error_set(l->w.err, SG_ENOMEM, "out of memory");
    snn_tensor t;
    if (l->q8file && snn_find(l, name, &t) && t.dtype == SG_DT_I8) {
        if (snn_want(l, name, n, k, &t) && (*scale = snn_get_scales(l, name, n)) != NULL)
            memcpy(*q, t.data, (size_t)n * k);
        if (l->w.f)
            sg_st_release(l->w.f, sg_st_find(l->w.f, name));
    } else {
        float *owned;
        const float *w = snn_f32_view(l, name, n, k, &owned);
        *scale = w ? malloc((size_t)n * sizeof(float)) : NULL;
        if (w && !*scale)
            l->w.st = sg_error_set(l->w.err, SG_ENOMEM, "out of memory");
        if (*scale)
            snn_quantize_rows(l->pool, w, n, k, *q, *scale, NULL, NULL);
        snn_drop_f32(l, owned, (size_t)n * k);
    }
    if (l->w.st != SG_OK) {
        free(*q);
        free(*scale);
        *q = NULL;
        *scale = NULL;
    }
    return l->w.st;
}

/* ---- sg quantize ---- */

static sg_status copy_file(const char *from, const char *to, sg_error *err)
{
    FILE *in = fopen(from, "rb");
    if (!in)
        return sg_error_set(err, SG_EIO, "%s: %s", from, strerror(errno));
    FILE *o = fopen(to, "wb");
    if (!o) {
        fclose(in);
        return sg_error_set(err, SG_EIO, "%s: %s", to, strerror(errno));
    }
    char buf[65536];
    size_t r;
    int bad = 0;
    while ((r = fread(buf, 1, sizeof buf, in)) > 0)
        bad |= fwrite(buf, 1, r, o) != r;
    bad |= ferror(in);
    fclose(in);
    bad |= fclose(o) != 0;
    return bad ? sg_error_set(err, SG_EIO, "copying %s to %s failed", from, to) : SG_OK;
}

/* The tensors of the int8 file, in the order they are written; owns their names and data. */
typedef struct qwriter {
    sg_st_out *t;
    void **owned;
    size_t n, cap;
    char **names;
} qwriter;

static sg_status qw_add(qwriter *w, const char *name, sg_dtype dt, int64_t d0, int64_t d1, void *data,
                        sg_error *err)
{
    if (w->n == w->cap) {
        size_t cap = w->cap ? w->cap * 2 : 64;
        sg_st_out *t = realloc(w->t, cap * sizeof *t);
        if (t)
            w->t = t;
        void **o = realloc(w->owned, cap * sizeof *o);
        if (o)
            w->owned = o;
        char **nm = realloc(w->names, cap * sizeof *nm);
        if (nm)
            w->names = nm;
        if (!t || !o || !nm) {
            free(data);
            return sg_error_set(err, SG_ENOMEM, "out of memory");
        }
        w->cap = cap;
    }
    char *nm = strdup(name);
    if (!nm) {
        free(data);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    sg_st_out *t = &w->t[w->n];
    memset(t, 0, sizeof *t);
    t->name = w->names[w->n] = nm;
    t->dtype = dt;
    t->ndim = d1 ? 2 : 1;
    t->shape[0] = d0;
    t->shape[1] = d1;
    t->data = data;
    w->owned[w->n++] = data;
    return SG_OK;
}

static void qw_free(qwriter *w)
{
    for (size_t i = 0; i < w->n; i++) {
        free(w->owned[i]);
        free(w->names[i]);
    }
    free(w->t);
    free(w->owned);
    free(w->names);
}

static void qw_matrix(snn_loader *l, qwriter *w, const char *name, int n, int k)
{
    int8_t *q;
    float *s;
    if (snn_get_q8(l, name, n, k, &q, &s) != SG_OK)
        return;
    char sname[256];
    snprintf(sname, sizeof sname, "%s_scale", name);
    if ((l->w.st = qw_add(w, name, SG_DT_I8, n, k, q, l->w.err)) == SG_OK)
        l->w.st = qw_add(w, sname, SG_DT_F32, n, 0, s, l->w.err);
    else
        free(s);
}

static void qw_vector(snn_loader *l, qwriter *w, const char *name, int n)
{
    float *v = snn_get_f32(l, name, n, 0);
    if (v)
        l->w.st = qw_add(w, name, SG_DT_F32, n, 0, v, l->w.err);
}

/* Every tensor of the student, read through the loader's paths (shape checks against
 * metadata.json, the same quantisation as int8 on the fly) without building layers. */
static void qw_model(snn_loader *l, qwriter *w)
{
    const int V = l->md.vocab, d = l->md.dim, hid = 2 * l->md.dim;
    qw_matrix(l, w, "embed.weight", V, d);
    for (int i = 0; i < l->md.depth && l->w.st == SG_OK; i++) {
        char a[128], b[128];
#define NAME(buf, suffix) (snprintf(buf, sizeof buf, "blocks.%d.%s", i, suffix), buf)
        qw_matrix(l, w, NAME(a, "attn.attn.in_proj_weight"), 3 * d, d);
        qw_vector(l, w, NAME(b, "attn.attn.in_proj_bias"), 3 * d);
        qw_matrix(l, w, NAME(a, "attn.attn.out_proj.weight"), d, d);
        qw_vector(l, w, NAME(b, "attn.attn.out_proj.bias"), d);
        qw_vector(l, w, NAME(a, "attn.norm.weight"), d);
        qw_vector(l, w, NAME(b, "attn.norm.bias"), d);
        qw_matrix(l, w, NAME(a, "ff.0.weight"), hid, d);
        qw_vector(l, w, NAME(b, "ff.0.bias"), hid);
        qw_matrix(l, w, NAME(a, "ff.3.weight"), d, hid);
        qw_vector(l, w, NAME(b, "ff.3.bias"), d);
        qw_vector(l, w, NAME(a, "norm.weight"), d);
        qw_vector(l, w, NAME(b, "norm.bias"), d);
#undef NAME
    }
    qw_matrix(l, w, "head.weight", V, d);
    qw_vector(l, w, "head.bias", V);
}

/* metadata.json and the tokenizer files travel with the weights. */
static sg_status copy_companions(const char *dir, const char *out_dir, sg_error *err)
{
    DIR *dp = opendir(dir);
    sg_status st = SG_OK;
    for (struct dirent *e; dp && st == SG_OK && (e = readdir(dp));) {
        if (strcmp(e->d_name, "metadata.json") && !snn_is_tokenizer_file(e->d_name))
            continue;
        char from[4096], to[4096];
        snprintf(from, sizeof from, "%s/%s", dir, e->d_name);
        snprintf(to, sizeof to, "%s/%s", out_dir, e->d_name);
        st = copy_file(from, to, err);
    }
    if (dp)
        closedir(dp);
    return st;
}

sg_status sg_snn_quantize(const char *dir, const char *out_dir, sg_error *err)
{
    snn_loader l;
    qwriter w = {0};
    if (snn_loader_open(&l, dir, NULL, err) == SG_OK)
        qw_model(&l, &w);
    if (l.w.st == SG_OK && mkdir(out_dir, 0755) != 0 && errno != EEXIST)
        l.w.st = sg_error_set(err, SG_EIO, "%s: %s", out_dir, strerror(errno));
    char path[4096];
    if (l.w.st == SG_OK) {
        snprintf(path, sizeof path, "%s/model.safetensors", out_dir);
        const char *meta[] = {"format", SNN_INT8_FORMAT, "quantization",
                              "int8 symmetric per row: weight = q * <name>_scale", NULL};
        l.w.st = sg_st_write(path, w.t, w.n, meta, err);
    }
    /* a stale student.pt would be loaded instead of the int8 file */
    if (l.w.st == SG_OK) {
        snprintf(path, sizeof path, "%s/student.pt", out_dir);
        struct stat sb;
        if (stat(path, &sb) == 0)
            l.w.st = sg_error_set(err, SG_EINVAL, "%s exists and would be loaded instead of the int8 "
                                  "model.safetensors; remove it or choose another --out", path);
    }
    if (l.w.st == SG_OK)
        l.w.st = copy_companions(dir, out_dir, err);
    qw_free(&w);
    snn_loader_close(&l);
    return l.w.st;
}
