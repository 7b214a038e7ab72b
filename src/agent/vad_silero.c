/* The Silero model behind sg_vad_backend: probabilities, then segments, converted to the agent's
 * segment type. The model is read-only during a call, so concurrent calls need no lock. */
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
