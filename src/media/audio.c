/* Audio decoding: a RIFF/WAVE parser for untrusted bytes, headerless PCM, channel downmix and
 * resampling to 16 kHz mono float with libsamplerate. Every size field is checked against the
 * buffer before it is used, so nothing is allocated from a size the bytes cannot back. */
#include "media/audio.h"

#include <limits.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

#include <samplerate.h>

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
                        "audio: unknown format \"%.64s\" (wav, pcm_s16le, pcm_f32le)", name);
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

/* keep_seconds > 0: decode only the last keep_seconds of the input (before resampling, so a long
 * upload costs nothing beyond what is kept). */
static sg_status audio_decode(const uint8_t *buf, size_t len, sg_audio_format fmt, int sample_rate,
                              double max_seconds, double keep_seconds, sg_audio *out, sg_error *err)
{
    memset(out, 0, sizeof *out);
    if (!buf && len > 0)
        return sg_error_set(err, SG_EINVAL, "audio: no input buffer");

    pcm_layout lay;
    const uint8_t *data = buf;
    size_t frames = 0;
    sg_status st;
    switch (fmt) {
    case SG_AUDIO_AUTO:
        if (!buf || len < 12 || memcmp(buf, "RIFF", 4) != 0 || memcmp(buf + 8, "WAVE", 4) != 0)
            return sg_error_set(err, SG_EAUDIO,
                                "audio: not a RIFF/WAVE file (headerless PCM needs a format)");
        st = wav_parse(buf, len, &lay, &data, &frames, err);
        break;
    case SG_AUDIO_WAV:
        st = wav_parse(buf, buf ? len : 0, &lay, &data, &frames, err);
        break;
    case SG_AUDIO_PCM_S16LE:
    case SG_AUDIO_PCM_F32LE:
        st = pcm_layout_for(fmt, len, sample_rate, &lay, &frames, err);
        break;
    default:
        return sg_error_set(err, SG_EINVAL, "audio: unknown format %d", (int)fmt);
    }
    if (st != SG_OK)
        return st;
    if (frames == 0)
        return sg_error_set(err, SG_EAUDIO, "audio: no audio samples");
    double duration = (double)frames / lay.rate;
    if (max_seconds > 0 && duration > max_seconds)
        return sg_error_set(err, SG_ETOOBIG, "audio: %.1f s of audio exceeds the %.1f s limit",
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
    float *samples = mono;
    size_t n = frames;
    if (lay.rate != SG_AUDIO_RATE) {
        st = sg_audio_resample(mono, frames, lay.rate, SG_AUDIO_RATE, &samples, &n, err);
        free(mono);
        if (st != SG_OK)
            return st;
        /* the sinc filter rings a little past full scale on clipped input */
        for (size_t i = 0; i < n; i++)
            samples[i] = samples[i] > 1.0f ? 1.0f : samples[i] < -1.0f ? -1.0f : samples[i];
    }
    out->samples = samples;
    out->n = n;
    out->src_rate = lay.rate;
    out->src_channels = lay.channels;
    out->duration_s = duration;
    return SG_OK;
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
