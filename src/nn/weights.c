/* Tensor loading with a single error path; see weights.h. */
#include "nn/weights.h"

#include <stdio.h>
#include <stdlib.h>

static void release(sg_weights *w, const char *name) { sg_st_release(w->f, sg_st_find(w->f, name)); }

float *sg_weights_get(sg_weights *w, const char *name, int ndim, const int64_t *shape)
{
    if (w->st != SG_OK)
        return NULL;
    float *p = sg_st_get_f32(w->f, name, ndim, shape, w->err);
    release(w, name);
    if (!p) {
        w->st = w->err && w->err->code ? w->err->code : SG_EINVAL;
        return NULL;
    }
    size_t n = 1;
    for (int i = 0; i < ndim; i++)
        n *= (size_t)shape[i];
    w->bytes += n * sizeof(float);
    return p;
}

void sg_weights_linear_from(sg_weights *w, sg_linear *L, float *wt, float *b, int n, int k,
                            sg_precision prec)
{
    if (w->st == SG_OK) {
        /* the f32 copies are temporary: count the layer's own memory instead */
        w->bytes -= (size_t)n * (size_t)k * sizeof(float) + (b ? (size_t)n * sizeof(float) : 0);
        w->st = sg_linear_init(L, wt, b, n, k, prec, w->err);
        if (w->st == SG_OK)
            w->bytes += L->bytes;
    }
    free(wt);
    free(b);
}

void sg_weights_linear(sg_weights *w, sg_linear *L, const char *prefix, bool has_bias, int n,
                       int k)
{
    char wn[256], bn[256];
    snprintf(wn, sizeof wn, "%s.weight", prefix);
    snprintf(bn, sizeof bn, "%s.bias", prefix);
    float *wt = sg_weights_get(w, wn, 2, (const int64_t[]){n, k});
    float *b = has_bias ? sg_weights_get(w, bn, 1, (const int64_t[]){n}) : NULL;
    if (w->st != SG_OK) {
        free(wt);
        free(b);
        return;
    }
    sg_weights_linear_from(w, L, wt, b, n, k, w->prec);
}

void sg_weights_qkv(sg_weights *w, sg_linear *L, const char *prefix, int d, bool k_bias)
{
    if (w->st != SG_OK)
        return;
    float *wt = malloc((size_t)3 * d * d * sizeof(float)), *b = calloc((size_t)3 * d, sizeof(float));
    if (!wt || !b)
        w->st = sg_error_set(w->err, SG_ENOMEM, "out of memory loading %s", prefix);
    const char *parts[3] = {"q_proj", "k_proj", "v_proj"};
    const int64_t sw[2] = {d, d}, sb[1] = {d};
    for (int i = 0; i < 3 && w->st == SG_OK; i++) {
        char wn[256], bn[256];
        snprintf(wn, sizeof wn, "%s.%s.weight", prefix, parts[i]);
        snprintf(bn, sizeof bn, "%s.%s.bias", prefix, parts[i]);
        if ((w->st = sg_st_read_f32(w->f, wn, 2, sw, wt + (size_t)i * d * d, w->err)) != SG_OK)
            break;
        release(w, wn);
        if (i == 1 && !k_bias)
            continue;
        if ((w->st = sg_st_read_f32(w->f, bn, 1, sb, b + (size_t)i * d, w->err)) != SG_OK)
            break;
        release(w, bn);
    }
    if (w->st != SG_OK) {
        free(wt);
        free(b);
        return;
    }
    w->bytes += (size_t)3 * d * d * sizeof(float) + (size_t)3 * d * sizeof(float);
    sg_weights_linear_from(w, L, wt, b, 3 * d, d, w->prec);
}
