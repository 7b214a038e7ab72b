/* The resize passes' scalar reference (baseline C, which the compiler vectorises for SSE2) and the
 * dispatch by nn/cpu.c's level. */
#include "nn/resample.h"

#include "nn/cpu.h"

#define SG_RESAMPLE_FN(name) resample_##name##_scalar
#include "nn/resample_passes.h"

const sg_resample_kernels sg_resample_scalar = {resample_horizontal_scalar,
                                                resample_vertical_scalar};

static const sg_resample_kernels *kernels(void)
{
#ifdef SG_X86
    if (sg_cpu_level_get() >= SG_CPU_AVX2)
        return &sg_resample_avx2;
#endif
    return &sg_resample_scalar;
}

void sg_resample_horizontal(const uint8_t *in, size_t in_stride, int nrows,
                            const sg_resample_axis *ax, uint8_t *out, int32_t *tcol)
{
    kernels()->horizontal(in, in_stride, nrows, ax, out, tcol);
}

void sg_resample_vertical(const uint8_t *in, size_t in_stride, size_t row_bytes,
                          const sg_resample_axis *ax, uint8_t *out)
{
    kernels()->vertical(in, in_stride, row_bytes, ax, out);
}
