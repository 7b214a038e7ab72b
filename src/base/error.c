/* sg_error helpers. */
#include "base/error.h"

#include <stdarg.h>
#include <stdio.h>

sg_status sg_error_set(sg_error *err, sg_status code, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        err->code = code;
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return code;
}

const char *sg_status_name(sg_status code)
{
    switch (code) {
    case SG_OK: return "ok";
    case SG_EINVAL: return "invalid argument";
    case SG_ENOMEM: return "out of memory";
    case SG_EIMAGE: return "invalid image";
    case SG_EAUDIO: return "invalid audio";
    case SG_ETOOBIG: return "too large";
    case SG_EIO: return "i/o error";
    case SG_EUNSUPPORTED: return "unsupported";
    case SG_ERANGE: return "value out of range";
    case SG_EINTERNAL: return "internal error";
    case SG_EUNAVAILABLE: return "unavailable";
    case SG_EBUSY: return "busy";
    case SG_ECORRUPT: return "stored data unreadable";
    }
    return "unknown";
}
