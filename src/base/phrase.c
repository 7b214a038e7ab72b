/* Phrase matching; see phrase.h. */
#include "base/phrase.h"

bool sg_phrase_word_at(const unsigned char *s)
{
    unsigned char c = s[0];
    if (c < 0x80)
        return (c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') ||
               c == '_';
    if (c == 0xC2)
        return false;
    if (c == 0xE2 && (s[1] == 0x80 || s[1] == 0x81))
        return false;
    return true;
}

size_t sg_phrase_char_len(const unsigned char *s)
{
    size_t n = s[0] < 0xC0 ? 1 : s[0] < 0xE0 ? 2 : s[0] < 0xF0 ? 3 : 4;
    for (size_t k = 1; k < n; k++)
        if ((s[k] & 0xC0) != 0x80)
            return k;
    return n;
}

bool sg_phrase_is_space(unsigned char c)
{
    return c == ' ' || c == '\t' || c == '\n' || c == '\r' || c == '\f' || c == '\v';
}

unsigned char sg_phrase_lower(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') ? (unsigned char)(c + ('a' - 'A')) : c;
}

size_t sg_phrase_match(const unsigned char *t, const char *pat)
{
    size_t j = 0;
    for (const unsigned char *p = (const unsigned char *)pat; *p; p++) {
        if (*p == '*') {
            while (t[j] && sg_phrase_word_at(t + j))
                j += sg_phrase_char_len(t + j);
        } else if (*p == ' ') {
            if (!sg_phrase_is_space(t[j]))
                return 0;
            while (sg_phrase_is_space(t[j]))
                j++;
        } else if (*p == '\'') {
            if (t[j] == '\'')
                j++;
            else if (t[j] == 0xE2 && t[j + 1] == 0x80 && t[j + 2] == 0x99)
                j += 3;
            else
                return 0;
        } else {
            if (sg_phrase_lower(t[j]) != *p)
                return 0;
            j++;
        }
    }
    return sg_phrase_word_at(t + j) ? 0 : j;
}
