/* Ogg Opus for speech the server makes (agent/tts.c): libopus directly, paged with libogg, at a
 * chosen encoder complexity. libsndfile (which libsgclient's chunk encoder uses) runs libopus at
 * its default complexity 10: ~11 ms per second of speech here, as much as synthesising it; at
 * complexity 3 Opus speech at 24 kbit/s costs a fraction of that with no audible difference for a
 * synthetic voice, and the first sentence reaches the wearer sooner (docs/PERFORMANCE.md). */
#ifndef SG_MEDIA_OPUS_OGG_H
#define SG_MEDIA_OPUS_OGG_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define SG_OPUS_SPEECH_COMPLEXITY 3

/* Encodes n mono 16-bit samples at sample_rate (8000, 12000, 16000, 24000 or 48000) as an Ogg
 * Opus file (RFC 7845: OpusHead, OpusTags, 20 ms packets; the last granule position trims the
 * padding) into *out (malloc'ed). bitrate 6000..256000, complexity 0..10. SG_EINVAL for bad
 * arguments, SG_ENOMEM, SG_EINTERNAL when libopus refuses. */
sg_status sg_opus_ogg_encode(const int16_t *pcm, size_t n, int sample_rate, int bitrate,
                             int complexity, uint8_t **out, size_t *out_len, sg_error *err);

#endif
