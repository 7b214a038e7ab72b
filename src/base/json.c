/* sg_json_parse: strict RFC 8259 parsing by recursive descent (bounded by SG_JSON_MAX_DEPTH) into
 * jansson values. Strings are the hot path: runs of plain ASCII are skipped 16 bytes per step (two
 * 64-bit words tested with bit tricks), and a string without escapes goes to jansson straight from
 * the input, so its bytes are copied once. Escaped strings and number text are built on a scratch
 * stack owned by the parse. */
#include "base/json.h"

#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#if JANSSON_VERSION_HEX < 0x020e00
#error "base/json.c needs jansson 2.14 or newer (json_object_setn_new_nocheck)"
#endif

#if JSON_INTEGER_IS_LONG_LONG
#define SG_JSON_INT_MAX LLONG_MAX
#else
#define SG_JSON_INT_MAX LONG_MAX
#endif

typedef struct json_parser {
    const char *buf; /* the start of the input, for error offsets */
    const char *end;
    const char *p; /* the next byte to read; never past end */
    int depth;     /* arrays and objects currently open */
    sg_error *err;
    /* Unescaped strings and NUL-terminated number text are built here. It is used as a stack: an
     * escaped object key stays on it while its value is parsed, and the value pushes above it. */
    char *scratch;
    size_t scratch_len, scratch_cap;
} json_parser;

/* A parsed string: a span of the input when it had no escapes, else a span of the scratch stack,
 * kept as an offset because the scratch buffer may move while a key waits for its value. */
typedef struct json_span {
    const char *input; /* NULL when the bytes are in scratch */
    size_t off, len;
} json_span;

static const char *span_bytes(const json_parser *ps, const json_span *s)
{
    return s->input ? s->input : ps->scratch + s->off;
}

/* ---- errors ---- */

static void *fail(json_parser *ps, const char *at, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Sets the error "invalid JSON at offset N: ..." for the byte at `at`; returns NULL. */
static void *fail(json_parser *ps, const char *at, const char *fmt, ...)
{
    char what[160];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(what, sizeof what, fmt, ap);
    va_end(ap);
    sg_error_set(ps->err, SG_EINVAL, "invalid JSON at offset %zu: %s", (size_t)(at - ps->buf),
                 what);
    return NULL;
}

/* Reports what was found at ps->p where `what` should have been. */
static void *expected(json_parser *ps, const char *what)
{
    if (ps->p == ps->end)
        return fail(ps, ps->p, "expected %s, found end of input", what);
    unsigned char c = (unsigned char)*ps->p;
    if (c >= 0x20 && c < 0x7F)
        return fail(ps, ps->p, "expected %s, found '%c'", what, c);
    return fail(ps, ps->p, "expected %s, found byte 0x%02X", what, c);
}

static void *nomem(json_parser *ps)
{
    sg_error_set(ps->err, SG_ENOMEM, "JSON: out of memory");
    return NULL;
}

/* ---- bytes ---- */

static bool is_digit(char c)
{
    return c >= '0' && c <= '9';
}

static void skip_space(json_parser *ps)
{
    const char *p = ps->p;
    while (p < ps->end && (*p == ' ' || *p == '\n' || *p == '\r' || *p == '\t'))
        p++;
    ps->p = p;
}

/* Bytes that may stand for themselves inside a string: printable ASCII other than '"' and '\'. */
#define JSON_PLAIN(c) ((c) >= 0x20 && (c) < 0x80 && (c) != '"' && (c) != '\\')
#define JSON_PLAIN4(c) JSON_PLAIN(c), JSON_PLAIN((c) + 1), JSON_PLAIN((c) + 2), JSON_PLAIN((c) + 3)
#define JSON_PLAIN16(c)                                                                            \
    JSON_PLAIN4(c), JSON_PLAIN4((c) + 4), JSON_PLAIN4((c) + 8), JSON_PLAIN4((c) + 12)
#define JSON_PLAIN64(c)                                                                            \
    JSON_PLAIN16(c), JSON_PLAIN16((c) + 16), JSON_PLAIN16((c) + 32), JSON_PLAIN16((c) + 48)

static const bool json_plain[256] = {JSON_PLAIN64(0), JSON_PLAIN64(64), JSON_PLAIN64(128),
                                     JSON_PLAIN64(192)};

#define BYTES_1 UINT64_C(0x0101010101010101)
#define BYTES_80 UINT64_C(0x8080808080808080)

/* True when none of the 8 bytes in w is special in a string. (x - 0x01..) & ~x & 0x80.. is
 * nonzero exactly when x has a zero byte (here: a '"' or '\\' in w), and (w - 0x20..) & ~w & 0x80..
 * exactly when w has a byte below 0x20; w & 0x80.. catches bytes above 0x7F. */
static bool word_is_plain(uint64_t w)
{
    uint64_t quote = w ^ (BYTES_1 * '"');
    uint64_t backslash = w ^ (BYTES_1 * '\\');
    uint64_t special = ((quote - BYTES_1) & ~quote) | ((backslash - BYTES_1) & ~backslash) |
                       ((w - BYTES_1 * 0x20) & ~w) | w;
    return (special & BYTES_80) == 0;
}

/* Returns the first byte at or after p that is not plain (see JSON_PLAIN), or end. */
static const char *skip_plain(const char *p, const char *end)
{
    while (end - p >= 16) {
        uint64_t w0, w1;
        memcpy(&w0, p, 8);
        memcpy(&w1, p + 8, 8);
        if (!word_is_plain(w0) || !word_is_plain(w1))
            break;
        p += 16;
    }
    while (p < end && json_plain[(unsigned char)*p])
        p++;
    return p;
}

/* The length of the well-formed UTF-8 sequence at p (whose first byte is >= 0x80), or 0. Follows
 * Unicode's table of well-formed sequences, so overlong forms, UTF-16 surrogates (U+D800..DFFF)
 * and code points past U+10FFFF are all refused. */
static size_t utf8_sequence(const unsigned char *p, const unsigned char *end)
{
    unsigned c = p[0], lo = 0x80, hi = 0xBF; /* the range allowed for the second byte */
    size_t n;
    if (c >= 0xC2 && c <= 0xDF) {
        n = 2;
    } else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0; /* overlong below U+0800 */
        else if (c == 0xED)
            hi = 0x9F; /* surrogates */
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90; /* overlong below U+10000 */
        else if (c == 0xF4)
            hi = 0x8F; /* past U+10FFFF */
    } else {
        return 0;
    }
    if ((size_t)(end - p) < n || p[1] < lo || p[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if ((p[i] & 0xC0) != 0x80)
            return 0;
    return n;
}

/* ---- the scratch stack ---- */

static bool scratch_reserve(json_parser *ps, size_t n)
{
    if (ps->scratch_cap - ps->scratch_len >= n)
        return true;
    size_t cap = ps->scratch_cap ? ps->scratch_cap : 256;
    while (cap - ps->scratch_len < n) {
        if (cap > SIZE_MAX / 2)
            return false;
        cap *= 2;
    }
    char *s = realloc(ps->scratch, cap);
    if (!s)
        return false;
    ps->scratch = s;
    ps->scratch_cap = cap;
    return true;
}

static bool scratch_push(json_parser *ps, const char *bytes, size_t n)
{
    if (n == 0)
        return true;
    if (!scratch_reserve(ps, n))
        return false;
    memcpy(ps->scratch + ps->scratch_len, bytes, n);
    ps->scratch_len += n;
    return true;
}

/* ---- strings ---- */

/* The value of 4 hex digits at p, or -1. */
static long hex4(const char *p)
{
    long v = 0;
    for (int i = 0; i < 4; i++) {
        char c = p[i];
        int d;
        if (c >= '0' && c <= '9')
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return -1;
        v = v << 4 | d;
    }
    return v;
}

/* Decodes the \uXXXX escape at p (or a \uXXXX\uXXXX surrogate pair) onto the scratch stack as
 * UTF-8. Returns the byte after it, or NULL with the error set. */
static const char *unescape_u(json_parser *ps, const char *p)
{
    long cp;
    if (ps->end - p < 6 || (cp = hex4(p + 2)) < 0)
        return fail(ps, p, "invalid \\u escape (needs 4 hex digits)");
    const char *next = p + 6;
    if (cp >= 0xDC00 && cp <= 0xDFFF)
        return fail(ps, p, "unpaired UTF-16 low surrogate \\u%04lX", cp);
    if (cp >= 0xD800 && cp <= 0xDBFF) {
        if (ps->end - next < 2 || next[0] != '\\' || next[1] != 'u')
            return fail(ps, p, "unpaired UTF-16 high surrogate \\u%04lX", cp);
        long low;
        if (ps->end - next < 6 || (low = hex4(next + 2)) < 0)
            return fail(ps, next, "invalid \\u escape (needs 4 hex digits)");
        if (low < 0xDC00 || low > 0xDFFF)
            return fail(ps, p, "UTF-16 high surrogate \\u%04lX not followed by a low one", cp);
        cp = 0x10000 + ((cp - 0xD800) << 10) + (low - 0xDC00);
        next += 6;
    }
    char u[4];
    size_t n;
    if (cp < 0x80) {
        u[0] = (char)cp;
        n = 1;
    } else if (cp < 0x800) {
        u[0] = (char)(0xC0 | cp >> 6);
        u[1] = (char)(0x80 | (cp & 0x3F));
        n = 2;
    } else if (cp < 0x10000) {
        u[0] = (char)(0xE0 | cp >> 12);
        u[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[2] = (char)(0x80 | (cp & 0x3F));
        n = 3;
    } else {
        u[0] = (char)(0xF0 | cp >> 18);
        u[1] = (char)(0x80 | (cp >> 12 & 0x3F));
        u[2] = (char)(0x80 | (cp >> 6 & 0x3F));
        u[3] = (char)(0x80 | (cp & 0x3F));
        n = 4;
    }
    return scratch_push(ps, u, n) ? next : nomem(ps);
}

/* Decodes the escape sequence at p (a backslash) onto the scratch stack. Returns the byte after
 * it, or NULL with the error set. */
static const char *unescape(json_parser *ps, const char *p)
{
    if (ps->end - p < 2)
        return fail(ps, ps->p, "unterminated string"); /* ps->p is still the opening quote */
    char c;
    switch (p[1]) {
    case '"': c = '"'; break;
    case '\\': c = '\\'; break;
    case '/': c = '/'; break;
    case 'b': c = '\b'; break;
    case 'f': c = '\f'; break;
    case 'n': c = '\n'; break;
    case 'r': c = '\r'; break;
    case 't': c = '\t'; break;
    case 'u': return unescape_u(ps, p);
    default: return fail(ps, p, "invalid escape sequence in string");
    }
    return scratch_push(ps, &c, 1) ? p + 2 : nomem(ps);
}

/* Parses the string whose opening quote is at ps->p into *out and leaves ps->p after the closing
 * quote. Only a string with escapes is copied (to the scratch stack), and then plain runs are
 * copied whole. Returns false with the error set. */
static bool parse_string(json_parser *ps, json_span *out)
{
    const char *start = ps->p + 1;
    const char *p = start;
    const char *run = start; /* start of the bytes not yet copied to scratch, once escaped */
    size_t mark = ps->scratch_len;
    bool escaped = false;
    for (;;) {
        p = skip_plain(p, ps->end);
        if (p == ps->end) {
            fail(ps, ps->p, "unterminated string");
            return false;
        }
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            break;
        if (c >= 0x80) {
            size_t n = utf8_sequence((const unsigned char *)p, (const unsigned char *)ps->end);
            if (n == 0) {
                fail(ps, p, "invalid UTF-8 in string");
                return false;
            }
            p += n;
            continue;
        }
        if (c < 0x20) {
            fail(ps, p, "unescaped control character 0x%02X in string", c);
            return false;
        }
        /* a backslash */
        if (!scratch_push(ps, run, (size_t)(p - run))) {
            nomem(ps);
            return false;
        }
        escaped = true;
        p = unescape(ps, p);
        if (!p)
            return false;
        run = p;
    }
    if (escaped) {
        if (!scratch_push(ps, run, (size_t)(p - run))) {
            nomem(ps);
            return false;
        }
        *out = (json_span){.input = NULL, .off = mark, .len = ps->scratch_len - mark};
    } else {
        *out = (json_span){.input = start, .off = 0, .len = (size_t)(p - start)};
    }
    ps->p = p + 1;
    return true;
}

static json_t *parse_string_value(json_parser *ps)
{
    size_t mark = ps->scratch_len;
    json_span s;
    if (!parse_string(ps, &s))
        return NULL;
    json_t *v = json_stringn_nocheck(span_bytes(ps, &s), s.len);
    ps->scratch_len = mark;
    return v ? v : nomem(ps);
}

/* ---- numbers ---- */

static json_t *make_integer(json_parser *ps, const char *start, bool negative, const char *digits,
                            const char *digits_end)
{
    uint64_t limit = negative ? (uint64_t)SG_JSON_INT_MAX + 1 : (uint64_t)SG_JSON_INT_MAX;
    uint64_t m = 0;
    for (const char *q = digits; q < digits_end; q++) {
        unsigned d = (unsigned)(*q - '0');
        if (m > (limit - d) / 10)
            return fail(ps, start, "integer out of range");
        m = m * 10 + d;
    }
    json_int_t v;
    if (!negative)
        v = (json_int_t)m;
    else if (m == 0)
        v = 0;
    else
        v = -(json_int_t)(m - 1) - 1; /* -2^63 without overflowing */
    json_t *j = json_integer(v);
    return j ? j : nomem(ps);
}

/* The number is converted by strtod, which needs NUL-terminated text; and strtod reads the
 * decimal point of the current LC_NUMERIC locale. So the text it gets has no point at all: the
 * fraction digits join the integer digits and the exponent drops by their count ("-1.25e3"
 * becomes "-125e1"), the same decimal value, correctly rounded by strtod either way. */
static json_t *make_real(json_parser *ps, const char *start, bool negative, const char *int_digits,
                         const char *int_end, const char *frac, const char *frac_end,
                         const char *exp, const char *exp_end)
{
    /* The exponent saturates: past 10^15 no digit string that fits in memory brings the value
     * back into double's range, so the result (inf or 0) is the same. */
    const long long exp_cap = 1000000000000000LL;
    long long e = 0;
    if (exp) {
        bool exp_negative = *exp == '-';
        if (*exp == '-' || *exp == '+')
            exp++;
        for (; exp < exp_end; exp++)
            if (e < exp_cap)
                e = e * 10 + (*exp - '0');
        if (exp_negative)
            e = -e;
    }
    size_t nint = (size_t)(int_end - int_digits), nfrac = frac ? (size_t)(frac_end - frac) : 0;
    e -= (long long)nfrac;

    size_t need = 1 + nint + nfrac + 24; /* sign, digits, "e", exponent, NUL */
    if (!scratch_reserve(ps, need))
        return nomem(ps);
    char *text = ps->scratch + ps->scratch_len;
    char *t = text;
    if (negative)
        *t++ = '-';
    memcpy(t, int_digits, nint);
    t += nint;
    if (nfrac) {
        memcpy(t, frac, nfrac);
        t += nfrac;
    }
    snprintf(t, 24, "e%lld", e);
    double d = strtod(text, NULL);
    if (isinf(d))
        return fail(ps, start, "number out of range");
    json_t *j = json_real(d);
    return j ? j : nomem(ps);
}

/* Parses -?(0|[1-9][0-9]*)(\.[0-9]+)?([eE][+-]?[0-9]+)? at ps->p: an integer when there is
 * neither fraction nor exponent, else a real. */
static json_t *parse_number(json_parser *ps)
{
    const char *start = ps->p, *p = start, *end = ps->end;
    bool negative = *p == '-';
    if (negative)
        p++;
    const char *int_digits = p;
    if (p == end || !is_digit(*p)) {
        ps->p = p;
        return expected(ps, "a digit after '-'");
    }
    if (*p == '0') {
        p++;
        if (p < end && is_digit(*p))
            return fail(ps, start, "number with a leading zero");
    } else {
        while (p < end && is_digit(*p))
            p++;
    }
    const char *int_end = p, *frac = NULL, *frac_end = NULL, *exp = NULL;
    if (p < end && *p == '.') {
        frac = ++p;
        if (p == end || !is_digit(*p)) {
            ps->p = p;
            return expected(ps, "a digit after the decimal point");
        }
        while (p < end && is_digit(*p))
            p++;
        frac_end = p;
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        exp = ++p;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p == end || !is_digit(*p)) {
            ps->p = p;
            return expected(ps, "a digit in the exponent");
        }
        while (p < end && is_digit(*p))
            p++;
    }
    ps->p = p;
    if (!frac && !exp)
        return make_integer(ps, start, negative, int_digits, int_end);
    return make_real(ps, start, negative, int_digits, int_end, frac, frac_end, exp, p);
}

/* ---- values ---- */

static json_t *parse_value(json_parser *ps);

static json_t *parse_literal(json_parser *ps, const char *word, json_t *value)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - ps->p) < n || memcmp(ps->p, word, n) != 0)
        return fail(ps, ps->p, "invalid literal (expected '%s')", word);
    ps->p += n;
    return value;
}

static json_t *parse_array(json_parser *ps)
{
    if (++ps->depth > SG_JSON_MAX_DEPTH)
        return fail(ps, ps->p, "nesting too deep (more than %d levels)", SG_JSON_MAX_DEPTH);
    ps->p++;
    json_t *arr = json_array();
    if (!arr)
        return nomem(ps);
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == ']')
        goto done;
    for (;;) {
        json_t *v = parse_value(ps);
        if (!v)
            goto error;
        if (json_array_append_new(arr, v) != 0) { /* it releases v */
            nomem(ps);
            goto error;
        }
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == ']')
            break;
        if (ps->p == ps->end || *ps->p != ',') {
            expected(ps, "',' or ']' in array");
            goto error;
        }
        ps->p++;
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == ']') {
            fail(ps, ps->p, "trailing comma in array");
            goto error;
        }
    }
done:
    ps->p++;
    ps->depth--;
    return arr;
error:
    json_decref(arr);
    return NULL;
}

static json_t *parse_object(json_parser *ps)
{
    if (++ps->depth > SG_JSON_MAX_DEPTH)
        return fail(ps, ps->p, "nesting too deep (more than %d levels)", SG_JSON_MAX_DEPTH);
    ps->p++;
    json_t *obj = json_object();
    if (!obj)
        return nomem(ps);
    skip_space(ps);
    if (ps->p < ps->end && *ps->p == '}')
        goto done;
    for (;;) {
        if (ps->p == ps->end || *ps->p != '"') {
            expected(ps, "'\"' to start an object key");
            goto error;
        }
        const char *key_at = ps->p;
        size_t mark = ps->scratch_len;
        json_span key;
        if (!parse_string(ps, &key))
            goto error;
        /* jansson keys are C strings; only an escape can put a NUL in one */
        if (!key.input && memchr(ps->scratch + key.off, '\0', key.len)) {
            fail(ps, key_at, "NUL character (\\u0000) in object key");
            goto error;
        }
        skip_space(ps);
        if (ps->p == ps->end || *ps->p != ':') {
            expected(ps, "':' after object key");
            goto error;
        }
        ps->p++;
        json_t *v = parse_value(ps);
        if (!v)
            goto error;
        /* replaces an earlier value for the same key: the last one wins, as in jansson */
        if (json_object_setn_new_nocheck(obj, span_bytes(ps, &key), key.len, v) != 0) {
            nomem(ps); /* v is released */
            goto error;
        }
        ps->scratch_len = mark;
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == '}')
            break;
        if (ps->p == ps->end || *ps->p != ',') {
            expected(ps, "',' or '}' after object member");
            goto error;
        }
        ps->p++;
        skip_space(ps);
        if (ps->p < ps->end && *ps->p == '}') {
            fail(ps, ps->p, "trailing comma in object");
            goto error;
        }
    }
done:
    ps->p++;
    ps->depth--;
    return obj;
error:
    json_decref(obj);
    return NULL;
}

static json_t *parse_value(json_parser *ps)
{
    skip_space(ps);
    if (ps->p == ps->end)
        return expected(ps, "a value");
    switch (*ps->p) {
    case '{': return parse_object(ps);
    case '[': return parse_array(ps);
    case '"': return parse_string_value(ps);
    case 't': return parse_literal(ps, "true", json_true());
    case 'f': return parse_literal(ps, "false", json_false());
    case 'n': return parse_literal(ps, "null", json_null());
    case '-':
    case '0': case '1': case '2': case '3': case '4':
    case '5': case '6': case '7': case '8': case '9': return parse_number(ps);
    default: return expected(ps, "a value");
    }
}

json_t *sg_json_parse(const char *buf, size_t len, sg_error *err)
{
    if (!buf) {
        sg_error_set(err, SG_EINVAL, "invalid JSON: no input");
        return NULL;
    }
    json_parser ps = {.buf = buf, .end = buf + len, .p = buf, .err = err};
    json_t *v = parse_value(&ps);
    if (v) {
        skip_space(&ps);
        if (ps.p != ps.end) {
            expected(&ps, "nothing after the value");
            json_decref(v);
            v = NULL;
        }
    }
    free(ps.scratch);
    return v;
}

const char *sg_json_cstr(const json_t *v)
{
    if (!json_is_string(v))
        return NULL;
    const char *s = json_string_value(v);
    return memchr(s, 0, json_string_length(v)) ? NULL : s;
}

int sg_json_int(const json_t *o, const char *key, int def)
{
    json_t *v = json_object_get(o, key);
    return json_is_integer(v) ? (int)json_integer_value(v) : def;
}

double sg_json_number(const json_t *o, const char *key, double def)
{
    json_t *v = json_object_get(o, key);
    return json_is_number(v) ? json_number_value(v) : def;
}
