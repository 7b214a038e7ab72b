/* The constants of the vector exp and erf that ops_avx2.c and ops_avx512.c evaluate (each with its
 * own registers), written once so that both levels compute the same approximations. Internal to
 * nn/; the scalar reference (ops.c) calls libm's expf and erff. */
#ifndef SG_NN_OPS_APPROX_H
#define SG_NN_OPS_APPROX_H

/* e^x = 2^n e^r, n = round(x log2 e), r = x - n ln 2 with ln 2 in two parts (Cody-Waite: LN2_HI
 * has few enough bits that n * LN2_HI is exact). x is clamped first: e^x underflows to 0 below
 * about -103 like expf and saturates to inf above 88.7. */
#define SG_EXP_MIN (-104.0f)
#define SG_EXP_MAX 88.8f
#define SG_EXP_LOG2E 1.44269504088896341f
#define SG_EXP_LN2_HI 0.693145751953125f
#define SG_EXP_LN2_LO 1.428606765330187045e-06f
/* e^r's Taylor series to r^7, highest power first (Horner): relative error < 4e-9 on
 * |r| <= ln2/2 */
#define SG_EXP_DEGREE 7
static const float sg_exp_poly[SG_EXP_DEGREE + 1] = {
    1.0f / 5040.0f, 1.0f / 720.0f, 1.0f / 120.0f, 1.0f / 24.0f, 1.0f / 6.0f, 0.5f, 1.0f, 1.0f};

/* erf(x): |x| < SG_ERF_SMALL: x P(x^2); else sign(x) (1 - exp(-x^2) Q(|x| - SG_ERF_CENTER)) with
 * |x| clamped to SG_ERF_CLAMP (erf is 1 in float beyond 3.92). Both polynomials are Chebyshev
 * fits with absolute error < 1e-7, highest power first. */
#define SG_ERF_SMALL 0.875f
#define SG_ERF_CLAMP 4.0f
#define SG_ERF_CENTER 2.4375f
#define SG_ERF_P_TERMS 6
static const float sg_erf_p[SG_ERF_P_TERMS] = {-6.214585362e-04f, 5.034370663e-03f,
                                               -2.679294778e-02f, 1.128249660e-01f,
                                               -3.761255451e-01f, 1.128379158e+00f};
#define SG_ERF_Q_TERMS 12
static const float sg_erf_q[SG_ERF_Q_TERMS] = {
    -5.199982797e-07f, 2.086732397e-06f, -4.384781644e-06f, 1.615778090e-05f,
    -6.822535375e-05f, 2.417400742e-04f, -8.173415820e-04f, 2.707341379e-03f,
    -8.648139592e-03f, 2.649833928e-02f, -7.756082809e-02f, 2.155524660e-01f};

#endif
