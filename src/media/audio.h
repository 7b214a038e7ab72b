/* Audio decoding for /audio and /query: WAV files (RIFF/WAVE, PCM 8/16/24/32-bit integer, 32/64-bit
 * float, WAVE_FORMAT_EXTENSIBLE; any rate; mono, stereo or more channels), headerless PCM
 * (s16le, f32le) with a given rate, and compressed FLAC and Ogg (Opus, Vorbis) files decoded by
 * libsndfile. Output is always 16 kHz mono float in [-1, 1]: channels are averaged, other rates
 * are resampled with libsamplerate's band-limited sinc converter. */
#ifndef SG_MEDIA_AUDIO_H
#define SG_MEDIA_AUDIO_H

#include <stddef.h>
#include <stdint.h>

#include "base/error.h"

#define SG_AUDIO_RATE 16000

typedef enum sg_audio_format {
    SG_AUDIO_AUTO = 0,  /* by the magic: RIFF/WAVE, fLaC or OggS; else an error */
    SG_AUDIO_WAV,
    SG_AUDIO_PCM_S16LE,
    SG_AUDIO_PCM_F32LE,
    SG_AUDIO_FLAC,      /* a native FLAC file ("fLaC") */
    SG_AUDIO_OGG        /* an Ogg file ("OggS"): Opus or Vorbis (or FLAC in Ogg) */
} sg_audio_format;

/* Compressed input is decoded (and its length known) only as it is read, so the decoded length
 * is bounded: by max_seconds in sg_audio_decode, by this in sg_audio_decode_tail (whose WAV path
 * has no limit: it costs nothing to skip), and by SG_AUDIO_MAX_DECODE_SECONDS when the caller sets
 * no limit. A file that decodes to more is refused with SG_ETOOBIG (a few KB of FLAC can expand
 * to hours of silence). */
#define SG_AUDIO_TAIL_MAX_SECONDS 900.0
#define SG_AUDIO_MAX_DECODE_SECONDS 3600.0

typedef struct sg_audio {
    float *samples;   /* n samples, 16 kHz mono, owned */
    size_t n;
    int src_rate;     /* rate of the input */
    int src_channels; /* channels of the input */
    double duration_s;
} sg_audio;

/* "wav", "pcm_s16le", "pcm_f32le" (also "pcm" = s16le, "s16le", "f32le"), "flac", "ogg" (also
 * "opus", "vorbis": both are Ogg files); NULL or "" = auto. Unknown names give SG_EINVAL. */
sg_status sg_audio_format_parse(const char *name, sg_audio_format *out, sg_error *err);
/* The container that the first bytes announce: SG_AUDIO_WAV (RIFF....WAVE), SG_AUDIO_FLAC
 * ("fLaC"), SG_AUDIO_OGG ("OggS"), else SG_AUDIO_AUTO (unknown: maybe headerless PCM). */
sg_audio_format sg_audio_sniff(const uint8_t *buf, size_t len);
/* "wav", "pcm_s16le", "pcm_f32le", "flac", "ogg", "auto". */
const char *sg_audio_format_name(sg_audio_format fmt);

/* Decodes buf. For PCM formats sample_rate must be given (8000..192000) and channels is 1 (the
 * contract's headerless PCM is mono); for WAV, FLAC and Ogg, sample_rate is ignored. FLAC and Ogg
 * must start with their magic (an explicit format that the bytes contradict is SG_EAUDIO).
 * max_seconds > 0 refuses input longer than that with SG_ETOOBIG before resampling. Errors:
 * SG_EAUDIO (malformed, truncated, unsupported encoding, zero samples), SG_EINVAL (bad rate),
 * SG_ETOOBIG, SG_ENOMEM. */
sg_status sg_audio_decode(const uint8_t *buf, size_t len, sg_audio_format fmt, int sample_rate,
                          double max_seconds, sg_audio *out, sg_error *err);
/* Like sg_audio_decode, but longer input is not refused: only its last keep_seconds are decoded
 * (and resampled), so trimming a long upload costs nothing beyond what is kept. duration_s is
 * then that of the kept part. */
sg_status sg_audio_decode_tail(const uint8_t *buf, size_t len, sg_audio_format fmt,
                               int sample_rate, double keep_seconds, sg_audio *out, sg_error *err);
void sg_audio_free(sg_audio *a);

/* Band-limited resampling of mono float audio; *out is malloc'ed. */
sg_status sg_audio_resample(const float *in, size_t n, int in_rate, int out_rate, float **out,
                            size_t *out_n, sg_error *err);

#endif
