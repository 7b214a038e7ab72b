/* The two fixed-point passes of the Pillow-exact bicubic resize (media/preprocess.c computes the
 * weights and drives them). Integer arithmetic only, so the scalar reference (resample.c) and the
 * AVX2 build of the same source (resample_avx2.c, whose 8-lane 32-bit multiply the baseline SSE2
 * lacks: ~2x faster) are bit-identical; the level follows nn/cpu.c (SG_CPU). */
#ifndef SG_NN_RESAMPLE_H
#define SG_NN_RESAMPLE_H

#include <stddef.h>
#include <stdint.h>

/* Fixed-point weights: 32 bits minus 8 for the pixel minus 2 of headroom for a negative lobe or a
 * sum above 1, as in Pillow. */
#define SG_RESAMPLE_BITS 22
#define SG_RESAMPLE_HALF (1 << (SG_RESAMPLE_BITS - 1))

/* Rows filtered together by the horizontal pass. Blocking rows turns the short per-pixel dot
 * products into fixed-width loops over (row, channel) that compilers vectorise. 16 rows (48
 * lanes) measured best with GCC 12 and clang 14 at -O2 and -O3; at 16 lanes or fewer GCC -O3
 * unrolls the lane loop into scalar code instead. */
#define SG_RESAMPLE_HBLOCK 16
#define SG_RESAMPLE_HLANES (SG_RESAMPLE_HBLOCK * 3)

/* One axis of a resize: output sample i reads inputs first[i] .. first[i] + count[i] - 1 with
 * weights k[i * ksize + t] (SG_RESAMPLE_BITS fixed point). */
typedef struct sg_resample_axis {
    int n, ksize;
    int *first, *count;
    int32_t *k;
} sg_resample_axis;

/* Horizontal pass: nrows rows of packed RGB (row stride in_stride bytes) -> nrows rows of ax->n
 * pixels (stride ax->n * 3). tcol: scratch of (input width) * SG_RESAMPLE_HLANES ints. */
void sg_resample_horizontal(const uint8_t *in, size_t in_stride, int nrows,
                            const sg_resample_axis *ax, uint8_t *out, int32_t *tcol);
/* Vertical pass: output row i (of ax->n) mixes input rows ax->first[i] .. (relative to in, row
 * stride in_stride), each row_bytes wide. */
void sg_resample_vertical(const uint8_t *in, size_t in_stride, size_t row_bytes,
                          const sg_resample_axis *ax, uint8_t *out);

/* Per level, for the tests that compare them. */
typedef struct sg_resample_kernels {
    void (*horizontal)(const uint8_t *in, size_t in_stride, int nrows, const sg_resample_axis *ax,
                       uint8_t *out, int32_t *tcol);
    void (*vertical)(const uint8_t *in, size_t in_stride, size_t row_bytes,
                     const sg_resample_axis *ax, uint8_t *out);
} sg_resample_kernels;
extern const sg_resample_kernels sg_resample_scalar;
#ifdef SG_X86
extern const sg_resample_kernels sg_resample_avx2;
#endif

#endif
