/* Tensor shape checks shared by the weight-file readers (safetensors, torch checkpoints). */
#ifndef SG_NN_SHAPE_H
#define SG_NN_SHAPE_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

/* "[2, 3]"; -1 (any size, in an expected shape) prints as '*'. Returns buf. */
const char *sg_shape_str(char *buf, size_t cap, int ndim, const int64_t *dims);
/* True when have[0..have_ndim) matches want[0..ndim), where -1 in want matches any size. */
bool sg_shape_matches(int have_ndim, const int64_t *have, int ndim, const int64_t *want);

#endif
