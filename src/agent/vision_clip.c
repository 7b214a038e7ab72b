/* CLIP as the turn's vision backend: embed, then zero-shot against label embeddings prepared at
 * load. */
#include "agent/vision_clip.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const char *const sg_clip_scene_labels[] = {
    "indoor environment", "outdoor environment", "street scene", "nature scene", "office space",
    "home interior", "restaurant or cafe", "store or shopping area",
    "transportation (car, bus, train)", "people gathering", NULL};

const char *const sg_clip_object_labels[] = {
    "person", "face", "building", "vehicle", "food", "text", "sign", "phone", "computer", "book",
    "door", "stairs", "furniture", "plant", "animal", "traffic light", "street sign", "product",
    "package", "document", NULL};

#define OBJECT_MIN_P 0.15f
#define OBJECT_TOP 5

struct sg_clip_vision {
    sg_vision_backend backend;
    sg_clip *model;
    char name[128];
    int dim, nscenes, nobjects;
    float *scenes, *objects; /* normalised label embeddings, [n][dim] */
};

static int count(const char *const *labels)
{
    int n = 0;
    while (labels[n])
        n++;
    return n;
}

/* prefix is prepended to each label: "" for the scene labels (raw strings, as the reference),
 * "a photo of a " for object categories. */
static float *embed_labels(sg_clip *m, const char *const *labels, int n, const char *prefix,
                           int dim, sg_error *err)
{
    float *out = malloc((size_t)n * dim * sizeof(float));
    if (!out) {
        sg_error_set(err, SG_ENOMEM, "out of memory");
        return NULL;
    }
    for (int i = 0; i < n; i++) {
        char text[256];
        snprintf(text, sizeof text, "%s%s", prefix, labels[i]);
        if (sg_clip_encode_text(m, text, out + (size_t)i * dim, err) != SG_OK) {
            free(out);
            return NULL;
        }
        sg_clip_normalize(out + (size_t)i * dim, dim);
    }
    return out;
}

typedef struct scored {
    int index;
    float p;
} scored;

static int by_p_desc(const void *a, const void *b)
{
    float x = ((const scored *)a)->p, y = ((const scored *)b)->p;
    return (x < y) - (x > y);
}

static double r4(double x) { return (double)(long long)(x * 10000.0 + 0.5) / 10000.0; }

static sg_status analyze(void *self, const sg_image *img, sg_vision_result *out, sg_error *err)
{
    sg_clip_vision *v = self;
    memset(out, 0, sizeof *out);
    float *emb = malloc((size_t)v->dim * sizeof(float));
    float *normed = malloc((size_t)v->dim * sizeof(float));
    scored *sp = malloc((size_t)(v->nscenes + v->nobjects) * sizeof *sp);
    float *probs = malloc((size_t)(v->nscenes + v->nobjects) * sizeof(float));
    if (!emb || !normed || !sp || !probs) {
        free(emb);
        free(normed);
        free(sp);
        free(probs);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    sg_status st = sg_clip_encode_image(v->model, img, emb, err);
    if (st != SG_OK) {
        free(emb);
        free(normed);
        free(sp);
        free(probs);
        return st;
    }
    memcpy(normed, emb, (size_t)v->dim * sizeof(float));
    sg_clip_normalize(normed, v->dim);

    sg_clip_zero_shot(v->model, normed, v->scenes, v->nscenes, probs);
    for (int i = 0; i < v->nscenes; i++)
        sp[i] = (scored){i, probs[i]};
    qsort(sp, (size_t)v->nscenes, sizeof *sp, by_p_desc);
    json_t *labels = json_array();
    for (int i = 0; i < 3 && i < v->nscenes; i++)
        json_array_append_new(labels, json_pack("{s:s,s:f}", "label", sg_clip_scene_labels[sp[i].index],
                                                "p", r4(sp[i].p)));
    int len = snprintf(out->visual_context, sizeof out->visual_context,
                       "Scene appears to be: %s (confidence: %.2f%%)",
                       sg_clip_scene_labels[sp[0].index], 100.0 * sp[0].p);
    if (v->nscenes > 1 && len > 0 && (size_t)len < sizeof out->visual_context)
        snprintf(out->visual_context + len, sizeof out->visual_context - (size_t)len,
                 "\nAlternatively: %s (%.2f%%)", sg_clip_scene_labels[sp[1].index], 100.0 * sp[1].p);

    sg_clip_zero_shot(v->model, normed, v->objects, v->nobjects, probs);
    for (int i = 0; i < v->nobjects; i++)
        sp[i] = (scored){i, probs[i]};
    qsort(sp, (size_t)v->nobjects, sizeof *sp, by_p_desc);
    json_t *objects = json_array();
    for (int i = 0; i < OBJECT_TOP && i < v->nobjects && sp[i].p >= OBJECT_MIN_P; i++)
        json_array_append_new(objects, json_pack("{s:s,s:f}", "label", sg_clip_object_labels[sp[i].index],
                                                 "p", r4(sp[i].p)));
    out->scene = json_pack("{s:s,s:s,s:o,s:o,s:s,s:i}", "source", "clip", "model", v->name,
                           "scene_labels", labels, "objects", objects, "summary", out->visual_context,
                           "embedding_dim", v->dim);
    out->embedding = emb;
    out->embedding_dim = v->dim;
    free(normed);
    free(sp);
    free(probs);
    return out->scene ? SG_OK : sg_error_set(err, SG_ENOMEM, "out of memory");
}

static sg_status embed_text(void *self, const char *text, float *out, int *n_tokens,
                            sg_error *err)
{
    sg_clip_vision *v = self;
    const sg_clip_info *I = sg_clip_get_info(v->model);
    int n = sg_clip_count_tokens(v->model, text, err);
    if (n < 0)
        return err->code;
    *n_tokens = n;
    if (n > I->context)
        return sg_error_set(err, SG_ERANGE, "the text takes %s%d tokens; this model's context is %d",
                            n >= 4096 ? "at least " : "", n, I->context);
    sg_status st = sg_clip_encode_text(v->model, text, out, err);
    if (st == SG_OK)
        sg_clip_normalize(out, I->embed_dim);
    return st;
}

static sg_status embed_image(void *self, const sg_image *img, float *out, sg_error *err)
{
    sg_clip_vision *v = self;
    sg_status st = sg_clip_encode_image(v->model, img, out, err);
    if (st == SG_OK)
        sg_clip_normalize(out, sg_clip_get_info(v->model)->embed_dim);
    return st;
}

sg_clip_vision *sg_clip_vision_new(sg_clip *model, const char *name, sg_error *err)
{
    sg_clip_vision *v = calloc(1, sizeof *v);
    if (!v) {
        sg_error_set(err, SG_ENOMEM, "out of memory");
        return NULL;
    }
    v->model = model;
    snprintf(v->name, sizeof v->name, "%s", name);
    v->dim = sg_clip_get_info(model)->embed_dim;
    v->nscenes = count(sg_clip_scene_labels);
    v->nobjects = count(sg_clip_object_labels);
    v->scenes = embed_labels(model, sg_clip_scene_labels, v->nscenes, "", v->dim, err);
    v->objects = v->scenes ? embed_labels(model, sg_clip_object_labels, v->nobjects, "a photo of a ",
                                          v->dim, err)
                           : NULL;
    if (!v->objects) {
        sg_clip_vision_free(v);
        return NULL;
    }
    v->backend.name = v->name;
    v->backend.min_short_side = sg_clip_min_short_side(model);
    v->backend.analyze = analyze;
    v->backend.embedding_dim = sg_clip_get_info(model)->embed_dim;
    v->backend.context = sg_clip_get_info(model)->context;
    v->backend.embed_text = embed_text;
    v->backend.embed_image = embed_image;
    v->backend.self = v;
    return v;
}

sg_vision_backend *sg_clip_vision_backend(sg_clip_vision *v) { return &v->backend; }

sg_clip *sg_clip_vision_model(sg_clip_vision *v) { return v->model; }

void sg_clip_vision_free(sg_clip_vision *v)
{
    if (!v)
        return;
    free(v->scenes);
    free(v->objects);
    sg_clip_free(v->model);
    free(v);
}
