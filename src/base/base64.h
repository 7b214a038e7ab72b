/* Strict base64 (RFC 4648 standard alphabet). Decoding accepts exactly that alphabet with correct
 * '=' padding; CR/LF line breaks (MIME style, as Android's Base64.DEFAULT emits) are skipped, and an
 * optional "data:<mime>;base64," prefix is accepted. Anything else is an error, never silently
 * dropped. */
#ifndef SG_BASE_BASE64_H
#define SG_BASE_BASE64_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

/* Decodes in[0..len) into a new malloc'ed buffer (*out, *out_len); *out is NUL-terminated for
 * convenience. Returns SG_OK, SG_EINVAL (with the offending offset in err) or SG_ENOMEM. */
sg_status sg_base64_decode(const char *in, size_t len, uint8_t **out, size_t *out_len, sg_error *err);
/* Encodes to a new NUL-terminated malloc'ed string, or NULL on allocation failure. */
char *sg_base64_encode(const uint8_t *in, size_t len, size_t *out_len);

#endif
