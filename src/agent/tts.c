/* Speech synthesis around a backend (agent/tts.h): the per-request bounds, a whole text through
 * the sentence feeder, the encoding and the JSON. Ogg Opus is written by libsgclient's encoder
 * (client/audio_codec.c, compiled into sgcore as well), the one the client uses for its uploads,
 * so the server and the client share one libsndfile writer and its fixes. */
#include "agent/tts.h"
#include "media/opus_ogg.h"

#include <stdlib.h>
#include <string.h>

#include "agent/sentences.h"
#include "base/base64.h"
#include "media/sfmem.h"
#include "sgclient.h"

#define TTS_OPUS_BITRATE 24000 /* speech stays clear; ~3 KB per second */

sg_status sg_tts_format_parse(const char *name, sg_tts_format *out, sg_error *err)
{
    if (!name || !*name || strcmp(name, "ogg") == 0 || strcmp(name, "opus") == 0) {
        *out = SG_TTS_OGG;
        return SG_OK;
    }
    if (strcmp(name, "wav") == 0) {
        *out = SG_TTS_WAV;
        return SG_OK;
    }
    return sg_error_set(err, SG_EINVAL, "unknown audio format '%.32s' (use ogg or wav)", name);
}

static const struct {
    const char *name, *content_type;
} formats[] = {
    [SG_TTS_OGG] = {"ogg", "audio/ogg"},   [SG_TTS_WAV] = {"wav", "audio/wav"},
    [SG_TTS_FLAC] = {"flac", "audio/flac"}, [SG_TTS_MP3] = {"mp3", "audio/mpeg"},
    [SG_TTS_PCM] = {"pcm", "audio/pcm"},
};

sg_status sg_tts_format_parse_any(const char *name, sg_tts_format *out, sg_error *err)
{
    for (size_t i = 0; name && i < sizeof formats / sizeof *formats; i++)
        if (strcmp(name, formats[i].name) == 0) {
            *out = (sg_tts_format)i;
            return SG_OK;
        }
    if (!name || !*name || strcmp(name, "opus") == 0) {
        *out = SG_TTS_OGG;
        return SG_OK;
    }
    return sg_error_set(err, SG_EINVAL,
                        "unknown audio format '%.32s' (use opus, ogg, wav, flac, mp3 or pcm)", name);
}

const char *sg_tts_format_name(sg_tts_format f)
{
    return (unsigned)f < sizeof formats / sizeof *formats ? formats[f].name : "ogg";
}

const char *sg_tts_format_content_type(sg_tts_format f)
{
    return (unsigned)f < sizeof formats / sizeof *formats ? formats[f].content_type : "audio/ogg";
}

/* MPEG layer III through libsndfile's writer (LAME inside libsndfile 1.1+). */
static sg_status encode_mp3(const int16_t *pcm, size_t n, int sample_rate, uint8_t **out,
                            size_t *out_len, sg_error *err)
{
    sg_sfmem m = sg_sfmem_writer();
    SF_INFO info = {.samplerate = sample_rate, .channels = 1,
                    .format = SF_FORMAT_MPEG | SF_FORMAT_MPEG_LAYER_III};
    SNDFILE *sf = sg_sfmem_open(&m, SFM_WRITE, &info);
    if (!sf) {
        free(m.buf);
        return sg_error_set(err, SG_EUNSUPPORTED, "tts: this libsndfile cannot write MP3");
    }
    sf_count_t wrote = sf_writef_short(sf, pcm, (sf_count_t)n);
    int rc = sg_sfmem_close(sf);
    if (wrote != (sf_count_t)n || rc != 0 || m.oom || m.n <= 0) {
        free(m.buf);
        return sg_error_set(err, m.oom ? SG_ENOMEM : SG_EINTERNAL, "tts: MP3 encoding failed");
    }
    *out = m.buf;
    *out_len = (size_t)m.n;
    return SG_OK;
}

void sg_tts_budget_init(sg_tts_budget *b, size_t max_chars)
{
    if (max_chars == 0 || max_chars > SG_TTS_MAX_CHARS)
        max_chars = SG_TTS_MAX_CHARS;
    b->chars_left = max_chars;
    b->seconds_left = SG_TTS_MAX_SECONDS;
    b->truncated = false;
}

void sg_tts_audio_free(sg_tts_audio *a)
{
    if (!a)
        return;
    free(a->data);
    memset(a, 0, sizeof *a);
}

sg_status sg_tts_encode(const int16_t *pcm, size_t n, int sample_rate, sg_tts_format fmt,
                        uint8_t **out, size_t *out_len, sg_error *err)
{
    if (fmt == SG_TTS_OGG) /* low complexity: the first sentence reaches the wearer sooner */
        return sg_opus_ogg_encode(pcm, n, sample_rate, TTS_OPUS_BITRATE,
                                  SG_OPUS_SPEECH_COMPLEXITY, out, out_len, err);
    if (fmt == SG_TTS_MP3)
        return encode_mp3(pcm, n, sample_rate, out, out_len, err);
    if (fmt == SG_TTS_PCM) {
        *out = malloc(2 * n + 1);
        if (!*out)
            return sg_error_set(err, SG_ENOMEM, "out of memory");
        for (size_t i = 0; i < n; i++) { /* little-endian whatever the host */
            (*out)[2 * i] = (uint8_t)((uint16_t)pcm[i] & 0xFF);
            (*out)[2 * i + 1] = (uint8_t)((uint16_t)pcm[i] >> 8);
        }
        *out_len = 2 * n;
        return SG_OK;
    }
    char msg[SG_CLIENT_ERROR_SIZE] = "";
    sg_client_status st = sg_audio_encode(fmt == SG_TTS_FLAC ? SG_AUDIO_CODEC_FLAC : SG_AUDIO_CODEC_PCM,
                                          pcm, n, sample_rate,
                                          TTS_OPUS_BITRATE, out, out_len, msg);
    if (st == SG_CLIENT_OK)
        return SG_OK;
    return sg_error_set(err, st == SG_CLIENT_ENOMEM ? SG_ENOMEM
                             : st == SG_CLIENT_EINVAL ? SG_EINVAL : SG_EINTERNAL,
                        "tts: %s", msg);
}

/* The length of text cut to at most max bytes at a word boundary (at a character boundary when
 * the first word is longer). */
static size_t clip_words(const char *text, size_t len, size_t max)
{
    if (len <= max)
        return len;
    size_t cut = max;
    while (cut > 0 && text[cut] != ' ')
        cut--;
    if (cut == 0) {
        cut = max;
        while (cut > 0 && ((unsigned char)text[cut] & 0xC0) == 0x80)
            cut--;
    }
    while (cut > 0 && text[cut - 1] == ' ')
        cut--;
    return cut;
}

/* Synthesises text[0, len) into PCM, within budget (bookkeeping only). */
static sg_status synth_clipped(const sg_tts_backend *tts, const char *text, double rate,
                               sg_tts_budget *budget, int16_t **pcm, size_t *n, size_t *chars,
                               bool *truncated, sg_error *err)
{
    *pcm = NULL;
    *n = 0;
    *chars = 0;
    *truncated = false;
    size_t len = strlen(text);
    size_t room = SG_TTS_MAX_CHARS;
    if (budget) {
        if (budget->chars_left == 0 || budget->seconds_left <= 0) {
            budget->truncated = true;
            return sg_error_set(err, SG_ETOOBIG, "tts: this request's speech budget (%d characters, "
                                "%.0f s of audio) is spent", SG_TTS_MAX_CHARS, SG_TTS_MAX_SECONDS);
        }
        room = budget->chars_left;
    }
    size_t keep = clip_words(text, len, room);
    if (keep == 0)
        return sg_error_set(err, SG_EINVAL, "tts: nothing to speak");
    char *piece = strndup(text, keep);
    if (!piece)
        return sg_error_set(err, SG_ENOMEM, "tts: out of memory");
    sg_status st = tts->synthesize(tts->self, piece, rate, pcm, n, err);
    free(piece);
    if (st != SG_OK)
        return st;
    *chars = keep;
    *truncated = keep < len;
    if (budget) {
        budget->chars_left -= keep < budget->chars_left ? keep : budget->chars_left;
        budget->seconds_left -= (double)*n / tts->sample_rate;
        budget->truncated = budget->truncated || *truncated;
    }
    return SG_OK;
}

static sg_status finish_audio(const sg_tts_backend *tts, const int16_t *pcm, size_t n,
                              sg_tts_format fmt, size_t chars, bool truncated, sg_tts_audio *out,
                              sg_error *err)
{
    sg_status st = sg_tts_encode(pcm, n, tts->sample_rate, fmt, &out->data, &out->len, err);
    if (st != SG_OK)
        return st;
    out->format = fmt;
    out->sample_rate = tts->sample_rate;
    out->samples = n;
    out->duration_s = (double)n / tts->sample_rate;
    out->chars = chars;
    out->truncated = truncated;
    return SG_OK;
}

sg_status sg_tts_speak_sentence(const sg_tts_backend *tts, const char *sentence, double rate,
                                sg_tts_format fmt, sg_tts_budget *budget, sg_tts_audio *out,
                                sg_error *err)
{
    memset(out, 0, sizeof *out);
    if (!tts || !sentence)
        return sg_error_set(err, SG_EINVAL, "tts: no synthesiser or no text");
    int16_t *pcm;
    size_t n, chars;
    bool truncated;
    sg_status st = synth_clipped(tts, sentence, rate, budget, &pcm, &n, &chars, &truncated, err);
    if (st != SG_OK)
        return st;
    st = finish_audio(tts, pcm, n, fmt, chars, truncated, out, err);
    free(pcm);
    return st;
}

/* ---- streamed: sentence by sentence ----------------------------------------------------------- */

size_t sg_tts_lead_cut(const char *sentence)
{
    const size_t len = strlen(sentence);
    if (len < 32)
        return len; /* short enough: one part */
    /* a clause break (", ; :") with a few words before it and some sentence after it */
    for (size_t i = 12; i + 12 < len && i <= 2 * SG_TTS_LEAD_BYTES; i++)
        if ((sentence[i] == ',' || sentence[i] == ';' || sentence[i] == ':') &&
            sentence[i + 1] == ' ')
            return i + 1;
    /* else the last word break before SG_TTS_LEAD_BYTES, leaving a few words for the rest */
    for (size_t i = SG_TTS_LEAD_BYTES < len - 8 ? SG_TTS_LEAD_BYTES : len - 8; i > 12; i--)
        if (sentence[i] == ' ')
            return i;
    return len;
}

static bool speak_part(const sg_tts_backend *tts, int n, int part, const char *text,
                       sg_tts_format fmt, sg_tts_budget *budget, sg_tts_emit_fn emit, void *ud)
{
    sg_tts_audio a;
    sg_error err = {0};
    sg_status st = sg_tts_speak_sentence(tts, text, 0, fmt, budget, &a, &err);
    if (st == SG_ENOMEM)
        return false;
    if (st != SG_OK)
        return true; /* nothing to speak in it, or the budget is spent: no audio, go on */
    json_t *ev = sg_tts_event_json((size_t)n, text, &a);
    sg_tts_audio_free(&a);
    if (!ev)
        return false;
    if (part >= 0)
        json_object_set_new(ev, "part", json_integer(part));
    return emit(ud, ev);
}

bool sg_tts_speak_streamed(const sg_tts_backend *tts, int n, const char *sentence,
                           sg_tts_format fmt, sg_tts_budget *budget, sg_tts_emit_fn emit,
                           void *ud)
{
    const size_t len = strlen(sentence), cut = n == 0 ? sg_tts_lead_cut(sentence) : len;
    if (cut >= len)
        return speak_part(tts, n, -1, sentence, fmt, budget, emit, ud);
    char *lead = strndup(sentence, cut);
    if (!lead)
        return false;
    bool go_on = speak_part(tts, n, 0, lead, fmt, budget, emit, ud);
    free(lead);
    const char *rest = sentence + cut;
    while (*rest == ' ')
        rest++;
    return go_on && speak_part(tts, n, 1, rest, fmt, budget, emit, ud);
}

/* ---- a whole text ---------------------------------------------------------------------------- */

typedef struct speak_job {
    const sg_tts_backend *tts;
    double rate;
    sg_tts_budget budget;
    int16_t *pcm;
    size_t n, cap, chars, spoken;
    bool stopped;   /* the budget ran out: the rest of the text is not spoken */
    sg_error last;  /* why the last unspeakable sentence was skipped */
} speak_job;

static sg_status speak_one(void *user, const char *sentence, size_t len, sg_error *err)
{
    (void)len;
    speak_job *j = user;
    int16_t *pcm;
    size_t n, chars;
    bool truncated;
    sg_error e = {0};
    sg_status st = synth_clipped(j->tts, sentence, j->rate, &j->budget, &pcm, &n, &chars,
                                 &truncated, &e);
    if (st == SG_ETOOBIG) {
        j->stopped = true;
        return SG_ETOOBIG; /* stops the feeder */
    }
    if (st == SG_EINVAL) { /* e.g. a sentence in a script the voice cannot read: skip it */
        j->last = e;
        return SG_OK;
    }
    if (st != SG_OK) {
        if (err)
            *err = e;
        return st;
    }
    if (n > j->cap - j->n) {
        size_t cap = j->cap ? j->cap : 1 << 16;
        while (cap - j->n < n)
            cap *= 2;
        int16_t *grown = realloc(j->pcm, cap * sizeof *grown);
        if (!grown) {
            free(pcm);
            return sg_error_set(err, SG_ENOMEM, "tts: out of memory");
        }
        j->pcm = grown;
        j->cap = cap;
    }
    memcpy(j->pcm + j->n, pcm, n * sizeof *pcm);
    free(pcm);
    j->n += n;
    j->chars += chars;
    j->spoken++;
    return SG_OK;
}

sg_status sg_tts_speak(const sg_tts_backend *tts, const char *text, size_t max_chars, double rate,
                       sg_tts_format fmt, sg_tts_audio *out, sg_error *err)
{
    memset(out, 0, sizeof *out);
    if (!tts || !text)
        return sg_error_set(err, SG_EINVAL, "tts: no synthesiser or no text");
    speak_job j = {.tts = tts, .rate = rate};
    sg_tts_budget_init(&j.budget, max_chars);
    sg_sentences *feeder = sg_sentences_new(0);
    if (!feeder)
        return sg_error_set(err, SG_ENOMEM, "tts: out of memory");
    sg_status st = sg_sentences_feed(feeder, text, strlen(text), speak_one, &j, err);
    if (st == SG_OK)
        st = sg_sentences_finish(feeder, speak_one, &j, err);
    sg_sentences_free(feeder);
    if (st == SG_ETOOBIG && j.stopped)
        st = SG_OK;
    if (st == SG_OK && j.spoken == 0)
        st = j.last.code ? sg_error_set(err, SG_EINVAL, "%s", j.last.msg)
                         : sg_error_set(err, SG_EINVAL, "tts: nothing to speak (the text has no "
                                        "letters or digits)");
    if (st == SG_OK)
        st = finish_audio(tts, j.pcm, j.n, fmt, j.chars, j.budget.truncated, out, err);
    free(j.pcm);
    return st;
}

/* ---- JSON ------------------------------------------------------------------------------------ */

static json_t *audio_members(json_t *o, const sg_tts_audio *a)
{
    if (!o)
        return NULL;
    size_t b64_len;
    char *b64 = sg_base64_encode(a->data, a->len, &b64_len);
    if (!b64 ||
        json_object_set_new(o, "format", json_string(sg_tts_format_name(a->format))) ||
        json_object_set_new(o, "sample_rate", json_integer(a->sample_rate)) ||
        json_object_set_new(o, "duration_s",
                            json_real((double)(long long)(a->duration_s * 1000 + 0.5) / 1000)) ||
        json_object_set_new(o, "audio_base64", json_stringn_nocheck(b64, b64_len)) ||
        (a->truncated && json_object_set_new(o, "truncated", json_true()))) {
        free(b64);
        json_decref(o);
        return NULL;
    }
    free(b64);
    return o;
}

json_t *sg_tts_audio_json(const sg_tts_audio *a) { return audio_members(json_object(), a); }

json_t *sg_tts_event_json(size_t sentence, const char *text, const sg_tts_audio *a)
{
    json_t *o = json_object();
    if (!o)
        return NULL;
    json_t *t = json_string(text); /* NULL for invalid UTF-8: the feeder's sentences never are */
    if (json_object_set_new(o, "sentence", json_integer((json_int_t)sentence)) ||
        json_object_set_new(o, "text", t ? t : json_string(""))) {
        json_decref(o);
        return NULL;
    }
    return audio_members(o, a);
}
