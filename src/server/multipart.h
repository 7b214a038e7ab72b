/* multipart/form-data (RFC 7578 over RFC 2046) of a complete request body held in memory, as the
 * OpenAI-compatible /v1 routes receive uploads (an audio file plus fields such as model and
 * response_format). The server buffers whole bodies and handlers run later on worker threads, so
 * this parses a finished buffer, not a stream.
 *
 * What is accepted:
 *  - the boundary from the Content-Type's boundary parameter (token or quoted-string, 1..70
 *    characters of RFC 2046's bchars, not ending in a space);
 *  - CRLF line ends only. Every client we know of (curl, browsers, python-requests, httpx, the
 *    openai SDKs) sends CRLF, and RFC 2046 makes the delimiter "CRLF--boundary": accepting a bare
 *    LF as well would cut a binary file at any "\n--boundary" inside it;
 *  - a preamble before the first delimiter and an epilogue after the closing one, ignored; the
 *    closing delimiter "--boundary--" is required (without it the upload was cut short);
 *  - "--boundary" followed by anything but optional spaces/tabs and CRLF (or "--") is not a
 *    delimiter (RFC 2046's grammar), so it stays part of the data;
 *  - per part: header lines "Name: value" up to an empty line, at most max_headers of them in
 *    max_header_bytes; Content-Disposition: form-data with name (required) and filename
 *    (optional), each a token or a quoted-string whose backslash escapes are undone; filename* and
 *    other parameters are ignored; Content-Type kept as sent; Content-Transfer-Encoding only
 *    7bit / 8bit / binary; other headers ignored; folded (obsolete) header lines refused;
 *  - at most max_parts parts; a part without a filename (a plain field) at most max_field_bytes
 *    of data. Files are bounded by the body itself (the server's SG_MAX_BODY_BYTES).
 * Errors: SG_EINVAL (not multipart/form-data, a bad boundary, malformed framing or headers) and
 * SG_ETOOBIG (a limit), with a message naming the part and what is wrong; SG_ENOMEM. */
#ifndef SG_SERVER_MULTIPART_H
#define SG_SERVER_MULTIPART_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define SG_MULTIPART_MAX_BOUNDARY 70

typedef struct sg_multipart_limits {
    size_t max_parts;        /* 32 */
    size_t max_headers;      /* header lines per part: 16 */
    size_t max_header_bytes; /* a part's header block, its empty line included: 8 KiB */
    size_t max_field_bytes;  /* data of a part without a filename: 64 KiB */
} sg_multipart_limits;

typedef struct sg_multipart_part {
    char *name;             /* unescaped, NUL-terminated; malloc'ed */
    char *filename;         /* NULL when the part has none (a plain field); may be "" */
    char *content_type;     /* as sent, spaces trimmed; NULL when absent */
    const uint8_t *data;    /* into the parsed body (not copied): valid while the body is */
    size_t len;
} sg_multipart_part;

typedef struct sg_multipart {
    sg_multipart_part *parts; /* in body order; malloc'ed */
    size_t n_parts;
} sg_multipart;

void sg_multipart_limits_default(sg_multipart_limits *lim);

/* The boundary of a Content-Type "multipart/form-data; boundary=..." into out (NUL-terminated).
 * SG_EINVAL when content_type is another type or has no valid boundary. */
sg_status sg_multipart_boundary(const char *content_type, char out[SG_MULTIPART_MAX_BOUNDARY + 1],
                                sg_error *err);

/* Parses body[0..len) with the boundary of content_type. lim NULL: the defaults above. out is
 * zeroed first; on error it holds nothing (no need to free it, though freeing is harmless). */
sg_status sg_multipart_parse(const uint8_t *body, size_t len, const char *content_type,
                             const sg_multipart_limits *lim, sg_multipart *out, sg_error *err);

/* The first part named name, or NULL. */
const sg_multipart_part *sg_multipart_find(const sg_multipart *mp, const char *name);
/* The next part named name after prev (NULL: the first), for repeated names such as
 * timestamp_granularities[]:
 *     for (p = sg_multipart_next(mp, NULL, n); p; p = sg_multipart_next(mp, p, n)) ... */
const sg_multipart_part *sg_multipart_next(const sg_multipart *mp, const sg_multipart_part *prev,
                                           const char *name);
/* How many parts are named name. */
size_t sg_multipart_count(const sg_multipart *mp, const char *name);

void sg_multipart_free(sg_multipart *mp);

#endif
