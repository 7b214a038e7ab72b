/* Private to libsgclient (not installed): how its functions report a failure, so every error
 * message goes the same way into the caller's SG_CLIENT_ERROR_SIZE buffer (or nowhere, for NULL). */
#ifndef SGCLIENT_STATUS_H
#define SGCLIENT_STATUS_H

#include "sgclient_policy.h"

/* Writes the message (printf-style) into err when err is not NULL; returns st. */
sg_client_status sg_client_fail(char *err, sg_client_status st, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

#endif
