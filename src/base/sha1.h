/* SHA-1 (FIPS 180-4), for the WebSocket handshake's Sec-WebSocket-Accept (RFC 6455 section 4.2.2).
 * Not for anything that needs collision resistance. Incremental (init / update / final) and
 * one-shot; any message length, byte-oriented. */
#ifndef SG_BASE_SHA1_H
#define SG_BASE_SHA1_H

#include <stddef.h>
#include <stdint.h>

#define SG_SHA1_LEN 20

typedef struct sg_sha1_ctx {
    uint32_t h[5];
    uint64_t total;  /* bytes hashed so far */
    uint8_t block[64];
    size_t used;     /* bytes in block */
} sg_sha1_ctx;

void sg_sha1_init(sg_sha1_ctx *c);
void sg_sha1_update(sg_sha1_ctx *c, const void *data, size_t len);
/* Writes the digest; c must be initialised again before reuse. */
void sg_sha1_final(sg_sha1_ctx *c, uint8_t out[SG_SHA1_LEN]);
void sg_sha1(const void *data, size_t len, uint8_t out[SG_SHA1_LEN]);

#endif
