/* UTF-8 validation and message quoting; see utf8.h. */
#include "base/utf8.h"

#include <string.h>

size_t sg_utf8_seq_len(const unsigned char *s, size_t avail)
{
    unsigned char c = s[0], lo = 0x80, hi = 0xBF;
    size_t n;
    if (c < 0x80)
        return 1;
    if (c >= 0xC2 && c <= 0xDF)
        n = 2;
    else if (c >= 0xE0 && c <= 0xEF) {
        n = 3;
        if (c == 0xE0)
            lo = 0xA0;
        else if (c == 0xED)
            hi = 0x9F;
    } else if (c >= 0xF0 && c <= 0xF4) {
        n = 4;
        if (c == 0xF0)
            lo = 0x90;
        else if (c == 0xF4)
            hi = 0x8F;
    } else
        return 0;
    if (avail < n || s[1] < lo || s[1] > hi)
        return 0;
    for (size_t i = 2; i < n; i++)
        if (s[i] < 0x80 || s[i] > 0xBF)
            return 0;
    return n;
}

bool sg_utf8_valid(const unsigned char *s, size_t len)
{
    for (size_t i = 0; i < len;) {
        size_t n = sg_utf8_seq_len(s + i, len - i);
        if (!n)
            return false;
        i += n;
    }
    return true;
}

const char *sg_utf8_quote(char *buf, size_t cap, const void *str, size_t len, bool tail)
{
    const unsigned char *p = str;
    size_t o = 0;
    if (tail && len > cap) {
        p += len - (cap - 3);
        len = cap - 3;
        while (len && (*p & 0xC0) == 0x80) /* skip a cut character's continuation bytes */
            p++, len--;
        memcpy(buf, "...", 3);
        o = 3;
    }
    for (size_t i = 0; i < len;) {
        size_t n = sg_utf8_seq_len(p + i, len - i);
        if (o + (n ? n : 1) > cap) {
            memcpy(buf + o, "...", 3);
            o += 3;
            break;
        }
        if (n == 0 || (n == 1 && (p[i] < 0x20 || p[i] == 0x7F))) {
            buf[o++] = '?';
            i++;
        } else {
            memcpy(buf + o, p + i, n);
            o += n;
            i += n;
        }
    }
    buf[o] = '\0';
    return buf;
}
