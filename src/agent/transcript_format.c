/* Whisper transcripts in OpenAI's response formats (transcript_format.h says which and how). The
 * JSON ones are built with jansson; srt and vtt are written into a growing buffer. */
#include "agent/transcript_format.h"

#include <jansson.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "base/utf8.h"

/* ================================================================================================
 * Languages: openai/whisper's LANGUAGES (whisper/tokenizer.py), in its order
 * ============================================================================================= */

static const char *const LANGUAGES[][2] = {
    {"en", "english"}, {"zh", "chinese"}, {"de", "german"}, {"es", "spanish"},
    {"ru", "russian"}, {"ko", "korean"}, {"fr", "french"}, {"ja", "japanese"},
    {"pt", "portuguese"}, {"tr", "turkish"}, {"pl", "polish"}, {"ca", "catalan"},
    {"nl", "dutch"}, {"ar", "arabic"}, {"sv", "swedish"}, {"it", "italian"},
    {"id", "indonesian"}, {"hi", "hindi"}, {"fi", "finnish"}, {"vi", "vietnamese"},
    {"he", "hebrew"}, {"uk", "ukrainian"}, {"el", "greek"}, {"ms", "malay"},
    {"cs", "czech"}, {"ro", "romanian"}, {"da", "danish"}, {"hu", "hungarian"},
    {"ta", "tamil"}, {"no", "norwegian"}, {"th", "thai"}, {"ur", "urdu"},
    {"hr", "croatian"}, {"bg", "bulgarian"}, {"lt", "lithuanian"}, {"la", "latin"},
    {"mi", "maori"}, {"ml", "malayalam"}, {"cy", "welsh"}, {"sk", "slovak"},
    {"te", "telugu"}, {"fa", "persian"}, {"lv", "latvian"}, {"bn", "bengali"},
    {"sr", "serbian"}, {"az", "azerbaijani"}, {"sl", "slovenian"}, {"kn", "kannada"},
    {"et", "estonian"}, {"mk", "macedonian"}, {"br", "breton"}, {"eu", "basque"},
    {"is", "icelandic"}, {"hy", "armenian"}, {"ne", "nepali"}, {"mn", "mongolian"},
    {"bs", "bosnian"}, {"kk", "kazakh"}, {"sq", "albanian"}, {"sw", "swahili"},
    {"gl", "galician"}, {"mr", "marathi"}, {"pa", "punjabi"}, {"si", "sinhala"},
    {"km", "khmer"}, {"sn", "shona"}, {"yo", "yoruba"}, {"so", "somali"},
    {"af", "afrikaans"}, {"oc", "occitan"}, {"ka", "georgian"}, {"be", "belarusian"},
    {"tg", "tajik"}, {"sd", "sindhi"}, {"gu", "gujarati"}, {"am", "amharic"},
    {"yi", "yiddish"}, {"lo", "lao"}, {"uz", "uzbek"}, {"fo", "faroese"},
    {"ht", "haitian creole"}, {"ps", "pashto"}, {"tk", "turkmen"}, {"nn", "nynorsk"},
    {"mt", "maltese"}, {"sa", "sanskrit"}, {"lb", "luxembourgish"}, {"my", "myanmar"},
    {"bo", "tibetan"}, {"tl", "tagalog"}, {"mg", "malagasy"}, {"as", "assamese"},
    {"tt", "tatar"}, {"haw", "hawaiian"}, {"ln", "lingala"}, {"ha", "hausa"},
    {"ba", "bashkir"}, {"jw", "javanese"}, {"su", "sundanese"}, {"yue", "cantonese"},
};
#define N_LANGUAGES (sizeof LANGUAGES / sizeof LANGUAGES[0])

/* openai's TO_LANGUAGE_CODE aliases */
static const char *const ALIASES[][2] = {
    {"burmese", "my"}, {"valencian", "ca"}, {"flemish", "nl"}, {"haitian", "ht"},
    {"letzeburgesch", "lb"}, {"pushto", "ps"}, {"panjabi", "pa"}, {"moldavian", "ro"},
    {"moldovan", "ro"}, {"sinhalese", "si"}, {"castilian", "es"}, {"mandarin", "zh"},
};

const char *sg_whisper_language_name(const char *code)
{
    if (!code)
        return NULL;
    for (size_t i = 0; i < N_LANGUAGES; i++)
        if (strcmp(LANGUAGES[i][0], code) == 0)
            return LANGUAGES[i][1];
    return NULL;
}

const char *sg_whisper_language_lookup(const char *s)
{
    if (!s)
        return NULL;
    for (size_t i = 0; i < N_LANGUAGES; i++)
        if (strcasecmp(LANGUAGES[i][0], s) == 0 || strcasecmp(LANGUAGES[i][1], s) == 0)
            return LANGUAGES[i][0];
    for (size_t i = 0; i < sizeof ALIASES / sizeof ALIASES[0]; i++)
        if (strcasecmp(ALIASES[i][0], s) == 0)
            return ALIASES[i][1];
    return NULL;
}

/* ================================================================================================
 * Formats
 * ============================================================================================= */

static const char *const FORMAT_NAMES[] = {"json", "text", "srt", "vtt", "verbose_json"};

sg_status sg_transcript_format_parse(const char *name, sg_transcript_format *out, sg_error *err)
{
    for (int i = 0; i < (int)(sizeof FORMAT_NAMES / sizeof FORMAT_NAMES[0]); i++)
        if (name && strcmp(name, FORMAT_NAMES[i]) == 0) {
            *out = (sg_transcript_format)i;
            return SG_OK;
        }
    char q[80];
    return sg_error_set(err, SG_EINVAL, "response_format \"%s\" is not one of json, text, srt, "
                        "verbose_json, vtt", name ? sg_utf8_quote(q, 60, name, strlen(name), false)
                                                  : "");
}

const char *sg_transcript_format_name(sg_transcript_format f)
{
    return (unsigned)f < sizeof FORMAT_NAMES / sizeof FORMAT_NAMES[0] ? FORMAT_NAMES[f] : "?";
}

const char *sg_transcript_format_content_type(sg_transcript_format f)
{
    switch (f) {
    case SG_TRANSCRIPT_JSON:
    case SG_TRANSCRIPT_VERBOSE_JSON:
        return "application/json";
    case SG_TRANSCRIPT_VTT:
        return "text/vtt; charset=utf-8";
    default:
        return "text/plain; charset=utf-8";
    }
}

sg_status sg_transcript_granularity_parse(const char *name, unsigned *bit, sg_error *err)
{
    if (name && strcmp(name, "word") == 0)
        *bit = SG_TRANSCRIPT_GRAN_WORD;
    else if (name && strcmp(name, "segment") == 0)
        *bit = SG_TRANSCRIPT_GRAN_SEGMENT;
    else {
        char q[80];
        return sg_error_set(err, SG_EINVAL, "timestamp_granularities[] \"%s\" is not word or "
                            "segment", name ? sg_utf8_quote(q, 60, name, strlen(name), false) : "");
    }
    return SG_OK;
}

bool sg_transcript_timestamp(double seconds, bool always_include_hours, char decimal_marker,
                             char *buf, size_t cap)
{
    if (cap)
        buf[0] = 0;
    /* beyond ~31 years of audio is not a time this server makes; it also keeps the integer exact */
    if (!(seconds >= 0.0) || !(seconds < 1e9))
        return false;
    /* Python's round(): to nearest, ties to even (the default rounding mode) */
    long long ms = (long long)nearbyint(seconds * 1000.0);
    const long long hours = ms / 3600000;
    ms -= hours * 3600000;
    const long long minutes = ms / 60000;
    ms -= minutes * 60000;
    const long long secs = ms / 1000;
    ms -= secs * 1000;
    int n;
    if (always_include_hours || hours > 0)
        n = snprintf(buf, cap, "%02lld:%02lld:%02lld%c%03lld", hours, minutes, secs, decimal_marker, ms);
    else
        n = snprintf(buf, cap, "%02lld:%02lld%c%03lld", minutes, secs, decimal_marker, ms);
    return n > 0 && (size_t)n < cap;
}

/* ---- a growing text buffer ---- */

typedef struct sbuf {
    char *p;
    size_t len, cap;
    bool oom;
} sbuf;

static void sb_put(sbuf *b, const char *s, size_t n)
{
    if (b->oom)
        return;
    if (b->len + n + 1 > b->cap) {
        size_t cap = (b->len + n + 1) * 2 + 256;
        char *np = realloc(b->p, cap);
        if (!np) {
            b->oom = true;
            return;
        }
        b->p = np;
        b->cap = cap;
    }
    memcpy(b->p + b->len, s, n);
    b->len += n;
    b->p[b->len] = 0;
}

static void sb_str(sbuf *b, const char *s) { sb_put(b, s, strlen(s)); }

/* s[0..n) with invalid UTF-8 sequences as U+FFFD */
static void sb_utf8(sbuf *b, const char *s, size_t n)
{
    size_t i = 0;
    while (i < n) {
        size_t k = sg_utf8_seq_len((const unsigned char *)s + i, n - i);
        if (k == 0) {
            sb_put(b, "\xEF\xBF\xBD", 3);
            i++;
        } else {
            sb_put(b, s + i, k);
            i += k;
        }
    }
}

/* Python's str.strip() of ASCII white space (what Whisper's texts carry) */
static void strip_span(const char *s, const char **start, size_t *n)
{
    size_t len = s ? strlen(s) : 0;
    const char *p = s ? s : "";
    while (len && strchr(" \t\n\r\v\f", *p)) {
        p++;
        len--;
    }
    while (len && strchr(" \t\n\r\v\f", p[len - 1]))
        len--;
    *start = p;
    *n = len;
}

/* A cue's text: stripped, "-->" as "->", valid UTF-8 */
static void sb_cue_text(sbuf *b, const char *text)
{
    const char *p;
    size_t n;
    strip_span(text, &p, &n);
    size_t i = 0;
    while (i < n) {
        const char *arrow = NULL;
        for (size_t k = i; k + 3 <= n; k++)
            if (memcmp(p + k, "-->", 3) == 0) {
                arrow = p + k;
                break;
            }
        const size_t upto = arrow ? (size_t)(arrow - p) : n;
        sb_utf8(b, p + i, upto - i);
        if (!arrow)
            break;
        sb_str(b, "->");
        i = upto + 3;
    }
}

static sg_status write_subtitles(const sg_whisper_transcript *t, bool srt, sbuf *b, sg_error *err)
{
    if (!srt)
        sb_str(b, "WEBVTT\n\n");
    for (size_t i = 0; i < t->n_segments; i++) {
        const sg_whisper_segment *s = &t->segments[i];
        char a[32], e[32], num[32];
        if (!sg_transcript_timestamp(s->start, srt, srt ? ',' : '.', a, sizeof a) ||
            !sg_transcript_timestamp(s->end, srt, srt ? ',' : '.', e, sizeof e))
            return sg_error_set(err, SG_EINVAL, "segment %zu has a time out of range (%g..%g s)",
                                i, (double)s->start, (double)s->end);
        if (srt) {
            snprintf(num, sizeof num, "%zu\n", i + 1);
            sb_str(b, num);
        }
        sb_str(b, a);
        sb_str(b, " --> ");
        sb_str(b, e);
        sb_str(b, "\n");
        sb_cue_text(b, s->text);
        sb_str(b, "\n\n");
    }
    return SG_OK;
}

/* ---- JSON ---- */

/* a json string of s (NULL as ""), made valid UTF-8; NULL when out of memory */
static json_t *jstr(const char *s, const char *start, size_t n)
{
    if (!start) {
        start = s ? s : "";
        n = strlen(start);
    }
    if (sg_utf8_valid((const unsigned char *)start, n))
        return json_stringn(start, n);
    sbuf b = {0};
    sb_utf8(&b, start, n);
    json_t *j = b.oom ? NULL : json_stringn(b.p ? b.p : "", b.len);
    free(b.p);
    return j;
}

static json_t *jstripped(const char *s)
{
    const char *p;
    size_t n;
    strip_span(s, &p, &n);
    return jstr(NULL, p, n);
}

/* json_object_set_new that remembers a failure (a NULL value or out of memory) */
static void jset(json_t *o, const char *key, json_t *v, bool *ok)
{
    if (!v || json_object_set_new(o, key, v) != 0)
        *ok = false;
}

static json_t *segment_json(const sg_whisper_segment *s, bool *ok)
{
    json_t *o = json_object();
    if (!o) {
        *ok = false;
        return NULL;
    }
    jset(o, "id", json_integer(s->id), ok);
    jset(o, "seek", json_integer(s->seek), ok);
    jset(o, "start", json_real(s->start), ok);
    jset(o, "end", json_real(s->end), ok);
    jset(o, "text", jstr(s->text, NULL, 0), ok);
    json_t *tok = json_array();
    for (size_t i = 0; tok && i < s->n_tokens; i++)
        if (json_array_append_new(tok, json_integer(s->tokens[i])) != 0)
            *ok = false;
    jset(o, "tokens", tok, ok);
    jset(o, "temperature", json_real(s->temperature), ok);
    jset(o, "avg_logprob", json_real(s->avg_logprob), ok);
    jset(o, "compression_ratio", json_real(s->compression_ratio), ok);
    jset(o, "no_speech_prob", json_real(s->no_speech_prob), ok);
    return o;
}

/* jansson refuses NaN and infinities; a model's non-finite number is written as 0 */
static double finite_or_zero(double v) { return isfinite(v) ? v : 0.0; }

static json_t *verbose_json(const sg_whisper_transcript *t, const sg_transcript_format_opts *o,
                            const char *language, bool *ok)
{
    json_t *root = json_object();
    if (!root) {
        *ok = false;
        return NULL;
    }
    jset(root, "task", json_string(o->translate ? "translate" : "transcribe"), ok);
    jset(root, "language", json_string(language), ok);
    jset(root, "duration", json_real(finite_or_zero(t->duration)), ok);
    jset(root, "text", jstripped(t->text), ok);
    const unsigned g = o->granularities ? o->granularities : SG_TRANSCRIPT_GRAN_SEGMENT;
    if (g & SG_TRANSCRIPT_GRAN_SEGMENT) {
        json_t *segs = json_array();
        for (size_t i = 0; segs && i < t->n_segments; i++) {
            sg_whisper_segment s = t->segments[i];
            s.start = (float)finite_or_zero(s.start);
            s.end = (float)finite_or_zero(s.end);
            s.temperature = (float)finite_or_zero(s.temperature);
            s.avg_logprob = (float)finite_or_zero(s.avg_logprob);
            s.compression_ratio = (float)finite_or_zero(s.compression_ratio);
            s.no_speech_prob = (float)finite_or_zero(s.no_speech_prob);
            json_t *js = segment_json(&s, ok);
            if (!js || json_array_append_new(segs, js) != 0)
                *ok = false;
        }
        jset(root, "segments", segs, ok);
    }
    if (g & SG_TRANSCRIPT_GRAN_WORD) {
        json_t *words = json_array();
        for (size_t i = 0; words && i < t->n_segments; i++)
            for (size_t k = 0; k < t->segments[i].n_words; k++) {
                const sg_whisper_word *w = &t->segments[i].words[k];
                json_t *jw = json_object();
                if (!jw) {
                    *ok = false;
                    continue;
                }
                jset(jw, "word", jstripped(w->word), ok);
                jset(jw, "start", json_real(finite_or_zero(w->start)), ok);
                jset(jw, "end", json_real(finite_or_zero(w->end)), ok);
                if (json_array_append_new(words, jw) != 0)
                    *ok = false;
            }
        jset(root, "words", words, ok);
    }
    return root;
}

sg_status sg_transcript_format_write(const sg_whisper_transcript *t, sg_transcript_format f,
                                     const sg_transcript_format_opts *opts, char **out, size_t *len,
                                     sg_error *err)
{
    *out = NULL;
    if (len)
        *len = 0;
    const sg_transcript_format_opts defaults = {0};
    const sg_transcript_format_opts *o = opts ? opts : &defaults;
    if (!t)
        return sg_error_set(err, SG_EINVAL, "no transcript");
    const char *code = o->language ? o->language : "en";
    const char *language = sg_whisper_language_name(code);
    if (!language) {
        char q[40];
        return sg_error_set(err, SG_EINVAL, "language code \"%s\" is not one of Whisper's",
                            sg_utf8_quote(q, 20, code, strlen(code), false));
    }
    if (o->granularities & ~(SG_TRANSCRIPT_GRAN_SEGMENT | SG_TRANSCRIPT_GRAN_WORD))
        return sg_error_set(err, SG_EINVAL, "unknown timestamp granularity bits 0x%x",
                            o->granularities);
    sbuf b = {0};
    json_t *root = NULL;
    bool ok = true;
    switch (f) {
    case SG_TRANSCRIPT_JSON:
        root = json_object();
        if (!root)
            ok = false;
        else
            jset(root, "text", jstripped(t->text), &ok);
        break;
    case SG_TRANSCRIPT_VERBOSE_JSON:
        root = verbose_json(t, o, language, &ok);
        break;
    case SG_TRANSCRIPT_TEXT: {
        const char *p;
        size_t n;
        strip_span(t->text, &p, &n);
        sb_utf8(&b, p, n);
        sb_str(&b, "\n");
        break;
    }
    case SG_TRANSCRIPT_SRT:
    case SG_TRANSCRIPT_VTT: {
        sg_status st = write_subtitles(t, f == SG_TRANSCRIPT_SRT, &b, err);
        if (st != SG_OK) {
            free(b.p);
            return st;
        }
        break;
    }
    default:
        return sg_error_set(err, SG_EINVAL, "unknown transcript format %d", (int)f);
    }
    if (root) {
        char *s = ok ? json_dumps(root, JSON_COMPACT) : NULL;
        json_decref(root);
        if (!s)
            return sg_error_set(err, SG_ENOMEM, "out of memory");
        *out = s;
        if (len)
            *len = strlen(s);
        return SG_OK;
    }
    if (!b.p && !b.oom)
        sb_put(&b, "", 0); /* an empty subtitle file is "" */
    if (!ok || b.oom || !b.p) {
        free(b.p);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    *out = b.p;
    if (len)
        *len = b.len;
    return SG_OK;
}
