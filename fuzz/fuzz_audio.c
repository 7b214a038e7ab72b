/* libFuzzer target for media/audio: the first byte picks the format (bits 0-1 and 6: auto, WAV,
 * PCM s16, PCM f32, FLAC, Ogg; auto reaches FLAC and Ogg through their magic too) and, for
 * headerless PCM, the sample rate (bits 2-5, valid and invalid ones); the rest is the payload.
 * Successful decodes must yield finite 16 kHz samples in [-1, 1] within the time limit; the
 * tail decode (bit 7) must keep at most its seconds. Seeds include tiny FLAC, Ogg Opus and Ogg
 * Vorbis files (fuzz/seeds/fuzz_audio/{flac,opus,vorbis}_*). */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdlib.h>

#include "media/audio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const sg_audio_format formats[8] = {SG_AUDIO_AUTO, SG_AUDIO_WAV, SG_AUDIO_PCM_S16LE,
                                               SG_AUDIO_PCM_F32LE, SG_AUDIO_FLAC, SG_AUDIO_OGG,
                                               SG_AUDIO_AUTO, SG_AUDIO_AUTO};
    static const int rates[16] = {16000, 8000,  11025, 22050, 24000, 32000, 44100, 48000,
                                  96000, 192000, 0,    -1,    7999,  192001, 12345, 1000};
    if (size < 1)
        return 0;
    const double max_seconds = 60, keep_seconds = 2;
    sg_audio_format fmt = formats[(data[0] & 3) | ((data[0] >> 4) & 4)];
    int rate = rates[(data[0] >> 2) & 15];
    const bool tail = data[0] & 0x80;
    sg_audio a;
    sg_error err;
    sg_status st = tail ? sg_audio_decode_tail(data + 1, size - 1, fmt, rate, keep_seconds, &a, &err)
                        : sg_audio_decode(data + 1, size - 1, fmt, rate, max_seconds, &a, &err);
    if (st != SG_OK) {
        if (a.samples != NULL || a.n != 0)
            abort(); /* a failed decode must leave nothing to free */
        return 0;
    }
    if (a.n == 0 || !a.samples || a.src_channels < 1 || a.src_channels > 8 ||
        a.src_rate < 1000 || a.src_rate > 384000 || !(a.duration_s > 0) ||
        a.duration_s > (tail ? keep_seconds + 1e-9 : max_seconds))
        abort();
    /* length matches the input duration to within the converter's rounding */
    if (fabs((double)a.n - a.duration_s * SG_AUDIO_RATE) > 2 + 1e-9 * a.n)
        abort();
    for (size_t i = 0; i < a.n; i++)
        if (!(a.samples[i] >= -1.0f && a.samples[i] <= 1.0f))
            abort();
    sg_audio_free(&a);
    return 0;
}
