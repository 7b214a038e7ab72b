/* Loading a model's tensors from a safetensors file with one error path: every call does nothing
 * once an error has happened (st keeps the first, err says which tensor), converted tensors'
 * pages of the mapped file are released (so the file does not stay resident), and bytes counts
 * the memory the loaded weights hold. Shared by the models that load Hugging Face checkpoints. */
#ifndef SG_NN_WEIGHTS_H
#define SG_NN_WEIGHTS_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "base/error.h"
#include "nn/linear.h"
#include "nn/safetensors.h"

typedef struct sg_weights {
    sg_st_file *f;
    sg_precision prec; /* of the linear layers sg_weights_linear / _qkv build */
    sg_error *err;
    sg_status st;      /* SG_OK until the first error */
    size_t bytes;      /* memory held by what was loaded */
} sg_weights;

/* Tensor name converted to f32 (malloc'ed; NULL after an error), its shape checked against
 * shape[0..ndim) (-1 matches any size). */
float *sg_weights_get(sg_weights *w, const char *name, int ndim, const int64_t *shape);
/* Builds L at precision prec from the [n, k] weights wt and bias b (may be NULL); takes both
 * (frees them) whether or not it succeeds. */
void sg_weights_linear_from(sg_weights *w, sg_linear *L, float *wt, float *b, int n, int k,
                            sg_precision prec);
/* prefix.weight [n, k] and, when has_bias, prefix.bias [n], at w->prec. */
void sg_weights_linear(sg_weights *w, sg_linear *L, const char *prefix, bool has_bias, int n,
                       int k);
/* prefix.{q,k,v}_proj fused into one [3d, d] layer (the input of sg_attention); with k_bias
 * false the key projection has no bias (Whisper) and its bias part is zero. */
void sg_weights_qkv(sg_weights *w, sg_linear *L, const char *prefix, int d, bool k_bias);

#endif
