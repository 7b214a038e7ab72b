/* Sleeping backend wrappers (debug only; see slow.h). */
#include "agent/slow.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/turn.h"

sg_status sg_model_delays_parse(const char *s, sg_model_delays *out, sg_error *err)
{
    memset(out, 0, sizeof *out);
    static const char *const names[] = {"vision", "asr", "asr_fallback", "llm"};
    int *slots[] = {&out->vision, &out->asr, &out->asr_fallback, &out->llm};
    const char *p = s;
    while (*p) {
        const char *end = p + strcspn(p, ",");
        const char *eq = memchr(p, '=', (size_t)(end - p));
        int k = -1;
        for (int i = 0; eq && i < 4; i++)
            if ((size_t)(eq - p) == strlen(names[i]) && strncmp(p, names[i], (size_t)(eq - p)) == 0)
                k = i;
        if (k < 0)
            return sg_error_set(err, SG_EINVAL, "\"%.*s\" is not vision=MS, asr=MS, "
                                "asr_fallback=MS or llm=MS", (int)(end - p < 40 ? end - p : 40), p);
        char num[16];
        size_t n = (size_t)(end - eq - 1);
        char *stop;
        errno = 0;
        long v = -1;
        if (n > 0 && n < sizeof num) {
            memcpy(num, eq + 1, n);
            num[n] = 0;
            v = strtol(num, &stop, 10);
            if (*stop || errno)
                v = -1;
        }
        if (v < 0 || v > 60000)
            return sg_error_set(err, SG_EINVAL, "%s: the delay must be a whole number of "
                                "milliseconds in 0..60000", names[k]);
        *slots[k] = (int)v;
        p = *end ? end + 1 : end;
    }
    return SG_OK;
}

static void sleep_ms(double ms)
{
    if (ms <= 0)
        return;
    struct timespec ts = {(time_t)(ms / 1000), (long)((ms - (double)(long)(ms / 1000) * 1000) * 1e6)};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

typedef struct slow_vision {
    sg_vision_backend be;
    const sg_vision_backend *inner;
    int ms;
} slow_vision;

typedef struct slow_asr {
    sg_asr_backend be;
    const sg_asr_backend *inner;
    int ms;
} slow_asr;

typedef struct slow_llm {
    sg_llm_backend be;
    const sg_llm_backend *inner;
    int ms;
} slow_llm;

struct sg_slow_backends {
    slow_vision vision;
    slow_asr asr, asr_fallback;
    slow_llm llm;
};

static sg_status vision_analyze(void *self, const sg_image *img, sg_vision_result *out,
                                sg_error *err)
{
    slow_vision *v = self;
    sleep_ms(v->ms);
    return v->inner->analyze(v->inner->self, img, out, err);
}

/* embeddings are not delayed: the budget's ladder has no step for them */
static sg_status vision_embed_text(void *self, const char *text, float *out, int *n_tokens,
                                   sg_error *err)
{
    slow_vision *v = self;
    return v->inner->embed_text(v->inner->self, text, out, n_tokens, err);
}

static sg_status vision_embed_image(void *self, const sg_image *img, float *out, sg_error *err)
{
    slow_vision *v = self;
    return v->inner->embed_image(v->inner->self, img, out, err);
}

static sg_status asr_transcribe(void *self, const float *pcm, size_t n, const char *language,
                                char **text, sg_error *err)
{
    slow_asr *a = self;
    sleep_ms(a->ms);
    return a->inner->transcribe(a->inner->self, pcm, n, language, text, err);
}

static sg_status asr_transcribe_segments(void *self, const float *pcm, size_t n,
                                         const sg_speech_segment *segs, size_t nsegs,
                                         const char *language, char **text, sg_error *err)
{
    slow_asr *a = self;
    sleep_ms(a->ms);
    return a->inner->transcribe_segments(a->inner->self, pcm, n, segs, nsegs, language, text, err);
}

static sg_status llm_generate(void *self, const char *system, const char *prompt,
                              const sg_llm_params *p, sg_text_fn on_text, void *ud, char **text,
                              sg_llm_usage *usage, sg_error *err)
{
    slow_llm *l = self;
    sleep_ms((double)l->ms * (double)p->max_tokens / SG_DEFAULT_MAX_TOKENS);
    return l->inner->generate(l->inner->self, system, prompt, p, on_text, ud, text, usage, err);
}

static sg_status asr_transcribe_full(void *self, const float *pcm, size_t n,
                                     const struct sg_whisper_transcribe_opts *o,
                                     struct sg_whisper_transcript *out, sg_error *err)
{
    slow_asr *a = self;
    sleep_ms(a->ms);
    return a->inner->transcribe_full(a->inner->self, pcm, n, o, out, err);
}

static struct sg_whisper *asr_whisper(void *self)
{
    slow_asr *a = self;
    return a->inner->whisper(a->inner->self);
}


static sg_asr_backend *wrap_asr(slow_asr *a, sg_asr_backend *inner, int ms)
{
    if (!inner || ms <= 0)
        return inner;
    a->inner = inner;
    a->ms = ms;
    a->be = *inner;
    a->be.self = a;
    a->be.transcribe = asr_transcribe;
    a->be.transcribe_segments = inner->transcribe_segments ? asr_transcribe_segments : NULL;
    a->be.transcribe_full = inner->transcribe_full ? asr_transcribe_full : NULL;
    a->be.whisper = inner->whisper ? asr_whisper : NULL;
    return &a->be;
}

sg_slow_backends *sg_slow_wrap(sg_backends *b, const sg_model_delays *d)
{
    sg_slow_backends *s = calloc(1, sizeof *s);
    if (!s)
        return NULL;
    if (b->vision && d->vision > 0) {
        s->vision = (slow_vision){*b->vision, b->vision, d->vision};
        s->vision.be.self = &s->vision;
        s->vision.be.analyze = vision_analyze;
        s->vision.be.embed_text = b->vision->embed_text ? vision_embed_text : NULL;
        s->vision.be.embed_image = b->vision->embed_image ? vision_embed_image : NULL;
        b->vision = &s->vision.be;
    }
    b->asr = wrap_asr(&s->asr, b->asr, d->asr);
    b->asr_fallback = wrap_asr(&s->asr_fallback, b->asr_fallback, d->asr_fallback);
    if (b->llm && d->llm > 0) {
        s->llm = (slow_llm){*b->llm, b->llm, d->llm};
        s->llm.be.self = &s->llm;
        s->llm.be.generate = llm_generate;
        b->llm = &s->llm.be;
    }
    return s;
}

void sg_slow_free(sg_slow_backends *s) { free(s); }
