/* CLIP (openai ViT image tower + causal text tower) loaded from a Hugging Face model directory:
 * config.json, model.safetensors (F32/F16/BF16), vocab.json + merges.txt. Any ViT config loads
 * (B/32, B/16, L/14, ...). Linear layers run in F32 or Q8 (nn/linear.h); LayerNorm, softmax,
 * activations and the residual stream stay in F32. Calls are serialised per model (each uses the
 * whole thread pool); the model is otherwise immutable after load. */
#ifndef SG_MODELS_CLIP_H
#define SG_MODELS_CLIP_H

#include <stddef.h>

#include "base/error.h"
#include "media/image.h"
#include "nn/linear.h"
#include "nn/pool.h"

typedef struct sg_clip sg_clip;

typedef struct sg_clip_info {
    int image_size, patch_size;   /* vision input */
    int vision_width, vision_layers, vision_heads;
    int text_width, text_layers, text_heads, context, vocab;
    int embed_dim;                /* projection_dim */
    float logit_scale;            /* exp(logit_scale) is the zero-shot temperature */
    sg_precision precision;
    size_t weight_bytes;          /* memory held by weights */
} sg_clip_info;

/* Loads dir. pool may be NULL (single-threaded) and must outlive the model. Errors name the file
 * and tensor: SG_EIO, SG_EINVAL (bad config, missing tensor, wrong shape), SG_EUNSUPPORTED (an
 * activation other than quick_gelu/gelu), SG_ENOMEM. */
sg_clip *sg_clip_load(const char *dir, sg_precision prec, sg_pool *pool, sg_error *err);
void sg_clip_free(sg_clip *m);
const sg_clip_info *sg_clip_get_info(const sg_clip *m);
/* Short side the decoder should give the preprocessor (the processor's shortest_edge). */
int sg_clip_min_short_side(const sg_clip *m);

/* The image tower on preprocessed pixels: chw is [3][image_size][image_size]; emb gets embed_dim
 * floats - the projected, unnormalised embedding (transformers' get_image_features). */
sg_status sg_clip_encode_pixels(sg_clip *m, const float *chw, float *emb, sg_error *err);
/* CLIPImageProcessor preprocessing then the image tower. */
sg_status sg_clip_encode_image(sg_clip *m, const sg_image *img, float *emb, sg_error *err);
/* Tokenize (77 context) then the text tower (get_text_features). */
sg_status sg_clip_encode_text(sg_clip *m, const char *text, float *emb, sg_error *err);

/* Tokens text takes, <|startoftext|> and <|endoftext|> included, counted up to 4096 (more than
 * context means sg_clip_encode_text would truncate it); -1 with err on bad UTF-8. */
int sg_clip_count_tokens(const sg_clip *m, const char *text, sg_error *err);

/* Zero-shot helpers: L2-normalises v in place; softmax(exp(logit_scale) * cos) over n labels
 * whose normalised embeddings are rows of labels[n][embed_dim]. */
void sg_clip_normalize(float *v, int dim);
void sg_clip_zero_shot(const sg_clip *m, const float *image_emb_normed, const float *labels_normed,
                       int n, float *probs);

#endif
