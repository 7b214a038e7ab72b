/* flite behind sg_tts_backend (agent/tts_flite.h).
 *
 * Thread safety (flite 2.2's sources, src/synth/flite.c and cst_synth.c, checked with helgrind):
 * synthesis builds everything it writes in a new utterance - relations, items, the wave - and
 * reads the voice (lexicon, CART trees, unit or model data, its feature list) without writing it:
 * utt_init() only links the voice's features behind the utterance's (feat_link_into, a pointer).
 * So one voice serves any number of threads at once, provided nothing changes the voice's own
 * features after it is registered; the speaking rate is therefore set as "duration_stretch" on
 * each utterance's features, which are searched before the voice's. What flite keeps globally is
 * written only while a voice registers (the voice list, the US English lexicon's one-time set-up),
 * so registration runs once per voice under a mutex. One caveat that is no race: slt, rms and awb
 * draw excitation noise from libc's rand(), which glibc locks; their samples differ from run to run
 * (durations do not), while the diphone voices kal and kal16 give identical samples every time -
 * tests/test_tts.c checks those across four threads against one.
 *
 * flite's voices speak English from ASCII text, so text is prepared first: NFKD-decomposed (é ->
 * e + accent, ligatures split), accents dropped, curly quotes and dashes made ASCII, anything else
 * outside ASCII a space. Text with no ASCII letter or digit left is refused (SG_EINVAL) rather
 * than spoken as silence. */
#include "agent/tts_flite.h"

#include <math.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <unictype.h>
#include <uninorm.h>
#include <unistr.h>

#include <flite/flite.h>
#include <flite/flite_version.h>

/* Each voice library registers itself with one function (not in flite's headers). */
cst_voice *register_cmu_us_slt(const char *voxdir);
cst_voice *register_cmu_us_kal(const char *voxdir);
cst_voice *register_cmu_us_kal16(const char *voxdir);
cst_voice *register_cmu_us_awb(const char *voxdir);
cst_voice *register_cmu_us_rms(const char *voxdir);

static struct {
    const char *name;
    cst_voice *(*reg)(const char *voxdir);
    cst_voice *voice; /* registered once, kept for the process's life (flite has no refcount) */
} voices[] = {
    {"slt", register_cmu_us_slt, NULL}, {"kal", register_cmu_us_kal, NULL},
    {"kal16", register_cmu_us_kal16, NULL}, {"awb", register_cmu_us_awb, NULL},
    {"rms", register_cmu_us_rms, NULL},
};
static pthread_mutex_t voices_lock = PTHREAD_MUTEX_INITIALIZER;
static bool flite_ready;

struct sg_tts_flite {
    sg_tts_backend backend;
    cst_voice *voice;
    char name[64];
    char voice_name[16];
};

sg_status sg_tts_rate_parse(const char *s, double *out, sg_error *err)
{
    char *end;
    double r = s && *s ? strtod(s, &end) : NAN;
    if (!s || !*s || *end || !(r >= SG_TTS_RATE_MIN && r <= SG_TTS_RATE_MAX))
        return sg_error_set(err, SG_EINVAL, "speaking rate '%.32s' must be a number from %.1f to "
                            "%.1f (1 = the voice's own)", s ? s : "", SG_TTS_RATE_MIN,
                            SG_TTS_RATE_MAX);
    *out = r;
    return SG_OK;
}

/* ---- text for flite -------------------------------------------------------------------------- */

static char ascii_for(ucs4_t c)
{
    switch (c) {
    case 0x2018: case 0x2019: case 0x201A: case 0x201B: case 0x2032: return '\'';
    case 0x201C: case 0x201D: case 0x201E: case 0x00AB: case 0x00BB: case 0x2033: return '"';
    case 0x2010: case 0x2011: case 0x2012: case 0x2013: case 0x2014: case 0x2015:
    case 0x2212: return '-';
    default: return ' ';
    }
}

/* The ASCII text flite reads (malloc'ed), or NULL with err set. */
static char *prepare(const char *text, sg_error *err)
{
    size_t len = strlen(text), nlen = 0;
    uint8_t *nfkd = u8_normalize(UNINORM_NFKD, (const uint8_t *)text, len, NULL, &nlen);
    if (!nfkd) /* invalid UTF-8 (EILSEQ) or no memory: read it byte by byte below */
        nlen = len;
    const uint8_t *p = nfkd ? nfkd : (const uint8_t *)text;
    char *out = malloc(nlen + 1);
    if (!out) {
        free(nfkd);
        sg_error_set(err, SG_ENOMEM, "tts: out of memory");
        return NULL;
    }
    size_t o = 0;
    bool alnum = false;
    for (size_t i = 0; i < nlen;) {
        ucs4_t c;
        int l = u8_mbtouc(&c, p + i, nlen - i);
        i += l > 0 ? (size_t)l : 1;
        if (c < 0x80) {
            char ch = c < 0x20 || c == 0x7F ? ' ' : (char)c;
            alnum = alnum || (ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'z') ||
                    (ch >= 'A' && ch <= 'Z');
            out[o++] = ch;
        } else if (!uc_is_general_category(c, UC_CATEGORY_M)) { /* accents are dropped */
            out[o++] = ascii_for(c);
        }
    }
    out[o] = 0;
    free(nfkd);
    if (!alnum) {
        free(out);
        sg_error_set(err, SG_EINVAL, "tts: nothing to speak: flite's English voices read letters "
                     "a-z and digits, and this text has none");
        return NULL;
    }
    return out;
}

/* ---- synthesis ------------------------------------------------------------------------------- */

static sg_status flite_synthesize(void *self, const char *text, double rate, int16_t **pcm,
                                  size_t *n, sg_error *err)
{
    sg_tts_flite *f = self;
    *pcm = NULL;
    *n = 0;
    if (rate == 0)
        rate = f->backend.rate;
    if (!(rate >= SG_TTS_RATE_MIN && rate <= SG_TTS_RATE_MAX))
        return sg_error_set(err, SG_EINVAL, "tts: speaking rate %g is outside %.1f..%.1f", rate,
                            SG_TTS_RATE_MIN, SG_TTS_RATE_MAX);
    char *ascii = prepare(text, err);
    if (!ascii)
        return err ? err->code : SG_EINVAL;
    cst_utterance *u = new_utterance();
    utt_set_input_text(u, ascii);
    /* per utterance, never on the shared voice (see the top of this file) */
    feat_set_float(u->features, "duration_stretch", (float)(1.0 / rate));
    u = flite_do_synth(u, f->voice, utt_synth); /* deletes u when it fails */
    free(ascii);
    cst_wave *w = u ? utt_wave(u) : NULL;
    if (!w || w->num_samples <= 0 || w->num_channels != 1 ||
        w->sample_rate != f->backend.sample_rate) {
        if (u)
            delete_utterance(u);
        return sg_error_set(err, SG_EINTERNAL, "tts: flite produced no audio");
    }
    size_t count = (size_t)w->num_samples;
    int16_t *out = malloc(count * sizeof *out);
    if (!out) {
        delete_utterance(u);
        return sg_error_set(err, SG_ENOMEM, "tts: out of memory");
    }
    memcpy(out, w->samples, count * sizeof *out);
    delete_utterance(u);
    *pcm = out;
    *n = count;
    return SG_OK;
}

/* ---- voices ---------------------------------------------------------------------------------- */

static cst_voice *voice_get(const char *name, int *sample_rate)
{
    cst_voice *v = NULL;
    pthread_mutex_lock(&voices_lock);
    if (!flite_ready) {
        flite_init();
        flite_ready = true;
    }
    for (size_t i = 0; i < sizeof voices / sizeof *voices; i++) {
        if (strcmp(voices[i].name, name) != 0)
            continue;
        if (!voices[i].voice)
            voices[i].voice = voices[i].reg(NULL);
        v = voices[i].voice;
        break;
    }
    if (v) {
        /* the rate a voice synthesises at: a short utterance tells (the voices differ: kal is
         * 8 kHz, the others 16 kHz) */
        cst_wave *w = flite_text_to_wave("a", v);
        *sample_rate = w ? w->sample_rate : 0;
        delete_wave(w);
    }
    pthread_mutex_unlock(&voices_lock);
    return v;
}

sg_tts_flite *sg_tts_flite_open(const char *voice, double rate, sg_error *err)
{
    if (!voice || !*voice)
        voice = SG_TTS_FLITE_DEFAULT_VOICE;
    if (strncmp(voice, "cmu_us_", 7) == 0)
        voice += 7;
    if (rate == 0)
        rate = 1.0;
    if (!(rate >= SG_TTS_RATE_MIN && rate <= SG_TTS_RATE_MAX)) {
        sg_error_set(err, SG_EINVAL, "tts: speaking rate %g is outside %.1f..%.1f", rate,
                     SG_TTS_RATE_MIN, SG_TTS_RATE_MAX);
        return NULL;
    }
    bool known = false;
    for (size_t i = 0; i < sizeof voices / sizeof *voices; i++)
        known = known || strcmp(voices[i].name, voice) == 0;
    if (!known) {
        sg_error_set(err, SG_EINVAL, "tts: unknown voice '%.32s' (flite voices: %s)", voice,
                     SG_TTS_FLITE_VOICES);
        return NULL;
    }
    sg_tts_flite *f = calloc(1, sizeof *f);
    if (!f) {
        sg_error_set(err, SG_ENOMEM, "tts: out of memory");
        return NULL;
    }
    int sample_rate = 0;
    f->voice = voice_get(voice, &sample_rate);
    if (!f->voice || sample_rate <= 0) {
        free(f);
        sg_error_set(err, SG_EINTERNAL, "tts: flite could not register the voice %s", voice);
        return NULL;
    }
    snprintf(f->voice_name, sizeof f->voice_name, "%s", voice);
    snprintf(f->name, sizeof f->name, "flite-%s cmu_us_%s", FLITE_PROJECT_VERSION, voice);
    f->backend = (sg_tts_backend){.name = f->name, .voice = f->voice_name,
                                  .sample_rate = sample_rate, .rate = rate,
                                  .synthesize = flite_synthesize, .self = f};
    return f;
}

sg_tts_backend *sg_tts_flite_backend(sg_tts_flite *f) { return f ? &f->backend : NULL; }

void sg_tts_flite_free(sg_tts_flite *f)
{
    free(f); /* the voice stays registered for the next open */
}
