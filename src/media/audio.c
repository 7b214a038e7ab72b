/* Audio decoding: a RIFF/WAVE parser for untrusted bytes, headerless PCM, FLAC and Ogg (Opus,
 * Vorbis) through libsndfile, channel downmix and resampling to 16 kHz mono float with
 * libsamplerate. Every WAV size field is checked against the buffer before it is used, so nothing
 * is allocated from a size the bytes cannot back.
 *
 * FLAC and Ogg: libsndfile reads the request bytes in place through sf_open_virtual (no temporary
 * file). The container is chosen by our own magic check ("fLaC" / "OggS") and libsndfile's
 * verdict must agree, so libsndfile never gets to guess among its other formats (AIFF, CAF, ...)
 * on untrusted input. Compressed sizes say nothing about the decoded length, so the decode is
 * bounded by samples produced, not by header claims: a declared length over the limit is refused
 * early, and the decode stops with SG_ETOOBIG as soon as it passes the limit (see audio.h). The
 * decoded samples go through the same downmix, clip and resampler as WAV, so a FLAC of a WAV gives
 * bit-identical output.
 *
 * libsndfile 1.2.0 leaks libvorbis's codec setup (5784 bytes) whenever an Ogg Vorbis header fails
 * to parse (its error path never calls vorbis_info_clear), which a server must not let a client
 * repeat at will. So the first stream's three Vorbis header packets are parsed here first with
 * libogg + libvorbis (the same vorbis_synthesis_headerin calls libsndfile makes, cleaned up
 * properly) and a broken one is refused before libsndfile sees it. */
#include "media/audio.h"
#include "media/sfmem.h"

#include <limits.h>
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include <ogg/ogg.h>
#include <samplerate.h>
#include <sndfile.h>
#include <vorbis/codec.h>

/* The converter, measured 48 kHz -> 16 kHz (gain of a tone; 10 s of stereo s16 decoded and
 * resampled, -O2, one core):
 *                 6.0 kHz   6.8 kHz   7.2 kHz   >= 8.1 kHz (aliases)   10 s 48k stereo
 *   BEST           0.0 dB    0.0 dB    0.0 dB   below -147 dB          215 ms
 *   MEDIUM         0.0 dB    0.0 dB   -2.1 dB   below -119 dB           70 ms
 *   FASTEST       -0.5 dB   -8.8 dB  -20.5 dB   below -100 dB           32 ms
 * FASTEST attenuates the 6-8 kHz band that the top mel filters cover; BEST costs 3x MEDIUM for
 * the last half-kHz. MEDIUM is ~140x real time. Override with -DSG_AUDIO_CONVERTER=... */
#ifndef SG_AUDIO_CONVERTER
#define SG_AUDIO_CONVERTER SRC_SINC_MEDIUM_QUALITY
#endif

/* WAV header limits: the range of rates real recorders produce, and up to 7.1 channels. */
#define WAV_MIN_RATE 1000
#define WAV_MAX_RATE 384000
#define WAV_MAX_CHANNELS 8
/* Headerless PCM carries no rate, so the caller's value is held to a plausible range. */
#define PCM_MIN_RATE 8000
#define PCM_MAX_RATE 192000

#define WAVE_FORMAT_PCM 0x0001
#define WAVE_FORMAT_IEEE_FLOAT 0x0003
#define WAVE_FORMAT_EXTENSIBLE 0xFFFE

typedef enum sample_kind { KIND_U8, KIND_S16, KIND_S24, KIND_S32, KIND_F32, KIND_F64 } sample_kind;

/* How the interleaved bytes of one stream are laid out. */
typedef struct pcm_layout {
    sample_kind kind;
    int channels;
    int rate;
    size_t frame_bytes; /* bytes per frame: channels * bytes per sample (WAV block_align) */
} pcm_layout;

static uint16_t rd16(const uint8_t *p)
{
    return (uint16_t)(p[0] | p[1] << 8);
}

static uint32_t rd32(const uint8_t *p)
{
    return (uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16 | (uint32_t)p[3] << 24;
}

/* One sample as a double, integers scaled so that full scale is [-1, 1). */
static double sample_at(const uint8_t *p, sample_kind kind)
{
    switch (kind) {
    case KIND_U8:
        return ((double)p[0] - 128.0) / 128.0;
    case KIND_S16:
        return (double)(int16_t)rd16(p) / 32768.0;
    case KIND_S24: {
        int32_t v = (int32_t)((uint32_t)p[0] | (uint32_t)p[1] << 8 | (uint32_t)p[2] << 16);
        if (v & 0x800000)
            v -= 0x1000000;
        return (double)v / 8388608.0;
    }
    case KIND_S32: {
        uint32_t u = rd32(p);
        /* avoids the implementation-defined uint32 -> int32 conversion */
        double v = u >= 0x80000000u ? (double)u - 4294967296.0 : (double)u;
        return v / 2147483648.0;
    }
    case KIND_F32: {
        uint32_t u = rd32(p);
        float f;
        memcpy(&f, &u, sizeof f);
        return f;
    }
    case KIND_F64: {
        uint64_t u = (uint64_t)rd32(p) | (uint64_t)rd32(p + 4) << 32;
        double d;
        memcpy(&d, &u, sizeof d);
        return d;
    }
    }
    return 0.0;
}

/* Converts `frames` interleaved frames to mono floats in [-1, 1] by averaging the channels.
 * Float input that is NaN or infinite is an error; finite float input beyond full scale is
 * clipped, as a DAC would. */
static sg_status decode_frames(const uint8_t *data, size_t frames, const pcm_layout *lay,
                               float *out, sg_error *err)
{
    size_t sample_bytes = lay->frame_bytes / (size_t)lay->channels;
    for (size_t f = 0; f < frames; f++) {
        const uint8_t *p = data + f * lay->frame_bytes;
        double sum = 0.0;
        for (int c = 0; c < lay->channels; c++, p += sample_bytes) {
            double v = sample_at(p, lay->kind);
            if (!isfinite(v))
                return sg_error_set(err, SG_EAUDIO,
                                    "audio: non-finite float sample at frame %zu", f);
            sum += v;
        }
        double m = sum / lay->channels;
        out[f] = m > 1.0 ? 1.0f : m < -1.0 ? -1.0f : (float)m;
    }
    return SG_OK;
}

/* Parses a fmt chunk body of `size` bytes (all present in memory) into *lay. */
static sg_status wav_parse_fmt(const uint8_t *p, size_t size, pcm_layout *lay, sg_error *err)
{
    if (size < 16)
        return sg_error_set(err, SG_EAUDIO, "audio: WAV fmt chunk too short (%zu bytes)", size);
    unsigned tag = rd16(p);
    unsigned channels = rd16(p + 2);
    uint32_t rate = rd32(p + 4);
    unsigned block_align = rd16(p + 12);
    unsigned bits = rd16(p + 14);

    if (tag == WAVE_FORMAT_EXTENSIBLE) {
        /* cbSize (22), valid bits, channel mask, then the sub-format GUID whose first two bytes
         * are the real format tag and whose rest is the fixed KSDATAFORMAT suffix. The samples
         * are MSB-aligned in their container, so decoding by container width is correct
         * whatever the valid-bit count says. */
        static const uint8_t guid_tail[14] = {0x00, 0x00, 0x00, 0x00, 0x10, 0x00, 0x80,
                                              0x00, 0x00, 0xAA, 0x00, 0x38, 0x9B, 0x71};
        if (size < 40 || rd16(p + 16) < 22)
            return sg_error_set(err, SG_EAUDIO, "audio: WAV extensible fmt chunk too short");
        if (memcmp(p + 26, guid_tail, sizeof guid_tail) != 0)
            return sg_error_set(err, SG_EAUDIO, "audio: unsupported WAV extensible sub-format");
        tag = rd16(p + 24);
    }
    if (tag != WAVE_FORMAT_PCM && tag != WAVE_FORMAT_IEEE_FLOAT)
        return sg_error_set(err, SG_EAUDIO,
                            "audio: unsupported WAV format tag 0x%04x (only PCM and float)", tag);
    if (channels < 1 || channels > WAV_MAX_CHANNELS)
        return sg_error_set(err, SG_EAUDIO, "audio: unsupported WAV channel count %u (1..%d)",
                            channels, WAV_MAX_CHANNELS);
    if (rate < WAV_MIN_RATE || rate > WAV_MAX_RATE)
        return sg_error_set(err, SG_EAUDIO, "audio: unsupported WAV sample rate %lu (%d..%d)",
                            (unsigned long)rate, WAV_MIN_RATE, WAV_MAX_RATE);
    if (tag == WAVE_FORMAT_PCM) {
        switch (bits) {
        case 8: lay->kind = KIND_U8; break;
        case 16: lay->kind = KIND_S16; break;
        case 24: lay->kind = KIND_S24; break;
        case 32: lay->kind = KIND_S32; break;
        default:
            return sg_error_set(err, SG_EAUDIO, "audio: unsupported WAV PCM bit depth %u", bits);
        }
    } else {
        switch (bits) {
        case 32: lay->kind = KIND_F32; break;
        case 64: lay->kind = KIND_F64; break;
        default:
            return sg_error_set(err, SG_EAUDIO, "audio: unsupported WAV float bit depth %u", bits);
        }
    }
    if (block_align != channels * bits / 8)
        return sg_error_set(err, SG_EAUDIO,
                            "audio: WAV block_align %u does not match %u channels of %u bits",
                            block_align, channels, bits);
    lay->channels = (int)channels;
    lay->rate = (int)rate;
    lay->frame_bytes = block_align;
    return SG_OK;
}

/* Walks the RIFF chunks up to the data chunk. The RIFF size field is ignored (streaming writers
 * leave it 0 or 0xFFFFFFFF); the walk is bounded by the buffer. A chunk that claims more bytes
 * than remain is truncation, except a data chunk whose size is 0 or 0xFFFFFFFF: that is the
 * placeholder of a writer that could not seek back, and the data runs to the end of the buffer.
 * A trailing partial frame is dropped. */
static sg_status wav_parse(const uint8_t *buf, size_t len, pcm_layout *lay, const uint8_t **data,
                           size_t *frames, sg_error *err)
{
    if (len < 12 || memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0)
        return sg_error_set(err, SG_EAUDIO, "audio: not a RIFF/WAVE file");
    int have_fmt = 0;
    size_t pos = 12;
    while (len - pos >= 8) {
        const uint8_t *id = buf + pos;
        uint32_t size = rd32(buf + pos + 4);
        size_t avail = len - pos - 8;
        if (memcmp(id, "data", 4) == 0) {
            if (!have_fmt)
                return sg_error_set(err, SG_EAUDIO, "audio: WAV data chunk before fmt chunk");
            size_t n = size;
            if (size > avail) {
                if (size != 0xFFFFFFFFu)
                    return sg_error_set(err, SG_EAUDIO,
                                        "audio: WAV data chunk truncated (%lu bytes declared, "
                                        "%zu present)", (unsigned long)size, avail);
                n = avail;
            } else if (size == 0) {
                n = avail;
            }
            *data = buf + pos + 8;
            *frames = n / lay->frame_bytes;
            return SG_OK;
        }
        if (size > avail)
            return sg_error_set(err, SG_EAUDIO,
                                "audio: WAV chunk '%c%c%c%c' at offset %zu overruns the file",
                                id[0] >= 32 && id[0] < 127 ? id[0] : '?',
                                id[1] >= 32 && id[1] < 127 ? id[1] : '?',
                                id[2] >= 32 && id[2] < 127 ? id[2] : '?',
                                id[3] >= 32 && id[3] < 127 ? id[3] : '?', pos);
        if (memcmp(id, "fmt ", 4) == 0) {
            if (have_fmt)
                return sg_error_set(err, SG_EAUDIO, "audio: WAV has two fmt chunks");
            sg_status st = wav_parse_fmt(buf + pos + 8, size, lay, err);
            if (st != SG_OK)
                return st;
            have_fmt = 1;
        }
        /* chunks are padded to an even size; a missing final pad byte just ends the walk */
        size_t step = 8 + (size_t)size + (size & 1);
        if (step > len - pos)
            break;
        pos += step;
    }
    return sg_error_set(err, SG_EAUDIO, have_fmt ? "audio: WAV has no data chunk"
                                                 : "audio: WAV has no fmt chunk");
}

static sg_status pcm_layout_for(sg_audio_format fmt, size_t len, int rate, pcm_layout *lay,
                                size_t *frames, sg_error *err)
{
    if (rate < PCM_MIN_RATE || rate > PCM_MAX_RATE)
        return sg_error_set(err, SG_EINVAL,
                            "audio: headerless PCM needs a sample_rate in %d..%d (got %d)",
                            PCM_MIN_RATE, PCM_MAX_RATE, rate);
    lay->kind = fmt == SG_AUDIO_PCM_S16LE ? KIND_S16 : KIND_F32;
    lay->channels = 1;
    lay->rate = rate;
    lay->frame_bytes = fmt == SG_AUDIO_PCM_S16LE ? 2 : 4;
    if (len % lay->frame_bytes != 0)
        return sg_error_set(err, SG_EAUDIO,
                            "audio: %zu bytes is not a whole number of %zu-byte samples", len,
                            lay->frame_bytes);
    *frames = len / lay->frame_bytes;
    return SG_OK;
}

sg_status sg_audio_format_parse(const char *name, sg_audio_format *out, sg_error *err)
{
    static const struct {
        const char *name;
        sg_audio_format fmt;
    } names[] = {
        {"wav", SG_AUDIO_WAV},          {"pcm_s16le", SG_AUDIO_PCM_S16LE},
        {"pcm", SG_AUDIO_PCM_S16LE},    {"s16le", SG_AUDIO_PCM_S16LE},
        {"pcm_f32le", SG_AUDIO_PCM_F32LE}, {"f32le", SG_AUDIO_PCM_F32LE},
        {"flac", SG_AUDIO_FLAC},        {"ogg", SG_AUDIO_OGG},
        {"opus", SG_AUDIO_OGG},         {"vorbis", SG_AUDIO_OGG},
    };
    if (!name || !*name) {
        *out = SG_AUDIO_AUTO;
        return SG_OK;
    }
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strcmp(name, names[i].name) == 0) {
            *out = names[i].fmt;
            return SG_OK;
        }
    }
    return sg_error_set(err, SG_EINVAL,
                        "audio: unknown format \"%.64s\" (wav, pcm_s16le, pcm_f32le, flac, ogg)",
                        name);
}

sg_audio_format sg_audio_sniff(const uint8_t *buf, size_t len)
{
    if (!buf)
        return SG_AUDIO_AUTO;
    if (len >= 12 && memcmp(buf, "RIFF", 4) == 0 && memcmp(buf + 8, "WAVE", 4) == 0)
        return SG_AUDIO_WAV;
    if (len >= 4 && memcmp(buf, "fLaC", 4) == 0)
        return SG_AUDIO_FLAC;
    if (len >= 4 && memcmp(buf, "OggS", 4) == 0)
        return SG_AUDIO_OGG;
    return SG_AUDIO_AUTO;
}

const char *sg_audio_format_name(sg_audio_format fmt)
{
    switch (fmt) {
    case SG_AUDIO_WAV: return "wav";
    case SG_AUDIO_PCM_S16LE: return "pcm_s16le";
    case SG_AUDIO_PCM_F32LE: return "pcm_f32le";
    case SG_AUDIO_FLAC: return "flac";
    case SG_AUDIO_OGG: return "ogg";
    default: return "auto";
    }
}

/* ---- FLAC and Ogg (libsndfile) ----------------------------------------------------------------- */

#define SNDFILE_BLOCK 4096 /* frames per sf_readf_float call */
#define OGG_FEED 65536     /* bytes handed to libogg at a time */

/* false when the first logical stream is Vorbis and its three header packets do not parse (or the
 * file ends before them); true otherwise (not Vorbis: Opus etc. go to libsndfile as they are). */
static bool vorbis_headers_ok(const uint8_t *buf, size_t len)
{
    ogg_sync_state oy;
    ogg_stream_state os;
    vorbis_info vi;
    vorbis_comment vc;
    ogg_sync_init(&oy);
    vorbis_info_init(&vi);
    vorbis_comment_init(&vc);
    bool have_stream = false, vorbis = false, ok = true;
    size_t fed = 0;
    int packets = 0;
    while (packets < 3) {
        ogg_page og;
        int r = ogg_sync_pageout(&oy, &og);
        if (r == 0) { /* needs more bytes */
            if (fed == len)
                break;
            size_t n = len - fed < OGG_FEED ? len - fed : OGG_FEED;
            char *dst = ogg_sync_buffer(&oy, (long)n);
            if (!dst)
                break;
            memcpy(dst, buf + fed, n);
            ogg_sync_wrote(&oy, (long)n);
            fed += n;
            continue;
        }
        if (r < 0) /* bytes skipped to the next page: libsndfile resyncs the same way */
            continue;
        if (!have_stream) {
            if (!ogg_page_bos(&og))
                break; /* no beginning-of-stream page first: libsndfile refuses it too */
            ogg_stream_init(&os, ogg_page_serialno(&og));
            have_stream = true;
        }
        if (ogg_page_serialno(&og) != os.serialno)
            continue;
        if (ogg_stream_pagein(&os, &og) != 0)
            continue;
        ogg_packet op;
        while (packets < 3 && (r = ogg_stream_packetout(&os, &op)) != 0) {
            if (r < 0)
                continue; /* a hole in the packet sequence */
            if (packets == 0) {
                vorbis = op.bytes >= 7 && op.packet[0] == 1 && memcmp(op.packet + 1, "vorbis", 6) == 0;
                if (!vorbis)
                    goto done;
            }
            if (vorbis_synthesis_headerin(&vi, &vc, &op) != 0) {
                ok = false;
                goto done;
            }
            packets++;
        }
    }
    if (vorbis && packets < 3)
        ok = false;
done:
    if (have_stream)
        ogg_stream_clear(&os);
    vorbis_comment_clear(&vc);
    vorbis_info_clear(&vi);
    ogg_sync_clear(&oy);
    return ok;
}

/* Decodes a FLAC or Ogg file to mono floats at its own rate. limit_s: the most seconds that may be
 * decoded (more is SG_ETOOBIG); keep_s > 0: only the last keep_s seconds are kept (a ring), so
 * memory stays bounded by what is kept. */
static sg_status sndfile_decode(const uint8_t *buf, size_t len, sg_audio_format fmt,
                                double limit_s, double keep_s, float **mono_out,
                                size_t *frames_out, pcm_layout *lay, sg_error *err)
{
    const char *what = fmt == SG_AUDIO_FLAC ? "FLAC" : "Ogg";
    if (sg_audio_sniff(buf, len) != fmt)
        return sg_error_set(err, SG_EAUDIO, "audio: not a%s %s file (it does not start with \"%s\")",
                            fmt == SG_AUDIO_OGG ? "n" : "", what,
                            fmt == SG_AUDIO_FLAC ? "fLaC" : "OggS");
    if (len > (size_t)INT64_MAX / 2)
        return sg_error_set(err, SG_ETOOBIG, "audio: %s file too large", what);
    if (fmt == SG_AUDIO_OGG && !vorbis_headers_ok(buf, len))
        return sg_error_set(err, SG_EAUDIO, "audio: cannot decode the Ogg file: its Vorbis headers "
                            "are malformed or truncated");
    sg_sfmem mf = sg_sfmem_reader(buf, len); /* libsndfile reads the request bytes in place */
    SF_INFO info;
    memset(&info, 0, sizeof info);
    SNDFILE *sf = sg_sfmem_open(&mf, SFM_READ, &info); /* serialised: libsndfile's open races */
    if (!sf) /* sf_strerror(NULL) is process-global (racy): keep the message our own */
        return sg_error_set(err, SG_EAUDIO, "audio: cannot decode the %s file: malformed, truncated "
                            "or an unsupported codec", what);
    sg_status st = SG_OK;
    float *block = NULL, *mono = NULL;
    size_t n = 0, cap = 0, head = 0;
    bool wrapped = false;
    const int major = info.format & SF_FORMAT_TYPEMASK;
    if (major != (fmt == SG_AUDIO_FLAC ? SF_FORMAT_FLAC : SF_FORMAT_OGG)) {
        st = sg_error_set(err, SG_EAUDIO, "audio: the %s file decodes as another container", what);
        goto done;
    }
    if (info.channels < 1 || info.channels > WAV_MAX_CHANNELS) {
        st = sg_error_set(err, SG_EAUDIO, "audio: unsupported %s channel count %d (1..%d)", what,
                          info.channels, WAV_MAX_CHANNELS);
        goto done;
    }
    if (info.samplerate < WAV_MIN_RATE || info.samplerate > WAV_MAX_RATE) {
        st = sg_error_set(err, SG_EAUDIO, "audio: unsupported %s sample rate %d (%d..%d)", what,
                          info.samplerate, WAV_MIN_RATE, WAV_MAX_RATE);
        goto done;
    }
    const double rate = info.samplerate;
    /* the header's length (FLAC STREAMINFO, Ogg's last granule) is a claim: it may refuse early,
     * never size a buffer */
    if (info.frames > 0 && info.frames != SF_COUNT_MAX && (double)info.frames / rate > limit_s) {
        st = sg_error_set(err, SG_ETOOBIG, "audio: %.2f s of audio exceeds the %g s limit",
                          (double)info.frames / rate, limit_s);
        goto done;
    }
    const size_t limit = (size_t)(limit_s * rate);
    const size_t keep = keep_s > 0 ? ((size_t)(keep_s * rate) ? (size_t)(keep_s * rate) : 1) : 0;
    const int ch = info.channels;
    block = malloc((size_t)SNDFILE_BLOCK * (size_t)ch * sizeof *block);
    if (!block) {
        st = sg_error_set(err, SG_ENOMEM, "audio: out of memory");
        goto done;
    }
    size_t total = 0;
    for (;;) {
        sf_count_t got = sf_readf_float(sf, block, SNDFILE_BLOCK);
        if (got <= 0)
            break;
        if ((size_t)got > limit - total) { /* total <= limit always */
            st = sg_error_set(err, SG_ETOOBIG, "audio: the %s file decodes to more than the %g s "
                              "limit", what, limit_s);
            goto done;
        }
        total += (size_t)got;
        for (sf_count_t f = 0; f < got; f++) {
            const float *p = block + (size_t)f * (size_t)ch;
            double sum = 0.0;
            for (int c = 0; c < ch; c++)
                sum += p[c];
            if (!isfinite(sum)) {
                st = sg_error_set(err, SG_EAUDIO, "audio: non-finite sample in the %s file", what);
                goto done;
            }
            double m = sum / ch;
            float v = m > 1.0 ? 1.0f : m < -1.0 ? -1.0f : (float)m;
            if (keep && n == keep) { /* the ring is full: overwrite the oldest */
                mono[head] = v;
                head = head + 1 == keep ? 0 : head + 1;
                wrapped = true;
                continue;
            }
            if (n == cap) {
                size_t nc = cap ? cap * 2 : 65536;
                if (keep && nc > keep)
                    nc = keep;
                float *p2 = realloc(mono, nc * sizeof *mono);
                if (!p2) {
                    st = sg_error_set(err, SG_ENOMEM, "audio: out of memory");
                    goto done;
                }
                mono = p2;
                cap = nc;
            }
            mono[n++] = v;
        }
    }
    if (sf_error(sf) != SF_ERR_NO_ERROR) {
        st = sg_error_set(err, SG_EAUDIO, "audio: the %s data is corrupt: %s", what, sf_strerror(sf));
        goto done;
    }
    if (n == 0) {
        st = sg_error_set(err, SG_EAUDIO, "audio: no audio samples in the %s file", what);
        goto done;
    }
    if (wrapped && head) { /* rotate the ring so the oldest kept sample comes first */
        float *r = malloc(n * sizeof *r);
        if (!r) {
            st = sg_error_set(err, SG_ENOMEM, "audio: out of memory");
            goto done;
        }
        memcpy(r, mono + head, (n - head) * sizeof *r);
        memcpy(r + (n - head), mono, head * sizeof *r);
        free(mono);
        mono = r;
    }
    lay->kind = KIND_F32;
    lay->channels = ch;
    lay->rate = info.samplerate;
    lay->frame_bytes = 0;
done:
    sg_sfmem_close(sf);
    free(block);
    if (st != SG_OK) {
        free(mono);
        return st;
    }
    *mono_out = mono;
    *frames_out = n;
    return SG_OK;
}

sg_status sg_audio_resample(const float *in, size_t n, int in_rate, int out_rate, float **out,
                            size_t *out_n, sg_error *err)
{
    *out = NULL;
    *out_n = 0;
    if (!in || n == 0)
        return sg_error_set(err, SG_EINVAL, "audio: nothing to resample");
    if (in_rate <= 0 || out_rate <= 0)
        return sg_error_set(err, SG_EINVAL, "audio: bad resampling rates %d -> %d", in_rate,
                            out_rate);
    if (in_rate == out_rate) {
        if (n > SIZE_MAX / sizeof(float))
            return sg_error_set(err, SG_ENOMEM, "audio: out of memory");
        float *copy = malloc(n * sizeof(float));
        if (!copy)
            return sg_error_set(err, SG_ENOMEM, "audio: out of memory");
        memcpy(copy, in, n * sizeof(float));
        *out = copy;
        *out_n = n;
        return SG_OK;
    }
    double ratio = (double)out_rate / in_rate;
    if (!src_is_valid_ratio(ratio))
        return sg_error_set(err, SG_EINVAL, "audio: cannot resample %d -> %d (ratio out of range)",
                            in_rate, out_rate);
    /* a little headroom over n * ratio: the converter rounds its end position */
    double cap_d = ceil((double)n * ratio) + 16.0;
    if (n > (size_t)LONG_MAX || cap_d > (double)LONG_MAX ||
        cap_d > (double)(SIZE_MAX / sizeof(float)))
        return sg_error_set(err, SG_ETOOBIG, "audio: too many samples to resample");
    size_t cap = (size_t)cap_d;
    float *buf = malloc(cap * sizeof(float));
    if (!buf)
        return sg_error_set(err, SG_ENOMEM, "audio: out of memory");
    SRC_DATA d = {
        .data_in = in,
        .data_out = buf,
        .input_frames = (long)n,
        .output_frames = (long)cap,
        .end_of_input = 1,
        .src_ratio = ratio,
    };
    int rc = src_simple(&d, SG_AUDIO_CONVERTER, 1);
    if (rc != 0) {
        free(buf);
        /* the ratio and sizes were checked above, so this is allocation failure or a bug */
        return sg_error_set(err, SG_EINTERNAL, "audio: resampling failed: %s", src_strerror(rc));
    }
    size_t got = (size_t)d.output_frames_gen;
    if (got == 0) {
        free(buf);
        return sg_error_set(err, SG_EAUDIO, "audio: too short to resample");
    }
    float *shrunk = realloc(buf, got * sizeof(float));
    *out = shrunk ? shrunk : buf;
    *out_n = got;
    return SG_OK;
}

/* Downmixed mono at lay->rate -> out: resampled to 16 kHz when needed (takes mono). */
static sg_status finish(float *mono, size_t frames, const pcm_layout *lay, double duration,
                        sg_audio *out, sg_error *err)
{
    float *samples = mono;
    size_t n = frames;
    if (lay->rate != SG_AUDIO_RATE) {
        sg_status st = sg_audio_resample(mono, frames, lay->rate, SG_AUDIO_RATE, &samples, &n, err);
        free(mono);
        if (st != SG_OK)
            return st;
        /* the sinc filter rings a little past full scale on clipped input */
        for (size_t i = 0; i < n; i++)
            samples[i] = samples[i] > 1.0f ? 1.0f : samples[i] < -1.0f ? -1.0f : samples[i];
    }
    out->samples = samples;
    out->n = n;
    out->src_rate = lay->rate;
    out->src_channels = lay->channels;
    out->duration_s = duration;
    return SG_OK;
}

/* keep_seconds > 0: decode only the last keep_seconds of the input (before resampling, so a long
 * upload costs nothing beyond what is kept). */
static sg_status audio_decode(const uint8_t *buf, size_t len, sg_audio_format fmt, int sample_rate,
                              double max_seconds, double keep_seconds, sg_audio *out, sg_error *err)
{
    memset(out, 0, sizeof *out);
    if (!buf && len > 0)
        return sg_error_set(err, SG_EINVAL, "audio: no input buffer");

    pcm_layout lay = {KIND_S16, 0, 0, 0};
    const uint8_t *data = buf;
    size_t frames = 0;
    sg_status st;
    if (fmt == SG_AUDIO_AUTO) {
        fmt = sg_audio_sniff(buf, len);
        if (fmt == SG_AUDIO_AUTO)
            return sg_error_set(err, SG_EAUDIO,
                                "audio: not a WAV, FLAC or Ogg file (no RIFF/WAVE, fLaC or OggS "
                                "header; headerless PCM needs a format)");
    }
    switch (fmt) {
    case SG_AUDIO_WAV:
        st = wav_parse(buf, buf ? len : 0, &lay, &data, &frames, err);
        break;
    case SG_AUDIO_PCM_S16LE:
    case SG_AUDIO_PCM_F32LE:
        st = pcm_layout_for(fmt, len, sample_rate, &lay, &frames, err);
        break;
    case SG_AUDIO_FLAC:
    case SG_AUDIO_OGG: {
        double limit = max_seconds > 0 ? fmin(max_seconds, SG_AUDIO_MAX_DECODE_SECONDS)
                       : keep_seconds > 0 ? SG_AUDIO_TAIL_MAX_SECONDS
                                          : SG_AUDIO_MAX_DECODE_SECONDS;
        float *mono = NULL;
        st = sndfile_decode(buf, buf ? len : 0, fmt, limit, keep_seconds, &mono, &frames, &lay, err);
        if (st != SG_OK)
            return st;
        return finish(mono, frames, &lay, (double)frames / lay.rate, out, err);
    }
    default:
        return sg_error_set(err, SG_EINVAL, "audio: unknown format %d", (int)fmt);
    }
    if (st != SG_OK)
        return st;
    if (frames == 0)
        return sg_error_set(err, SG_EAUDIO, "audio: no audio samples");
    double duration = (double)frames / lay.rate;
    if (max_seconds > 0 && duration > max_seconds)
        return sg_error_set(err, SG_ETOOBIG, "audio: %.2f s of audio exceeds the %g s limit",
                            duration, max_seconds);
    if (keep_seconds > 0 && duration > keep_seconds) {
        size_t keep = (size_t)(keep_seconds * lay.rate);
        if (keep == 0)
            keep = 1;
        data += (frames - keep) * lay.frame_bytes;
        frames = keep;
        duration = (double)frames / lay.rate;
    }

    /* frames <= len / frame_bytes, so this is bounded by the bytes actually received */
    float *mono = malloc(frames * sizeof(float));
    if (!mono)
        return sg_error_set(err, SG_ENOMEM, "audio: out of memory");
    st = decode_frames(data, frames, &lay, mono, err);
    if (st != SG_OK) {
        free(mono);
        return st;
    }
    return finish(mono, frames, &lay, duration, out, err);
}

sg_status sg_audio_decode(const uint8_t *buf, size_t len, sg_audio_format fmt, int sample_rate,
                          double max_seconds, sg_audio *out, sg_error *err)
{
    return audio_decode(buf, len, fmt, sample_rate, max_seconds, 0, out, err);
}

sg_status sg_audio_decode_tail(const uint8_t *buf, size_t len, sg_audio_format fmt,
                               int sample_rate, double keep_seconds, sg_audio *out, sg_error *err)
{
    return audio_decode(buf, len, fmt, sample_rate, 0, keep_seconds, out, err);
}

void sg_audio_free(sg_audio *a)
{
    if (!a)
        return;
    free(a->samples);
    memset(a, 0, sizeof *a);
}
