/* libFuzzer target for media/audio: the first byte picks the format and, for headerless PCM,
 * the sample rate (valid and invalid ones); the rest is the payload. Successful decodes must
 * yield finite 16 kHz samples in [-1, 1] within the time limit. */
#include <math.h>
#include <stdint.h>
#include <stdlib.h>

#include "media/audio.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    static const sg_audio_format formats[4] = {SG_AUDIO_AUTO, SG_AUDIO_WAV, SG_AUDIO_PCM_S16LE,
                                               SG_AUDIO_PCM_F32LE};
    static const int rates[16] = {16000, 8000,  11025, 22050, 24000, 32000, 44100, 48000,
                                  96000, 192000, 0,    -1,    7999,  192001, 12345, 1000};
    if (size < 1)
        return 0;
    const double max_seconds = 60;
    sg_audio_format fmt = formats[data[0] & 3];
    int rate = rates[(data[0] >> 2) & 15];
    sg_audio a;
    sg_error err;
    if (sg_audio_decode(data + 1, size - 1, fmt, rate, max_seconds, &a, &err) != SG_OK) {
        if (a.samples != NULL || a.n != 0)
            abort(); /* a failed decode must leave nothing to free */
        return 0;
    }
    if (a.n == 0 || !a.samples || a.src_channels < 1 || a.src_channels > 8 ||
        a.src_rate < 1000 || a.src_rate > 384000 || !(a.duration_s > 0) ||
        a.duration_s > max_seconds)
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
