/* media/sfmem: libsndfile from several threads at once. Its open and close race on process-wide
 * state, so sfmem serialises them (sg_sfmem_open / sg_sfmem_close). Four threads decode FLAC, Ogg
 * Vorbis and Ogg Opus (sg_audio_decode, as the server's workers do) and encode FLAC (as
 * libsgclient does) at the same time; every result must equal the one-thread result. The race
 * seldom changes a result, so when valgrind is installed the test also runs itself under
 * helgrind, which must report no error (without the lock it reported 184); skipped under the
 * sanitizers, which valgrind cannot run. */
#include <pthread.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "check.h"
#include "media/audio.h"
#include "media/sfmem.h"

#define THREADS 4
#define ROUNDS 3
#define SECONDS 1

typedef struct clip {
    const char *name;
    int format;
    uint8_t *file;
    size_t len;
    float *want; /* its decode on one thread */
    size_t n;
} clip;

static clip clips[] = {
    {"flac", SF_FORMAT_FLAC | SF_FORMAT_PCM_16, NULL, 0, NULL, 0},
    {"ogg vorbis", SF_FORMAT_OGG | SF_FORMAT_VORBIS, NULL, 0, NULL, 0},
    {"ogg opus", SF_FORMAT_OGG | SF_FORMAT_OPUS, NULL, 0, NULL, 0},
};
#define NCLIPS (sizeof clips / sizeof *clips)

static int16_t pcm[SECONDS * 16000];

/* The file libsndfile writes for pcm in format (malloc'ed), through sfmem as libsgclient does. */
static uint8_t *encode(int format, size_t *len)
{
    sg_sfmem m = sg_sfmem_writer();
    SF_INFO info = {.samplerate = 16000, .channels = 1, .format = format};
    SNDFILE *sf = sg_sfmem_open(&m, SFM_WRITE, &info);
    if (!sf)
        return NULL;
    sf_count_t wrote = sf_writef_short(sf, pcm, (sf_count_t)(sizeof pcm / sizeof *pcm));
    int rc = sg_sfmem_close(sf);
    if (wrote != (sf_count_t)(sizeof pcm / sizeof *pcm) || rc != 0 || m.oom) {
        free(m.buf);
        return NULL;
    }
    *len = (size_t)m.n;
    return m.buf;
}

static uint8_t *flac_want;
static size_t flac_want_len;

typedef struct worker_result {
    int index; /* which clip the thread starts with */
    int decodes, mismatches, encodes, encode_mismatches;
    char first_error[300];
} worker_result;

static void *worker(void *arg)
{
    worker_result *res = arg;
    int start = res->index % (int)NCLIPS;
    for (int round = 0; round < ROUNDS; round++) {
        for (size_t k = 0; k < NCLIPS; k++) {
            clip *c = &clips[(start + round + k) % NCLIPS];
            sg_audio a;
            sg_error err = {0};
            if (sg_audio_decode(c->file, c->len, SG_AUDIO_AUTO, 0, 30, &a, &err) != SG_OK) {
                if (!res->first_error[0])
                    snprintf(res->first_error, sizeof res->first_error, "%s: %s", c->name, err.msg);
                res->mismatches++;
                continue;
            }
            res->decodes++;
            res->mismatches += a.n != c->n || memcmp(a.samples, c->want, a.n * sizeof(float)) != 0;
            sg_audio_free(&a);
        }
        size_t len = 0;
        uint8_t *f = encode(SF_FORMAT_FLAC | SF_FORMAT_PCM_16, &len);
        res->encodes++;
        res->encode_mismatches += !f || len != flac_want_len || memcmp(f, flac_want, len) != 0;
        free(f);
    }
    return NULL;
}

/* The same test under helgrind: 0 = no race reported, 1 = races, -1 = cannot run it here. */
static int helgrind_verdict(void)
{
#if defined(__SANITIZE_ADDRESS__)
    return -1;
#else
    if (system("valgrind --version > /dev/null 2>&1") != 0)
        return -1;
    char self[4096];
    ssize_t n = readlink("/proc/self/exe", self, sizeof self - 1);
    if (n <= 0)
        return -1;
    self[n] = 0;
    char cmd[4200];
    snprintf(cmd, sizeof cmd, "SG_SFMEM_UNDER_HELGRIND=1 valgrind --tool=helgrind -q "
             "--error-exitcode=3 '%s' > /dev/null", self);
    int st = system(cmd);
    if (st == -1 || !WIFEXITED(st))
        return -1;
    if (WEXITSTATUS(st) == 3)
        return 1;
    return WEXITSTATUS(st) == 0 ? 0 : -1;
#endif
}

int main(void)
{
    /* a chirp with some noise, so every codec has work */
    uint32_t rng = 12345;
    for (size_t i = 0; i < sizeof pcm / sizeof *pcm; i++) {
        double t = (double)i / 16000;
        rng = rng * 1664525u + 1013904223u;
        pcm[i] = (int16_t)(9000 * sin(2 * 3.14159265358979 * (200 + 1500 * t) * t) +
                           (int)(rng >> 24) - 128);
    }
    for (size_t k = 0; k < NCLIPS; k++) {
        clips[k].file = encode(clips[k].format, &clips[k].len);
        CHECK_MSG(clips[k].file != NULL, "libsndfile cannot write %s", clips[k].name);
        sg_audio a;
        sg_error err = {0};
        sg_status st = clips[k].file ? sg_audio_decode(clips[k].file, clips[k].len, SG_AUDIO_AUTO,
                                                        0, 30, &a, &err)
                                     : SG_EINVAL;
        CHECK_MSG(st == SG_OK, "%s: %s", clips[k].name, err.msg);
        if (st != SG_OK)
            return check_report("test_sfmem");
        clips[k].want = a.samples; /* owned from here */
        clips[k].n = a.n;
    }
    flac_want = encode(SF_FORMAT_FLAC | SF_FORMAT_PCM_16, &flac_want_len);
    CHECK(flac_want != NULL && flac_want_len == clips[0].len &&
          memcmp(flac_want, clips[0].file, flac_want_len) == 0); /* encoding is deterministic */

    pthread_t th[THREADS];
    worker_result res[THREADS];
    memset(res, 0, sizeof res);
    for (int t = 0; t < THREADS; t++) {
        res[t].index = t;
        CHECK(pthread_create(&th[t], NULL, worker, &res[t]) == 0);
    }
    for (int t = 0; t < THREADS; t++) {
        pthread_join(th[t], NULL);
        CHECK_EQ_INT(res[t].decodes, ROUNDS * (int)NCLIPS);
        CHECK_MSG(res[t].mismatches == 0, "thread %d: %d decodes differ from one thread's (%s)", t,
                  res[t].mismatches, res[t].first_error);
        CHECK_EQ_INT(res[t].encodes, ROUNDS);
        CHECK_MSG(res[t].encode_mismatches == 0, "thread %d: %d FLAC encodes differ", t,
                  res[t].encode_mismatches);
    }
    for (size_t k = 0; k < NCLIPS; k++) {
        free(clips[k].file);
        free(clips[k].want);
    }
    free(flac_want);
    if (!getenv("SG_SFMEM_UNDER_HELGRIND")) {
        int v = helgrind_verdict();
        if (v < 0)
            fprintf(stderr, "test_sfmem: helgrind not run (no valgrind, or a sanitizer build)\n");
        else
            CHECK_MSG(v == 0, "helgrind reports races between threads using libsndfile (run "
                      "valgrind --tool=helgrind build/tests/test_sfmem)");
    }
    return check_report("test_sfmem");
}
