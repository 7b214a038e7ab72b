/* Strict base64 decoder and encoder; see base64.h for what "strict" accepts. Decoding is the hot
 * path of every frame upload, so runs of plain alphabet characters go through a fast loop that
 * decodes 8 characters per step with one validity check; anything unusual (CR/LF, '=', a bad
 * byte, the last few characters) is left to the careful character-at-a-time loop, which is the
 * reference behaviour and the only place that reports errors. */
#include "base/base64.h"

#include <stdlib.h>
#include <string.h>

static const char b64_alphabet[] =
    "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";

/* Character classes: 0..63 for alphabet characters, 64 for '=', 65 for CR/LF, 255 for anything
 * else. Every class that is not a 6-bit value has bit 6 or 7 set, so OR-ing the classes of a
 * group and testing B64_SPECIAL finds any character the fast loop must not handle. The table is
 * built by the compiler: a table filled on first use would be a data race between threads. */
enum { B64_PAD = 64, B64_SKIP = 65, B64_BAD = 255, B64_SPECIAL = 0xC0 };

#define B64_CLASS(c)                                                                               \
    ((c) >= 'A' && (c) <= 'Z'   ? (c) - 'A'                                                        \
     : (c) >= 'a' && (c) <= 'z' ? (c) - 'a' + 26                                                   \
     : (c) >= '0' && (c) <= '9' ? (c) - '0' + 52                                                   \
     : (c) == '+'               ? 62                                                               \
     : (c) == '/'               ? 63                                                               \
     : (c) == '='               ? B64_PAD                                                          \
     : (c) == '\r' || (c) == '\n' ? B64_SKIP                                                       \
                                  : B64_BAD)
#define B64_ENTRY(c) (uint8_t)(B64_CLASS(c))
#define B64_ROW4(c) B64_ENTRY(c), B64_ENTRY((c) + 1), B64_ENTRY((c) + 2), B64_ENTRY((c) + 3)
#define B64_ROW16(c) B64_ROW4(c), B64_ROW4((c) + 4), B64_ROW4((c) + 8), B64_ROW4((c) + 12)
#define B64_ROW64(c) B64_ROW16(c), B64_ROW16((c) + 16), B64_ROW16((c) + 32), B64_ROW16((c) + 48)

static const uint8_t b64_class[256] = {B64_ROW64(0), B64_ROW64(64), B64_ROW64(128), B64_ROW64(192)};

/* The encoder's table: the two characters for every 12-bit value, so one lookup yields half a
 * quantum. 8 KB, also built by the compiler. */
#define B64_CHAR(v)                                                                                \
    (char)((v) < 26 ? 'A' + (v) : (v) < 52 ? 'a' + (v) - 26                                        \
           : (v) < 62 ? '0' + (v) - 52 : (v) == 62 ? '+' : '/')
#define B64_PAIR(v) {B64_CHAR((v) >> 6), B64_CHAR((v) & 63)}
#define B64_PAIRS4(v) B64_PAIR(v), B64_PAIR((v) + 1), B64_PAIR((v) + 2), B64_PAIR((v) + 3)
#define B64_PAIRS16(v) B64_PAIRS4(v), B64_PAIRS4((v) + 4), B64_PAIRS4((v) + 8), B64_PAIRS4((v) + 12)
#define B64_PAIRS64(v)                                                                             \
    B64_PAIRS16(v), B64_PAIRS16((v) + 16), B64_PAIRS16((v) + 32), B64_PAIRS16((v) + 48)
#define B64_PAIRS256(v)                                                                            \
    B64_PAIRS64(v), B64_PAIRS64((v) + 64), B64_PAIRS64((v) + 128), B64_PAIRS64((v) + 192)
#define B64_PAIRS1024(v)                                                                           \
    B64_PAIRS256(v), B64_PAIRS256((v) + 256), B64_PAIRS256((v) + 512), B64_PAIRS256((v) + 768)

static const char b64_pairs[4096][2] = {B64_PAIRS1024(0), B64_PAIRS1024(1024), B64_PAIRS1024(2048),
                                        B64_PAIRS1024(3072)};

/* Decodes whole groups of 8 alphabet characters (two quanta, 6 output bytes) starting at in[i],
 * for as long as there are 8 characters left and none of them is special. Returns the index of
 * the first character not consumed; *o advances by the bytes written. */
static size_t decode_groups(const uint8_t *in, size_t i, size_t len, uint8_t *out, size_t *o)
{
    size_t w = *o;
    while (len - i >= 8) {
        const uint8_t *p = in + i;
        uint32_t c0 = b64_class[p[0]], c1 = b64_class[p[1]], c2 = b64_class[p[2]];
        uint32_t c3 = b64_class[p[3]], c4 = b64_class[p[4]], c5 = b64_class[p[5]];
        uint32_t c6 = b64_class[p[6]], c7 = b64_class[p[7]];
        if ((c0 | c1 | c2 | c3 | c4 | c5 | c6 | c7) & B64_SPECIAL)
            break;
        uint64_t v = (uint64_t)c0 << 42 | (uint64_t)c1 << 36 | (uint64_t)c2 << 30 |
                     (uint64_t)c3 << 24 | (uint64_t)c4 << 18 | (uint64_t)c5 << 12 |
                     (uint64_t)c6 << 6 | (uint64_t)c7;
        out[w + 0] = (uint8_t)(v >> 40);
        out[w + 1] = (uint8_t)(v >> 32);
        out[w + 2] = (uint8_t)(v >> 24);
        out[w + 3] = (uint8_t)(v >> 16);
        out[w + 4] = (uint8_t)(v >> 8);
        out[w + 5] = (uint8_t)v;
        w += 6;
        i += 8;
    }
    *o = w;
    return i;
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
    const uint8_t *u = (const uint8_t *)in;
    uint8_t *buf = malloc((len - start) / 4 * 3 + 4);
    if (!buf)
        return sg_error_set(err, SG_ENOMEM, "base64: out of memory");
    uint32_t acc = 0;
    int nacc = 0, npad = 0;
    size_t o = 0, nsym = 0;
    for (size_t i = start; i < len; i++) {
        if (nacc == 0 && npad == 0) {
            /* at a quantum boundary: let the fast loop take what it can */
            size_t next = decode_groups(u, i, len, buf, &o);
            nsym += next - i;
            i = next;
            if (i == len)
                break;
        }
        uint8_t c = b64_class[u[i]];
        if (c == B64_SKIP)
            continue;
        if (c == B64_BAD) {
            free(buf);
            return sg_error_set(err, SG_EINVAL, "base64: invalid character at offset %zu", i);
        }
        nsym++;
        if (c == B64_PAD) {
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
    /* 3 input bytes -> two 12-bit halves -> two ready-made character pairs */
    for (; len - i >= 3; i += 3) {
        uint32_t v = (uint32_t)in[i] << 16 | (uint32_t)in[i + 1] << 8 | in[i + 2];
        memcpy(s + o, b64_pairs[v >> 12], 2);
        memcpy(s + o + 2, b64_pairs[v & 0xFFF], 2);
        o += 4;
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
