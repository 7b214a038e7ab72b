/* openai/whisper's transcribe() (transcribe.py) over sg_whisper_decode_ex (whisper.c): see
 * models/whisper_transcribe.h. Written from openai's source; the comments name its variables.
 * Not implemented (openai's defaults are used): clip_timestamps ("0": the whole audio),
 * hallucination_silence_threshold (None), carry_initial_prompt (False), beam search and
 * best_of (transcribe() uses GreedyDecoder with one sample at every temperature here). */
#include "models/whisper_transcribe.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "base/clock.h"
#include "models/whisper_priv.h"
#include "models/whisper_timing.h"

/* ---- generator ------------------------------------------------------------------------------ */

void sg_whisper_rng_seed(sg_whisper_rng *r, uint64_t seed) { r->state = seed; }

static uint64_t splitmix64(uint64_t *s)
{
    uint64_t z = (*s += 0x9E3779B97F4A7C15ull);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ull;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBull;
    return z ^ (z >> 31);
}

float sg_whisper_rng_uniform(sg_whisper_rng *r)
{
    return (float)(splitmix64(&r->state) >> 40) * (1.0f / 16777216.0f);
}

double sg_whisper_rng_uniform53(sg_whisper_rng *r)
{
    return (double)(splitmix64(&r->state) >> 11) * (1.0 / 9007199254740992.0);
}

/* ---- text helpers ------------------------------------------------------------------------- */

float sg_whisper_compression_ratio(const char *text)
{
    size_t n = text ? strlen(text) : 0;
    if (n == 0)
        return 0.0f;
    uLongf cap = compressBound((uLong)n);
    Bytef *buf = malloc(cap);
    if (!buf)
        return -1.0f;
    int rc = compress2(buf, &cap, (const Bytef *)text, (uLong)n, Z_DEFAULT_COMPRESSION);
    free(buf);
    if (rc != Z_OK || cap == 0)
        return -1.0f;
    return (float)((double)n / (double)cap);
}

/* Length of the UTF-8 whitespace character (Python's str.isspace) at s, 0 if none. */
static size_t space_at(const unsigned char *s, size_t n)
{
    if (n >= 1 && ((s[0] >= 0x09 && s[0] <= 0x0D) || (s[0] >= 0x1C && s[0] <= 0x20)))
        return 1;
    if (n >= 2 && s[0] == 0xC2 && (s[1] == 0x85 || s[1] == 0xA0))
        return 2;
    if (n >= 3 && s[0] == 0xE1 && s[1] == 0x9A && s[2] == 0x80)
        return 3;
    if (n >= 3 && s[0] == 0xE2 && s[1] == 0x80 &&
        (s[2] <= 0x8A || s[2] == 0xA8 || s[2] == 0xA9 || s[2] == 0xAF))
        return 3;
    if (n >= 3 && s[0] == 0xE2 && s[1] == 0x81 && s[2] == 0x9F)
        return 3;
    if (n >= 3 && s[0] == 0xE3 && s[1] == 0x80 && s[2] == 0x80)
        return 3;
    return 0;
}

/* Python's str.strip() on UTF-8: *len of the stripped text starting at the return value. */
static const char *strip(const char *s, size_t *len)
{
    const unsigned char *u = (const unsigned char *)s;
    size_t n = strlen(s), b = 0;
    for (size_t k; b < n && (k = space_at(u + b, n - b));)
        b += k;
    size_t e = n;
    while (e > b) {
        size_t k = 0;
        for (size_t back = 1; back <= 3 && back <= e - b; back++)
            if (space_at(u + e - back, back) == back) {
                k = back;
                break;
            }
        if (!k)
            break;
        e -= k;
    }
    *len = e - b;
    return s + b;
}

static bool blank(const char *s)
{
    size_t n;
    strip(s, &n);
    return n == 0;
}

/* openai's tokenizer.decode: tokens below timestamp_begin, specials spelled out. malloc'ed ("" with
 * no vocabulary), NULL when out of memory. */
static char *decode_openai(const sg_whisper *m, const int32_t *t, size_t n)
{
    const sg_whisper_info *I = sg_whisper_get_info(m);
    if (!sg_whisper_has_vocab(m))
        return strdup("");
    size_t cap = 64, len = 0;
    char *out = malloc(cap);
    if (!out)
        return NULL;
    out[0] = 0;
    for (size_t i = 0; i < n;) {
        size_t j = i;
        while (j < n && t[j] < I->eot)
            j++;
        const char *piece = NULL;
        char *text = NULL, buf[32];
        if (j > i) {
            text = sg_whisper_detokenize(m, t + i, j - i);
            if (!text) {
                free(out);
                return NULL;
            }
            piece = text;
            i = j;
        } else {
            if (t[i] <= I->no_timestamps)
                piece = sg_whisper_special_text(m, t[i], buf, sizeof buf);
            i++;
        }
        size_t pl = piece ? strlen(piece) : 0;
        if (len + pl + 1 > cap) {
            while (len + pl + 1 > cap)
                cap *= 2;
            char *o = realloc(out, cap);
            if (!o) {
                free(text);
                free(out);
                return NULL;
            }
            out = o;
        }
        memcpy(out + len, piece ? piece : "", pl);
        len += pl;
        out[len] = 0;
        free(text);
    }
    return out;
}

/* ---- options, results ---------------------------------------------------------------------- */

void sg_whisper_transcribe_opts_default(sg_whisper_transcribe_opts *o)
{
    memset(o, 0, sizeof *o);
    o->language = -1;
    static const float temps[6] = {0.0f, 0.2f, 0.4f, 0.6f, 0.8f, 1.0f};
    memcpy(o->temperatures, temps, sizeof temps);
    o->n_temperatures = 6;
    o->compression_ratio_threshold = 2.4f;
    o->logprob_threshold = -1.0f;
    o->no_speech_threshold = 0.6f;
    o->condition_on_previous_text = true;
    o->max_initial_timestamp = 1.0f;
}

static void segment_free(sg_whisper_segment *s)
{
    free(s->text);
    free(s->tokens);
    for (size_t i = 0; i < s->n_words; i++)
        free(s->words[i].word);
    free(s->words);
    memset(s, 0, sizeof *s);
}

void sg_whisper_transcript_free(sg_whisper_transcript *t)
{
    if (!t)
        return;
    for (size_t i = 0; i < t->n_segments; i++)
        segment_free(&t->segments[i]);
    free(t->segments);
    free(t->text);
    memset(t, 0, sizeof *t);
    t->language = -1;
}

/* ---- transcribe ----------------------------------------------------------------------------- */

typedef struct tokbuf {
    int32_t *v;
    size_t n, cap;
} tokbuf;

static bool tb_push(tokbuf *b, const int32_t *t, size_t n)
{
    if (b->n + n > b->cap) {
        size_t c = b->cap ? b->cap : 256;
        while (c < b->n + n)
            c *= 2;
        int32_t *v = realloc(b->v, c * sizeof *v);
        if (!v)
            return false;
        b->v = v;
        b->cap = c;
    }
    if (n)
        memcpy(b->v + b->n, t, n * sizeof *t);
    b->n += n;
    return true;
}

/* One decode and its statistics (openai's DecodingResult). */
typedef struct dres {
    sg_whisper_result r;
    float temperature, compression_ratio;
} dres;

static sg_status decode_once(sg_whisper *m, sg_whisper_decode_req *q, float t, dres *d,
                             double *decode_ms, sg_error *err)
{
    q->temperature = t;
    const double t0 = sg_now_ms();
    sg_status st = sg_whisper_decode_ex(m, q, &d->r, err);
    *decode_ms += sg_now_ms() - t0;
    if (st != SG_OK)
        return st;
    d->temperature = t;
    char *text = decode_openai(m, d->r.tokens, d->r.n);
    if (!text) {
        sg_whisper_result_free(&d->r);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    size_t len;
    const char *s = strip(text, &len);
    char *stripped = strndup(s, len);
    free(text);
    if (!stripped) {
        sg_whisper_result_free(&d->r);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    d->compression_ratio = sg_whisper_compression_ratio(stripped);
    free(stripped);
    if (d->compression_ratio < 0) {
        sg_whisper_result_free(&d->r);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    return SG_OK;
}

static bool needs_fallback(const sg_whisper_transcribe_opts *o, const dres *d)
{
    const bool crt = o->compression_ratio_threshold > 0, lpt = o->logprob_threshold != -INFINITY;
    bool need = false;
    if (crt && d->compression_ratio > o->compression_ratio_threshold)
        need = true; /* too repetitive */
    if (lpt && d->r.avg_logprob < o->logprob_threshold)
        need = true; /* average log probability too low */
    if (d->r.no_speech_prob > o->no_speech_threshold && lpt &&
        d->r.avg_logprob < o->logprob_threshold)
        need = false; /* silence */
    return need;
}

/* openai's get_end: the end of the last word of the window's segments, else of the last segment. */
static bool get_end(const sg_whisper_segment *s, size_t n, float *end)
{
    for (size_t i = n; i-- > 0;)
        if (s[i].n_words) {
            *end = s[i].words[s[i].n_words - 1].end;
            return true;
        }
    if (n) {
        *end = s[n - 1].end;
        return true;
    }
    return false;
}

static sg_status check_opts(const sg_whisper *m, const float *mel, int frames, int content_frames,
                            const sg_whisper_transcribe_opts *o, sg_error *err)
{
    const sg_whisper_info *I = sg_whisper_get_info(m);
    const int nf = 2 * I->n_audio_ctx;
    if (!mel)
        return sg_error_set(err, SG_EINVAL, "transcribe: mel is NULL");
    if (frames < nf || content_frames < 0 || content_frames > frames)
        return sg_error_set(err, SG_EINVAL,
                            "transcribe: %d mel frames with %d of content (the mel needs %d "
                            "frames of appended silence: sg_log_mel_padded)",
                            frames, content_frames, nf);
    if (o->n_temperatures < 0 || o->n_temperatures > SG_WHISPER_MAX_TEMPERATURES)
        return sg_error_set(err, SG_EINVAL, "transcribe: %d temperatures (0..%d)",
                            o->n_temperatures, SG_WHISPER_MAX_TEMPERATURES);
    for (int i = 0; i < o->n_temperatures; i++)
        if (!(o->temperatures[i] >= 0) || !isfinite(o->temperatures[i]))
            return sg_error_set(err, SG_EINVAL, "transcribe: temperature %g",
                                (double)o->temperatures[i]);
    if (isnan(o->compression_ratio_threshold) || isnan(o->logprob_threshold) ||
        isnan(o->no_speech_threshold) || isnan(o->max_initial_timestamp))
        return sg_error_set(err, SG_EINVAL, "transcribe: a threshold is NaN");
    if (o->sample_len < 0 || o->sample_len > I->n_text_ctx)
        return sg_error_set(err, SG_EINVAL, "transcribe: sample_len %d (0..%d)", o->sample_len,
                            I->n_text_ctx);
    if (!I->multilingual && o->translate)
        return sg_error_set(err, SG_EINVAL, "transcribe: translate needs a multilingual model");
    if (I->multilingual && o->language != -1 && !sg_whisper_language_code(m, o->language))
        return sg_error_set(err, SG_EINVAL, "transcribe: token %d is not a language token",
                            (int)o->language);
    if (!o->without_timestamps && I->no_timestamps + 1 >= I->vocab)
        return sg_error_set(err, SG_EINVAL, "transcribe: this vocabulary has no timestamp tokens");
    return SG_OK;
}

/* mel[:, seek:seek + size] zero-padded to nf frames (pad_or_trim). */
static void window(const float *mel, int frames, int n_mels, int seek, int size, int nf, float *w)
{
    for (int r = 0; r < n_mels; r++) {
        memcpy(w + (size_t)r * nf, mel + (size_t)r * frames + seek, (size_t)size * sizeof *w);
        memset(w + (size_t)r * nf + size, 0, (size_t)(nf - size) * sizeof *w);
    }
}

static sg_status add_segment(sg_whisper_transcript *t, size_t *cap, const sg_whisper *m, int seek,
                             double start, double end, const int32_t *tok, size_t n,
                             const dres *d, sg_error *err)
{
    if (t->n_segments == *cap) {
        size_t c = *cap ? *cap * 2 : 16;
        sg_whisper_segment *s = realloc(t->segments, c * sizeof *s);
        if (!s)
            return sg_error_set(err, SG_ENOMEM, "out of memory");
        t->segments = s;
        *cap = c;
    }
    sg_whisper_segment *s = &t->segments[t->n_segments];
    memset(s, 0, sizeof *s);
    s->seek = seek;
    s->start = (float)start;
    s->end = (float)end;
    s->temperature = d->temperature;
    s->avg_logprob = d->r.avg_logprob;
    s->compression_ratio = d->compression_ratio;
    s->no_speech_prob = d->r.no_speech_prob;
    s->tokens = malloc((n ? n : 1) * sizeof *s->tokens);
    if (!s->tokens) {
        segment_free(s);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    /* text: openai decodes the tokens below <|endoftext|> */
    size_t k = 0;
    for (size_t i = 0; i < n; i++)
        if (tok[i] < sg_whisper_get_info(m)->eot)
            s->tokens[k++] = tok[i];
    s->text = sg_whisper_has_vocab(m) ? sg_whisper_detokenize(m, s->tokens, k) : strdup("");
    if (!s->text) {
        segment_free(s);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    if (n)
        memcpy(s->tokens, tok, n * sizeof *tok);
    s->n_tokens = n;
    t->n_segments++;
    return SG_OK;
}

/* The loop's state: openai's transcribe() locals. */
typedef struct run {
    sg_whisper *m;
    const sg_whisper_info *I;
    const sg_whisper_transcribe_opts *o;
    sg_whisper_transcript *out;
    size_t seg_cap;
    tokbuf all;                /* all_tokens (the initial prompt first) */
    size_t n_init;             /* len(initial_prompt_tokens) */
    size_t prompt_reset_since;
    float last_speech_timestamp;
    float temps[SG_WHISPER_MAX_TEMPERATURES];
    int n_temps;
    sg_whisper_decode_req q;
    sg_whisper_rng rng;
    int32_t sot_seq[3];        /* the window's sot sequence for word timestamps */
    int n_sot;
} run;

/* decode_with_fallback: the temperatures in order until a result passes (or the last one). */
static sg_status decode_with_fallback(run *r, dres *d, sg_error *err)
{
    for (int ti = 0; ti < r->n_temps; ti++) {
        sg_whisper_result_free(&d->r);
        if (ti > 0)
            r->out->n_fallbacks++;
        sg_status st = decode_once(r->m, &r->q, r->temps[ti], d, &r->out->decode_ms, err);
        if (st != SG_OK)
            return st;
        if (!needs_fallback(r->o, d))
            break;
    }
    return SG_OK;
}

/* The window's segments from its tokens (consecutive timestamps end a segment; a single
 * timestamp at the end closes the last one) and the next seek, as transcribe() does. */
static sg_status split_window(run *r, const dres *d, int seek, int segment_size, int *next_seek,
                              bool *single_timestamp_ending, sg_error *err)
{
    const int32_t tb = r->I->no_timestamps + 1, *tokens = d->r.tokens;
    const size_t nt = d->r.n;
    const int input_stride = 2;                                   /* mel frames per position */
    const double time_precision = input_stride * 160.0 / 16000.0; /* 0.02 s per position */
    const double time_offset = seek * 160.0 / 16000.0; /* float(seek * HOP_LENGTH / SAMPLE_RATE) */
    const bool single = nt >= 2 && tokens[nt - 2] < tb && tokens[nt - 1] >= tb;
    *single_timestamp_ending = single;
    size_t n_consecutive = 0;
    for (size_t i = 1; i < nt; i++)
        if (tokens[i - 1] >= tb && tokens[i] >= tb)
            n_consecutive++;
    if (n_consecutive == 0) {
        /* one segment; it ends at its last timestamp, if any, or with the window */
        double duration = segment_size * 160.0 / 16000.0;
        int32_t last_ts = -1;
        for (size_t i = 0; i < nt; i++)
            if (tokens[i] >= tb)
                last_ts = tokens[i];
        if (last_ts >= 0 && last_ts != tb)
            duration = (last_ts - tb) * time_precision;
        *next_seek = seek + segment_size;
        return add_segment(r->out, &r->seg_cap, r->m, seek, time_offset, time_offset + duration,
                           tokens, nt, d, err);
    }
    size_t last_slice = 0;
    for (size_t i = 1; i <= nt; i++) {
        const bool cut = i < nt ? tokens[i - 1] >= tb && tokens[i] >= tb : single;
        if (!cut)
            continue;
        const int32_t *sl = tokens + last_slice;
        const size_t sn = i - last_slice;
        sg_status st = add_segment(r->out, &r->seg_cap, r->m, seek,
                                   time_offset + (sl[0] - tb) * time_precision,
                                   time_offset + (sl[sn - 1] - tb) * time_precision, sl, sn, d,
                                   err);
        if (st != SG_OK)
            return st;
        last_slice = i;
    }
    if (single) /* no speech after the last timestamp */
        *next_seek = seek + segment_size;
    else /* ignore the unfinished segment and seek to the last timestamp */
        *next_seek = seek + (tokens[last_slice - 1] - tb) * input_stride;
    return SG_OK;
}

/* add_word_timestamps on the window's segments, then transcribe()'s seek to the last word's end
 * (unless the window ended with a single timestamp) and last_speech_timestamp. */
static sg_status word_timestamps(run *r, sg_whisper_segment *cur, size_t ncur, int seek,
                                 int segment_size, bool single_timestamp_ending, int *next_seek,
                                 sg_error *err)
{
    const double t0 = sg_now_ms();
    sg_status st = sg_whisper_add_word_timestamps(r->m, cur, ncur, r->sot_seq, r->n_sot,
                                                  segment_size, &r->last_speech_timestamp, err);
    r->out->align_ms += sg_now_ms() - t0;
    if (st != SG_OK)
        return st;
    float last_word_end;
    if (!single_timestamp_ending && get_end(cur, ncur, &last_word_end) &&
        last_word_end > seek * 160.0 / 16000.0) {
        const int s = (int)nearbyint((double)last_word_end * 100.0);
        /* openai would loop forever on a word ending within 5 ms of the window start */
        if (s > seek)
            *next_seek = s;
    }
    if (get_end(cur, ncur, &last_word_end))
        r->last_speech_timestamp = last_word_end;
    return SG_OK;
}

/* Clears instantaneous segments and those without text, numbers them and adds their tokens to
 * all_tokens. */
static sg_status keep_segments(run *r, size_t first, sg_error *err)
{
    for (size_t i = first; i < r->out->n_segments; i++) {
        sg_whisper_segment *s = &r->out->segments[i];
        s->id = (int)i;
        if (s->start == s->end || (sg_whisper_has_vocab(r->m) && blank(s->text))) {
            s->text[0] = 0;
            s->n_tokens = 0;
            for (size_t w = 0; w < s->n_words; w++)
                free(s->words[w].word);
            free(s->words);
            s->words = NULL;
            s->n_words = 0;
        }
        if (!tb_push(&r->all, s->tokens, s->n_tokens))
            return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    return SG_OK;
}

/* tokenizer.encode(" " + initial_prompt.strip()) into all_tokens. */
static sg_status initial_prompt(run *r, sg_error *err)
{
    size_t len;
    const char *p = strip(r->o->initial_prompt, &len);
    char *text = malloc(len + 2);
    if (!text)
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    text[0] = ' ';
    memcpy(text + 1, p, len);
    text[len + 1] = 0;
    int32_t *ids = NULL;
    sg_status st = sg_whisper_encode_text(r->m, text, &ids, &r->n_init, err);
    free(text);
    if (st == SG_OK && !tb_push(&r->all, ids, r->n_init))
        st = sg_error_set(err, SG_ENOMEM, "out of memory");
    free(ids);
    return st;
}

static sg_status encode_window(run *r, const float *win, sg_error *err)
{
    const double t0 = sg_now_ms();
    sg_status st = sg_whisper_encode(r->m, win, 2 * r->I->n_audio_ctx, NULL, err);
    r->out->encode_ms += sg_now_ms() - t0;
    return st;
}

static sg_status transcribe_run(run *r, const float *mel, int frames, int content_frames,
                                float *win, dres *d, sg_error *err)
{
    const sg_whisper_info *I = r->I;
    const sg_whisper_transcribe_opts *o = r->o;
    const int nf = 2 * I->n_audio_ctx; /* N_FRAMES */
    sg_status st;
    /* language: detect_language on pad_or_trim(mel, N_FRAMES), the padded mel's first frames */
    int32_t lang = I->multilingual ? o->language : -1;
    int encoded_seek = -1, encoded_size = -1; /* the window the model holds */
    if (I->multilingual && lang == -1) {
        window(mel, frames, I->n_mels, 0, nf, nf, win);
        if ((st = encode_window(r, win, err)) != SG_OK ||
            (st = sg_whisper_detect_language(r->m, &lang, NULL, err)) != SG_OK)
            return st;
        encoded_seek = 0;
        encoded_size = nf;
    }
    r->out->language = lang;
    if (o->initial_prompt && (st = initial_prompt(r, err)) != SG_OK)
        return st;
    r->q.language = lang;
    r->sot_seq[0] = I->sot;
    r->sot_seq[1] = lang;
    r->sot_seq[2] = o->translate ? I->translate : I->transcribe;
    r->n_sot = I->multilingual ? 3 : 1;

    int seek = 0;
    while (seek < content_frames) {
        const int segment_size = content_frames - seek < nf ? content_frames - seek : nf;
        if (!(encoded_seek == seek && encoded_size == segment_size)) {
            window(mel, frames, I->n_mels, seek, segment_size, nf, win);
            if ((st = encode_window(r, win, err)) != SG_OK)
                return st;
            encoded_seek = seek;
            encoded_size = segment_size;
        }
        r->out->n_windows++;
        r->q.n_prompt = r->all.n - r->prompt_reset_since;
        r->q.prompt = r->q.n_prompt ? r->all.v + r->prompt_reset_since : NULL;
        if ((st = decode_with_fallback(r, d, err)) != SG_OK)
            return st;

        /* no voice activity: skip the window unless the log-prob is high enough */
        bool skip = d->r.no_speech_prob > o->no_speech_threshold;
        if (o->logprob_threshold != -INFINITY && d->r.avg_logprob > o->logprob_threshold)
            skip = false;
        if (skip) {
            seek += segment_size;
            continue;
        }
        const size_t first = r->out->n_segments;
        int next_seek = seek;
        bool single_ending = false;
        if ((st = split_window(r, d, seek, segment_size, &next_seek, &single_ending, err)) !=
            SG_OK)
            return st;
        if (o->word_timestamps &&
            (st = word_timestamps(r, r->out->segments + first, r->out->n_segments - first, seek,
                                  segment_size, single_ending, &next_seek, err)) != SG_OK)
            return st;
        if ((st = keep_segments(r, first, err)) != SG_OK)
            return st;
        if (!o->condition_on_previous_text || d->temperature > 0.5f)
            r->prompt_reset_since = r->all.n; /* no prompt after a high temperature */
        seek = next_seek;
    }
    const size_t n = r->all.n - r->n_init;
    r->out->text = decode_openai(r->m, n ? r->all.v + r->n_init : NULL, n);
    return r->out->text ? SG_OK : sg_error_set(err, SG_ENOMEM, "out of memory");
}

sg_status sg_whisper_transcribe(sg_whisper *m, const float *mel, int frames, int content_frames,
                                const sg_whisper_transcribe_opts *opts,
                                sg_whisper_transcript *out, sg_error *err)
{
    if (!out)
        return sg_error_set(err, SG_EINVAL, "transcribe: out is NULL");
    memset(out, 0, sizeof *out);
    out->language = -1;
    if (!m)
        return sg_error_set(err, SG_EINVAL, "transcribe: model is NULL");
    sg_whisper_transcribe_opts defaults;
    sg_whisper_transcribe_opts_default(&defaults);
    if (!opts)
        opts = &defaults;
    sg_status st = check_opts(m, mel, frames, content_frames, opts, err);
    if (st != SG_OK)
        return st;
    run r = {0};
    r.m = m;
    r.I = sg_whisper_get_info(m);
    r.o = opts;
    r.out = out;
    const sg_whisper_transcribe_opts *t = opts->n_temperatures ? opts : &defaults;
    r.n_temps = t->n_temperatures;
    memcpy(r.temps, t->temperatures, sizeof r.temps);
    sg_whisper_rng_seed(&r.rng, opts->seed);
    r.q.translate = opts->translate;
    r.q.without_timestamps = opts->without_timestamps;
    r.q.rng = &r.rng;
    r.q.sample_len = opts->sample_len;
    r.q.max_initial_timestamp = opts->max_initial_timestamp;
    out->duration = (float)(content_frames * 160.0 / 16000.0);

    const int nf = 2 * r.I->n_audio_ctx;
    float *win = malloc((size_t)r.I->n_mels * nf * sizeof *win);
    dres d = {0};
    st = win ? transcribe_run(&r, mel, frames, content_frames, win, &d, err)
             : sg_error_set(err, SG_ENOMEM, "out of memory");
    sg_whisper_result_free(&d.r);
    free(win);
    free(r.all.v);
    return st;
}
