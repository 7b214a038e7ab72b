/* Error codes and messages shared by every module. Library code never prints or exits on bad
 * input: it returns a status and fills an sg_error the caller can show (the server maps the
 * status to an HTTP code and the message to the JSON "detail"). */
#ifndef SG_BASE_ERROR_H
#define SG_BASE_ERROR_H

typedef enum sg_status {
    SG_OK = 0,
    SG_EINVAL,       /* malformed request or argument */
    SG_ENOMEM,       /* allocation failed */
    SG_EIMAGE,       /* undecodable or unsupported image */
    SG_EAUDIO,       /* undecodable or unsupported audio */
    SG_ETOOBIG,      /* over a configured size limit */
    SG_EIO,          /* file or system error */
    SG_EUNSUPPORTED, /* a feature that needs something not available (e.g. a model) */
    SG_ERANGE,       /* a well-formed value this server or model cannot take (e.g. a language) */
    SG_EINTERNAL,    /* a bug */
    SG_EUNAVAILABLE, /* a shared service (the session store) cannot be reached now: retry later */
    SG_EBUSY,        /* a shared resource stayed taken past its wait (a session's work lock) */
    SG_ECORRUPT      /* stored data that cannot be read (corrupt, or not this format version) */
} sg_status;

typedef struct sg_error {
    sg_status code;
    char msg[256];
} sg_error;

/* Sets err (if not NULL) and returns code, so callers can write `return sg_error_set(...)`. */
sg_status sg_error_set(sg_error *err, sg_status code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
const char *sg_status_name(sg_status code);

#endif
