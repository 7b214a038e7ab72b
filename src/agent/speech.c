/* The speech pipeline (see speech.h for the decisions): VAD segments -> windows -> log-mel ->
 * Whisper encode -> language -> greedy decode -> segments with openai's statistics. */
#include "agent/speech.h"
#include "models/whisper_transcribe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "base/clock.h"
#include "media/audio.h"
#include "media/mel.h"
#include "models/whisper_transcribe.h"

#define CUT_FRAME 320 /* 20 ms: the energy frame for cutting a long segment */
#define CUT_HOP 160   /* 10 ms between candidate frames */
#define MIN_AUTO_FRAMES 100 /* audio_ctx auto: at least 1 s of encoder input */

/* ---- windows ------------------------------------------------------------------------------ */

/* The middle of the quietest 20 ms frame that lies inside [lo, hi) (hi when none fits or there is
 * no audio to look at). */
static size_t quietest(const float *pcm, size_t lo, size_t hi)
{
    if (!pcm || hi - lo < CUT_FRAME)
        return hi;
    size_t best = hi;
    double best_e = INFINITY;
    for (size_t f = lo; f + CUT_FRAME <= hi; f += CUT_HOP) {
        double e = 0;
        for (size_t i = f; i < f + CUT_FRAME; i++)
            e += (double)pcm[i] * pcm[i];
        if (e < best_e) {
            best_e = e;
            best = f + CUT_FRAME / 2;
        }
    }
    return best;
}

static size_t to_sample(double s, size_t n)
{
    if (!(s > 0))
        return 0;
    double x = floor(s * SG_AUDIO_RATE + 0.5);
    return x >= (double)n ? n : (size_t)x;
}

sg_status sg_speech_windows(const float *pcm, size_t n, bool have_vad,
                            const sg_speech_segment *segs, size_t nsegs, size_t max_len,
                            sg_speech_window **out, size_t *nout, sg_error *err)
{
    *out = NULL;
    *nout = 0;
    if (max_len < CUT_FRAME)
        return sg_error_set(err, SG_EINVAL, "speech: window length %zu is under 20 ms", max_len);
    if (have_vad) {
        if (nsegs && !segs)
            return sg_error_set(err, SG_EINVAL, "speech: no segment array");
        for (size_t i = 0; i < nsegs; i++) {
            if (!isfinite(segs[i].start_s) || !isfinite(segs[i].end_s))
                return sg_error_set(err, SG_EINVAL, "speech: segment %zu is not finite", i);
            if (i && segs[i].start_s < segs[i - 1].start_s)
                return sg_error_set(err, SG_EINVAL, "speech: segments are not sorted by start");
        }
    }
    if (n == 0 || (have_vad && nsegs == 0))
        return SG_OK;
    /* upper bound: windows that end at a cut are at least 2/3 of max_len long and disjoint, so
     * there are at most 1.5 n / max_len of them; the others end at a segment's end */
    size_t cap = 2 * (n / max_len) + 2 + (have_vad ? nsegs : 0);
    sg_speech_window *w = malloc(cap * sizeof *w);
    if (!w)
        return sg_error_set(err, SG_ENOMEM, "speech: out of memory");
    size_t k = 0;
    if (!have_vad) {
        for (size_t s = 0; s < n; s += max_len)
            w[k++] = (sg_speech_window){s, s + max_len < n ? s + max_len : n};
    } else {
        size_t i = 0, cur = 0;
        bool carry = false; /* cur is inside segment i (after a cut) */
        while (i < nsegs) {
            size_t s = to_sample(segs[i].start_s, n), e = to_sample(segs[i].end_s, n);
            if (!carry && (s > cur || k == 0))
                cur = s; /* (a segment overlapping the last window continues from its end) */
            if (e <= cur) { /* empty, or already covered by the previous window */
                i++;
                carry = false;
                continue;
            }
            if (e - cur > max_len) { /* a segment longer than a window: cut it where it is quiet */
                size_t hi = cur + max_len, lo = hi - max_len / 3;
                size_t cut = quietest(pcm, lo, hi);
                if (k == cap) /* cannot happen with the bound above, but never overflow */
                    break;
                w[k++] = (sg_speech_window){cur, cut};
                cur = cut;
                carry = true;
                continue;
            }
            size_t end = e, j = i;
            while (j + 1 < nsegs) {
                size_t e2 = to_sample(segs[j + 1].end_s, n);
                if (e2 > cur && e2 - cur > max_len)
                    break;
                j++;
                if (e2 > end)
                    end = e2;
            }
            if (k == cap)
                break;
            w[k++] = (sg_speech_window){cur, end};
            cur = end;
            i = j + 1;
            carry = false;
        }
    }
    if (k == 0) {
        free(w);
        return SG_OK;
    }
    *out = w;
    *nout = k;
    return SG_OK;
}

/* ---- statistics --------------------------------------------------------------------------- */

float sg_speech_compression_ratio(const char *text) { return sg_whisper_compression_ratio(text); }

/* ---- the pipeline ------------------------------------------------------------------------- */

void sg_speech_result_free(sg_speech_result *res)
{
    if (!res)
        return;
    for (size_t i = 0; i < res->n_segs; i++) {
        free(res->segs[i].text);
        free(res->segs[i].tokens);
    }
    free(res->segs);
    free(res->text);
    memset(res, 0, sizeof *res);
}

/* "EN", "en-US", "en_GB" -> "en" */
static void lower_copy(char *dst, size_t cap, const char *src)
{
    size_t i = 0;
    for (; src[i] && src[i] != '-' && src[i] != '_' && i + 1 < cap; i++)
        dst[i] = (char)(src[i] >= 'A' && src[i] <= 'Z' ? src[i] - 'A' + 'a' : src[i]);
    dst[i] = 0;
}

/* Joins the segments' texts into res->text. */
static sg_status join_text(sg_speech_result *res, sg_error *err)
{
    size_t len = 0;
    for (size_t i = 0; i < res->n_segs; i++)
        len += strlen(res->segs[i].text);
    char *t = malloc(len + 1);
    if (!t)
        return sg_error_set(err, SG_ENOMEM, "speech: out of memory");
    size_t o = 0;
    for (size_t i = 0; i < res->n_segs; i++) {
        size_t l = strlen(res->segs[i].text);
        memcpy(t + o, res->segs[i].text, l);
        o += l;
    }
    t[o] = 0;
    free(res->text);
    res->text = t;
    return SG_OK;
}

/* Encoder frames for a window of len samples. */
static int window_frames(const sg_speech_opts *o, const sg_whisper_info *I, size_t len)
{
    const int full = 2 * I->n_audio_ctx;
    if (o->audio_ctx == 0)
        return full;
    if (o->audio_ctx > 0)
        return 2 * o->audio_ctx;
    size_t f = (len + SG_MEL_HOP - 1) / SG_MEL_HOP;
    f += f & 1;
    if (f < MIN_AUTO_FRAMES)
        f = MIN_AUTO_FRAMES;
    return f > (size_t)full ? full : (int)f;
}

sg_status sg_speech_transcribe_segments(sg_whisper *m, const float *pcm, size_t n, bool have_vad,
                                        const sg_speech_segment *segs, size_t nsegs,
                                        const sg_speech_opts *opts, sg_speech_result *res,
                                        sg_error *err)
{
    memset(res, 0, sizeof *res);
    const double t0 = sg_now_ms();
    sg_speech_opts o = {0};
    if (opts)
        o = *opts;
    if (!m || (n && !pcm))
        return sg_error_set(err, SG_EINVAL, "speech: no model or no audio");
    const sg_whisper_info *I = sg_whisper_get_info(m);
    if (o.audio_ctx < SG_SPEECH_AUDIO_CTX_AUTO || o.audio_ctx > I->n_audio_ctx || o.max_tokens < 0)
        return sg_error_set(err, SG_EINVAL,
                            "speech: audio_ctx must be auto or 1..%d encoder positions "
                            "(max_tokens >= 0)", I->n_audio_ctx);
    if (o.audio_ctx > 0 && o.audio_ctx < MIN_AUTO_FRAMES / 2)
        return sg_error_set(err, SG_EINVAL, "speech: audio_ctx must be at least %d (1 s)",
                            MIN_AUTO_FRAMES / 2);
    /* the language, checked before any work */
    int32_t lang_tok = -1;
    char lang[16] = "";
    if (!I->multilingual) {
        if (o.translate)
            return sg_error_set(err, SG_EINVAL, "speech: this model is English-only and cannot "
                                "translate (use a multilingual model)");
        snprintf(lang, sizeof lang, "en");
    } else if (o.language && *o.language) {
        lower_copy(lang, sizeof lang, o.language);
        lang_tok = sg_whisper_language_token(m, lang);
        if (lang_tok < 0)
            return sg_error_set(err, SG_ERANGE, "speech: unknown language '%.15s' (give an ISO "
                                "639-1 code the model knows, e.g. en, de, fr)", o.language);
    }

    snprintf(res->language, sizeof res->language, "%s", lang);
    res->text = strdup("");
    if (!res->text)
        return sg_error_set(err, SG_ENOMEM, "speech: out of memory");
    /* windows of at most 30 s (or the model's context, or audio_ctx positions) */
    size_t max_len = (size_t)SG_SPEECH_MAX_WINDOW_S * SG_AUDIO_RATE;
    size_t ctx_len = (size_t)(o.audio_ctx > 0 ? o.audio_ctx : I->n_audio_ctx) * 2 * SG_MEL_HOP;
    if (ctx_len < max_len)
        max_len = ctx_len;
    sg_speech_window *win = NULL;
    size_t nwin = 0;
    sg_status st = sg_speech_windows(pcm, n, have_vad, segs, nsegs, max_len, &win, &nwin, err);
    if (st != SG_OK) {
        sg_speech_result_free(res);
        return st;
    }
    res->speech = nwin > 0;
    if (nwin == 0) {
        res->t.total = sg_now_ms() - t0;
        return SG_OK;
    }
    res->segs = calloc(nwin, sizeof *res->segs);
    if (!res->segs) {
        free(win);
        sg_speech_result_free(res);
        return sg_error_set(err, SG_ENOMEM, "speech: out of memory");
    }
    const bool vocab = sg_whisper_has_vocab(m);
    const float *filters = sg_whisper_mel_filters(m); /* a ggml file's own, else computed */
    res->language_prob = 1.0f;
    for (size_t w = 0; w < nwin && st == SG_OK; w++) {
        const size_t len = win[w].end - win[w].start;
        double t1 = sg_now_ms();
        float *mel = NULL;
        int frames = 0;
        st = sg_log_mel(pcm + win[w].start, len, I->n_mels, filters, window_frames(&o, I, len), &mel,
                        &frames, err);
        double t2 = sg_now_ms();
        res->t.mel += t2 - t1;
        if (st != SG_OK)
            break;
        st = sg_whisper_encode(m, mel, frames, NULL, err);
        free(mel);
        double t3 = sg_now_ms();
        res->t.encode += t3 - t2;
        if (st != SG_OK)
            break;
        res->n_windows++;
        if (I->multilingual && lang_tok < 0) { /* detect once, on the first window (as openai) */
            float p = 0;
            st = sg_whisper_detect_language(m, &lang_tok, &p, err);
            if (st != SG_OK)
                break;
            const char *code = sg_whisper_language_code(m, lang_tok);
            snprintf(lang, sizeof lang, "%s", code ? code : "");
            res->language_prob = p;
        }
        sg_whisper_decode_opts dopt = {lang_tok, o.translate, o.max_tokens};
        sg_whisper_result wr;
        memset(&wr, 0, sizeof wr);
        st = sg_whisper_decode(m, &dopt, &wr, err);
        res->t.decode += sg_now_ms() - t3;
        if (st != SG_OK)
            break;
        res->n_steps += wr.n_logprobs;
        if (wr.no_speech_prob > SG_SPEECH_NO_SPEECH_THRESHOLD &&
            !(wr.avg_logprob > SG_SPEECH_LOGPROB_THRESHOLD)) {
            res->n_skipped++;
            sg_whisper_result_free(&wr);
            continue;
        }
        sg_speech_seg *sg = &res->segs[res->n_segs];
        sg->start = (double)win[w].start / SG_AUDIO_RATE;
        sg->end = (double)win[w].end / SG_AUDIO_RATE;
        sg->avg_logprob = wr.avg_logprob;
        sg->no_speech_prob = wr.no_speech_prob;
        sg->text = vocab && wr.n ? sg_whisper_detokenize(m, wr.tokens, wr.n) : strdup("");
        sg->tokens = wr.tokens; /* taken over */
        sg->n_tokens = wr.n;
        wr.tokens = NULL;
        wr.n = 0;
        sg_whisper_result_free(&wr);
        res->n_segs++;
        if (!sg->text) {
            st = sg_error_set(err, SG_ENOMEM, "speech: out of memory");
            break;
        }
        sg->compression_ratio = sg_speech_compression_ratio(sg->text);
        if (sg->compression_ratio < 0)
            st = sg_error_set(err, SG_ENOMEM, "speech: out of memory");
    }
    free(win);
    if (st == SG_OK)
        st = join_text(res, err);
    if (st != SG_OK) {
        sg_speech_result_free(res);
        return st;
    }
    snprintf(res->language, sizeof res->language, "%s", lang);
    res->t.total = sg_now_ms() - t0;
    return SG_OK;
}

sg_status sg_speech_transcribe(sg_whisper *m, const sg_silero *vad, const float *pcm, size_t n,
                               const sg_speech_opts *opts, sg_speech_result *res, sg_error *err)
{
    memset(res, 0, sizeof *res);
    if (!vad)
        return sg_speech_transcribe_segments(m, pcm, n, false, NULL, 0, opts, res, err);
    const double t0 = sg_now_ms();
    float *probs = NULL;
    size_t np = 0, ns = 0;
    sg_vad_segment *vs = NULL;
    sg_status st = n ? sg_silero_probs(vad, pcm, n, &probs, &np, err) : SG_OK;
    if (st == SG_OK && n)
        st = sg_vad_segments(probs, np, n, NULL, &vs, &ns, err);
    free(probs);
    if (st != SG_OK)
        return st;
    sg_speech_segment *segs = ns ? malloc(ns * sizeof *segs) : NULL;
    if (ns && !segs) {
        free(vs);
        return sg_error_set(err, SG_ENOMEM, "speech: out of memory");
    }
    for (size_t i = 0; i < ns; i++)
        segs[i] = (sg_speech_segment){vs[i].start_s, vs[i].end_s};
    free(vs);
    const double vad_ms = sg_now_ms() - t0;
    st = sg_speech_transcribe_segments(m, pcm, n, true, segs, ns, opts, res, err);
    free(segs);
    if (st == SG_OK) {
        res->t.vad = vad_ms;
        res->t.total = sg_now_ms() - t0;
    }
    return st;
}

/* ---- output ------------------------------------------------------------------------------- */

static double round_to(double x, double unit) { return floor(x / unit + 0.5) * unit; }

json_t *sg_speech_result_json(const sg_speech_result *res, double load_ms)
{
    json_t *segs = json_array();
    for (size_t i = 0; segs && i < res->n_segs; i++) {
        const sg_speech_seg *s = &res->segs[i];
        json_t *toks = json_array();
        for (size_t k = 0; toks && k < s->n_tokens; k++)
            json_array_append_new(toks, json_integer(s->tokens[k]));
        json_t *o = json_pack("{s:f,s:f,s:s,s:o,s:f,s:f,s:f}", "start", round_to(s->start, 1e-3),
                              "end", round_to(s->end, 1e-3), "text", s->text ? s->text : "",
                              "tokens", toks, "avg_logprob", (double)s->avg_logprob,
                              "no_speech_prob", (double)s->no_speech_prob, "compression_ratio",
                              (double)s->compression_ratio);
        if (!o || json_array_append_new(segs, o) != 0) {
            json_decref(segs);
            return NULL;
        }
    }
    if (!segs)
        return NULL;
    const sg_speech_timings *t = &res->t;
    return json_pack("{s:s,s:s,s:o,s:{s:f,s:f,s:f,s:f,s:f,s:f}}", "text",
                     res->text ? res->text : "", "language", res->language, "segments", segs,
                     "timings_ms", "load", round_to(load_ms, 1e-3), "mel", round_to(t->mel, 1e-3),
                     "vad", round_to(t->vad, 1e-3), "encode", round_to(t->encode, 1e-3),
                     "decode", round_to(t->decode, 1e-3), "total", round_to(t->total, 1e-3));
}

void sg_speech_model_name(const sg_whisper *m, const char *path, char *out, size_t cap)
{
    static const struct {
        int d_model, layers;
        const char *name;
    } sizes[] = {{384, 4, "tiny"}, {512, 6, "base"}, {768, 12, "small"}, {1024, 24, "medium"},
                 {1280, 32, "large"}};
    const sg_whisper_info *I = sg_whisper_get_info(m);
    for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
        if (I->d_model == sizes[i].d_model && I->enc_layers == sizes[i].layers) {
            snprintf(out, cap, "whisper-%s%s", sizes[i].name, I->multilingual ? "" : ".en");
            return;
        }
    }
    /* not a standard size: the file or directory name, without "ggml-" and ".bin" */
    const char *p = path ? path : "whisper";
    size_t len = strlen(p);
    while (len > 1 && p[len - 1] == '/')
        len--;
    size_t b = len;
    while (b > 0 && p[b - 1] != '/')
        b--;
    const char *base = p + b;
    size_t bl = len - b;
    if (bl > 5 && strncmp(base, "ggml-", 5) == 0) {
        base += 5;
        bl -= 5;
    }
    if (bl > 4 && strncmp(base + bl - 4, ".bin", 4) == 0)
        bl -= 4;
    if (bl == 5 && strncmp(base, "model", 5) == 0 && b > 1) {
        /* "ggml-model.bin" says nothing: the directory's name */
        size_t e = b - 1, s = e;
        while (s > 0 && p[s - 1] != '/')
            s--;
        if (e > s) {
            base = p + s;
            bl = e - s;
        }
    }
    if (bl == 0)
        snprintf(out, cap, "whisper");
    else
        snprintf(out, cap, "%.*s", (int)bl, base);
}

sg_status sg_speech_transcribe_openai(sg_whisper *m, const float *pcm, size_t n,
                                      const sg_whisper_transcribe_opts *o,
                                      sg_whisper_transcript *out, sg_error *err)
{
    memset(out, 0, sizeof *out);
    const sg_whisper_info *I = sg_whisper_get_info(m);
    float *mel = NULL;
    int frames = 0;
    sg_status st = sg_log_mel_padded(pcm, n, I->n_mels, sg_whisper_mel_filters(m),
                                     (size_t)SG_MEL_FRAMES_30S * SG_MEL_HOP, &mel, &frames, err);
    if (st != SG_OK)
        return st;
    st = sg_whisper_transcribe(m, mel, frames, frames - SG_MEL_FRAMES_30S, o, out, err);
    free(mel);
    return st;
}
