/* The Silero model behind sg_vad_backend: probabilities, then segments, converted to the agent's
 * segment type. The model is read-only during a call, so concurrent calls need no lock. Streams
 * (for /ws/audio) pair a sg_silero_stream (probabilities carried across chunks) with a
 * sg_vad_tracker (the segment rules one window at a time). */
#include "agent/vad_silero.h"

#include <stdlib.h>

struct sg_vad_silero {
    sg_vad_backend backend;
    sg_silero *model;
    sg_vad_params params;
};

static sg_status silero_segments(void *self, const float *pcm, size_t n, sg_speech_segment **segs,
                                 size_t *nsegs, sg_error *err)
{
    sg_vad_silero *v = self;
    *segs = NULL;
    *nsegs = 0;
    float *probs;
    size_t nprobs;
    sg_status st = sg_silero_probs(v->model, pcm, n, &probs, &nprobs, err);
    if (st != SG_OK)
        return st;
    sg_vad_segment *vs;
    size_t ns;
    st = sg_vad_segments(probs, nprobs, n, &v->params, &vs, &ns, err);
    free(probs);
    if (st != SG_OK || ns == 0)
        return st;
    sg_speech_segment *out = malloc(ns * sizeof *out);
    if (!out) {
        free(vs);
        return sg_error_set(err, SG_ENOMEM, "vad: out of memory");
    }
    for (size_t i = 0; i < ns; i++) {
        out[i].start_s = vs[i].start_s;
        out[i].end_s = vs[i].end_s;
    }
    free(vs);
    *segs = out;
    *nsegs = ns;
    return SG_OK;
}

/* ---- streaming ---- */

struct sg_vad_stream {
    sg_silero_stream *probs;
    sg_vad_tracker track;
    float *p;       /* probabilities of the current chunk */
    size_t p_cap;
    size_t samples; /* fed since the stream started */
};

static sg_vad_stream *silero_stream_open(void *self, sg_error *err)
{
    sg_vad_silero *v = self;
    sg_vad_stream *st = calloc(1, sizeof *st);
    if (!st) {
        sg_error_set(err, SG_ENOMEM, "vad: out of memory");
        return NULL;
    }
    st->probs = sg_silero_stream_new(v->model, err);
    if (!st->probs || sg_vad_tracker_init(&st->track, &v->params, err) != SG_OK) {
        sg_silero_stream_free(st->probs);
        free(st);
        return NULL;
    }
    return st;
}

static void silero_stream_close(sg_vad_stream *st)
{
    if (!st)
        return;
    sg_silero_stream_free(st->probs);
    free(st->p);
    free(st);
}

/* Appends the tracker's event for one probability to *ev (grown as needed). */
static sg_status track(sg_vad_stream *st, float p, bool finish, sg_vad_event **ev, size_t *nev,
                       size_t *cap, sg_error *err)
{
    sg_vad_tracker_event te;
    bool have = finish ? sg_vad_tracker_finish(&st->track, st->samples, &te)
                       : sg_vad_tracker_push(&st->track, p, &te);
    if (!have)
        return SG_OK;
    if (*nev == *cap) {
        size_t nc = *cap ? *cap * 2 : 4;
        sg_vad_event *ne = realloc(*ev, nc * sizeof *ne);
        if (!ne)
            return sg_error_set(err, SG_ENOMEM, "vad: out of memory");
        *ev = ne;
        *cap = nc;
    }
    sg_vad_event *e = &(*ev)[(*nev)++];
    e->kind = te.kind == SG_VAD_TRACK_START ? SG_VAD_EV_START
              : te.kind == SG_VAD_TRACK_END ? SG_VAD_EV_END : SG_VAD_EV_DROP;
    e->start_s = (double)te.start / SG_SILERO_RATE;
    e->end_s = (double)te.end / SG_SILERO_RATE;
    e->at_s = (double)te.at / SG_SILERO_RATE;
    return SG_OK;
}

static sg_status silero_stream_feed(sg_vad_stream *st, const float *pcm, size_t n,
                                    sg_vad_event **ev, size_t *nev, sg_error *err)
{
    *ev = NULL;
    *nev = 0;
    const size_t need = sg_silero_stream_capacity(st->probs, n);
    if (need > st->p_cap) {
        float *np = realloc(st->p, need * sizeof *np);
        if (!np)
            return sg_error_set(err, SG_ENOMEM, "vad: out of memory");
        st->p = np;
        st->p_cap = need;
    }
    size_t np = 0, cap = 0;
    sg_status s = sg_silero_stream_feed(st->probs, pcm, n, st->p, st->p_cap, &np, err);
    if (s != SG_OK)
        return s;
    st->samples += n;
    for (size_t i = 0; i < np && s == SG_OK; i++)
        s = track(st, st->p[i], false, ev, nev, &cap, err);
    if (s != SG_OK) {
        free(*ev);
        *ev = NULL;
        *nev = 0;
    }
    return s;
}

static sg_status silero_stream_finish(sg_vad_stream *st, sg_vad_event **ev, size_t *nev,
                                      sg_error *err)
{
    *ev = NULL;
    *nev = 0;
    float last;
    size_t np = 0, cap = 0;
    sg_status s = sg_silero_stream_finish(st->probs, &last, &np, err);
    if (s == SG_OK && np)
        s = track(st, last, false, ev, nev, &cap, err);
    if (s == SG_OK)
        s = track(st, 0.0f, true, ev, nev, &cap, err);
    else
        sg_vad_tracker_reset(&st->track);
    st->samples = 0;
    if (s != SG_OK) {
        free(*ev);
        *ev = NULL;
        *nev = 0;
    }
    return s;
}

sg_vad_silero *sg_vad_silero_new(sg_silero *model, const sg_vad_params *params, sg_error *err)
{
    if (!model) {
        sg_error_set(err, SG_EINVAL, "vad: no model");
        return NULL;
    }
    sg_vad_silero *v = calloc(1, sizeof *v);
    if (!v) {
        sg_silero_free(model);
        sg_error_set(err, SG_ENOMEM, "vad: out of memory");
        return NULL;
    }
    v->model = model;
    v->params = params ? *params : sg_vad_params_default();
    sg_vad_segment *none;
    size_t n;
    if (sg_vad_segments(NULL, 0, 0, &v->params, &none, &n, err) != SG_OK) { /* checks params */
        sg_vad_silero_free(v);
        return NULL;
    }
    v->backend.name = "silero-vad-v6.2";
    v->backend.segments = silero_segments;
    v->backend.stream_open = silero_stream_open;
    v->backend.stream_feed = silero_stream_feed;
    v->backend.stream_finish = silero_stream_finish;
    v->backend.stream_close = silero_stream_close;
    v->backend.self = v;
    return v;
}

sg_vad_silero *sg_vad_silero_open(const char *path, const sg_vad_params *params, sg_error *err)
{
    sg_silero *m = sg_silero_load(path, err);
    return m ? sg_vad_silero_new(m, params, err) : NULL;
}

sg_vad_backend *sg_vad_silero_backend(sg_vad_silero *v) { return &v->backend; }

sg_silero *sg_vad_silero_model(sg_vad_silero *v) { return v->model; }

void sg_vad_silero_free(sg_vad_silero *v)
{
    if (!v)
        return;
    sg_silero_free(v->model);
    free(v);
}
