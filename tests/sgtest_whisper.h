/* Shared by the Whisper and speech tests: the log-mel of jfk.wav, and a copy of the tiny random
 * fixture (tests/fixtures/whisper_tiny, which ships vocab.json + merges.txt) WITHOUT its
 * vocabulary, for the "cannot produce text" errors. Header-only so each test file stays
 * standalone. */
#ifndef SG_TESTS_WHISPER_H
#define SG_TESTS_WHISPER_H

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "check.h"
#include "media/audio.h"
#include "media/mel.h"

/* The 80-bin log-mel of ../shared/data/audio/jfk.wav padded to 30 s (malloc'ed), NULL on failure. */
__attribute__((unused)) static float *sgt_jfk_mel(int *frames)
{
    size_t len = 0;
    uint8_t *wav = check_read_file("../shared/data/audio/jfk.wav", &len);
    sg_audio a = {0};
    sg_error err = {0};
    float *mel = NULL;
    if (wav && sg_audio_decode(wav, len, SG_AUDIO_WAV, 0, 0, &a, &err) == SG_OK) {
        if (sg_log_mel(a.samples, a.n, 80, NULL, SG_MEL_FRAMES_30S, &mel, frames, &err) != SG_OK)
            mel = NULL;
        sg_audio_free(&a);
    }
    free(wav);
    return mel;
}

static const char *const sgt_novocab_files[] = {"config.json", "model.safetensors"};

/* dir/whisper_tiny (path into model) with links to the fixture's config and weights only: it loads,
 * but has no vocabulary. 0 on success. */
__attribute__((unused)) static int sgt_whisper_novocab_make(const char *dir, char *model, size_t cap)
{
    char cwd[4096], src[8192], dst[8192];
    if (!getcwd(cwd, sizeof cwd))
        return -1;
    snprintf(model, cap, "%s/whisper_tiny", dir);
    if ((mkdir(dir, 0700) != 0 && errno != EEXIST) || (mkdir(model, 0700) != 0 && errno != EEXIST))
        return -1;
    for (int i = 0; i < 2; i++) {
        snprintf(src, sizeof src, "%s/tests/fixtures/whisper_tiny/%s", cwd, sgt_novocab_files[i]);
        snprintf(dst, sizeof dst, "%s/%s", model, sgt_novocab_files[i]);
        unlink(dst);
        if (symlink(src, dst) != 0)
            return -1;
    }
    return 0;
}

__attribute__((unused)) static void sgt_whisper_novocab_remove(const char *dir, const char *model)
{
    char p[8192];
    for (int i = 0; i < 2; i++) {
        snprintf(p, sizeof p, "%s/%s", model, sgt_novocab_files[i]);
        unlink(p);
    }
    rmdir(model);
    rmdir(dir);
}

#endif
