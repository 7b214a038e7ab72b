/* Synthesised speech as the tests hear it: an encoded file (WAV, Ogg Opus) decoded by the server's
 * decoder, its length, and the seconds of it that the project's Silero VAD calls speech. */
#ifndef SG_TESTS_SPEECH_H
#define SG_TESTS_SPEECH_H

#include <stdint.h>
#include <stdlib.h>

#include "agent/backends.h"
#include "media/audio.h"

/* The file's duration in seconds (0 when it does not decode); *speech: Silero's speech in it. */
__attribute__((unused)) static double sgt_speech_seconds(const uint8_t *bytes, size_t len,
                                                         const sg_vad_backend *vad, double *speech)
{
    *speech = 0;
    sg_audio a;
    sg_error err = {0};
    if (!bytes || sg_audio_decode(bytes, len, SG_AUDIO_AUTO, 0, 0, &a, &err) != SG_OK)
        return 0;
    const double secs = a.duration_s;
    sg_speech_segment *segs = NULL;
    size_t n = 0;
    if (vad->segments(vad->self, a.samples, a.n, &segs, &n, &err) == SG_OK)
        for (size_t i = 0; i < n; i++)
            *speech += segs[i].end_s - segs[i].start_s;
    free(segs);
    sg_audio_free(&a);
    return secs;
}

#endif
