/* Tests for base/json: values and errors (with offsets) for the RFC 8259 grammar, escapes and
 * surrogate pairs, UTF-8 validation, integer and real limits, the nesting limit, duplicate keys,
 * a 4 MB string, allocation failures, and agreement with jansson's json_loadb on a corpus. Every
 * input is parsed from an exact-size heap copy, so ASan catches a read past the end. */
#include <float.h>
#include <limits.h>
#include <locale.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "base/json.h"
#include "check.h"

#define JANSSON_FLAGS (JSON_DECODE_ANY | JSON_ALLOW_NUL)

/* Parses s[0..len) from an exact-size copy. */
static json_t *parse(const char *s, size_t len, sg_error *err)
{
    char *copy = malloc(len ? len : 1);
    if (!copy)
        return NULL;
    memcpy(copy, s, len);
    json_t *v = sg_json_parse(copy, len, err);
    free(copy);
    return v;
}

static json_t *parse_str(const char *s, sg_error *err)
{
    return parse(s, strlen(s), err);
}

/* The offset in an "invalid JSON at offset N: ..." message, or -1. */
static long error_offset(const sg_error *err)
{
    const char *prefix = "invalid JSON at offset ";
    if (strncmp(err->msg, prefix, strlen(prefix)) != 0)
        return -1;
    return strtol(err->msg + strlen(prefix), NULL, 10);
}

/* Expects s[0..len) to be refused with SG_EINVAL at `offset`, the message containing `needle`. */
static void check_rejects_n(const char *s, size_t len, long offset, const char *needle)
{
    sg_error err = {0};
    json_t *v = parse(s, len, &err);
    CHECK_MSG(v == NULL, "\"%.*s\" accepted", (int)len, s);
    json_decref(v);
    if (v)
        return;
    CHECK_MSG(err.code == SG_EINVAL, "\"%.*s\": code %d", (int)len, s, err.code);
    CHECK_MSG(error_offset(&err) == offset, "\"%.*s\": want offset %ld: %s", (int)len, s, offset,
              err.msg);
    if (needle)
        CHECK_MSG(strstr(err.msg, needle) != NULL, "\"%.*s\": \"%s\" lacks \"%s\"", (int)len, s,
                  err.msg, needle);
}

static void check_rejects(const char *s, long offset, const char *needle)
{
    check_rejects_n(s, strlen(s), offset, needle);
}

/* Expects s to parse to a value equal to the JSON `want` as jansson reads it. */
static void check_parses_as(const char *s, const char *want)
{
    sg_error err = {0};
    json_t *v = parse_str(s, &err);
    json_error_t jerr;
    json_t *w = json_loads(want, JANSSON_FLAGS, &jerr);
    CHECK_MSG(v != NULL, "\"%s\": %s", s, err.msg);
    CHECK_MSG(w != NULL, "bad test expectation \"%s\"", want);
    if (v && w)
        CHECK_MSG(json_equal(v, w), "\"%s\" is not %s", s, want);
    json_decref(v);
    json_decref(w);
}

/* Expects s to parse to a string of exactly want_len bytes `want`. */
static void check_string(const char *s, const char *want, size_t want_len)
{
    sg_error err = {0};
    json_t *v = parse_str(s, &err);
    CHECK_MSG(v && json_is_string(v), "\"%s\": %s", s, v ? "not a string" : err.msg);
    if (v && json_is_string(v))
        CHECK_MSG(json_string_length(v) == want_len &&
                      memcmp(json_string_value(v), want, want_len) == 0,
                  "\"%s\" decoded wrong", s);
    json_decref(v);
}

static void check_integer(const char *s, json_int_t want)
{
    sg_error err = {0};
    json_t *v = parse_str(s, &err);
    CHECK_MSG(v && json_is_integer(v) && json_integer_value(v) == want, "\"%s\": %s", s,
              v ? "wrong integer" : err.msg);
    json_decref(v);
}

static void check_real(const char *s, double want)
{
    sg_error err = {0};
    json_t *v = parse_str(s, &err);
    CHECK_MSG(v && json_is_real(v) && json_real_value(v) == want &&
                  signbit(json_real_value(v)) == signbit(want),
              "\"%s\": %s %.17g", s, v ? "wrong real" : err.msg, v ? json_real_value(v) : 0.0);
    json_decref(v);
}

static void test_values(void)
{
    check_parses_as("true", "true");
    check_parses_as("false", "false");
    check_parses_as("null", "null");
    check_parses_as(" \t\r\n 42 \t\r\n ", "42");
    check_parses_as("[]", "[]");
    check_parses_as("{}", "{}");
    check_parses_as("[ ]", "[]");
    check_parses_as("{ \n }", "{}");
    check_parses_as("[1,\"two\",[3],{\"four\":4},true,false,null]",
                    "[1,\"two\",[3],{\"four\":4},true,false,null]");
    check_parses_as("{\"a\" : [ 1 , { \"b\" : null } ] , \"c\" : \"d\" }",
                    "{\"c\":\"d\",\"a\":[1,{\"b\":null}]}");
    check_parses_as("{\"\":\"\"}", "{\"\":\"\"}");
    check_parses_as("{\"text_query\":\"what time is it\",\"max_tokens\":64}",
                    "{\"max_tokens\":64,\"text_query\":\"what time is it\"}");

    /* err may be NULL */
    CHECK(sg_json_parse("[", 1, NULL) == NULL);
    sg_error err = {0};
    CHECK(sg_json_parse(NULL, 0, &err) == NULL && err.code == SG_EINVAL);
}

static void test_numbers(void)
{
    check_integer("0", 0);
    check_integer("-0", 0);
    check_integer("7", 7);
    check_integer("-7", -7);
    check_integer("1234567890123456789", 1234567890123456789LL);
    check_integer("9223372036854775807", LLONG_MAX);
    check_integer("-9223372036854775808", LLONG_MIN);
    check_rejects("9223372036854775808", 0, "integer out of range");
    check_rejects("-9223372036854775809", 0, "integer out of range");
    check_rejects("[1, 99999999999999999999999]", 4, "integer out of range");

    check_real("0.0", 0.0);
    check_real("-0.0", -0.0);
    check_real("-0e0", -0.0);
    check_real("1.5", 1.5);
    check_real("-1.25e3", -1250.0);
    check_real("1E2", 100.0);
    check_real("1e+2", 100.0);
    check_real("1e-2", 0.01);
    check_real("0.1", 0.1);
    check_real("123.456e-7", 123.456e-7);
    check_real("1.0", 1.0);
    check_real("9223372036854775808.0", 9223372036854775808.0);
    check_real("1.7976931348623157e308", DBL_MAX);
    check_real("2.2250738585072014e-308", DBL_MIN);
    check_real("4.9406564584124654e-324", 4.9406564584124654e-324);
    check_real("1e-400", 0.0); /* underflow to zero is accepted, as strtod and jansson do */
    check_real("-1e-400", -0.0);
    check_real("3.14159265358979323846264338327950288419716939937510582097494459",
               3.14159265358979323846264338327950288419716939937510582097494459);
    check_real("0.000000000000000000000000000000000000000000000001e48", 1.0);
    check_real("100000000000000000000000000000000000000000000000000e-50", 1.0);
    check_real("1e00000000000000000000000000000000000000002", 100.0);
    check_real("0e999999999999999999999999999999", 0.0);
    check_real("1e-999999999999999999999999999999", 0.0);
    check_rejects("1e309", 0, "number out of range");
    check_rejects("-1e309", 0, "number out of range");
    check_rejects("1e999999999999999999999999999999", 0, "number out of range");
    check_rejects("[0, 1.8e308]", 4, "number out of range");

    /* the grammar */
    check_rejects("01", 0, "leading zero");
    check_rejects("-01", 0, "leading zero");
    check_rejects("00", 0, "leading zero");
    check_rejects("-", 1, "digit after '-'");
    check_rejects("-a", 1, "digit after '-'");
    check_rejects("- 1", 1, "digit after '-'");
    check_rejects("1.", 2, "after the decimal point");
    check_rejects("1.e5", 2, "after the decimal point");
    check_rejects("1e", 2, "exponent");
    check_rejects("1e+", 3, "exponent");
    check_rejects("1E-x", 3, "exponent");
    check_rejects(".5", 0, "expected a value");
    check_rejects("+1", 0, "expected a value");
    check_rejects("0x10", 1, "nothing after the value");
    check_rejects("1.5.2", 3, "nothing after the value");
    check_rejects("NaN", 0, "expected a value");
    check_rejects("Infinity", 0, "expected a value");
    check_rejects("-Infinity", 1, "digit after '-'");
}

static void test_literals_and_structure(void)
{
    check_rejects("", 0, "expected a value, found end of input");
    check_rejects(" \n\t ", 4, "found end of input");
    check_rejects("tru", 0, "invalid literal");
    check_rejects("True", 0, "expected a value");
    check_rejects("nul", 0, "invalid literal");
    check_rejects("nulL", 0, "invalid literal");
    check_rejects("falsy", 0, "invalid literal");
    check_rejects("truex", 4, "nothing after the value");
    check_rejects("[true false]", 6, "',' or ']'");
    check_rejects("[", 1, "found end of input");
    check_rejects("[1", 2, "',' or ']'");
    check_rejects("[1,", 3, "expected a value");
    check_rejects("[1,]", 3, "trailing comma in array");
    check_rejects("[1,2,\n]", 6, "trailing comma in array");
    check_rejects("[,1]", 1, "expected a value");
    check_rejects("[1 2]", 3, "',' or ']'");
    check_rejects("[1]]", 3, "nothing after the value");
    check_rejects("{", 1, "'\"' to start an object key");
    check_rejects("{\"a\"", 4, "':' after object key");
    check_rejects("{\"a\" 1}", 5, "expected ':' after object key");
    check_rejects("{\"a\":", 5, "expected a value");
    check_rejects("{\"a\":}", 5, "expected a value");
    check_rejects("{\"a\":1", 6, "',' or '}'");
    check_rejects("{\"a\":1 \"b\":2}", 7, "',' or '}'");
    check_rejects("{\"a\":1,}", 7, "trailing comma in object");
    check_rejects("{,}", 1, "'\"' to start an object key");
    check_rejects("{1:2}", 1, "'\"' to start an object key");
    check_rejects("{a:1}", 1, "'\"' to start an object key");
    check_rejects("{'a':1}", 1, "'\"' to start an object key");
    check_rejects("{}}", 2, "nothing after the value");
    check_rejects("[1] x", 4, "nothing after the value");
    check_rejects("{} {}", 3, "nothing after the value");
    check_rejects("'a'", 0, "expected a value");
    check_rejects("//c\n1", 0, "expected a value");
    check_rejects("/*c*/1", 0, "expected a value");
    check_rejects("1 /*c*/", 2, "nothing after the value");
    check_rejects("[1, // two\n 2]", 4, "expected a value");
    check_rejects("\xef\xbb\xbf{}", 0, "byte 0xEF"); /* no byte order mark */
    check_rejects("\f1", 0, "byte 0x0C");           /* only space, tab, CR and LF are space */
    check_rejects("\v1", 0, "byte 0x0B");
    check_rejects("1\xa0", 1, "byte 0xA0");
    /* jansson accepts this one: see test_jansson_quirks */
    check_rejects_n("1\0", 2, 1, "byte 0x00");
    check_rejects_n("\0", 1, 0, "byte 0x00");
    check_rejects_n("[1,\0 2]", 7, 3, "expected a value");
}

static void test_strings(void)
{
    check_string("\"\"", "", 0);
    check_string("\"abc\"", "abc", 3);
    check_string("\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", "\"\\/\b\f\n\r\t", 8);
    check_string("\"a\\nb\"", "a\nb", 3);
    check_string("\"\\u0041\\u00e9\\u00E9\\u20ac\"", "A\xc3\xa9\xc3\xa9\xe2\x82\xac", 8);
    check_string("\"\\u0000\"", "\0", 1);
    check_string("\"a\\u0000b\"", "a\0b", 3);
    check_string("\"\\u007f\\u0080\\u07ff\\u0800\\uffff\"",
                 "\x7f\xc2\x80\xdf\xbf\xe0\xa0\x80\xef\xbf\xbf", 11);
    /* surrogate pairs, either case of hex */
    check_string("\"\\ud83d\\ude00\"", "\xf0\x9f\x98\x80", 4);
    check_string("\"\\uD834\\uDD1E\"", "\xf0\x9d\x84\x9e", 4);
    check_string("\"\\uD800\\uDC00\"", "\xf0\x90\x80\x80", 4);
    check_string("\"\\uDBFF\\uDFFF\"", "\xf4\x8f\xbf\xbf", 4);
    check_string("\"x\\ud83d\\ude00y\"", "x\xf0\x9f\x98\x80y", 6);
    /* raw UTF-8 and DEL pass through */
    check_string("\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"",
                 "caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80", 14);
    check_string("\"\x7f\"", "\x7f", 1);
    /* the first and last code points of each well-formed range */
    check_string("\"\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80"
                 "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf\"",
                 "\xc2\x80\xdf\xbf\xe0\xa0\x80\xed\x9f\xbf\xee\x80\x80"
                 "\xf0\x90\x80\x80\xf4\x8f\xbf\xbf",
                 21);

    /* escapes */
    check_rejects("\"abc", 0, "unterminated string");
    check_rejects("\"abc\\", 0, "unterminated string");
    check_rejects("[\"abc\\\"]", 1, "unterminated string");
    check_rejects("\"a\\x\"", 2, "invalid escape");
    check_rejects("\"a\\U0041\"", 2, "invalid escape");
    check_rejects("\"a\\'\"", 2, "invalid escape");
    check_rejects("\"\\u12\"", 1, "\\u escape");
    check_rejects("\"\\u12", 1, "\\u escape");
    check_rejects("\"\\u12G4\"", 1, "\\u escape");
    check_rejects("\"\\u-123\"", 1, "\\u escape");
    check_rejects("\"\\ud800\"", 1, "high surrogate");
    check_rejects("\"\\ud800x\"", 1, "high surrogate");
    check_rejects("\"\\ud800\\n\"", 1, "high surrogate");
    check_rejects("\"\\ud800\\u0041\"", 1, "not followed by a low one");
    check_rejects("\"\\ud800\\ud800\"", 1, "not followed by a low one");
    check_rejects("\"\\ud800\\uzzzz\"", 7, "\\u escape");
    check_rejects("\"\\udc00\"", 1, "low surrogate");
    check_rejects("\"\\udfff\\ud800\"", 1, "low surrogate");
    /* control characters must be escaped */
    check_rejects("\"a\tb\"", 2, "control character 0x09");
    check_rejects("\"a\nb\"", 2, "control character 0x0A");
    check_rejects("\"\x1f\"", 1, "control character 0x1F");
    check_rejects_n("\"a\0b\"", 5, 2, "control character 0x00");
    /* keys: like jansson, no NUL */
    check_rejects("{\"a\\u0000b\":1}", 1, "NUL character");
    check_rejects("{\"x\":1,\"\\u0000\":1}", 7, "NUL character");
    check_parses_as("{\"k\":\"a\\u0000b\"}", "{\"k\":\"a\\u0000b\"}"); /* values may */
}

/* The definition of a valid string body, written independently of the parser's table: printable
 * ASCII other than '"' and '\', or a UTF-8 sequence whose decoded code point needs exactly that
 * many bytes and is neither a surrogate nor past U+10FFFF. */
static bool reference_string_body(const uint8_t *s, size_t len)
{
    size_t i = 0;
    while (i < len) {
        uint8_t b = s[i];
        if (b < 0x80) {
            if (b < 0x20 || b == '"' || b == '\\')
                return false;
            i++;
            continue;
        }
        size_t n = (b & 0xe0) == 0xc0 ? 2 : (b & 0xf0) == 0xe0 ? 3 : (b & 0xf8) == 0xf0 ? 4 : 0;
        if (n == 0 || len - i < n)
            return false;
        uint32_t cp = b & (0x7f >> n);
        for (size_t k = 1; k < n; k++) {
            if ((s[i + k] & 0xc0) != 0x80)
                return false;
            cp = cp << 6 | (s[i + k] & 0x3f);
        }
        uint32_t min = n == 2 ? 0x80 : n == 3 ? 0x800 : 0x10000;
        if (cp < min || (cp >= 0xd800 && cp <= 0xdfff) || cp > 0x10ffff)
            return false;
        i += n;
    }
    return true;
}

/* Every byte sequence ill-formed per Unicode's table is refused at its first byte, inside a
 * string, at the start, middle and end of it. */
static void test_utf8(void)
{
    static const char *bad[] = {
        "\x80", "\xbf", "\xc0\x80", "\xc1\xbf", "\xc2", "\xc2\x7f", "\xc2\xc0", "\xdf",
        "\xe0\x80\x80", "\xe0\x9f\xbf", "\xe0\xa0", "\xe1\x80", "\xe1\x80\x7f", "\xec\xc0\x80",
        "\xed\xa0\x80", "\xed\xbf\xbf", "\xed\xa0\x80\xed\xb0\x80", "\xee\x80", "\xef\xbf",
        "\xf0\x80\x80\x80", "\xf0\x8f\xbf\xbf", "\xf0\x90\x80", "\xf1\x80\x80", "\xf3\xbf\xbf",
        "\xf4\x90\x80\x80", "\xf4\xbf\xbf\xbf", "\xf5\x80\x80\x80", "\xf7\xbf\xbf\xbf",
        "\xf8\x88\x80\x80\x80", "\xfc\x84\x80\x80\x80\x80", "\xfe", "\xff",
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char doc[64];
        snprintf(doc, sizeof doc, "\"%s\"", bad[i]);
        check_rejects(doc, 1, "invalid UTF-8");
        snprintf(doc, sizeof doc, "\"abcdefghijklmnopq%s\"", bad[i]);
        check_rejects(doc, 18, "invalid UTF-8");
        snprintf(doc, sizeof doc, "\"ab%sxyz\"", bad[i]);
        check_rejects(doc, 3, "invalid UTF-8");
        /* cut off by the end of the input, no closing quote */
        snprintf(doc, sizeof doc, "\"ab%s", bad[i]);
        check_rejects(doc, 3, "invalid UTF-8");
    }

    /* Exhaustively: every lead byte with every interesting continuation, against jansson and
     * against the definition (the decoded code point in range, not overlong, not a surrogate). */
    static const uint8_t conts[] = {0x00, 0x22, 0x41, 0x7f, 0x80, 0x8f, 0x90, 0x9f,
                                    0xa0, 0xbf, 0xc0, 0xc2, 0xe0, 0xf0, 0xff};
    enum { NC = sizeof conts };
    int disagree = 0, wrong = 0;
    for (int lead = 0x80; lead <= 0xff; lead++) {
        for (int a = 0; a < NC; a++) {
            for (int b = 0; b < NC; b++) {
                for (int c = 0; c < NC; c++) {
                    char doc[8] = {'"', (char)lead, (char)conts[a], (char)conts[b],
                                   (char)conts[c], '"'};
                    sg_error err;
                    json_t *v = parse(doc, 6, &err);
                    json_error_t jerr;
                    json_t *w = json_loadb(doc, 6, JANSSON_FLAGS, &jerr);
                    if (!v != !w || (v && !json_equal(v, w)))
                        disagree++;
                    uint8_t body[4] = {(uint8_t)lead, conts[a], conts[b], conts[c]};
                    bool ok = reference_string_body(body, 4);
                    if (!v != !ok)
                        wrong++;
                    json_decref(v);
                    json_decref(w);
                }
            }
        }
    }
    CHECK_EQ_INT(disagree, 0);
    CHECK_EQ_INT(wrong, 0);
}

/* Strings of every length up to 48 with something special at every position, so each byte of
 * the 8- and 16-byte fast scan sees each kind of special byte; each must agree with jansson. */
static void test_string_scan_boundaries(void)
{
    static const char *special[] = {"\"", "\\n", "\\u00e9", "\\ud83d\\ude00", "\xc3\xa9",
                                    "\xe2\x82\xac", "\xf0\x9f\x98\x80", "\x01", "\x1f", "\x7f",
                                    "\xc3", "\\", "\x80", "\\u0000"};
    int disagree = 0, tried = 0;
    char doc[128];
    for (size_t len = 0; len <= 48; len++) {
        for (size_t pos = 0; pos <= len; pos++) {
            for (size_t k = 0; k < sizeof special / sizeof special[0]; k++) {
                size_t n = 0, sl = strlen(special[k]);
                doc[n++] = '"';
                for (size_t i = 0; i < pos; i++)
                    doc[n++] = (char)('a' + i % 26);
                memcpy(doc + n, special[k], sl);
                n += sl;
                for (size_t i = pos; i < len; i++)
                    doc[n++] = (char)('A' + i % 26);
                doc[n++] = '"';
                sg_error err;
                json_t *v = parse(doc, n, &err);
                json_error_t jerr;
                json_t *w = json_loadb(doc, n, JANSSON_FLAGS, &jerr);
                if (!v != !w || (v && !json_equal(v, w))) {
                    disagree++;
                    fprintf(stderr, "scan: disagree on \"%.*s\"\n", (int)n, doc);
                }
                tried++;
                json_decref(v);
                json_decref(w);
                /* and without the closing quote, which must be refused (unless the special
                 * byte was itself a quote) */
                if (k > 0) {
                    v = parse(doc, n - 1, &err);
                    if (v)
                        disagree++;
                    json_decref(v);
                }
            }
        }
    }
    CHECK(tried > 10000);
    CHECK_EQ_INT(disagree, 0);
}

static void test_depth(void)
{
    enum { MAX = SG_JSON_MAX_DEPTH, HUGE_DEPTH = 200000 };
    char *doc = malloc(2 * HUGE_DEPTH + 8);
    if (!doc)
        return;
    /* exactly the limit: accepted */
    memset(doc, '[', MAX);
    memset(doc + MAX, ']', MAX);
    sg_error err = {0};
    json_t *v = parse(doc, 2 * MAX, &err);
    CHECK_MSG(v != NULL, "%d levels: %s", MAX, err.msg);
    json_decref(v);
    /* one more: refused at the bracket that goes too deep */
    memset(doc, '[', MAX + 1);
    memset(doc + MAX + 1, ']', MAX + 1);
    check_rejects_n(doc, 2 * (MAX + 1), MAX, "nesting too deep");
    /* objects count too */
    size_t n = 0;
    for (int i = 0; i < MAX + 1; i++) {
        memcpy(doc + n, "{\"a\":", 5);
        n += 5;
    }
    doc[n++] = '1';
    memset(doc + n, '}', MAX + 1);
    n += MAX + 1;
    check_rejects_n(doc, n, 5 * MAX, "nesting too deep");
    /* mixed, at the limit */
    n = 0;
    for (int i = 0; i < MAX; i++) {
        if (i % 2) {
            doc[n++] = '[';
        } else {
            memcpy(doc + n, "{\"k\":", 5);
            n += 5;
        }
    }
    for (int i = MAX - 1; i >= 0; i--)
        doc[n++] = i % 2 ? ']' : '}';
    v = parse(doc, n, &err);
    CHECK_MSG(v != NULL, "mixed %d levels: %s", MAX, err.msg);
    json_decref(v);
    /* far too deep: refused without recursing, however deep the input goes */
    memset(doc, '[', HUGE_DEPTH);
    memset(doc + HUGE_DEPTH, ']', HUGE_DEPTH);
    check_rejects_n(doc, 2 * HUGE_DEPTH, MAX, "nesting too deep");
    /* depth is nesting, not the number of containers */
    n = 0;
    doc[n++] = '[';
    for (int i = 0; i < 1000; i++) {
        memcpy(doc + n, "[[]],", 5);
        n += 5;
    }
    doc[n - 1] = ']';
    v = parse(doc, n, &err);
    CHECK_MSG(v && json_array_size(v) == 1000, "siblings: %s", err.msg);
    json_decref(v);
    free(doc);
}

static void test_duplicate_keys(void)
{
    check_parses_as("{\"a\":1,\"a\":2}", "{\"a\":2}");
    check_parses_as("{\"a\":{\"x\":1},\"b\":0,\"a\":[1]}", "{\"a\":[1],\"b\":0}");
    check_parses_as("{\"a\":1,\"\\u0061\":2}", "{\"a\":2}");
    check_parses_as("{\"\\u00e9\":1,\"\xc3\xa9\":3}", "{\"\xc3\xa9\":3}");
    sg_error err = {0};
    json_t *v = parse_str("{\"k\":1,\"k\":2,\"k\":3}", &err);
    CHECK(v && json_object_size(v) == 1 && json_integer_value(json_object_get(v, "k")) == 3);
    json_decref(v);
}

/* An escaped key waits on the scratch stack while its value (escaped strings, nested escaped
 * keys, a string long enough to move the scratch buffer) is parsed; it must survive. */
static void test_escaped_keys(void)
{
    check_parses_as("{\"k\\n\":{\"k\\t\":{\"\\u00e9\":1}},\"z\":\"\\\"\"}",
                    "{\"z\":\"\\\"\",\"k\\n\":{\"k\\t\":{\"\\u00e9\":1}}}");
    size_t big = 100000;
    char *doc = malloc(big * 2 + 64);
    char *want = malloc(big + 1);
    if (!doc || !want) {
        free(doc);
        free(want);
        return;
    }
    size_t n = (size_t)sprintf(doc, "{\"key\\u00e9\\n\":[\"");
    for (size_t i = 0; i < big; i++) {
        if (i % 10 == 0) {
            memcpy(doc + n, "\\t", 2);
            n += 2;
            want[i] = '\t';
        } else {
            doc[n++] = (char)('a' + i % 26);
            want[i] = (char)('a' + i % 26);
        }
    }
    n += (size_t)sprintf(doc + n, "\"],\"x\":1}");
    sg_error err = {0};
    json_t *v = parse(doc, n, &err);
    CHECK_MSG(v != NULL, "%s", err.msg);
    json_t *arr = v ? json_object_get(v, "key\xc3\xa9\n") : NULL;
    json_t *s = json_array_get(arr, 0);
    CHECK(s && json_string_length(s) == big && memcmp(json_string_value(s), want, big) == 0);
    CHECK(v && json_integer_value(json_object_get(v, "x")) == 1 && json_object_size(v) == 2);
    json_decref(v);
    free(doc);
    free(want);
}

/* A frame upload's shape with a 4 MB base64-like string. */
static void test_big_string(void)
{
    static const char alphabet[] =
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
    size_t big = 4u << 20;
    char *doc = malloc(big + 64);
    if (!doc)
        return;
    size_t n = (size_t)sprintf(doc, "{\"image_base64\":\"");
    uint32_t r = 99;
    for (size_t i = 0; i < big; i++) {
        r = r * 1664525u + 1013904223u;
        doc[n + i] = alphabet[r >> 26];
    }
    memcpy(doc + n + big - 2, "==", 2);
    n += big;
    n += (size_t)sprintf(doc + n, "\",\"max_tokens\":64}");
    sg_error err = {0};
    json_t *v = parse(doc, n, &err);
    CHECK_MSG(v != NULL, "%s", err.msg);
    json_t *s = v ? json_object_get(v, "image_base64") : NULL;
    CHECK(s && json_string_length(s) == big && memcmp(json_string_value(s), doc + 17, big) == 0);
    json_decref(v);
    /* the same string with one bad byte deep inside: the offset is exact */
    doc[17 + 3000001] = '\x01';
    check_rejects_n(doc, n, 17 + 3000001, "control character");
    free(doc);
}

/* Allocation failures in jansson (counted through json_set_alloc_funcs) give SG_ENOMEM, never a
 * crash or a leak (LeakSanitizer checks at exit). */
static long allocs_left;

static void *failing_malloc(size_t n)
{
    if (allocs_left-- <= 0)
        return NULL;
    return malloc(n);
}

static void test_out_of_memory(void)
{
    const char *doc = "{\"a\":[1,2.5,\"x\\u00e9\",{\"b\":null,\"c\":[true,\"long string here\"]}],"
                      "\"\\u00e9\":{\"d\":-1e3},\"e\":\"tail\"}";
    int nomem = 0, ok = 0, other = 0;
    for (long budget = 0; budget < 200; budget++) {
        allocs_left = budget;
        json_set_alloc_funcs(failing_malloc, free);
        sg_error err = {0};
        json_t *v = parse_str(doc, &err);
        json_set_alloc_funcs(malloc, free);
        if (v)
            ok++;
        else if (err.code == SG_ENOMEM)
            nomem++;
        else
            other++;
        json_decref(v);
    }
    CHECK(nomem > 10);
    CHECK(ok > 0);
    CHECK_EQ_INT(other, 0);
}

/* Reals do not depend on LC_NUMERIC (strtod never sees a decimal point). Runs only where a
 * locale with a decimal comma is installed. */
static void test_locale(void)
{
    static const char *comma_locales[] = {"de_DE.UTF-8", "de_DE.utf8", "fr_FR.UTF-8", "fr_FR.utf8"};
    for (size_t i = 0; i < sizeof comma_locales / sizeof comma_locales[0]; i++) {
        if (setlocale(LC_NUMERIC, comma_locales[i])) {
            check_real("1.5", 1.5);
            check_real("-0.25e1", -2.5);
            setlocale(LC_NUMERIC, "C");
            return;
        }
    }
}

/* Where jansson 2.14 departs from RFC 8259, and what we do instead. */
static void test_jansson_quirks(void)
{
    /* jansson drops a NUL byte right after a number or literal (its lexer pushes back the byte
     * that ended the token into a NUL-terminated buffer, where a NUL reads as empty): it accepts
     * "5\0" and "[1\0,2]". NUL is not JSON whitespace, so we refuse. */
    check_rejects_n("[1\0,2]", 6, 2, "byte 0x00");
    check_rejects_n("true\0", 5, 4, "byte 0x00");
    /* jansson allows 2048 levels of nesting; we stop at SG_JSON_MAX_DEPTH (test_depth) */
}

/* Documents on which sg_json_parse and json_loadb must agree: both refuse, or both accept and
 * build equal values. */
static const struct {
    const char *doc;
    size_t len; /* 0: strlen(doc) */
} corpus[] = {
    /* accepted */
    {"{\"image_base64\":\"/9j/4AAQSkZJRgABAQAAAQABAAD/2wBDAAgGBgcGBQgHBwcJCQgKDBQN\"}", 0},
    {"{\"text_query\":\"what time is it\",\"max_tokens\":64}", 0},
    {"{\"session_id\":\"3f2a9c4e-1b7d-4e8a\",\"stream\":true,\"temperature\":0.7}", 0},
    {"{\"audio_base64\":\"UklGRiQAAABXQVZF\",\"sample_rate\":16000,\"lang\":null}", 0},
    {"{\"location\":{\"lat\":48.8566,\"lon\":2.3522,\"acc\":12.5},\"heading\":-90}", 0},
    {"{\"history\":[{\"role\":\"user\",\"text\":\"hi\"},"
     "{\"role\":\"assistant\",\"text\":\"hello\"}]}", 0},
    {"{\"actions\":[{\"type\":\"timer\",\"seconds\":300},"
     "{\"type\":\"note\",\"text\":\"milk\"}]}", 0},
    {"[]", 0}, {"{}", 0}, {"[[]]", 0}, {"[{}]", 0}, {"{\"a\":[]}", 0}, {"{\"a\":{}}", 0},
    {"0", 0}, {"-0", 0}, {"1", 0}, {"-1", 0}, {"10", 0}, {"1234567890", 0},
    {"9223372036854775807", 0}, {"-9223372036854775808", 0},
    {"0.5", 0}, {"-0.5", 0}, {"1e10", 0}, {"1E-10", 0}, {"1e+10", 0}, {"-1.5e-7", 0},
    {"6.02214076e23", 0}, {"1.7976931348623157e308", 0}, {"5e-324", 0}, {"2.5e-324", 0},
    {"1e-400", 0}, {"123456789012345678901234567890.5", 0}, {"0.30000000000000004", 0},
    {"9007199254740993.0", 0}, {"1.00000000000000011102230246251565404236316680908203125", 0},
    {"true", 0}, {"false", 0}, {"null", 0}, {" \t\n\r true \t\n\r ", 0},
    {"\"\"", 0}, {"\"plain\"", 0}, {"\"\\\"\\\\\\/\\b\\f\\n\\r\\t\"", 0},
    {"\"\\u0000\"", 0}, {"\"nul\\u0000inside\"", 0}, {"\"\\u00e9\\u20AC\\uffff\"", 0},
    {"\"\\ud83d\\ude00 \\uD834\\uDD1E\"", 0}, {"\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\"", 0},
    {"\"\x7f\"", 0}, {"\"\xef\xbb\xbf\"", 0}, {"\"\xf4\x8f\xbf\xbf\"", 0},
    {"{\"a\":1,\"a\":2}", 0}, {"{\"a\":1,\"\\u0061\":[2]}", 0}, {"{\"\":0}", 0},
    {"{\"\\n\\t\\\"\":{\"\\u00e9\":\"\\u00e8\"}}", 0},
    {"[1,[2,[3,[4,[5,[6,[7,[8]]]]]]]]", 0},
    {"{\"a\":{\"b\":{\"c\":{\"d\":{\"e\":[1,2,{\"f\":null}]}}}}}", 0},
    {"[1, 2.0, \"3\", [4], {\"5\": 5}, true, false, null]", 0},
    {"[\n  1,\n  2\n]\n", 0},
    {"{\"x\" :\t1 ,\r\n\"y\"\n:\n2}", 0},
    /* refused */
    {"", 0}, {" ", 0}, {"[", 0}, {"]", 0}, {"{", 0}, {"}", 0}, {"[1,]", 0}, {"{\"a\":1,}", 0},
    {"[,]", 0}, {"{,}", 0}, {"[1 2]", 0}, {"{\"a\" 1}", 0}, {"{\"a\":1 \"b\":2}", 0},
    {"{1:1}", 0}, {"{a:1}", 0}, {"{'a':1}", 0}, {"['a']", 0}, {"01", 0}, {"-01", 0},
    {"1.", 0}, {".1", 0}, {"1e", 0}, {"1e+", 0}, {"+1", 0}, {"-", 0}, {"0x1F", 0},
    {"NaN", 0}, {"Infinity", 0}, {"-Infinity", 0}, {"1e309", 0}, {"-1e400", 0},
    {"9223372036854775808", 0}, {"-9223372036854775809", 0}, {"18446744073709551616", 0},
    {"tru", 0}, {"truee", 0}, {"nul", 0}, {"NULL", 0}, {"False", 0},
    {"\"abc", 0}, {"\"\\\"", 0}, {"\"\\x\"", 0}, {"\"\\u123\"", 0}, {"\"\\u12g4\"", 0},
    {"\"\\ud800\"", 0}, {"\"\\udc00\"", 0}, {"\"\\ud800\\u0041\"", 0}, {"\"\\ud800\\ud800\"", 0},
    {"\"\\udbff\"x", 0}, {"\"tab\there\"", 0}, {"\"nl\nhere\"", 0}, {"\"a\0b\"", 5},
    {"\"\xc0\xaf\"", 0}, {"\"\xe0\x80\xaf\"", 0}, {"\"\xed\xa0\x80\"", 0},
    {"\"\xf4\x90\x80\x80\"", 0},
    {"\"\xf8\x88\x80\x80\x80\"", 0}, {"\"\x80\"", 0}, {"\"\xc3\"", 0}, {"\"\xe2\x82\"", 0},
    {"{\"a\\u0000\":1}", 0}, {"[1]x", 0}, {"[1] [2]", 0}, {"{}{}", 0}, {"\"a\" \"b\"", 0},
    {"// comment\n1", 0}, {"/* c */ 1", 0}, {"1 // c", 0}, {"\xef\xbb\xbf" "1", 0},
    {"\f1", 0}, {"1\v", 0}, {"\xa0" "1", 0}, {"[1,\0 2]", 7}, {"\0", 1}, {"\0" "1", 2},
    {"1\0\0", 3}, {"\"a\"\0", 4},
};

static void test_agrees_with_jansson(void)
{
    size_t n = sizeof corpus / sizeof corpus[0];
    int accepted = 0, refused = 0;
    for (size_t i = 0; i < n; i++) {
        size_t len = corpus[i].len ? corpus[i].len : strlen(corpus[i].doc);
        sg_error err = {0};
        json_t *v = parse(corpus[i].doc, len, &err);
        json_error_t jerr;
        json_t *w = json_loadb(corpus[i].doc, len, JANSSON_FLAGS, &jerr);
        CHECK_MSG(!v == !w, "corpus[%zu] \"%.*s\": ours %s, jansson %s", i, (int)len,
                  corpus[i].doc, v ? "accepts" : err.msg, w ? "accepts" : jerr.text);
        if (v && w)
            CHECK_MSG(json_equal(v, w), "corpus[%zu] \"%.*s\": values differ", i, (int)len,
                      corpus[i].doc);
        if (!v) {
            /* every refusal names a plausible offset: inside the input or just past it */
            long off = error_offset(&err);
            CHECK_MSG(err.code == SG_EINVAL && off >= 0 && (size_t)off <= len,
                      "corpus[%zu]: %s", i, err.msg);
        }
        v ? accepted++ : refused++;
        json_decref(v);
        json_decref(w);
    }
    CHECK(n >= 100 && accepted >= 40 && refused >= 40);
}

/* sg_json_cstr: a string as a C string only when nothing of it would be cut off. */
static void test_cstr(void)
{
    sg_error err = {0};
    json_t *o = sg_json_parse("{\"a\":\"abc\",\"n\":\"ab\\u0000cd\",\"z\":\"\\u0000\","
                              "\"e\":\"\",\"c\":\"a\\u0001b\",\"i\":1}", 69, &err);
    CHECK(o != NULL);
    CHECK(sg_json_cstr(json_object_get(o, "a")) && strcmp(sg_json_cstr(json_object_get(o, "a")), "abc") == 0);
    CHECK(sg_json_cstr(json_object_get(o, "n")) == NULL);
    CHECK(sg_json_cstr(json_object_get(o, "z")) == NULL);
    CHECK(sg_json_cstr(json_object_get(o, "e")) && !sg_json_cstr(json_object_get(o, "e"))[0]);
    CHECK(sg_json_cstr(json_object_get(o, "c")) && strlen(sg_json_cstr(json_object_get(o, "c"))) == 3);
    CHECK(sg_json_cstr(json_object_get(o, "i")) == NULL);
    CHECK(sg_json_cstr(NULL) == NULL);
    json_decref(o);
}

int main(void)
{
    test_values();
    test_cstr();
    test_numbers();
    test_literals_and_structure();
    test_strings();
    test_utf8();
    test_string_scan_boundaries();
    test_depth();
    test_duplicate_keys();
    test_escaped_keys();
    test_big_string();
    test_out_of_memory();
    test_locale();
    test_jansson_quirks();
    test_agrees_with_jansson();
    return check_report("test_json");
}
