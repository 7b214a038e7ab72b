/* Tests of speech synthesis (agent/tts.h, agent/tts_flite.h) with the real flite voices: the
 * speech round-trips through the project's own Silero VAD (../shared/models) as speech of a
 * plausible length, Ogg Opus decodes back (libsndfile) to the same length, the rate works,
 * concurrent synthesis matches sequential, and bad input gets a clear error or a bounded result. */
#include <pthread.h>
#include <stdbool.h>
#include <string.h>

#include "agent/tts.h"
#include "agent/tts_flite.h"
#include "agent/vad_silero.h"
#include "base/base64.h"
#include "check.h"
#include "media/audio.h"

#define VAD_MODEL "../shared/models/silero-vad-v6.2.0-ggml.bin"

static sg_vad_silero *vad;

/* Decodes a file the synthesiser made (to 16 kHz float, the project's decoder and resampler). */
static bool decode(const sg_tts_audio *a, sg_audio *out)
{
    sg_error err = {0};
    sg_status st = sg_audio_decode(a->data, a->len, SG_AUDIO_AUTO, 0, 0, out, &err);
    CHECK_MSG(st == SG_OK, "decode %s: %s", sg_tts_format_name(a->format), err.msg);
    return st == SG_OK;
}

/* Seconds of the 16 kHz audio that Silero calls speech. */
static double speech_seconds(const sg_audio *a)
{
    sg_vad_backend *be = sg_vad_silero_backend(vad);
    sg_speech_segment *segs = NULL;
    size_t n = 0;
    sg_error err = {0};
    CHECK(be->segments(be->self, a->samples, a->n, &segs, &n, &err) == SG_OK);
    double s = 0;
    for (size_t i = 0; i < n; i++)
        s += segs[i].end_s - segs[i].start_s;
    free(segs);
    return s;
}

/* Synthesised speech is speech to Silero, covering most of it, at 2-6 words per second. */
static void test_round_trip(const sg_tts_backend *tts, const char *text, int words)
{
    sg_tts_audio a;
    sg_error err = {0};
    for (int f = 0; f < 2; f++) {
        sg_tts_format fmt = f ? SG_TTS_OGG : SG_TTS_WAV;
        CHECK_MSG(sg_tts_speak(tts, text, 0, 0, fmt, &a, &err) == SG_OK, "%s", err.msg);
        /* the separators between sentences are not counted */
        CHECK(!a.truncated && a.chars <= strlen(text) && a.chars + 4 >= strlen(text));
        CHECK_EQ_INT(a.sample_rate, tts->sample_rate);
        double wps = words / a.duration_s;
        CHECK_MSG(wps >= 2 && wps <= 6, "%s: %d words in %.2f s", tts->name, words, a.duration_s);
        sg_audio pcm;
        if (decode(&a, &pcm)) {
            /* the decoder gives 16 kHz whatever the voice's rate; Opus keeps the length to within
             * its frame padding */
            double secs = (double)pcm.n / SG_AUDIO_RATE;
            CHECK_MSG(fabs(secs - a.duration_s) < 0.03, "%s %s: %.3f s decoded, %.3f s made",
                      tts->name, sg_tts_format_name(fmt), secs, a.duration_s);
            double sp = speech_seconds(&pcm);
            CHECK_MSG(sp >= 0.6 * secs, "%s %s: Silero hears %.2f s of speech in %.2f s",
                      tts->name, sg_tts_format_name(fmt), sp, secs);
            sg_audio_free(&pcm);
        }
        if (fmt == SG_TTS_OGG) /* Opus at 24 kbit/s: a fraction of the WAV */
            CHECK_MSG(a.len < a.samples * 2 / 4, "ogg of %zu bytes for %zu samples", a.len,
                      a.samples);
        else
            CHECK_EQ_INT(a.len, 44 + 2 * a.samples);
        sg_tts_audio_free(&a);
    }
}

static void test_rate(const sg_tts_backend *tts)
{
    sg_tts_audio slow, fast;
    sg_error err = {0};
    const char *t = "Turn left at the next corner and walk two blocks.";
    CHECK(sg_tts_speak(tts, t, 0, 1.0, SG_TTS_WAV, &slow, &err) == SG_OK);
    CHECK(sg_tts_speak(tts, t, 0, 2.0, SG_TTS_WAV, &fast, &err) == SG_OK);
    double ratio = fast.duration_s / slow.duration_s;
    CHECK_MSG(ratio > 0.4 && ratio < 0.65, "rate 2 gives %.2f of the duration", ratio);
    sg_tts_audio_free(&slow);
    sg_tts_audio_free(&fast);
    CHECK(sg_tts_speak(tts, t, 0, 2.5, SG_TTS_WAV, &fast, &err) == SG_EINVAL);
    CHECK(strstr(err.msg, "rate") != NULL);
    double r = 0;
    CHECK(sg_tts_rate_parse("1.5", &r, &err) == SG_OK && r == 1.5);
    CHECK(sg_tts_rate_parse("0.4", &r, &err) == SG_EINVAL);
    CHECK(sg_tts_rate_parse("fast", &r, &err) == SG_EINVAL);
    CHECK(sg_tts_rate_parse("", &r, &err) == SG_EINVAL);
}

/* ---- threads --------------------------------------------------------------------------------- */

static const char *const lines[] = {
    "Concurrent synthesis of Doctor Smith's three point five apples.",
    "The bus to the station leaves in ten minutes.",
    "There is a red door on your left.",
    "Your next meeting starts at half past two.",
};
#define NLINES 4

typedef struct job {
    const sg_tts_backend *tts;
    int first;
    int16_t *pcm[NLINES];
    size_t n[NLINES];
    sg_status st;
} job;

static void *synth_all(void *arg)
{
    job *j = arg;
    sg_error err;
    for (int k = 0; k < NLINES; k++) {
        int i = (j->first + k) % NLINES;
        sg_status st = j->tts->synthesize(j->tts->self, lines[i], 0, &j->pcm[i], &j->n[i], &err);
        if (st != SG_OK)
            j->st = st;
    }
    return NULL;
}

/* Four threads on one voice give what one thread gives: the same samples for a deterministic
 * voice (the diphone voices kal, kal16), the same lengths for the others (slt, rms, awb draw
 * excitation noise from rand(), so their samples differ from run to run even on one thread). */
static void test_threads(const sg_tts_backend *tts, bool identical)
{
    job seq = {.tts = tts};
    synth_all(&seq);
    CHECK(seq.st == SG_OK);
    job par[4];
    pthread_t th[4];
    for (int t = 0; t < 4; t++) {
        par[t] = (job){.tts = tts, .first = t};
        CHECK(pthread_create(&th[t], NULL, synth_all, &par[t]) == 0);
    }
    for (int t = 0; t < 4; t++)
        pthread_join(th[t], NULL);
    for (int t = 0; t < 4; t++) {
        CHECK(par[t].st == SG_OK);
        for (int i = 0; i < NLINES; i++) {
            CHECK_MSG(par[t].n[i] == seq.n[i], "%s thread %d line %d: %zu vs %zu samples",
                      tts->name, t, i, par[t].n[i], seq.n[i]);
            if (identical && par[t].n[i] == seq.n[i])
                CHECK_MSG(memcmp(par[t].pcm[i], seq.pcm[i], seq.n[i] * 2) == 0,
                          "%s thread %d line %d: samples differ", tts->name, t, i);
            free(par[t].pcm[i]);
        }
    }
    for (int i = 0; i < NLINES; i++)
        free(seq.pcm[i]);
}

/* ---- bad input ------------------------------------------------------------------------------- */

static void test_bad_input(const sg_tts_backend *tts)
{
    sg_tts_audio a;
    sg_error err = {0};
    static const char *const nothing[] = {"", "   \n\t ", "... !! ?", "\xe6\x97\xa5\xe6\x9c\xac",
                                          "\x01\x02\x7f"};
    for (size_t i = 0; i < sizeof nothing / sizeof *nothing; i++) {
        err.msg[0] = 0;
        CHECK_MSG(sg_tts_speak(tts, nothing[i], 0, 0, SG_TTS_OGG, &a, &err) == SG_EINVAL,
                  "case %zu", i);
        CHECK(strstr(err.msg, "nothing to speak") != NULL && a.data == NULL);
    }
    /* accents and curly quotes are read as ASCII, not dropped */
    CHECK(sg_tts_speak(tts, "Caf\xc3\xa9 na\xc3\xafve \xe2\x80\x9cr\xc3\xa9sum\xc3\xa9\xe2\x80\x9d", 0,
                       0, SG_TTS_WAV, &a, &err) == SG_OK);
    CHECK(a.duration_s > 1.0);
    sg_tts_audio_free(&a);

    /* a 10,000-character answer: its first 2,000 characters are spoken, flagged truncated */
    char *big = malloc(10001);
    for (size_t i = 0; i < 10000; i++)
        big[i] = "The lights are on. "[i % 19];
    big[10000] = 0;
    CHECK(sg_tts_speak(tts, big, 0, 0, SG_TTS_OGG, &a, &err) == SG_OK);
    CHECK(a.truncated);
    CHECK(a.chars > 1800 && a.chars <= SG_TTS_MAX_CHARS);
    CHECK(a.duration_s > 60 && a.duration_s < SG_TTS_MAX_SECONDS);
    json_t *j = sg_tts_audio_json(&a);
    CHECK(j && json_is_true(json_object_get(j, "truncated")));
    json_decref(j);
    sg_tts_audio_free(&a);

    /* digits are read one by one: 1,200 of them stop at the seconds bound */
    memset(big, '7', 1200);
    big[1200] = 0;
    CHECK(sg_tts_speak(tts, big, 0, 0, SG_TTS_WAV, &a, &err) == SG_OK);
    CHECK(a.truncated);
    CHECK_MSG(a.duration_s < SG_TTS_MAX_SECONDS + 150, "%.0f s", a.duration_s);
    sg_tts_audio_free(&a);
    free(big);

    /* the streaming budget: sentences until it is spent, then SG_ETOOBIG */
    sg_tts_budget b;
    sg_tts_budget_init(&b, 40);
    CHECK(sg_tts_speak_sentence(tts, "Walk ahead ten meters.", 0, SG_TTS_OGG, &b, &a, &err) == SG_OK);
    CHECK(!a.truncated && b.chars_left == 40 - 22);
    sg_tts_audio_free(&a);
    CHECK(sg_tts_speak_sentence(tts, "Then turn right at the fountain.", 0, SG_TTS_OGG, &b, &a,
                                &err) == SG_OK);
    CHECK(a.truncated && b.truncated && a.chars <= 18 && b.chars_left <= 1);
    sg_tts_audio_free(&a);
    CHECK(sg_tts_speak_sentence(tts, "And stop.", 0, SG_TTS_OGG, &b, &a, &err) == SG_ETOOBIG);
    CHECK(a.data == NULL && strstr(err.msg, "budget") != NULL);
}

static void test_json(const sg_tts_backend *tts)
{
    sg_tts_audio a;
    sg_error err = {0};
    CHECK(sg_tts_speak_sentence(tts, "Hello there.", 0, SG_TTS_OGG, NULL, &a, &err) == SG_OK);
    json_t *ev = sg_tts_event_json(3, "Hello there.", &a);
    CHECK(ev != NULL);
    CHECK_EQ_INT(json_integer_value(json_object_get(ev, "sentence")), 3);
    CHECK(strcmp(json_string_value(json_object_get(ev, "text")), "Hello there.") == 0);
    CHECK(strcmp(json_string_value(json_object_get(ev, "format")), "ogg") == 0);
    CHECK_EQ_INT(json_integer_value(json_object_get(ev, "sample_rate")), 16000);
    CHECK(json_object_get(ev, "truncated") == NULL);
    const char *b64 = json_string_value(json_object_get(ev, "audio_base64"));
    uint8_t *raw = NULL;
    size_t rlen = 0;
    CHECK(b64 && sg_base64_decode(b64, strlen(b64), &raw, &rlen, &err) == SG_OK);
    CHECK(rlen == a.len && raw && memcmp(raw, a.data, rlen) == 0 && memcmp(raw, "OggS", 4) == 0);
    free(raw);
    json_decref(ev);
    sg_tts_audio_free(&a);
    sg_tts_format f;
    CHECK(sg_tts_format_parse("wav", &f, &err) == SG_OK && f == SG_TTS_WAV);
    CHECK(sg_tts_format_parse(NULL, &f, &err) == SG_OK && f == SG_TTS_OGG);
    CHECK(sg_tts_format_parse("mp3", &f, &err) == SG_EINVAL);
}

int main(void)
{
    sg_error err = {0};
    vad = sg_vad_silero_open(VAD_MODEL, NULL, &err);
    CHECK_MSG(vad != NULL, "cannot load %s: %s", VAD_MODEL, err.msg);
    if (!vad)
        return check_report("test_tts");

    CHECK(sg_tts_flite_open("nosuch", 1.0, &err) == NULL && err.code == SG_EINVAL);
    CHECK(strstr(err.msg, "slt kal kal16 awb rms") != NULL);
    CHECK(sg_tts_flite_open("slt", 3.0, &err) == NULL && err.code == SG_EINVAL);

    sg_tts_flite *slt = sg_tts_flite_open(NULL, 0, &err);
    sg_tts_flite *awb = sg_tts_flite_open("cmu_us_awb", 1.0, &err);
    sg_tts_flite *kal = sg_tts_flite_open("kal", 1.0, &err);
    CHECK(slt && awb && kal);
    if (!slt || !awb || !kal)
        return check_report("test_tts");
    const sg_tts_backend *ts = sg_tts_flite_backend(slt);
    CHECK(strcmp(ts->name, "flite-2.2 cmu_us_slt") == 0 && ts->sample_rate == 16000);
    CHECK_EQ_INT(sg_tts_flite_backend(kal)->sample_rate, 8000);

    test_round_trip(ts, "The quick brown fox jumps over the lazy dog.", 9);
    test_round_trip(ts, "Hello. There is a person in front of you, about two meters away. "
                        "They are waving.", 16);
    test_round_trip(sg_tts_flite_backend(awb), "The bus to the station leaves soon.", 7);
    test_round_trip(sg_tts_flite_backend(kal), "The bus to the station leaves soon.", 7);
    test_rate(ts);
    test_threads(sg_tts_flite_backend(kal), true);
    test_threads(sg_tts_flite_backend(awb), false);
    test_threads(ts, false);
    test_bad_input(ts);
    test_json(ts);

    sg_tts_flite_free(slt);
    sg_tts_flite_free(awb);
    sg_tts_flite_free(kal);
    sg_vad_silero_free(vad);
    return check_report("test_tts");
}
