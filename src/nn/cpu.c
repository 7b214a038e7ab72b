/* CPU feature detection for kernel dispatch. On x86-64 the level comes from cpuid plus XCR0 (the
 * OS must save the YMM/ZMM state, not just the CPU implement the instructions); on ARM from the
 * kernel's hardware capabilities (getauxval(AT_HWCAP)); elsewhere it is always scalar. Detection runs once under pthread_once; SG_CPU can lower the level. */
#include "nn/cpu.h"

#include <pthread.h>
#include <stdatomic.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#ifdef SG_X86
#include <cpuid.h>
#endif
#ifdef SG_ARM
#include <sys/auxv.h>
#endif

static pthread_once_t cpu_once = PTHREAD_ONCE_INIT;
static sg_cpu_level cpu_supported_level = SG_CPU_SCALAR;
static atomic_int cpu_active_level = SG_CPU_SCALAR;

#ifdef SG_X86
/* xgetbv without needing -mxsave: the encoding is 0f 01 d0. */
static unsigned long long cpu_xcr0(void)
{
    unsigned int lo, hi;
    __asm__ volatile(".byte 0x0f, 0x01, 0xd0" : "=a"(lo), "=d"(hi) : "c"(0));
    return ((unsigned long long)hi << 32) | lo;
}

static sg_cpu_level cpu_detect(void)
{
    unsigned int a, b, c, d;
    if (!__get_cpuid(1, &a, &b, &c, &d))
        return SG_CPU_SCALAR;
    const int has_fma = (c >> 12) & 1, has_osxsave = (c >> 27) & 1, has_avx = (c >> 28) & 1,
              has_f16c = (c >> 29) & 1;
    if (!has_osxsave || !has_avx)
        return SG_CPU_SCALAR;
    const unsigned long long xcr0 = cpu_xcr0();
    /* bit 1 SSE, bit 2 AVX (YMM upper halves); bits 5-7 opmask, ZMM0-15 upper, ZMM16-31 */
    const int os_ymm = (xcr0 & 0x6) == 0x6, os_zmm = (xcr0 & 0xe6) == 0xe6;
    if (__get_cpuid_max(0, NULL) < 7)
        return SG_CPU_SCALAR;
    __cpuid_count(7, 0, a, b, c, d);
    const int has_avx2 = (b >> 5) & 1, has_512f = (b >> 16) & 1, has_512dq = (b >> 17) & 1,
              has_512bw = (b >> 30) & 1, has_512vl = (b >> 31) & 1, has_vnni = (c >> 11) & 1;
    if (!os_ymm || !has_avx2 || !has_fma || !has_f16c)
        return SG_CPU_SCALAR;
    if (os_zmm && has_512f && has_512dq && has_512bw && has_512vl && has_vnni)
        return SG_CPU_AVX512;
    return SG_CPU_AVX2;
}
#elif defined SG_ARM && defined __aarch64__
/* HWCAP bits of arm64 (asm/hwcap.h), spelled out so older headers do: ASIMD is bit 1, ASIMDDP 20 */
#define SG_HWCAP_ASIMD (1UL << 1)
#define SG_HWCAP_ASIMDDP (1UL << 20)
static sg_cpu_level cpu_detect(void)
{
    const unsigned long hw = getauxval(AT_HWCAP);
    if (!(hw & SG_HWCAP_ASIMD))
        return SG_CPU_SCALAR;
    return (hw & SG_HWCAP_ASIMDDP) ? SG_CPU_DOTPROD : SG_CPU_NEON;
}
#elif defined SG_ARM
/* 32-bit ARM (asm/hwcap.h): NEON is bit 12; the dot-product kernels are aarch64 only */
#define SG_HWCAP_NEON (1UL << 12)
static sg_cpu_level cpu_detect(void)
{
    return (getauxval(AT_HWCAP) & SG_HWCAP_NEON) ? SG_CPU_NEON : SG_CPU_SCALAR;
}
#else
static sg_cpu_level cpu_detect(void) { return SG_CPU_SCALAR; }
#endif

int sg_cpu_parse(const char *s, sg_cpu_level *out)
{
    static const struct { const char *name; sg_cpu_level level; } names[] = {
        {"scalar", SG_CPU_SCALAR}, {"none", SG_CPU_SCALAR},
#if defined SG_X86
        {"avx2", SG_CPU_AVX2}, {"avx512", SG_CPU_AVX512},
#elif defined SG_ARM
        {"neon", SG_CPU_NEON}, {"dotprod", SG_CPU_DOTPROD},
#endif
    };
    if (!s)
        return -1;
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcasecmp(s, names[i].name) == 0) {
            *out = names[i].level;
            return 0;
        }
    }
    return -1;
}

static void cpu_init(void)
{
    cpu_supported_level = cpu_detect();
    sg_cpu_level level = cpu_supported_level, want;
    /* An unknown SG_CPU value is ignored: the library cannot report it, and the best level is
     * always a correct choice. */
    if (sg_cpu_parse(getenv("SG_CPU"), &want) == 0 && want < level)
        level = want;
    atomic_store(&cpu_active_level, (int)level);
}

sg_cpu_level sg_cpu_supported(void)
{
    pthread_once(&cpu_once, cpu_init);
    return cpu_supported_level;
}

sg_cpu_level sg_cpu_level_get(void)
{
    pthread_once(&cpu_once, cpu_init);
    return (sg_cpu_level)atomic_load_explicit(&cpu_active_level, memory_order_relaxed);
}

sg_cpu_level sg_cpu_level_set(sg_cpu_level level)
{
    pthread_once(&cpu_once, cpu_init);
    if ((int)level < SG_CPU_SCALAR)
        level = SG_CPU_SCALAR;
    if (level > cpu_supported_level)
        level = cpu_supported_level;
    atomic_store(&cpu_active_level, (int)level);
    return level;
}

const char *sg_cpu_level_name(sg_cpu_level level)
{
    switch ((int)level) {
    case SG_CPU_SCALAR: return "scalar";
#if defined SG_X86
    case SG_CPU_AVX2: return "avx2";
    case SG_CPU_AVX512: return "avx512";
#elif defined SG_ARM
    case SG_CPU_NEON: return "neon";
    case SG_CPU_DOTPROD: return "dotprod";
#endif
    default: break;
    }
    return "unknown";
}
