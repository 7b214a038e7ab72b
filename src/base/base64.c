/* Strict base64 decoder and encoder; see base64.h for what "strict" accepts. */
#include "base/base64.h"

#include <stdlib.h>
#include <string.h>

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* 0..63 for alphabet characters, 64 for '=', 65 for CR/LF, 255 for anything else. Computed per
 * byte rather than from a lazily filled table: a table filled on first use is a data race when
 * two threads decode at once (one thread's memset can wipe entries another is reading). */
static uint8_t b64_class(uint8_t c)
{
    if (c >= 'A' && c <= 'Z')
        return (uint8_t)(c - 'A');
    if (c >= 'a' && c <= 'z')
        return (uint8_t)(c - 'a' + 26);
    if (c >= '0' && c <= '9')
        return (uint8_t)(c - '0' + 52);
    switch (c) {
    case '+': return 62;
    case '/': return 63;
    case '=': return 64;
    case '\r':
    case '\n': return 65;
    default: return 255;
    }
}

sg_status sg_base64_decode(const char *in, size_t len, uint8_t **out, size_t *out_len, sg_error *err)
{
    *out = NULL;
    *out_len = 0;
    if (!in)
        return sg_error_set(err, SG_EINVAL, "base64: no input");
    size_t start = 0;
    if (len >= 5 && memcmp(in, "data:", 5) == 0) {
        const char *comma = memchr(in, ',', len < 256 ? len : 256);
        if (!comma || comma - in < 12 || memcmp(comma - 7, ";base64", 7) != 0)
            return sg_error_set(err, SG_EINVAL, "base64: malformed data: URL prefix");
        start = (size_t)(comma - in) + 1;
    }
    uint8_t *buf = malloc((len - start) / 4 * 3 + 4);
    if (!buf)
        return sg_error_set(err, SG_ENOMEM, "base64: out of memory");
    uint32_t acc = 0;
    int nacc = 0, npad = 0;
    size_t o = 0, nsym = 0;
    for (size_t i = start; i < len; i++) {
        uint8_t c = b64_class((uint8_t)in[i]);
        if (c == 65)
            continue;
        if (c == 255) {
            free(buf);
            return sg_error_set(err, SG_EINVAL, "base64: invalid character at offset %zu", i);
        }
        nsym++;
        if (c == 64) {
            /* padding only at the end of a quantum: "xx==" or "xxx=" */
            if (nacc < 2 || npad + nacc >= 4) {
                free(buf);
                return sg_error_set(err, SG_EINVAL, "base64: misplaced padding at offset %zu", i);
            }
            npad++;
            if (nacc + npad == 4) {
                if (nacc == 2) {
                    if (acc & 0xF) goto noncanonical;
                    buf[o++] = (uint8_t)(acc >> 4);
                } else {
                    if (acc & 0x3) goto noncanonical;
                    buf[o++] = (uint8_t)(acc >> 10);
                    buf[o++] = (uint8_t)(acc >> 2);
                }
                nacc = 0;
                acc = 0;
            }
            continue;
        }
        if (npad) {
            free(buf);
            return sg_error_set(err, SG_EINVAL, "base64: data after padding at offset %zu", i);
        }
        acc = (acc << 6) | c;
        if (++nacc == 4) {
            buf[o++] = (uint8_t)(acc >> 16);
            buf[o++] = (uint8_t)(acc >> 8);
            buf[o++] = (uint8_t)acc;
            nacc = 0;
            acc = 0;
        }
    }
    if (nacc != 0 || (npad && nsym % 4 != 0)) {
        free(buf);
        return sg_error_set(err, SG_EINVAL, "base64: length is not a multiple of 4 (missing padding?)");
    }
    if (o == 0) {
        free(buf);
        return sg_error_set(err, SG_EINVAL, "base64: empty payload");
    }
    buf[o] = 0;
    *out = buf;
    *out_len = o;
    return SG_OK;
noncanonical:
    free(buf);
    return sg_error_set(err, SG_EINVAL, "base64: non-canonical trailing bits");
}

char *sg_base64_encode(const uint8_t *in, size_t len, size_t *out_len)
{
    size_t n = (len + 2) / 3 * 4;
    char *s = malloc(n + 1);
    if (!s)
        return NULL;
    size_t o = 0, i = 0;
    for (; i + 3 <= len; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        s[o++] = b64_alphabet[v >> 18];
        s[o++] = b64_alphabet[(v >> 12) & 63];
        s[o++] = b64_alphabet[(v >> 6) & 63];
        s[o++] = b64_alphabet[v & 63];
    }
    if (i < len) {
        uint32_t v = (uint32_t)in[i] << 16;
        if (i + 1 < len)
            v |= (uint32_t)in[i + 1] << 8;
        s[o++] = b64_alphabet[v >> 18];
        s[o++] = b64_alphabet[(v >> 12) & 63];
        s[o++] = i + 1 < len ? b64_alphabet[(v >> 6) & 63] : '=';
        s[o++] = '=';
    }
    s[o] = 0;
    if (out_len)
        *out_len = o;
    return s;
}
