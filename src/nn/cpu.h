/* CPU feature detection and kernel dispatch level. The level is detected once (cpuid on x86-64,
 * getauxval(AT_HWCAP) on ARM; scalar elsewhere) and can be forced down with
 * SG_CPU=scalar|avx2|avx512 on x86-64, SG_CPU=scalar|neon|dotprod on ARM (tests run every kernel at
 * every level the machine supports and compare against the scalar reference). Levels are ranks:
 * the ARM levels share the x86 ones' numbers, and a build only ever sees one architecture's. */
#ifndef SG_NN_CPU_H
#define SG_NN_CPU_H

typedef enum sg_cpu_level {
    SG_CPU_SCALAR = 0, /* portable C: the reference */
    SG_CPU_AVX2 = 1,   /* x86-64: AVX2 + FMA + F16C */
    SG_CPU_AVX512 = 2, /* x86-64: AVX-512 F/BW/VL + VNNI */
    SG_CPU_NEON = 1,   /* ARM: Advanced SIMD (always on aarch64; HWCAP_NEON on armv7) */
    SG_CPU_DOTPROD = 2 /* aarch64: + the ARMv8.2 dot-product extension (SDOT, HWCAP_ASIMDDP) */
} sg_cpu_level;

/* The best level this machine supports (ignores SG_CPU). */
sg_cpu_level sg_cpu_supported(void);
/* The level kernels use: min(supported, SG_CPU) unless set explicitly. */
sg_cpu_level sg_cpu_level_get(void);
/* Forces a level (clamped to what is supported); returns the level in effect. For tests. */
sg_cpu_level sg_cpu_level_set(sg_cpu_level level);
const char *sg_cpu_level_name(sg_cpu_level level);
/* Parses an SG_CPU value ("scalar", and "avx2", "avx512" on x86-64 or "neon", "dotprod" on ARM;
 * case-insensitive) into *out; 0 on success, -1 if s is NULL, unknown or another architecture's
 * (sg_cpu_level_get then ignores it and uses the best level). */
int sg_cpu_parse(const char *s, sg_cpu_level *out);

#endif
