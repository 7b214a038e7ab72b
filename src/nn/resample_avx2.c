/* The resize passes compiled for AVX2 (CMake gives *_avx2.c files -mavx2 -mfma -mf16c): the same
 * source as the scalar reference, so the same integers; only called after nn/cpu.c found AVX2. */
#include "nn/resample.h"

#define SG_RESAMPLE_FN(name) resample_##name##_avx2
#include "nn/resample_passes.h"

const sg_resample_kernels sg_resample_avx2 = {resample_horizontal_avx2, resample_vertical_avx2};
