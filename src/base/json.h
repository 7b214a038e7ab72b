/* A fast, strict (RFC 8259) JSON parser that builds jansson values. It is meant to replace
 * json_loadb on request bodies, where a frame upload is one ~70 KB base64 string: long plain
 * strings are scanned a word at a time and handed to jansson in one copy. */
#ifndef SG_BASE_JSON_H
#define SG_BASE_JSON_H

#include <stddef.h>

#include <jansson.h>

#include "base/error.h"

/* Deepest nesting of arrays and objects accepted; deeper input is refused, not recursed into. */
#define SG_JSON_MAX_DEPTH 64

/* Parses buf[0..len) (not NUL-terminated) as one JSON text: any value at the top level, only
 * whitespace around it. Returns a new reference the caller json_decref()s, or NULL with err set:
 * SG_EINVAL with "invalid JSON at offset N: <what>" or SG_ENOMEM.
 *
 * Accepts what json_loadb(buf, len, JSON_DECODE_ANY | JSON_ALLOW_NUL, ...) accepts and builds
 * equal values, with two exceptions: nesting deeper than SG_JSON_MAX_DEPTH is refused (jansson
 * allows 2048), and so is a NUL byte right after a number or literal, which jansson 2.14 skips
 * ("[1\0,2]"). In particular: strings must be valid UTF-8 and may contain \u0000 (jansson
 * strings carry their length), but object keys may not; \u escapes must pair surrogates; an
 * integer (no fraction, no exponent) must fit in json_int_t; a real must not overflow to
 * infinity; for a repeated object key the last value wins. */
json_t *sg_json_parse(const char *buf, size_t len, sg_error *err);

/* The string v as a C string, or NULL when v is not a string or when it holds a NUL (\u0000):
 * jansson strings carry their length, and read as a C string such a one would silently stop at
 * the NUL ("ab\u0000cd" would be "ab"). Callers that get NULL for a string refuse the value. */
const char *sg_json_cstr(const json_t *v);

/* Config-file getters: the integer / number at key, or def when absent or of another type. */
int sg_json_int(const json_t *o, const char *key, int def);
double sg_json_number(const json_t *o, const char *key, double def);

#endif
