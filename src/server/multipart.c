/* multipart/form-data of a body in memory (multipart.h has what is accepted and why). Every scan
 * is bounded by the body's length and every header block by max_header_bytes; nothing reads past
 * len and the data of a part is never copied. */
#include "server/multipart.h"

#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#define DEFAULT_MAX_PARTS 32
#define DEFAULT_MAX_HEADERS 16
#define DEFAULT_MAX_HEADER_BYTES 8192
#define DEFAULT_MAX_FIELD_BYTES 65536

void sg_multipart_limits_default(sg_multipart_limits *lim)
{
    lim->max_parts = DEFAULT_MAX_PARTS;
    lim->max_headers = DEFAULT_MAX_HEADERS;
    lim->max_header_bytes = DEFAULT_MAX_HEADER_BYTES;
    lim->max_field_bytes = DEFAULT_MAX_FIELD_BYTES;
}

/* ================================================================================================
 * Header values: tokens, quoted-strings, parameters
 * ============================================================================================= */

static bool is_ws(int c) { return c == ' ' || c == '\t'; }

/* RFC 7230 tchar */
static bool is_tchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("!#$%&'*+-.^_`|~", c));
}

/* RFC 2046 bchars (space allowed but not last) */
static bool is_bchar(int c)
{
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
           (c && strchr("'()+_,-./:=? ", c));
}

/* A cursor over one header value [p, end). */
typedef struct cursor {
    const char *p, *end;
} cursor;

/* how much of [p, end) an error message quotes: header values are not NUL-terminated */
static int quote_len(const char *p, const char *end, int most)
{
    return end - p < most ? (int)(end - p) : most;
}

static void skip_ws(cursor *c)
{
    while (c->p < c->end && is_ws((unsigned char)*c->p))
        c->p++;
}

/* A token or a quoted-string at c into a malloc'ed string (escapes undone); NULL with *bad set
 * when there is neither or the quoted-string is unterminated, NULL with *bad clear when out of
 * memory. */
static char *read_value(cursor *c, bool *bad)
{
    *bad = false;
    const char *s = c->p;
    if (s < c->end && *s == '"') {
        char *out = malloc((size_t)(c->end - s));
        if (!out)
            return NULL;
        size_t n = 0;
        for (const char *q = s + 1; q < c->end; q++) {
            if (*q == '"') {
                out[n] = 0;
                c->p = q + 1;
                return out;
            }
            if (*q == '\\') {
                if (++q == c->end)
                    break;
            }
            out[n++] = *q;
        }
        free(out);
        *bad = true;
        return NULL;
    }
    const char *q = s;
    while (q < c->end && is_tchar((unsigned char)*q))
        q++;
    if (q == s) {
        *bad = true;
        return NULL;
    }
    c->p = q;
    return strndup(s, (size_t)(q - s));
}

/* One ";" parameter "name=value" at c (after the separator): name into [*n, *n + *nlen), value
 * malloc'ed into *value. Errors: SG_EINVAL (syntax), SG_ENOMEM. */
static sg_status read_param(cursor *c, const char **n, size_t *nlen, char **value, const char *what,
                       sg_error *err)
{
    skip_ws(c);
    const char *s = c->p;
    while (c->p < c->end && is_tchar((unsigned char)*c->p))
        c->p++;
    if (c->p == s || c->p >= c->end || *c->p != '=') {
        return sg_error_set(err, SG_EINVAL, "%s: expected a parameter name=value at \"%.*s\"",
                            what, quote_len(s, c->end, 40), s);
    }
    *n = s;
    *nlen = (size_t)(c->p - s);
    c->p++;
    bool bad;
    *value = read_value(c, &bad);
    if (!*value) {
        if (bad)
            return sg_error_set(err, SG_EINVAL, "%s: parameter %.*s has no valid value (a token "
                                "or a closed quoted-string)", what, (int)*nlen, s);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    skip_ws(c);
    if (c->p < c->end && *c->p != ';') {
        free(*value);
        *value = NULL;
        return sg_error_set(err, SG_EINVAL, "%s: unexpected \"%.*s\" after parameter %.*s",
                            what, quote_len(c->p, c->end, 20), c->p, (int)*nlen, s);
    }
    return SG_OK;
}

static bool name_is(const char *n, size_t len, const char *want)
{
    return strlen(want) == len && strncasecmp(n, want, len) == 0;
}

/* "type/subtype" or "type" at c equals want (case-insensitive); c moves past it. */
static bool take_type(cursor *c, const char *want)
{
    skip_ws(c);
    const char *s = c->p;
    while (c->p < c->end && (is_tchar((unsigned char)*c->p) || *c->p == '/'))
        c->p++;
    const bool same = name_is(s, (size_t)(c->p - s), want);
    skip_ws(c);
    return same && (c->p == c->end || *c->p == ';');
}

sg_status sg_multipart_boundary(const char *content_type, char out[SG_MULTIPART_MAX_BOUNDARY + 1],
                                sg_error *err)
{
    out[0] = 0;
    if (!content_type || !content_type[0])
        return sg_error_set(err, SG_EINVAL, "no Content-Type: send multipart/form-data with a "
                            "boundary");
    cursor c = {content_type, content_type + strlen(content_type)};
    if (!take_type(&c, "multipart/form-data"))
        return sg_error_set(err, SG_EINVAL, "Content-Type \"%.60s\" is not multipart/form-data",
                            content_type);
    bool found = false;
    while (c.p < c.end) {
        c.p++; /* the ';' */
        skip_ws(&c);
        if (c.p == c.end)
            break; /* a trailing ';' */
        const char *n;
        size_t nlen;
        char *v;
        sg_status pst = read_param(&c, &n, &nlen, &v, "Content-Type", err);
        if (pst != SG_OK)
            return pst;
        if (!name_is(n, nlen, "boundary")) {
            free(v);
            continue;
        }
        sg_status st = SG_OK;
        const size_t len = strlen(v);
        if (found)
            st = sg_error_set(err, SG_EINVAL, "Content-Type has more than one boundary parameter");
        else if (len < 1 || len > SG_MULTIPART_MAX_BOUNDARY)
            st = sg_error_set(err, SG_EINVAL, "multipart boundary of %zu characters (must be "
                              "1..%d)", len, SG_MULTIPART_MAX_BOUNDARY);
        else if (v[len - 1] == ' ')
            st = sg_error_set(err, SG_EINVAL, "multipart boundary ends in a space (RFC 2046)");
        for (size_t i = 0; i < len && st == SG_OK; i++)
            if (!is_bchar((unsigned char)v[i]))
                st = sg_error_set(err, SG_EINVAL, "multipart boundary has a character not "
                                  "allowed by RFC 2046 (byte 0x%02x at %zu)", (unsigned char)v[i], i);
        if (st == SG_OK)
            memcpy(out, v, len + 1);
        free(v);
        if (st != SG_OK)
            return st;
        found = true;
    }
    if (!found)
        return sg_error_set(err, SG_EINVAL, "Content-Type multipart/form-data has no boundary "
                            "parameter");
    return SG_OK;
}

/* ================================================================================================
 * The body
 * ============================================================================================= */

typedef struct parser {
    const uint8_t *body;
    size_t len;
    char delim[SG_MULTIPART_MAX_BOUNDARY + 5]; /* "\r\n--" boundary */
    size_t dlen;
    sg_multipart_limits lim;
    sg_error *err;
} parser;

/* After a "--boundary" ending at i: the closing delimiter (returns 2, *next after "--"), or a
 * delimiter line (returns 1, *next after its CRLF), or not a delimiter at all (0). */
static int delimiter_end(const parser *ps, size_t i, size_t *next)
{
    const uint8_t *b = ps->body;
    if (i + 2 <= ps->len && b[i] == '-' && b[i + 1] == '-') {
        *next = i + 2;
        return 2;
    }
    while (i < ps->len && is_ws(b[i]))
        i++; /* transport padding */
    if (i + 2 <= ps->len && b[i] == '\r' && b[i + 1] == '\n') {
        *next = i + 2;
        return 1;
    }
    return 0;
}

/* The next delimiter at or after from: *at where its CRLF (or, at the very start of the body, its
 * "--") begins; returns delimiter_end's kind, 0 when there is none before the end. */
static int find_delimiter(const parser *ps, size_t from, bool at_start, size_t *at, size_t *next)
{
    if (at_start && ps->len >= ps->dlen - 2 && memcmp(ps->body, ps->delim + 2, ps->dlen - 2) == 0) {
        const int k = delimiter_end(ps, ps->dlen - 2, next);
        if (k) {
            *at = 0;
            return k;
        }
    }
    while (from < ps->len) {
        const uint8_t *hit = memmem(ps->body + from, ps->len - from, ps->delim, ps->dlen);
        if (!hit)
            return 0;
        const size_t i = (size_t)(hit - ps->body);
        const int k = delimiter_end(ps, i + ps->dlen, next);
        if (k) {
            *at = i;
            return k;
        }
        from = i + 1;
    }
    return 0;
}

static sg_status set_param(char **slot, char *v, size_t part, const char *pname, sg_error *err)
{
    if (*slot) {
        free(v);
        return sg_error_set(err, SG_EINVAL, "part %zu: Content-Disposition has %s twice", part,
                            pname);
    }
    *slot = v;
    return SG_OK;
}

/* Content-Disposition: form-data; name=...; filename=... */
static sg_status parse_disposition(const char *v, size_t vlen, size_t part, sg_multipart_part *out,
                                   sg_error *err)
{
    cursor c = {v, v + vlen};
    if (!take_type(&c, "form-data"))
        return sg_error_set(err, SG_EINVAL, "part %zu: Content-Disposition \"%.*s\" is not "
                            "form-data", part, quote_len(v, v + vlen, 40), v);
    char what[48];
    snprintf(what, sizeof what, "part %zu: Content-Disposition", part);
    while (c.p < c.end) {
        c.p++;
        skip_ws(&c);
        if (c.p == c.end)
            break;
        const char *n;
        size_t nlen;
        char *pv;
        sg_status st = read_param(&c, &n, &nlen, &pv, what, err);
        if (st != SG_OK)
            return st;
        if (name_is(n, nlen, "name"))
            st = set_param(&out->name, pv, part, "name", err);
        else if (name_is(n, nlen, "filename"))
            st = set_param(&out->filename, pv, part, "filename", err);
        else
            free(pv); /* filename* and anything else */
        if (st != SG_OK)
            return st;
    }
    if (!out->name)
        return sg_error_set(err, SG_EINVAL, "part %zu: Content-Disposition has no name parameter",
                            part);
    if (!out->name[0])
        return sg_error_set(err, SG_EINVAL, "part %zu: Content-Disposition has an empty name",
                            part);
    return SG_OK;
}

static char *trimmed_dup(const char *v, size_t n)
{
    while (n && is_ws((unsigned char)v[n - 1]))
        n--;
    return strndup(v, n);
}

/* The header block of part (1-based) from *pos up to and including its empty line; *pos moves
 * past it. */
static sg_status parse_headers(parser *ps, size_t *pos, size_t part, sg_multipart_part *out)
{
    sg_error *err = ps->err;
    const size_t start = *pos;
    size_t i = start, nheaders = 0;
    bool disposition = false;
    for (;;) {
        const size_t room = ps->len - i;
        const size_t budget_left = ps->lim.max_header_bytes - (i - start);
        const size_t scan = room < budget_left ? room : budget_left;
        const uint8_t *lf = memchr(ps->body + i, '\n', scan);
        if (!lf) {
            if (scan == budget_left && room > budget_left)
                return sg_error_set(err, SG_ETOOBIG, "part %zu: headers over %zu bytes", part,
                                    ps->lim.max_header_bytes);
            return sg_error_set(err, SG_EINVAL, "part %zu: the body ends inside its headers",
                                part);
        }
        const size_t e = (size_t)(lf - ps->body); /* the LF */
        if (e == i || ps->body[e - 1] != '\r')
            return sg_error_set(err, SG_EINVAL, "part %zu: header line %zu does not end in CRLF",
                                part, nheaders + 1);
        const char *line = (const char *)ps->body + i;
        const size_t n = e - 1 - i;
        i = e + 1;
        if (n == 0)
            break; /* the empty line */
        if (++nheaders > ps->lim.max_headers)
            return sg_error_set(err, SG_ETOOBIG, "part %zu: more than %zu header lines", part,
                                ps->lim.max_headers);
        if (is_ws((unsigned char)line[0]))
            return sg_error_set(err, SG_EINVAL, "part %zu: folded header line %zu (obsolete "
                                "line folding is not accepted)", part, nheaders);
        for (size_t k = 0; k < n; k++) {
            const unsigned char ch = (unsigned char)line[k];
            if ((ch < 0x20 && ch != '\t') || ch == 0x7f)
                return sg_error_set(err, SG_EINVAL, "part %zu: control byte 0x%02x in header "
                                    "line %zu", part, ch, nheaders);
        }
        const char *colon = memchr(line, ':', n);
        size_t nl = colon ? (size_t)(colon - line) : 0;
        bool name_ok = nl > 0;
        for (size_t k = 0; k < nl && name_ok; k++)
            name_ok = is_tchar((unsigned char)line[k]);
        if (!name_ok)
            return sg_error_set(err, SG_EINVAL, "part %zu: header line %zu is not \"Name: value\"",
                                part, nheaders);
        const char *v = colon + 1;
        size_t vlen = n - nl - 1;
        while (vlen && is_ws((unsigned char)*v)) {
            v++;
            vlen--;
        }
        sg_status st = SG_OK;
        if (name_is(line, nl, "Content-Disposition")) {
            if (disposition)
                return sg_error_set(err, SG_EINVAL, "part %zu: more than one Content-Disposition",
                                    part);
            disposition = true;
            st = parse_disposition(v, vlen, part, out, err);
        } else if (name_is(line, nl, "Content-Type")) {
            if (out->content_type)
                return sg_error_set(err, SG_EINVAL, "part %zu: more than one Content-Type", part);
            if (!(out->content_type = trimmed_dup(v, vlen)))
                st = sg_error_set(err, SG_ENOMEM, "out of memory");
        } else if (name_is(line, nl, "Content-Transfer-Encoding")) {
            cursor c = {v, v + vlen};
            if (!take_type(&c, "binary") && !(c.p = v, take_type(&c, "8bit")) &&
                !(c.p = v, take_type(&c, "7bit")))
                st = sg_error_set(err, SG_EINVAL, "part %zu: Content-Transfer-Encoding \"%.*s\" "
                                  "is not supported (send the bytes as they are)", part,
                                  (int)(vlen < 30 ? vlen : 30), v);
        }
        if (st != SG_OK)
            return st;
    }
    if (!disposition)
        return sg_error_set(err, SG_EINVAL, "part %zu has no Content-Disposition header", part);
    *pos = i;
    return SG_OK;
}

static void part_free(sg_multipart_part *p)
{
    free(p->name);
    free(p->filename);
    free(p->content_type);
}

void sg_multipart_free(sg_multipart *mp)
{
    if (!mp)
        return;
    for (size_t i = 0; i < mp->n_parts; i++)
        part_free(&mp->parts[i]);
    free(mp->parts);
    mp->parts = NULL;
    mp->n_parts = 0;
}

static sg_status parse_body(parser *ps, sg_multipart *out)
{
    sg_error *err = ps->err;
    size_t at, pos;
    int kind = find_delimiter(ps, 0, true, &at, &pos);
    if (!kind)
        return sg_error_set(err, SG_EINVAL, "no multipart delimiter \"--%s\" in the body of %zu "
                            "bytes", ps->delim + 4, ps->len);
    if (kind == 2)
        return SG_OK; /* "--boundary--": a form with no fields */
    out->parts = calloc(ps->lim.max_parts ? ps->lim.max_parts : 1, sizeof *out->parts);
    if (!out->parts)
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    for (;;) {
        const size_t part = out->n_parts + 1;
        if (out->n_parts == ps->lim.max_parts)
            return sg_error_set(err, SG_ETOOBIG, "more than %zu parts", ps->lim.max_parts);
        sg_multipart_part *p = &out->parts[out->n_parts++];
        sg_status st = parse_headers(ps, &pos, part, p);
        if (st != SG_OK)
            return st;
        size_t next;
        kind = find_delimiter(ps, pos, false, &at, &next);
        if (!kind)
            return sg_error_set(err, SG_EINVAL, "part %zu (\"%.40s\"): the body ends before the "
                                "closing delimiter \"--%s--\" (a cut-short upload?)", part,
                                p->name, ps->delim + 4);
        p->data = ps->body + pos;
        p->len = at - pos;
        if (!p->filename && p->len > ps->lim.max_field_bytes)
            return sg_error_set(err, SG_ETOOBIG, "field \"%.40s\" has %zu bytes, over the limit "
                                "of %zu for a field that is not a file", p->name, p->len,
                                ps->lim.max_field_bytes);
        pos = next;
        if (kind == 2)
            return SG_OK; /* the epilogue is ignored */
    }
}

sg_status sg_multipart_parse(const uint8_t *body, size_t len, const char *content_type,
                             const sg_multipart_limits *lim, sg_multipart *out, sg_error *err)
{
    memset(out, 0, sizeof *out);
    parser ps = {.body = body, .len = len, .err = err};
    if (lim)
        ps.lim = *lim;
    else
        sg_multipart_limits_default(&ps.lim);
    if (!body && len)
        return sg_error_set(err, SG_EINVAL, "no body");
    if (ps.lim.max_header_bytes < 2)
        return sg_error_set(err, SG_EINVAL, "multipart limits: max_header_bytes must be >= 2");
    char boundary[SG_MULTIPART_MAX_BOUNDARY + 1];
    sg_status st = sg_multipart_boundary(content_type, boundary, err);
    if (st != SG_OK)
        return st;
    if (len == 0)
        return sg_error_set(err, SG_EINVAL, "empty multipart body");
    ps.dlen = (size_t)snprintf(ps.delim, sizeof ps.delim, "\r\n--%s", boundary);
    st = parse_body(&ps, out);
    if (st != SG_OK)
        sg_multipart_free(out);
    return st;
}

const sg_multipart_part *sg_multipart_next(const sg_multipart *mp, const sg_multipart_part *prev,
                                           const char *name)
{
    if (!mp || !name || !mp->parts)
        return NULL;
    size_t i = prev ? (size_t)(prev - mp->parts) + 1 : 0;
    for (; i < mp->n_parts; i++)
        if (strcmp(mp->parts[i].name, name) == 0)
            return &mp->parts[i];
    return NULL;
}

const sg_multipart_part *sg_multipart_find(const sg_multipart *mp, const char *name)
{
    return sg_multipart_next(mp, NULL, name);
}

size_t sg_multipart_count(const sg_multipart *mp, const char *name)
{
    size_t n = 0;
    for (const sg_multipart_part *p = sg_multipart_find(mp, name); p; p = sg_multipart_next(mp, p, name))
        n++;
    return n;
}
