/* Speech synthesis speed (agent/tts.h with flite): per voice, the median real-time factor of
 * synthesis (seconds of compute per second of audio) for a short and a long sentence, the time to
 * the first sentence's Ogg Opus file for a multi-sentence answer (sentence feeder + synthesis +
 * encoding: what a streaming answer waits before its first audio event), the Opus encoding alone,
 * and, in the same run, Debian's `flite` command-line binary on the same text when installed
 * (process start and voice set-up included, as a user of the CLI would pay).
 *
 *   build/bench/bench_tts [RUNS] [VOICE...]     (default 20 runs; slt kal kal16 awb rms)
 *
 * One JSON object per line. One thread; the machine's other load shows in the numbers. */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "agent/sentences.h"
#include "agent/tts.h"
#include "agent/tts_flite.h"
#include "base/clock.h"

static const char *const SHORT = "Turn left at the next corner.";
static const char *const LONG =
    "The bus to the central station leaves from the stop across the street in about ten minutes, "
    "so you have enough time to buy a ticket at the machine on your right before it arrives.";
static const char *const ANSWER =
    "There is a person about two meters ahead of you. They seem to be waving at you. Behind them "
    "is a red door with a sign that reads Exit. The street to your left is quiet.";

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n)
{
    qsort(v, (size_t)n, sizeof *v, cmp_double);
    return n % 2 ? v[n / 2] : (v[n / 2 - 1] + v[n / 2]) / 2;
}

/* Median ms of synthesis and the audio's seconds. */
static double synth_ms(const sg_tts_backend *tts, const char *text, int runs, double *audio_s)
{
    double *t = malloc((size_t)runs * sizeof *t);
    sg_error err = {0};
    *audio_s = 0;
    for (int i = 0; i < runs; i++) {
        int16_t *pcm;
        size_t n;
        double t0 = sg_now_ms();
        if (tts->synthesize(tts->self, text, 0, &pcm, &n, &err) != SG_OK) {
            fprintf(stderr, "bench_tts: %s\n", err.msg);
            exit(1);
        }
        t[i] = sg_now_ms() - t0;
        *audio_s = (double)n / tts->sample_rate;
        free(pcm);
    }
    double m = median(t, runs);
    free(t);
    return m;
}

typedef struct first_job {
    const sg_tts_backend *tts;
    bool done;
    double at_ms;
} first_job;

static sg_status first_sentence(void *user, const char *s, size_t len, sg_error *err)
{
    (void)len;
    first_job *j = user;
    if (j->done)
        return SG_OK;
    sg_tts_audio a;
    sg_status st = sg_tts_speak_sentence(j->tts, s, 0, SG_TTS_OGG, NULL, &a, err);
    sg_tts_audio_free(&a);
    j->done = true;
    j->at_ms = sg_now_ms();
    return st == SG_OK ? SG_ETOOBIG : st; /* stop: only the first one is timed */
}

/* Median ms from the answer's first byte to its first sentence's Ogg file, the answer fed in
 * pieces of 4 bytes (about a token each). */
static double first_audio_ms(const sg_tts_backend *tts, const char *answer, int runs)
{
    double *t = malloc((size_t)runs * sizeof *t);
    sg_sentences *s = sg_sentences_new(0);
    sg_error err;
    for (int i = 0; i < runs; i++) {
        first_job j = {.tts = tts};
        sg_sentences_reset(s);
        double t0 = sg_now_ms();
        size_t len = strlen(answer);
        for (size_t at = 0; at < len && !j.done; at += 4)
            sg_sentences_feed(s, answer + at, len - at < 4 ? len - at : 4, first_sentence, &j, &err);
        if (!j.done)
            sg_sentences_finish(s, first_sentence, &j, &err);
        t[i] = j.at_ms - t0;
    }
    sg_sentences_free(s);
    double m = median(t, runs);
    free(t);
    return m;
}

static double encode_ms(const sg_tts_backend *tts, const char *text, int runs)
{
    int16_t *pcm;
    size_t n;
    sg_error err;
    if (tts->synthesize(tts->self, text, 0, &pcm, &n, &err) != SG_OK)
        return -1;
    double *t = malloc((size_t)runs * sizeof *t);
    for (int i = 0; i < runs; i++) {
        uint8_t *out;
        size_t len;
        double t0 = sg_now_ms();
        sg_tts_encode(pcm, n, tts->sample_rate, SG_TTS_OGG, &out, &len, &err);
        t[i] = sg_now_ms() - t0;
        free(out);
    }
    free(pcm);
    double m = median(t, runs);
    free(t);
    return m;
}

/* Median ms of `flite -voice V -t TEXT -o FILE`, or -1 when flite is not installed. */
static double flite_cli_ms(const char *voice, const char *text, int runs)
{
    if (system("command -v flite >/dev/null 2>&1") != 0)
        return -1;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "flite -voice %s -t '%s' -o /tmp/bench_tts_%d.wav", voice, text,
             (int)getpid());
    double *t = malloc((size_t)runs * sizeof *t);
    for (int i = 0; i < runs; i++) {
        double t0 = sg_now_ms();
        if (system(cmd) != 0) {
            free(t);
            return -1;
        }
        t[i] = sg_now_ms() - t0;
    }
    snprintf(cmd, sizeof cmd, "/tmp/bench_tts_%d.wav", (int)getpid());
    remove(cmd);
    double m = median(t, runs);
    free(t);
    return m;
}

static double r3(double x) { return (double)(long long)(x * 1000 + 0.5) / 1000; }

int main(int argc, char **argv)
{
    int runs = argc > 1 ? atoi(argv[1]) : 20;
    if (runs < 1)
        runs = 20;
    static const char *const all[] = {"slt", "kal", "kal16", "awb", "rms"};
    const char *const *voices = argc > 2 ? (const char *const *)argv + 2 : all;
    int nvoices = argc > 2 ? argc - 2 : 5;
    for (int v = 0; v < nvoices; v++) {
        sg_error err = {0};
        double t0 = sg_now_ms();
        sg_tts_flite *f = sg_tts_flite_open(voices[v], 1.0, &err);
        double open_ms = sg_now_ms() - t0;
        if (!f) {
            fprintf(stderr, "bench_tts: %s\n", err.msg);
            return 1;
        }
        const sg_tts_backend *tts = sg_tts_flite_backend(f);
        double short_s, long_s;
        double short_ms = synth_ms(tts, SHORT, runs, &short_s);
        double long_ms = synth_ms(tts, LONG, runs, &long_s);
        double first_ms = first_audio_ms(tts, ANSWER, runs);
        double enc_ms = encode_ms(tts, LONG, runs);
        int cli_runs = runs < 5 ? runs : 5;
        double cli_short = flite_cli_ms(voices[v], SHORT, cli_runs);
        double cli_long = flite_cli_ms(voices[v], LONG, cli_runs);
        printf("{\"voice\":\"%s\",\"sample_rate\":%d,\"runs\":%d,\"open_ms\":%.3f,"
               "\"short\":{\"audio_s\":%.3f,\"synth_ms\":%.3f,\"rtf\":%.4f,\"x_real_time\":%.1f},"
               "\"long\":{\"audio_s\":%.3f,\"synth_ms\":%.3f,\"rtf\":%.4f,\"x_real_time\":%.1f},"
               "\"first_sentence_ogg_ms\":%.3f,\"opus_encode_long_ms\":%.3f,"
               "\"flite_cli_ms\":{\"short\":%.3f,\"long\":%.3f}}\n",
               tts->name, tts->sample_rate, runs, r3(open_ms), r3(short_s), r3(short_ms),
               short_ms / 1000 / short_s, short_s * 1000 / short_ms, r3(long_s), r3(long_ms),
               long_ms / 1000 / long_s, long_s * 1000 / long_ms, r3(first_ms), r3(enc_ms),
               r3(cli_short), r3(cli_long));
        fflush(stdout);
        sg_tts_flite_free(f);
    }
    return 0;
}
