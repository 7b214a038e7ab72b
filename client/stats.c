/* Small statistics for the client's reports: percentiles of latencies and KB per minute. */
#include <math.h>
#include <stdlib.h>

#include "sgclient_policy.h"

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return (x > y) - (x < y);
}

double sg_client_percentile(double *v, size_t n, double p)
{
    if (!v || n == 0)
        return NAN;
    qsort(v, n, sizeof *v, cmp_double);
    if (!(p > 0.0))
        return v[0];
    if (p >= 100.0)
        return v[n - 1];
    double pos = p / 100.0 * (double)(n - 1);
    size_t i = (size_t)pos;
    double f = pos - (double)i;
    return i + 1 < n ? v[i] + f * (v[i + 1] - v[i]) : v[i];
}

double sg_client_kb_per_min(uint64_t bytes, double elapsed_ms)
{
    if (!(elapsed_ms > 0.0))
        return 0.0;
    return (double)bytes / 1024.0 / (elapsed_ms / 60000.0);
}
