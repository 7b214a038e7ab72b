/* The on-device language model (sgclient.h, sg_local_llm_*): the server's SNN student
 * (src/models/snn.c, snn_load.c, snn_quant.c and their nn/ kernels, compiled into the library)
 * behind an opaque handle, the client's status enum and its error buffers. */
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "models/snn.h"
#include "nn/pool.h"
#include "sgclient.h"
#include "status.h"

struct sg_local_llm {
    sg_snn *model;
    sg_pool *pool;
    sg_local_llm_options opt;
    pthread_mutex_t mu; /* one generation at a time */
    atomic_bool cancel;
    int32_t *last;      /* the last generation's tokens */
    int nlast;
};

void sg_local_llm_options_default(sg_local_llm_options *o)
{
    if (o)
        memset(o, 0, sizeof *o);
}

/* Is dir/model.safetensors an int8 file (its header names the sg-snn-int8 format)? */
static bool is_int8_dir(const char *dir)
{
    char path[4096];
    if (snprintf(path, sizeof path, "%s/model.safetensors", dir) >= (int)sizeof path)
        return false;
    FILE *f = fopen(path, "rb");
    if (!f)
        return false;
    unsigned char n8[8];
    bool yes = false;
    if (fread(n8, 1, 8, f) == 8) {
        uint64_t n = 0;
        for (int i = 7; i >= 0; i--)
            n = n << 8 | n8[i];
        if (n > 0 && n < ((uint64_t)1 << 24)) {
            char *h = malloc((size_t)n + 1);
            if (h && fread(h, 1, (size_t)n, f) == (size_t)n) {
                h[n] = '\0';
                yes = strstr(h, "\"sg-snn-int8\"") != NULL;
            }
            free(h);
        }
    }
    fclose(f);
    return yes;
}

sg_client_status sg_local_llm_open(const char *dir, const sg_local_llm_options *opts,
                                   sg_local_llm **out, char err[SG_CLIENT_ERROR_SIZE])
{
    if (out)
        *out = NULL;
    if (!dir || !*dir || !out)
        return sg_client_fail(err, SG_CLIENT_EINVAL, "sg_local_llm_open: no directory or no out");
    sg_local_llm_options o;
    sg_local_llm_options_default(&o);
    if (opts)
        o = *opts;
    if (o.precision < SG_LOCAL_LLM_AUTO || o.precision > SG_LOCAL_LLM_INT8)
        return sg_client_fail(err, SG_CLIENT_EINVAL, "unknown precision %d", o.precision);
    if (o.threads < 0 || o.threads > 256)
        return sg_client_fail(err, SG_CLIENT_EINVAL, "threads %d: must be 0..256", o.threads);
    sg_local_llm *h = calloc(1, sizeof *h);
    if (!h)
        return sg_client_fail(err, SG_CLIENT_ENOMEM, "out of memory");
    h->opt = o;
    atomic_init(&h->cancel, false);
    pthread_mutex_init(&h->mu, NULL);
    int threads = o.threads;
    if (threads == 0) {
        long n = sysconf(_SC_NPROCESSORS_ONLN);
        threads = n < 1 ? 1 : n > 4 ? 4 : (int)n;
    }
    if (threads > 1 && !(h->pool = sg_pool_new(threads))) {
        sg_local_llm_close(h);
        return sg_client_fail(err, SG_CLIENT_ENOMEM, "out of memory (thread pool)");
    }
    sg_snn_options so = {.precision = SG_PREC_F32, .tokenizer = NULL};
    if (o.precision == SG_LOCAL_LLM_INT8 || (o.precision == SG_LOCAL_LLM_AUTO && is_int8_dir(dir)))
        so.precision = SG_PREC_Q8;
    sg_error e = {0};
    h->model = sg_snn_load(dir, &so, h->pool, &e);
    if (!h->model) {
        sg_local_llm_close(h);
        return sg_client_fail(err, e.code == SG_ENOMEM ? SG_CLIENT_ENOMEM : SG_CLIENT_EFORMAT,
                              "%s", e.msg[0] ? e.msg : "the model did not load");
    }
    if (!sg_snn_get_info(h->model)->has_tokenizer) {
        sg_local_llm_close(h);
        return sg_client_fail(err, SG_CLIENT_EFORMAT,
                              "%s: no tokenizer (vocab.json + merges.txt, or *.tiktoken)", dir);
    }
    *out = h;
    return SG_CLIENT_OK;
}

void sg_local_llm_get_info(const sg_local_llm *h, sg_local_llm_info *out)
{
    if (!out)
        return;
    memset(out, 0, sizeof *out);
    if (!h || !h->model)
        return;
    const sg_snn_info *in = sg_snn_get_info(h->model);
    out->vocab = in->vocab;
    out->dim = in->dim;
    out->depth = in->depth;
    out->heads = in->heads;
    out->int8 = in->precision == SG_PREC_Q8;
    out->prequantized = in->prequantized;
    out->weight_bytes = in->weight_bytes;
}

typedef struct gen_ctx {
    sg_local_llm *h;
    sg_local_llm_token_fn fn;
    void *ud;
    bool cancelled, abandoned;
} gen_ctx;

static bool on_text(void *ud, const char *piece, size_t len)
{
    gen_ctx *g = ud;
    if (atomic_load(&g->h->cancel)) {
        g->cancelled = true;
        return false;
    }
    if (g->fn && !g->fn(g->ud, piece, len)) {
        g->abandoned = true;
        return false;
    }
    /* a cancel that came while the callback ran stops before the next token */
    if (atomic_load(&g->h->cancel)) {
        g->cancelled = true;
        return false;
    }
    return true;
}

static sg_client_status map_status(sg_status st)
{
    switch (st) {
    case SG_OK: return SG_CLIENT_OK;
    case SG_ENOMEM: return SG_CLIENT_ENOMEM;
    case SG_EINVAL: case SG_ETOOBIG: return SG_CLIENT_EINVAL;
    default: return SG_CLIENT_EFORMAT;
    }
}

sg_client_status sg_local_llm_generate(sg_local_llm *h, const char *system, const char *prompt,
                                       int max_tokens, sg_local_llm_token_fn on_token, void *ud,
                                       char **text, char err[SG_CLIENT_ERROR_SIZE])
{
    if (text)
        *text = NULL;
    if (!h || !h->model || !prompt)
        return sg_client_fail(err, SG_CLIENT_EINVAL, "sg_local_llm_generate: no model or no prompt");
    if (max_tokens < 1 || max_tokens >= SG_SNN_MAX_CONTEXT)
        return sg_client_fail(err, SG_CLIENT_EINVAL, "max_tokens %d: must be 1..%d", max_tokens,
                              SG_SNN_MAX_CONTEXT - 1);
    pthread_mutex_lock(&h->mu);
    atomic_store(&h->cancel, false);
    free(h->last);
    h->last = NULL;
    h->nlast = 0;
    gen_ctx g = {.h = h, .fn = on_token, .ud = ud};
    sg_snn_result r = {0};
    sg_error e = {0};
    sg_status st = sg_snn_generate_stream(h->model, system, prompt, max_tokens,
                                          h->opt.stop_at_eos != 0, on_text, &g, &r, &e);
    sg_client_status cs = map_status(st);
    if (st != SG_OK) {
        sg_client_fail(err, cs, "%s", e.msg[0] ? e.msg : "generation failed");
    } else {
        if (r.n_tokens > 0 && (h->last = malloc((size_t)r.n_tokens * sizeof *h->last))) {
            memcpy(h->last, r.tokens, (size_t)r.n_tokens * sizeof *h->last);
            h->nlast = r.n_tokens;
        }
        if (text && !(*text = strdup(r.text ? r.text : ""))) {
            cs = sg_client_fail(err, SG_CLIENT_ENOMEM, "out of memory");
        } else if (g.cancelled) {
            cs = sg_client_fail(err, SG_CLIENT_CANCELLED, "cancelled after %d tokens", r.n_tokens);
        } else if (g.abandoned) {
            cs = sg_client_fail(err, SG_CLIENT_ABANDONED, "stopped by the callback after %d tokens",
                                r.n_tokens);
        }
        sg_snn_result_free(&r);
    }
    pthread_mutex_unlock(&h->mu);
    return cs;
}

int sg_local_llm_last_tokens(sg_local_llm *h, int32_t *ids, int cap)
{
    if (!h)
        return 0;
    pthread_mutex_lock(&h->mu);
    int n = h->nlast;
    if (ids && cap > 0 && n > 0)
        memcpy(ids, h->last, (size_t)(n < cap ? n : cap) * sizeof *ids);
    pthread_mutex_unlock(&h->mu);
    return n;
}

void sg_local_llm_cancel(sg_local_llm *h)
{
    if (h)
        atomic_store(&h->cancel, true);
}

void sg_local_llm_close(sg_local_llm *h)
{
    if (!h)
        return;
    sg_snn_free(h->model);
    sg_pool_free(h->pool);
    free(h->last);
    pthread_mutex_destroy(&h->mu);
    free(h);
}
