/* Audio chunk encoding for libsgclient (I/O half: it needs libsndfile, and through it libopus,
 * libFLAC and libogg). Every chunk is a standalone file, so the server decodes each upload on its
 * own and a lost or retried chunk never breaks the next one:
 *  - pcm: a 16-bit mono WAV (sg_wav_pcm16), 32 KB per second at 16 kHz;
 *  - flac: lossless, about half of that on speech;
 *  - opus: Ogg Opus, VBR at the requested bitrate (24 kbit/s by default: 3 KB per second, speech
 *    stays intelligible and Whisper's input barely changes, see tests/test_audio.c).
 * libsndfile sets the Opus bitrate through SFC_SET_COMPRESSION_LEVEL, which it maps linearly:
 * bitrate = 6000 + 250000 * (1 - level) bit/s per channel. Its Ogg Opus writer reserves 512+ bytes
 * of zero padding in the OpusTags header (room to rewrite tags in place, as oggenc does); in a
 * one-second chunk that padding is a fifth of the file, so it is cut here: the OpusTags packet is
 * rewritten without it (RFC 7845 makes the padding optional) and its Ogg page re-checksummed.
 * Anything unexpected in the file leaves it as libsndfile wrote it. */
#include <stdbool.h>
#include <stdlib.h>
#include <string.h>

#include <sndfile.h>

#include "media/sfmem.h"
#include "sgclient.h"
#include "status.h"

const char *sg_audio_codec_name(sg_audio_codec c)
{
    switch (c) {
    case SG_AUDIO_CODEC_PCM: return "pcm";
    case SG_AUDIO_CODEC_FLAC: return "flac";
    case SG_AUDIO_CODEC_OPUS: return "opus";
    }
    return "?";
}

const char *sg_audio_codec_content_type(sg_audio_codec c)
{
    switch (c) {
    case SG_AUDIO_CODEC_FLAC: return "audio/flac";
    case SG_AUDIO_CODEC_OPUS: return "audio/ogg";
    default: return "audio/wav";
    }
}

sg_client_status sg_audio_codec_parse(const char *name, sg_audio_codec *out)
{
    if (name && strcmp(name, "wav") == 0)
        name = "pcm"; /* the same chunks: PCM in a WAV file */
    for (int c = SG_AUDIO_CODEC_PCM; c <= SG_AUDIO_CODEC_OPUS; c++)
        if (name && strcmp(name, sg_audio_codec_name((sg_audio_codec)c)) == 0) {
            *out = (sg_audio_codec)c;
            return SG_CLIENT_OK;
        }
    return SG_CLIENT_EINVAL;
}

/* ---- Ogg: drop the OpusTags padding ------------------------------------------------------------ */

/* The Ogg page checksum: CRC-32 with polynomial 0x04C11DB7, no reflection, initial value and final
 * XOR 0, over the page with its checksum field zeroed (RFC 3533). */
static uint32_t ogg_crc(const uint8_t *p, size_t n)
{
    static uint32_t table[256];
    static bool ready; /* benign race: every thread writes the same values */
    if (!ready) {
        for (uint32_t i = 0; i < 256; i++) {
            uint32_t r = i << 24;
            for (int k = 0; k < 8; k++)
                r = r & 0x80000000u ? (r << 1) ^ 0x04C11DB7u : r << 1;
            table[i] = r;
        }
        ready = true;
    }
    uint32_t crc = 0;
    for (size_t i = 0; i < n; i++)
        crc = (crc << 8) ^ table[((crc >> 24) ^ p[i]) & 0xFF];
    return crc;
}

static uint32_t le32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* Rewrites the page holding the OpusTags packet without the padding after the comments. Returns
 * the new length (<= len), or len unchanged when the file is not laid out as expected. */
static size_t opus_compact_tags(uint8_t *buf, size_t len)
{
    size_t pos = 0;
    for (int page = 0; page < 4 && pos + 27 <= len; page++) {
        uint8_t *h = buf + pos;
        if (memcmp(h, "OggS", 4) != 0 || h[4] != 0)
            return len;
        size_t nseg = h[26], hl = 27 + nseg;
        if (pos + hl > len)
            return len;
        size_t body = 0;
        for (size_t i = 0; i < nseg; i++)
            body += h[27 + i];
        if (pos + hl + body > len)
            return len;
        uint8_t *b = h + hl;
        if (body >= 16 && memcmp(b, "OpusTags", 8) == 0) {
            /* one whole packet on this page: not continued, not continuing */
            if ((h[5] & 1) || nseg == 0 || h[27 + nseg - 1] == 255)
                return len;
            size_t at = 8;
            uint32_t vlen = le32(b + at);
            if (vlen > body - at - 8)
                return len;
            at += 4 + vlen;
            uint32_t count = le32(b + at);
            at += 4;
            for (uint32_t c = 0; c < count; c++) {
                if (body - at < 4)
                    return len;
                uint32_t cl = le32(b + at);
                if (cl > body - at - 4)
                    return len;
                at += 4 + cl;
            }
            size_t nb = at; /* the packet without its padding */
            if (nb == body)
                return len;
            size_t nseg2 = nb / 255 + 1;
            if (nseg2 > nseg) /* cannot happen (nb < body), but never grow in place */
                return len;
            size_t hl2 = 27 + nseg2;
            memmove(h + hl2, b, nb);
            h[26] = (uint8_t)nseg2;
            for (size_t i = 0; i < nseg2; i++)
                h[27 + i] = i + 1 < nseg2 ? 255 : (uint8_t)(nb % 255);
            size_t rest = pos + hl + body;
            memmove(h + hl2 + nb, buf + rest, len - rest);
            memset(h + 22, 0, 4);
            uint32_t crc = ogg_crc(h, hl2 + nb);
            for (int i = 0; i < 4; i++)
                h[22 + i] = (uint8_t)(crc >> (8 * i));
            return len - (hl + body) + (hl2 + nb);
        }
        pos += hl + body;
    }
    return len;
}

/* ---- WAV (with the encoder, so the server's speech synthesis can compile this file alone) ---- */

static void put_le(uint8_t *p, uint32_t v, int n)
{
    for (int i = 0; i < n; i++)
        p[i] = (uint8_t)(v >> (8 * i));
}

size_t sg_wav_pcm16(const int16_t *samples, size_t n, int sample_rate, uint8_t *out)
{
    uint32_t data = (uint32_t)(n * 2);
    memcpy(out, "RIFF", 4);
    put_le(out + 4, 36 + data, 4);
    memcpy(out + 8, "WAVEfmt ", 8);
    put_le(out + 16, 16, 4);
    put_le(out + 20, 1, 2); /* PCM */
    put_le(out + 22, 1, 2); /* mono */
    put_le(out + 24, (uint32_t)sample_rate, 4);
    put_le(out + 28, (uint32_t)sample_rate * 2, 4);
    put_le(out + 32, 2, 2);
    put_le(out + 34, 16, 2);
    memcpy(out + 36, "data", 4);
    put_le(out + 40, data, 4);
    for (size_t i = 0; i < n; i++)
        put_le(out + 44 + 2 * i, (uint16_t)samples[i], 2);
    return 44 + (size_t)data;
}

/* ---- the encoder ------------------------------------------------------------------------------- */

sg_client_status sg_audio_encode(sg_audio_codec codec, const int16_t *pcm, size_t n,
                                 int sample_rate, int bitrate_bps, uint8_t **out, size_t *out_len,
                                 char err[SG_CLIENT_ERROR_SIZE])
{
    *out = NULL;
    *out_len = 0;
    if (!pcm || n == 0 || n > (size_t)1 << 28 || sample_rate < 8000 || sample_rate > 192000)
        return sg_client_fail(err, SG_CLIENT_EINVAL,
                              "audio encode: bad arguments (%zu samples at %d Hz)", n, sample_rate);
    if (codec == SG_AUDIO_CODEC_PCM) {
        uint8_t *w = malloc(44 + 2 * n);
        if (!w)
            return sg_client_fail(err, SG_CLIENT_ENOMEM, "audio encode: out of memory");
        *out_len = sg_wav_pcm16(pcm, n, sample_rate, w);
        *out = w;
        return SG_CLIENT_OK;
    }
    int format;
    if (codec == SG_AUDIO_CODEC_FLAC) {
        format = SF_FORMAT_FLAC | SF_FORMAT_PCM_16;
    } else if (codec == SG_AUDIO_CODEC_OPUS) {
        if (sample_rate != 8000 && sample_rate != 12000 && sample_rate != 16000 &&
            sample_rate != 24000 && sample_rate != 48000)
            return sg_client_fail(err, SG_CLIENT_EINVAL,
                                  "audio encode: Opus takes 8, 12, 16, 24 or 48 kHz, not %d Hz",
                                  sample_rate);
        if (bitrate_bps == 0)
            bitrate_bps = SG_OPUS_DEFAULT_BITRATE;
        if (bitrate_bps < 6000 || bitrate_bps > 256000)
            return sg_client_fail(err, SG_CLIENT_EINVAL,
                                  "audio encode: Opus bitrate %d is outside 6000..256000 bit/s",
                                  bitrate_bps);
        format = SF_FORMAT_OGG | SF_FORMAT_OPUS;
    } else {
        return sg_client_fail(err, SG_CLIENT_EINVAL, "audio encode: unknown codec %d", (int)codec);
    }
    sg_sfmem m = sg_sfmem_writer(); /* the server's in-memory file (src/media/sfmem.c) */
    SF_INFO info = {.samplerate = sample_rate, .channels = 1, .format = format};
    /* open and close through sfmem's lock: an app may encode on several threads */
    SNDFILE *sf = sg_sfmem_open(&m, SFM_WRITE, &info);
    if (!sf) {
        free(m.buf);
        return sg_client_fail(err, SG_CLIENT_ECODEC, "audio encode: libsndfile cannot write %s",
                              sg_audio_codec_name(codec));
    }
    if (codec == SG_AUDIO_CODEC_OPUS) {
        /* + 0.5 so libsndfile's (int) truncation lands on the requested bitrate */
        double level = 1.0 - ((double)bitrate_bps + 0.5 - 6000.0) / 250000.0;
        if (sf_command(sf, SFC_SET_COMPRESSION_LEVEL, &level, sizeof level) != SF_TRUE) {
            sg_sfmem_close(sf);
            free(m.buf);
            return sg_client_fail(err, SG_CLIENT_ECODEC,
                                  "audio encode: libsndfile refused the Opus bitrate %d", bitrate_bps);
        }
    }
    sf_count_t wrote = sf_writef_short(sf, pcm, (sf_count_t)n);
    int rc = sg_sfmem_close(sf);
    if (wrote != (sf_count_t)n || rc != 0 || m.oom || m.n <= 0) {
        free(m.buf);
        return m.oom ? sg_client_fail(err, SG_CLIENT_ENOMEM, "audio encode: out of memory")
                     : sg_client_fail(err, SG_CLIENT_ECODEC, "audio encode: libsndfile failed");
    }
    size_t len = (size_t)m.n;
    if (codec == SG_AUDIO_CODEC_OPUS)
        len = opus_compact_tags(m.buf, len);
    *out = m.buf;
    *out_len = len;
    return SG_CLIENT_OK;
}
