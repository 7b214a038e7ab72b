/* A minimal test harness shared by every tests/test_*.c: CHECK records a failure and goes on,
 * CHECK_EQ_INT/CHECK_NEAR print both values, and check_report() prints "N passed, N failed"
 * and returns the process exit code. Tests read whole files with check_read_file (base/file). */
#ifndef SG_TESTS_CHECK_H
#define SG_TESTS_CHECK_H

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <time.h>

#include "base/file.h"

static int check_passed, check_failed;

/* SG_TEST_REDUCED=1 (scripts/test-arm.sh sets it for the runs under qemu, 20-100x slower than
 * native): the heavy model tests run a reduced set of their cases, still compared with the same
 * references; each test's header says what it leaves out. Unset, empty or "0": everything. */
__attribute__((unused)) static int check_reduced(void)
{
    const char *v = getenv("SG_TEST_REDUCED");
    return v && *v && !(v[0] == '0' && v[1] == 0);
}

/* Cosine similarity of two vectors in double precision, the second as floats or as doubles. */
__attribute__((unused)) static double check_cosine(const float *a, const float *b, long n)
{
    double ab = 0, aa = 0, bb = 0;
    for (long i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

__attribute__((unused)) static double check_cosine_d(const float *a, const double *b, long n)
{
    double ab = 0, aa = 0, bb = 0;
    for (long i = 0; i < n; i++) {
        ab += a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += b[i] * b[i];
    }
    return ab / sqrt(aa * bb);
}

/* CPU seconds this thread has used: the clock for "this input must not take quadratic time"
 * bounds, which wall time breaks on a loaded machine (other processes' time is not ours). */
__attribute__((unused)) static double check_thread_cpu_s(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_THREAD_CPUTIME_ID, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

#define CHECK(cond)                                                                      \
    do {                                                                                 \
        if (cond) {                                                                      \
            check_passed++;                                                              \
        } else {                                                                         \
            check_failed++;                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s\n", __FILE__, __LINE__, #cond);   \
        }                                                                                \
    } while (0)

#define CHECK_MSG(cond, ...)                                                             \
    do {                                                                                 \
        if (cond) {                                                                      \
            check_passed++;                                                              \
        } else {                                                                         \
            check_failed++;                                                              \
            fprintf(stderr, "%s:%d: CHECK failed: %s: ", __FILE__, __LINE__, #cond);    \
            fprintf(stderr, __VA_ARGS__);                                                \
            fputc('\n', stderr);                                                         \
        }                                                                                \
    } while (0)

#define CHECK_EQ_INT(a, b)                                                               \
    do {                                                                                 \
        long long check_a_ = (long long)(a), check_b_ = (long long)(b);                  \
        CHECK_MSG(check_a_ == check_b_, "%lld != %lld", check_a_, check_b_);             \
    } while (0)

#define CHECK_NEAR(a, b, tol)                                                            \
    do {                                                                                 \
        double check_a_ = (double)(a), check_b_ = (double)(b);                           \
        CHECK_MSG(fabs(check_a_ - check_b_) <= (tol), "%g vs %g (tol %g)", check_a_,     \
                  check_b_, (double)(tol));                                              \
    } while (0)

/* Reads a whole file (at most 1 GiB) into a malloc'ed buffer with a NUL after the last byte (so
 * text files are C strings); NULL when it cannot be read. */
static inline void *check_read_file(const char *path, size_t *len)
{
    char *buf = NULL;
    sg_file_read(path, (size_t)1 << 30, &buf, len, NULL);
    return buf;
}

/* ../shared/data/images/NAME.jpg as check_read_file reads it; a failed CHECK when it cannot be. */
static inline void *check_read_photo(const char *name, size_t *len)
{
    char path[256];
    snprintf(path, sizeof path, "../shared/data/images/%s.jpg", name);
    void *buf = check_read_file(path, len);
    CHECK_MSG(buf != NULL, "cannot read %s", path);
    return buf;
}

static inline int check_report(const char *name)
{
    printf("%s: %d passed, %d failed\n", name, check_passed, check_failed);
    return check_failed ? 1 : 0;
}

#endif
