/* The checks of a request head, as pure functions of what libmicrohttpd parsed (method, raw
 * target, version, the header fields in arrival order): the server (http.c) runs them in a
 * request's first callback, before auth, routing or any body byte, and fuzz/fuzz_http.c runs
 * them on whole raw requests. The rules and why: docs/ARCHITECTURE.md "The HTTP edge". */
#include "server/edge.h"

#include <stdarg.h>
#include <stdio.h>
#include <string.h>
#include <strings.h>

static bool refuse(sg_edge_verdict *v, int status, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static bool refuse(sg_edge_verdict *v, int status, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(v->detail, sizeof v->detail, fmt, ap);
    va_end(ap);
    v->status = status;
    v->code = "INVALID_REQUEST";
    return false;
}

/* RFC 9110 tchar: what a method or a field name is made of. */
static bool is_tchar(unsigned char c)
{
    if ((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9'))
        return true;
    return c && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static bool is_token(const char *s, size_t n)
{
    if (n == 0)
        return false;
    for (size_t i = 0; i < n; i++)
        if (!is_tchar((unsigned char)s[i]))
            return false;
    return true;
}

static bool is_ctl(unsigned char c) { return c < 0x20 || c == 0x7f; }

static int hex_value(unsigned char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

/* The byte a "%HH" at s[i] stands for, or -1 when s[i] does not start a valid escape. */
static int escape_at(const char *s, size_t len, size_t i)
{
    if (s[i] != '%' || i + 2 >= len)
        return -1;
    int hi = hex_value((unsigned char)s[i + 1]), lo = hex_value((unsigned char)s[i + 2]);
    return hi < 0 || lo < 0 ? -1 : hi * 16 + lo;
}

bool sg_edge_decode_path(const char *target, size_t len, char *out, size_t *out_len)
{
    const char *q = memchr(target, '?', len);
    size_t end = q ? (size_t)(q - target) : len, n = 0;
    for (size_t i = 0; i < end; i++) {
        int b = escape_at(target, end, i);
        unsigned char c = b >= 0 ? (unsigned char)b : (unsigned char)target[i];
        if (is_ctl(c))
            return false;
        out[n++] = (char)c;
        if (b >= 0)
            i += 2;
    }
    out[n] = 0;
    *out_len = n;
    return true;
}

static bool check_target(const sg_edge_head *h, const sg_edge_limits *lim, sg_edge_verdict *v)
{
    if (h->target_len > lim->max_target)
        return refuse(v, 414, "the request-target is %zu bytes, over the limit of %zu "
                      "(SG_HTTP_MAX_TARGET_BYTES)", h->target_len, lim->max_target);
    for (size_t i = 0; i < h->target_len; i++) {
        unsigned char c = (unsigned char)h->target[i];
        /* a raw NUL would cut the path libmicrohttpd hands over, %00 the decoded one: both would
         * route a shorter path than the one sent */
        if (is_ctl(c) || c == ' ')
            return refuse(v, 400, "the request-target holds a %s at byte %zu",
                          c == 0 ? "NUL byte" : c == ' ' ? "space" : "control character", i);
        int b = escape_at(h->target, h->target_len, i);
        if (b >= 0 && is_ctl((unsigned char)b))
            return refuse(v, 400, "the request-target holds %%%02X (a %s) at byte %zu", b,
                          b == 0 ? "NUL" : "control character", i);
    }
    return true;
}

/* RFC 9110 uri-host [":" port]: reg-name, IPv4 or an IP literal; an empty value is allowed. */
static bool host_valid(const char *s, size_t n)
{
    for (size_t i = 0; i < n; i++) {
        unsigned char c = (unsigned char)s[i];
        bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                  (c && strchr("-._~%!$&'()*+,;=:[]", c) != NULL);
        if (!ok)
            return false;
    }
    return true;
}

static bool name_is(const sg_http_field *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len == n && strncasecmp(f->name, name, n) == 0;
}

/* A name that starts like a framing field but is not one ("Transfer-Encodingchunked" is what
 * libmicrohttpd makes of an obs-folded "Transfer-Encoding:\r\n chunked"): a proxy in front could
 * read the framing field there, this server would not. */
static bool name_mimics(const sg_http_field *f, const char *name)
{
    size_t n = strlen(name);
    return f->name_len > n && strncasecmp(f->name, name, n) == 0;
}

/* How much of a (valid, so printable) field name a message shows. */
static int name_shown(const sg_http_field *f) { return f->name_len > 64 ? 64 : (int)f->name_len; }

static bool parse_length(const char *s, size_t n, uint64_t *out)
{
    if (n == 0)
        return false;
    uint64_t v = 0;
    for (size_t i = 0; i < n; i++) {
        if (s[i] < '0' || s[i] > '9' || v > (UINT64_MAX - 9) / 10)
            return false;
        v = v * 10 + (uint64_t)(s[i] - '0');
    }
    *out = v;
    return true;
}

bool sg_edge_check_head(const sg_edge_head *h, const sg_edge_limits *lim, sg_edge_verdict *v)
{
    memset(v, 0, sizeof *v);
    if (!check_target(h, lim, v))
        return false;
    const char *ver = h->version ? h->version : "";
    if (strlen(ver) != 8 || strncmp(ver, "HTTP/1.", 7) != 0 || ver[7] < '0' || ver[7] > '9')
        return refuse(v, 505, "HTTP version not supported (HTTP/1.0 and HTTP/1.1 are)");
    /* RFC 9112 2.3: a higher minor version is read as the highest one known, 1.1 */
    const bool http10 = ver[7] == '0';
    if (!h->method || !is_token(h->method, strlen(h->method)))
        return refuse(v, 400, "the request method is not a token");
    if (h->n_fields > lim->max_headers)
        return refuse(v, 431, "%zu header fields, over the limit of %zu (SG_HTTP_MAX_HEADERS)",
                      h->n_fields, lim->max_headers);

    size_t bytes = 0, n_host = 0, n_cl = 0, n_te = 0;
    const sg_http_field *host = NULL, *cl = NULL, *te = NULL;
    for (size_t i = 0; i < h->n_fields; i++) {
        const sg_http_field *f = &h->fields[i];
        bytes += f->name_len + f->value_len + 4; /* ": " and CRLF */
        if (!is_token(f->name, f->name_len))
            return refuse(v, 400, "header field %zu has a malformed name (empty, or white space "
                          "or another byte a name cannot hold)", i + 1);
        for (size_t k = 0; k < f->value_len; k++)
            if (is_ctl((unsigned char)f->value[k]) && f->value[k] != '\t')
                return refuse(v, 400, "header field %.*s holds a control character", name_shown(f),
                              f->name);
        if (name_is(f, "Host")) {
            n_host++;
            host = f;
        } else if (name_is(f, "Content-Length")) {
            n_cl++;
            cl = f;
        } else if (name_is(f, "Transfer-Encoding")) {
            n_te++;
            te = f;
        } else if (name_mimics(f, "Content-Length") || name_mimics(f, "Transfer-Encoding")) {
            return refuse(v, 400, "header field %.*s is not a framing field but looks like one "
                          "(an obs-folded line?)", name_shown(f), f->name);
        }
    }
    if (bytes > lim->max_header_bytes)
        return refuse(v, 431, "the header fields take %zu bytes, over the limit of %zu "
                      "(SG_HTTP_MAX_HEADER_BYTES)", bytes, lim->max_header_bytes);

    /* RFC 9112 3.2: exactly one Host in HTTP/1.1, never several, never an invalid one */
    if (n_host > 1)
        return refuse(v, 400, "%zu Host header fields (one at most)", n_host);
    if (n_host == 0 && !http10)
        return refuse(v, 400, "HTTP/1.1 request without a Host header field");
    if (host && !host_valid(host->value, host->value_len))
        return refuse(v, 400, "the Host header field is not a host[:port]");

    /* Framing (RFC 9112 6): one reading only, or a proxy and this server could disagree on where
     * the request ends and the rest would be read as a second, smuggled request */
    if (n_cl > 1)
        return refuse(v, 400, "%zu Content-Length header fields (one at most)", n_cl);
    if (n_te && n_cl)
        return refuse(v, 400, "both Content-Length and Transfer-Encoding: the body's end is "
                      "ambiguous");
    if (n_te && http10)
        return refuse(v, 400, "Transfer-Encoding in an HTTP/1.0 request");
    if (n_te > 1 || (te && !(te->value_len == 7 && strncasecmp(te->value, "chunked", 7) == 0))) {
        return refuse(v, 501, "Transfer-Encoding other than exactly \"chunked\" is not "
                      "supported (send Content-Length, or chunked alone)");
    }
    if (te) {
        v->framing = SG_BODY_FRAMING_CHUNKED;
    } else if (cl) {
        if (!parse_length(cl->value, cl->value_len, &v->content_length))
            return refuse(v, 400, "Content-Length is not a number of bytes");
        v->framing = SG_BODY_FRAMING_LENGTH;
    }
    return true;
}
