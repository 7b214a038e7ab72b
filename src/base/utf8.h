/* UTF-8 helpers for untrusted bytes: validation (strict, as Python's decoder: no overlong forms,
 * no surrogates, nothing above U+10FFFF) and quoting client- or file-supplied text in error
 * messages so that every message stays short, printable and valid UTF-8. */
#ifndef SG_BASE_UTF8_H
#define SG_BASE_UTF8_H

#include <stdbool.h>
#include <stddef.h>

/* Length of the valid UTF-8 sequence starting at s (at most avail bytes), 0 if invalid. */
size_t sg_utf8_seq_len(const unsigned char *s, size_t avail);
bool sg_utf8_valid(const unsigned char *s, size_t len);
/* Copies str[0..len) into buf (room for cap + 4 bytes) for quoting in a message: whole UTF-8
 * characters only, control characters and invalid bytes as '?', "..." where cut. With tail set
 * the end is kept instead of the start (for paths, whose end says most). Returns buf. */
const char *sg_utf8_quote(char *buf, size_t cap, const void *str, size_t len, bool tail);

#endif
