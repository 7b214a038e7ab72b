/* Character classes and GPT-2's byte table for the BPE tokenizers. libunistring 1.0 has the
 * Unicode 14.0 tables while Debian 12's python3-regex, the reference the tokenizers are tested
 * against, has 15.0; the letters and numbers 15.0 added are listed here by hand (checked against
 * regex for all 0x110000 code points). 15.0 added no White_Space characters. */
#include "models/bpe_common.h"

#include <stddef.h>

#include <unictype.h>

int sg_bpe_is_space(uint32_t c)
{
    return (c >= 0x09 && c <= 0x0D) || c == 0x20 || c == 0x85 || c == 0xA0 || c == 0x1680 ||
           (c >= 0x2000 && c <= 0x200A) || c == 0x2028 || c == 0x2029 || c == 0x202F ||
           c == 0x205F || c == 0x3000;
}

typedef struct cp_range {
    uint32_t lo, hi;
} cp_range;

/* Letters and numbers new in Unicode 15.0 (unassigned in 14.0), all above U+11000. */
static const cp_range unicode15_letters[] = {
    {0x1123F, 0x11240}, {0x11F02, 0x11F02}, {0x11F04, 0x11F10}, {0x11F12, 0x11F33},
    {0x1342F, 0x1342F}, {0x13441, 0x13446}, {0x1B132, 0x1B132}, {0x1B155, 0x1B155},
    {0x1DF25, 0x1DF2A}, {0x1E030, 0x1E06D}, {0x1E4D0, 0x1E4EB}, {0x2B739, 0x2B739},
    {0x31350, 0x323AF}};
static const cp_range unicode15_numbers[] = {
    {0x11F50, 0x11F59}, {0x1D2C0, 0x1D2D3}, {0x1E4F0, 0x1E4F9}};

static int in_ranges(uint32_t c, const cp_range *r, size_t n)
{
    for (size_t i = 0; i < n; i++)
        if (c >= r[i].lo && c <= r[i].hi)
            return 1;
    return 0;
}

int sg_bpe_is_letter(uint32_t c)
{
    if (c < 0x80)
        return (c | 0x20) >= 'a' && (c | 0x20) <= 'z';
    return uc_is_general_category(c, UC_CATEGORY_L) ||
           (c >= 0x11000 && in_ranges(c, unicode15_letters,
                                      sizeof unicode15_letters / sizeof *unicode15_letters));
}

int sg_bpe_is_number(uint32_t c)
{
    if (c < 0x80)
        return c >= '0' && c <= '9';
    return uc_is_general_category(c, UC_CATEGORY_N) ||
           (c >= 0x11000 && in_ranges(c, unicode15_numbers,
                                      sizeof unicode15_numbers / sizeof *unicode15_numbers));
}

/* The 68 bytes without a printable stand-in are 0x00..0x20, 0x7F..0xA0 and 0xAD, numbered from
 * U+0100 in that order. */
uint32_t sg_bpe_byte_char(uint8_t b)
{
    if (b <= 0x20)
        return 0x100u + b;
    if (b >= 0x7F && b <= 0xA0)
        return 0x121u + (uint32_t)(b - 0x7F);
    if (b == 0xAD)
        return 0x143;
    return b;
}

int sg_bpe_char_byte(uint32_t c)
{
    if ((c >= 0x21 && c <= 0x7E) || (c >= 0xA1 && c <= 0xAC) || (c >= 0xAE && c <= 0xFF))
        return (int)c;
    if (c >= 0x100 && c <= 0x120)
        return (int)(c - 0x100);
    if (c >= 0x121 && c <= 0x142)
        return (int)(c - 0x121 + 0x7F);
    if (c == 0x143)
        return 0xAD;
    return -1;
}
