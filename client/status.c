/* The library's status codes (names and messages), its error-buffer writer and its version: the
 * one place that says what each sg_client_status means. */
#include <stdarg.h>
#include <stdio.h>

#include "status.h"

static const struct {
    const char *name, *message;
} statuses[] = {
    [SG_CLIENT_OK] = {"ok", "no error"},
    [SG_CLIENT_FAILED] = {"failed", "the server refused the request (not retried)"},
    [SG_CLIENT_GAVE_UP] = {"gave_up", "transient failures until the retry policy gave up"},
    [SG_CLIENT_ABANDONED] = {"abandoned", "the caller abandoned the request"},
    [SG_CLIENT_EINVAL] = {"einval", "bad arguments"},
    [SG_CLIENT_ENOMEM] = {"enomem", "out of memory"},
    [SG_CLIENT_EFORMAT] = {"eformat", "malformed or unsupported input data"},
    [SG_CLIENT_ECODEC] = {"ecodec", "the encoder failed"},
    [SG_CLIENT_DROPPED_OLDEST] = {"dropped_oldest", "queued; the oldest frame was dropped"},
    [SG_CLIENT_DROPPED_NEW] = {"dropped_new", "the frame was dropped: the queue is full"},
    [SG_CLIENT_FULL] = {"full", "the queue is full: push it again later"},
    [SG_CLIENT_CANCELLED] = {"cancelled", "cancelled by the caller"},
};

static int known(sg_client_status s)
{
    return (int)s >= 0 && (size_t)s < sizeof statuses / sizeof statuses[0];
}

const char *sg_client_status_name(sg_client_status s) { return known(s) ? statuses[s].name : "?"; }

const char *sg_client_strerror(sg_client_status s)
{
    return known(s) ? statuses[s].message : "unknown status";
}

const char *sg_client_version(void) { return SGCLIENT_VERSION; }

unsigned sg_client_version_num(void) { return SGCLIENT_VERSION_NUM; }

sg_client_status sg_client_fail(char *err, sg_client_status st, const char *fmt, ...)
{
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err, SG_CLIENT_ERROR_SIZE, fmt, ap);
        va_end(ap);
    }
    return st;
}
