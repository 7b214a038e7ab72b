/* Shape formatting and matching; see shape.h. */
#include "nn/shape.h"

#include <inttypes.h>
#include <stdio.h>

const char *sg_shape_str(char *buf, size_t cap, int ndim, const int64_t *dims)
{
    size_t o = (size_t)snprintf(buf, cap, "[");
    for (int i = 0; i < ndim && o < cap; i++) {
        const char *sep = i ? ", " : "";
        if (dims[i] == -1)
            o += (size_t)snprintf(buf + o, cap - o, "%s*", sep);
        else
            o += (size_t)snprintf(buf + o, cap - o, "%s%" PRId64, sep, dims[i]);
    }
    if (o < cap)
        snprintf(buf + o, cap - o, "]");
    return buf;
}

bool sg_shape_matches(int have_ndim, const int64_t *have, int ndim, const int64_t *want)
{
    if (have_ndim != ndim)
        return false;
    for (int i = 0; i < ndim; i++)
        if (want[i] != -1 && want[i] != have[i])
            return false;
    return true;
}
