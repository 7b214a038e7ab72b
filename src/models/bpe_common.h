/* What the byte-level BPE tokenizers (GPT-2's, and CLIP's could use it too) share: the character
 * classes their pre-tokenisation patterns are written in, as Debian 12's python3-regex sees them,
 * and GPT-2's byte <-> printable-character table that Hugging Face vocab.json / merges.txt files
 * spell tokens with. */
#ifndef SG_MODELS_BPE_COMMON_H
#define SG_MODELS_BPE_COMMON_H

#include <stdint.h>

/* regex's \s: Unicode White_Space (not U+001C..U+001F, which Python's str.isspace() adds). */
int sg_bpe_is_space(uint32_t c);
/* \p{L} and \p{N}: libunistring 1.0's general categories (Unicode 14.0) plus the letters and
 * numbers Unicode 15.0 added, so that they agree with python3-regex 2022.10.31 (Unicode 15.0)
 * on every code point. */
int sg_bpe_is_letter(uint32_t c);
int sg_bpe_is_number(uint32_t c);

/* GPT-2's bytes_to_unicode(): the character that stands for byte b (printable Latin-1 bytes
 * stand for themselves, the other 68 get U+0100, U+0101, ... in byte order). */
uint32_t sg_bpe_byte_char(uint8_t b);
/* Its inverse: the byte character c stands for, or -1. */
int sg_bpe_char_byte(uint32_t c);

#endif
