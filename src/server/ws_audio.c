/* /ws/audio's speech logic (see ws_audio.h for the protocol): bytes -> samples (a split sample
 * waits for the next message) -> 16 kHz (a streaming libsamplerate converter) -> a buffer of
 * recent audio on one timeline (16 kHz samples since the socket opened) -> the VAD stream's
 * events -> utterances -> finals run here (the caller is a work-queue job) and partials handed
 * back to the caller to run beside. The buffer keeps the open utterance (at most 30 s) or, between
 * utterances, the last second, so a START can reach back to its padded start. */
#include "server/ws_audio.h"

#include <math.h>
#include <samplerate.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "base/json.h"
#include "base/utf8.h"
#include "media/audio.h"

#define RATE SG_AUDIO_RATE
#define KEEP_IDLE RATE /* samples kept before the open utterance or the present */
#define MAX_UTT ((long long)SG_WS_AUDIO_MAX_UTTERANCE_S * RATE)
#define PARTIAL_EVERY ((long long)SG_WS_AUDIO_PARTIAL_EVERY_S * RATE)

struct sg_ws_audio {
    const sg_backends *b;
    sg_vad_stream *vad; /* NULL: no end-pointing */
    /* the stream's format */
    sg_audio_format fmt;
    int rate;
    char language[16];
    bool started; /* audio arrived in this stream: no more configuration */
    /* the answer to each final (agent/answer_stream.h), and its speech: any time */
    bool answer, speak;
    int speak_format;
    uint8_t carry[4];
    int carry_n;
    SRC_STATE *src;
    float *in;    /* decoded samples at the input rate */
    size_t in_cap;
    float *rs;    /* resampled */
    size_t rs_cap;
    /* the timeline (16 kHz samples since the socket opened) */
    long long total;
    long long stream_base; /* total when the current VAD stream began */
    float *buf;            /* samples [buf_t0, buf_t0 + buf_n) */
    size_t buf_n, buf_cap;
    long long buf_t0;
    /* utterances */
    bool in_utt;
    long long utt, utt_start, finalized, next_partial;
};

static float clip(float x) { return x > 1.0f ? 1.0f : x < -1.0f ? -1.0f : x; }

static double ms_of(long long samples) { return (double)samples * 1000.0 / RATE; }

static json_t *ms_json(long long samples) { return json_integer((json_int_t)llround(ms_of(samples))); }

static void add_error(sg_ws_audio_result *res, const char *code, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static void add_error(sg_ws_audio_result *res, const char *code, const char *fmt, ...)
{
    char detail[300];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(detail, sizeof detail, fmt, ap);
    va_end(ap);
    json_t *d = json_string(detail);
    json_array_append_new(res->msgs, json_pack("{s:s,s:s,s:o}", "type", "error", "error", code,
                                               "detail", d ? d : json_string("invalid input")));
}

static const char *status_code(sg_status st)
{
    switch (st) {
    case SG_EUNSUPPORTED: return "MODEL_UNAVAILABLE";
    case SG_ERANGE: return "INVALID_REQUEST";
    case SG_ENOMEM: return "OVERLOADED";
    case SG_EINVAL:
    case SG_EAUDIO: return "INVALID_AUDIO";
    case SG_ETOOBIG: return "PAYLOAD_TOO_LARGE";
    default: return "INTERNAL_ERROR";
    }
}

static void res_init(sg_ws_audio_result *res)
{
    memset(res, 0, sizeof *res);
    res->msgs = json_array();
}

sg_ws_audio *sg_ws_audio_new(const sg_backends *b, sg_error *err)
{
    if (!b || !b->asr) {
        sg_error_set(err, SG_EUNSUPPORTED, "speech recognition is not available: no ASR model is "
                     "loaded (start sg-edge with --asr-model)");
        return NULL;
    }
    sg_ws_audio *a = calloc(1, sizeof *a);
    if (!a) {
        sg_error_set(err, SG_ENOMEM, "out of memory");
        return NULL;
    }
    a->b = b;
    a->fmt = SG_AUDIO_PCM_S16LE;
    a->rate = RATE;
    if (b->vad && b->vad->stream_open && b->vad->stream_feed && b->vad->stream_finish &&
        b->vad->stream_close) {
        a->vad = b->vad->stream_open(b->vad->self, err);
        if (!a->vad) {
            free(a);
            return NULL;
        }
    }
    return a;
}

void sg_ws_audio_free(sg_ws_audio *a)
{
    if (!a)
        return;
    if (a->vad)
        a->b->vad->stream_close(a->vad);
    if (a->src)
        src_delete(a->src);
    free(a->in);
    free(a->rs);
    free(a->buf);
    free(a);
}

long long sg_ws_audio_finalized(const sg_ws_audio *a) { return a->finalized; }

void sg_ws_partial_free(sg_ws_partial *p)
{
    if (!p)
        return;
    free(p->pcm);
    free(p);
}

/* ---- configuration ---------------------------------------------------------------------------- */

/* {"answer": bool, "speak": bool, "speak_format": "ogg"|"wav"}: whether finals are answered
 * (and spoken). false after an error message. */
static bool configure_answer(sg_ws_audio *a, json_t *o, sg_ws_audio_result *res)
{
    json_t *ans = json_object_get(o, "answer"), *sp = json_object_get(o, "speak"),
           *sf = json_object_get(o, "speak_format");
    if ((ans && !json_is_boolean(ans) && !json_is_null(ans)) ||
        (sp && !json_is_boolean(sp) && !json_is_null(sp))) {
        add_error(res, "INVALID_REQUEST", "\"answer\" and \"speak\" must be true or false");
        return false;
    }
    int fmt = a->speak_format;
    if (sf && !json_is_null(sf)) {
        const char *f = sg_json_cstr(sf);
        if (f && (strcmp(f, "ogg") == 0 || strcmp(f, "opus") == 0))
            fmt = 0;
        else if (f && strcmp(f, "wav") == 0)
            fmt = 1;
        else {
            add_error(res, "INVALID_REQUEST", "\"speak_format\" must be \"ogg\" or \"wav\"");
            return false;
        }
    }
    if (json_is_boolean(ans))
        a->answer = json_is_true(ans);
    if (json_is_boolean(sp))
        a->speak = json_is_true(sp);
    if (a->speak)
        a->answer = true; /* speaking the answer asks for it */
    a->speak_format = fmt;
    return true;
}

void sg_ws_audio_set_answer(sg_ws_audio *a, bool answer, bool speak)
{
    a->answer = answer || speak;
    a->speak = speak;
}

void sg_ws_audio_answer_mode(const sg_ws_audio *a, bool *answer, bool *speak, int *speak_format)
{
    *answer = a->answer;
    *speak = a->speak;
    *speak_format = a->speak_format;
}

static void configure(sg_ws_audio *a, json_t *o, sg_ws_audio_result *res)
{
    if (!configure_answer(a, o, res))
        return;
    /* only the answer's settings: allowed while audio flows */
    size_t stream_keys = 0;
    const char *key;
    json_t *v;
    json_object_foreach(o, key, v) stream_keys += strcmp(key, "answer") && strcmp(key, "speak") &&
                                                  strcmp(key, "speak_format") && strcmp(key, "type");
    if (!stream_keys)
        return;
    if (a->started) {
        add_error(res, "INVALID_REQUEST", "send the configuration before the audio (or after an "
                  "{\"type\":\"end\"}); this one was ignored");
        return;
    }
    json_t *rate = json_object_get(o, "sample_rate"), *fmt = json_object_get(o, "format"),
           *lang = json_object_get(o, "language");
    int new_rate = a->rate;
    sg_audio_format new_fmt = a->fmt;
    char new_lang[sizeof a->language];
    snprintf(new_lang, sizeof new_lang, "%s", a->language);
    if (rate && !json_is_null(rate)) {
        if (!json_is_integer(rate) || json_integer_value(rate) < 8000 ||
            json_integer_value(rate) > 192000) {
            add_error(res, "INVALID_REQUEST", "\"sample_rate\" must be an integer in 8000..192000");
            return;
        }
        new_rate = (int)json_integer_value(rate);
    }
    if (fmt && !json_is_null(fmt)) {
        sg_error err = {0};
        if (!sg_json_cstr(fmt) || sg_audio_format_parse(sg_json_cstr(fmt), &new_fmt, &err) != SG_OK ||
            (new_fmt != SG_AUDIO_PCM_S16LE && new_fmt != SG_AUDIO_PCM_F32LE)) {
            add_error(res, "INVALID_REQUEST", "\"format\" must be \"pcm_s16le\" or \"pcm_f32le\" "
                      "(a stream carries headerless PCM)");
            return;
        }
    }
    if (lang && !json_is_null(lang)) {
        const char *l = sg_json_cstr(lang); /* NULL too for a NUL inside: never cut short */
        bool ok = l && strlen(l) < sizeof new_lang;
        for (const char *c = l; ok && *c; c++)
            ok = (*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || *c == '-' || *c == '_';
        if (!ok) {
            add_error(res, "INVALID_REQUEST", "\"language\" must be a language code such as \"en\"");
            return;
        }
        snprintf(new_lang, sizeof new_lang, "%s", l);
    } else if (lang) {
        new_lang[0] = 0;
    }
    if (new_rate != a->rate && a->src) {
        src_delete(a->src);
        a->src = NULL;
    }
    a->rate = new_rate;
    a->fmt = new_fmt;
    memcpy(a->language, new_lang, sizeof new_lang);
}

/* ---- the timeline ----------------------------------------------------------------------------- */

/* Drops what no utterance can need any more, then appends n samples. */
static bool timeline_append(sg_ws_audio *a, const float *pcm, size_t n)
{
    long long keep_from = a->in_utt ? a->utt_start : a->total - KEEP_IDLE;
    if (keep_from > a->buf_t0 + (long long)RATE) { /* move only in steps of a second or more */
        long long drop = keep_from - a->buf_t0;
        if (drop > (long long)a->buf_n)
            drop = (long long)a->buf_n;
        memmove(a->buf, a->buf + drop, (a->buf_n - (size_t)drop) * sizeof(float));
        a->buf_n -= (size_t)drop;
        a->buf_t0 += drop;
    }
    if (a->buf_n + n > a->buf_cap) {
        size_t cap = a->buf_cap ? a->buf_cap : 4 * RATE;
        while (cap < a->buf_n + n)
            cap *= 2;
        float *nb = realloc(a->buf, cap * sizeof(float));
        if (!nb)
            return false;
        a->buf = nb;
        a->buf_cap = cap;
    }
    memcpy(a->buf + a->buf_n, pcm, n * sizeof(float));
    a->buf_n += n;
    a->total += (long long)n;
    return true;
}

/* The timeline's [from, to) clamped to what the buffer holds. */
static const float *span(const sg_ws_audio *a, long long *from, long long *to)
{
    if (*from < a->buf_t0)
        *from = a->buf_t0;
    if (*to > a->buf_t0 + (long long)a->buf_n)
        *to = a->buf_t0 + (long long)a->buf_n;
    if (*to < *from)
        *to = *from;
    return a->buf + (*from - a->buf_t0);
}

/* ---- utterances ------------------------------------------------------------------------------- */

static void begin_utterance(sg_ws_audio *a, long long start)
{
    a->in_utt = true;
    a->utt++;
    a->utt_start = start;
    a->next_partial = start + PARTIAL_EVERY;
}

/* The final of the open utterance over [from, to), decided at `at`. */
static void final_for(sg_ws_audio *a, long long from, long long to, long long at,
                      sg_ws_audio_result *res)
{
    a->in_utt = false;
    a->finalized = a->utt;
    res->finalized = a->utt;
    const float *pcm = span(a, &from, &to);
    if (to <= from)
        return;
    char *text = NULL;
    sg_error err = {0};
    double t0 = sg_now_ms();
    sg_status st = a->b->asr->transcribe(a->b->asr->self, pcm, (size_t)(to - from),
                                         a->language[0] ? a->language : NULL, &text, &err);
    res->asr_ms += sg_now_ms() - t0;
    if (st != SG_OK) {
        free(text);
        add_error(res, status_code(st), "transcription failed: %s",
                  err.msg[0] ? err.msg : sg_status_name(st));
        return;
    }
    json_t *t = json_string(text ? text : "");
    free(text);
    json_array_append_new(res->msgs, json_pack("{s:s,s:o,s:o,s:o,s:o}", "type", "final", "text",
                                               t ? t : json_string(""), "t_ms", ms_json(at),
                                               "start_ms", ms_json(from), "end_ms", ms_json(to)));
    res->finals++;
}

static void vad_events(sg_ws_audio *a, const sg_vad_event *ev, size_t nev, sg_ws_audio_result *res)
{
    for (size_t i = 0; i < nev; i++) {
        const long long s = a->stream_base + llround(ev[i].start_s * RATE);
        const long long e = a->stream_base + llround(ev[i].end_s * RATE);
        long long at = a->stream_base + llround(ev[i].at_s * RATE);
        if (at > a->total)
            at = a->total;
        switch (ev[i].kind) {
        case SG_VAD_EV_START:
            if (!a->in_utt)
                begin_utterance(a, s);
            res->speech_started = true; /* the wearer speaks: barge-in on an answer */
            break;
        case SG_VAD_EV_END:
            if (a->in_utt) /* after a 30 s cut the segment's start is in an earlier final */
                final_for(a, s > a->utt_start ? s : a->utt_start, e, at, res);
            break;
        case SG_VAD_EV_DROP:
            a->in_utt = false; /* too short to be speech: no final */
            break;
        }
    }
}

/* After new audio: the 30 s cut and the partial. */
static void after_audio(sg_ws_audio *a, bool partial_busy, sg_ws_audio_result *res)
{
    while (a->in_utt && a->total - a->utt_start >= MAX_UTT) {
        const long long cut = a->utt_start + MAX_UTT;
        final_for(a, a->utt_start, cut, a->total, res);
        begin_utterance(a, cut);
    }
    if (!a->in_utt || a->total < a->next_partial)
        return;
    a->next_partial = a->total + PARTIAL_EVERY;
    if (partial_busy || res->partial)
        return; /* skipped: never queue up work */
    long long from = a->utt_start, to = a->total;
    const float *pcm = span(a, &from, &to);
    sg_ws_partial *p = calloc(1, sizeof *p);
    if (p && to > from)
        p->pcm = malloc((size_t)(to - from) * sizeof(float));
    if (!p || !p->pcm) {
        sg_ws_partial_free(p);
        return; /* a partial is a courtesy: skip it when memory is short */
    }
    memcpy(p->pcm, pcm, (size_t)(to - from) * sizeof(float));
    p->n = (size_t)(to - from);
    p->utt = a->utt;
    p->t_ms = ms_of(a->total);
    snprintf(p->language, sizeof p->language, "%s", a->language);
    res->partial = p;
}

/* 16 kHz samples into the timeline, the VAD and the utterance rules. */
static void process16k(sg_ws_audio *a, const float *pcm, size_t n, bool partial_busy,
                       sg_ws_audio_result *res)
{
    if (!n)
        return;
    if (!timeline_append(a, pcm, n)) {
        add_error(res, "OVERLOADED", "out of memory: %zu samples dropped", n);
        return;
    }
    res->pcm16k = a->buf + a->buf_n - n;
    res->n16k = n;
    if (a->vad) {
        sg_vad_event *ev = NULL;
        size_t nev = 0;
        sg_error err = {0};
        sg_status st = a->b->vad->stream_feed(a->vad, pcm, n, &ev, &nev, &err);
        if (st != SG_OK)
            add_error(res, status_code(st), "voice activity detection failed: %s", err.msg);
        else
            vad_events(a, ev, nev, res);
        free(ev);
    } else if (!a->in_utt) {
        begin_utterance(a, a->total - (long long)n);
    }
    after_audio(a, partial_busy, res);
}

/* Resamples in[0..n) to 16 kHz into a->rs; end flushes the converter. Returns the count, or -1
 * after adding an error. */
static long resample(sg_ws_audio *a, const float *in, size_t n, bool end, sg_ws_audio_result *res)
{
    if (!a->src) {
        int e = 0;
        a->src = src_new(SRC_SINC_MEDIUM_QUALITY, 1, &e);
        if (!a->src) {
            add_error(res, "INTERNAL_ERROR", "resampler: %s", src_strerror(e));
            return -1;
        }
    }
    const double ratio = (double)RATE / a->rate;
    size_t want = (size_t)((double)n * ratio) + 512;
    if (want > a->rs_cap) {
        float *p = realloc(a->rs, want * sizeof(float));
        if (!p) {
            add_error(res, "OVERLOADED", "out of memory");
            return -1;
        }
        a->rs = p;
        a->rs_cap = want;
    }
    static const float none[1] = {0};
    if (!in)
        in = none; /* libsamplerate flushes only with a non-NULL input pointer */
    size_t used = 0, made = 0;
    for (int guard = 0; guard < 64; guard++) {
        SRC_DATA d;
        memset(&d, 0, sizeof d);
        d.data_in = in + used;
        d.input_frames = (long)(n - used);
        d.data_out = a->rs + made;
        d.output_frames = (long)(a->rs_cap - made);
        d.end_of_input = end;
        d.src_ratio = ratio;
        int rc = src_process(a->src, &d);
        if (rc) {
            add_error(res, "INTERNAL_ERROR", "resampler: %s", src_strerror(rc));
            return -1;
        }
        used += (size_t)d.input_frames_used;
        for (long k = 0; k < d.output_frames_gen; k++) /* the sinc filter rings past full scale */
            a->rs[made + (size_t)k] = clip(a->rs[made + (size_t)k]);
        made += (size_t)d.output_frames_gen;
        if (used >= n && (!end || d.output_frames_gen == 0))
            break;
        if (made == a->rs_cap) { /* unlikely: more room */
            float *p = realloc(a->rs, 2 * a->rs_cap * sizeof(float));
            if (!p)
                break;
            a->rs = p;
            a->rs_cap *= 2;
        }
    }
    return (long)made;
}

/* ---- messages --------------------------------------------------------------------------------- */

void sg_ws_audio_binary(sg_ws_audio *a, const uint8_t *data, size_t len, bool partial_busy,
                        sg_ws_audio_result *res)
{
    res_init(res);
    if (!len)
        return;
    a->started = true;
    const int width = a->fmt == SG_AUDIO_PCM_F32LE ? 4 : 2;
    const size_t bytes = (size_t)a->carry_n + len, n = bytes / (size_t)width;
    if (n > a->in_cap) {
        float *p = realloc(a->in, n * sizeof(float));
        if (!p) {
            add_error(res, "OVERLOADED", "out of memory");
            return;
        }
        a->in = p;
        a->in_cap = n;
    }
    /* byte i of the carried-over bytes then the message */
#define BYTE(i) ((size_t)(i) < (size_t)a->carry_n ? a->carry[i] : data[(size_t)(i) - (size_t)a->carry_n])
    for (size_t i = 0; i < n; i++) {
        const size_t o = i * (size_t)width;
        if (width == 2) {
            const int16_t v = (int16_t)(uint16_t)(BYTE(o) | BYTE(o + 1) << 8);
            a->in[i] = (float)v / 32768.0f;
        } else {
            const uint32_t u = (uint32_t)BYTE(o) | (uint32_t)BYTE(o + 1) << 8 |
                               (uint32_t)BYTE(o + 2) << 16 | (uint32_t)BYTE(o + 3) << 24;
            float f;
            memcpy(&f, &u, 4);
            if (!isfinite(f)) {
                a->carry_n = 0;
                add_error(res, "INVALID_AUDIO", "Invalid audio payload: pcm_f32le sample %zu of "
                          "this message is not a finite number; the message was dropped", i);
                return;
            }
            a->in[i] = clip(f); /* beyond full scale: clipped, as /audio does */
        }
    }
    uint8_t rest[4];
    const size_t left = bytes - n * (size_t)width;
    for (size_t i = 0; i < left; i++)
        rest[i] = BYTE(n * (size_t)width + i);
#undef BYTE
    memcpy(a->carry, rest, left);
    a->carry_n = (int)left;
    if (a->rate == RATE) {
        process16k(a, a->in, n, partial_busy, res);
        return;
    }
    long m = resample(a, a->in, n, false, res);
    if (m > 0)
        process16k(a, a->rs, (size_t)m, partial_busy, res);
}

/* Ends the stream: converter tail, VAD finish (or the open utterance without a VAD), reset. */
static void end_stream(sg_ws_audio *a, sg_ws_audio_result *res)
{
    if (a->src && a->rate != RATE) {
        long m = resample(a, NULL, 0, true, res);
        if (m > 0)
            process16k(a, a->rs, (size_t)m, true, res);
        src_reset(a->src);
    }
    if (a->vad) {
        sg_vad_event *ev = NULL;
        size_t nev = 0;
        sg_error err = {0};
        sg_status st = a->b->vad->stream_finish(a->vad, &ev, &nev, &err);
        if (st != SG_OK)
            add_error(res, status_code(st), "voice activity detection failed: %s", err.msg);
        else
            vad_events(a, ev, nev, res);
        free(ev);
    }
    if (a->in_utt) /* no VAD (or a failed one): the speech so far */
        final_for(a, a->utt_start, a->total, a->total, res);
    a->in_utt = false;
    a->stream_base = a->total;
    a->started = false;
    a->carry_n = 0;
}

void sg_ws_audio_text(sg_ws_audio *a, const char *text, size_t len, bool partial_busy,
                      sg_ws_audio_result *res)
{
    (void)partial_busy;
    res_init(res);
    sg_error err = {0};
    json_t *o = sg_json_parse(text, len, &err);
    if (!o || !json_is_object(o)) {
        json_decref(o);
        add_error(res, "INVALID_REQUEST", "text messages must be a JSON object: a configuration "
                  "{\"sample_rate\",\"format\",\"language\"} or {\"type\":\"end\"}%s%s",
                  err.msg[0] ? "; " : "", err.msg);
        return;
    }
    json_t *type = json_object_get(o, "type");
    const char *t = sg_json_cstr(type); /* "end\u0000x" is not "end" */
    if (type && !json_is_null(type) && !t) {
        add_error(res, "INVALID_REQUEST", "\"type\" must be a string without NUL characters");
    } else if (t && strcmp(t, "end") == 0) {
        end_stream(a, res);
        json_array_append_new(res->msgs, json_pack("{s:s,s:o}", "type", "end", "t_ms", ms_json(a->total)));
    } else if (!t || strcmp(t, "config") == 0 || strcmp(t, "start") == 0) {
        configure(a, o, res);
    } else {
        char q[48];
        add_error(res, "INVALID_REQUEST", "unknown message type \"%s\" (use \"end\", or send a "
                  "configuration)", sg_utf8_quote(q, 32, t, strlen(t), false));
    }
    json_decref(o);
}

void sg_ws_audio_flush(sg_ws_audio *a, sg_ws_audio_result *res)
{
    res_init(res);
    end_stream(a, res);
}

json_t *sg_ws_partial_run(const sg_asr_backend *asr, const sg_ws_partial *p, double *asr_ms)
{
    char *text = NULL;
    sg_error err = {0};
    double t0 = sg_now_ms();
    sg_status st = asr->transcribe(asr->self, p->pcm, p->n, p->language[0] ? p->language : NULL,
                                   &text, &err);
    *asr_ms = sg_now_ms() - t0;
    if (st != SG_OK) {
        free(text);
        json_t *d = json_string(err.msg[0] ? err.msg : sg_status_name(st));
        return json_pack("{s:s,s:s,s:o}", "type", "error", "error", status_code(st), "detail",
                         d ? d : json_string("transcription failed"));
    }
    json_t *t = json_string(text ? text : "");
    free(text);
    return json_pack("{s:s,s:o,s:I}", "type", "partial", "text", t ? t : json_string(""), "t_ms",
                     (json_int_t)llround(p->t_ms));
}
