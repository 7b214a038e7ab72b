/* Whole-word, case-insensitive phrase matching on UTF-8 text, shared by moderation, the action
 * parser and the responder so that all three agree on what a "word" is. */
#ifndef SG_BASE_PHRASE_H
#define SG_BASE_PHRASE_H

#include <stdbool.h>
#include <stddef.h>

/* Word characters: ASCII letters, digits and '_', plus any non-ASCII character except the Latin-1
 * punctuation block (U+0080..U+00BF) and General Punctuation (U+2000..U+206F), so that curly
 * quotes, dashes and no-break spaces separate words the way ASCII punctuation does. */
bool sg_phrase_word_at(const unsigned char *s);
/* Length of the UTF-8 sequence at s, stopping early at a byte that cannot continue it (the NUL
 * terminator included), so stepping never runs past the end of the string. */
size_t sg_phrase_char_len(const unsigned char *s);
bool sg_phrase_is_space(unsigned char c);
unsigned char sg_phrase_lower(unsigned char c);
/* Matches the lowercase pattern pat at t, case-insensitively: ' ' matches a run of whitespace,
 * '\'' also matches U+2019, '*' matches the rest of a word. The match must end at a word boundary
 * (the caller checks the start). Returns the bytes of t matched, 0 when there is no match. */
size_t sg_phrase_match(const unsigned char *t, const char *pat);

#endif
