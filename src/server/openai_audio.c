/* POST /v1/audio/transcriptions and /v1/audio/translations: multipart/form-data in
 * (server/multipart.h), openai/whisper's transcribe() (models/whisper_transcribe.h, through the
 * ASR backend's transcribe_full), OpenAI's response formats out (agent/transcript_format.h). */
#include "server/openai.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/transcript_format.h"
#include "base/clock.h"
#include "media/audio.h"
#include "models/whisper_transcribe.h"
#include "server/multipart.h"

/* What the handler parsed, for the worker. */
typedef struct v1_audio {
    uint8_t *body;              /* the request body the parts point into (owned) */
    sg_multipart mp;
    const sg_multipart_part *file;
    char *prompt;               /* the "prompt" field, NUL-terminated (opts.initial_prompt) */
    const sg_asr_backend *asr;
    sg_whisper_transcribe_opts opts;
    sg_transcript_format format;
    sg_transcript_format_opts fopts;
} v1_audio;

static void v1_audio_free(void *p)
{
    v1_audio *a = p;
    if (!a)
        return;
    sg_multipart_free(&a->mp);
    free(a->prompt);
    free(a->body);
    free(a);
}

/* A plain field's value as a C string into buf (false after the 400: too long, a NUL, a file). */
static bool field(sg_req *r, const sg_multipart_part *p, char *buf, size_t cap)
{
    buf[0] = 0;
    if (!p)
        return true;
    if (p->filename || p->len >= cap || memchr(p->data, 0, p->len)) {
        sg_req_error(r, 400, "INVALID_REQUEST", "form field \"%s\" must be a short text value",
                     p->name);
        return false;
    }
    memcpy(buf, p->data, p->len);
    buf[p->len] = 0;
    return true;
}

static void work_transcribe(sg_req *r)
{
    v1_audio *a = r->in.v1_audio;
    sg_server *srv = r->srv;
    sg_error err = {0};
    sg_audio au;
    const double t0 = sg_now_ms();
    sg_status st = sg_audio_decode(a->file->data, a->file->len, SG_AUDIO_AUTO, 0, 0, &au, &err);
    if (st != SG_OK) {
        sg_req_fail(r, st, "INVALID_AUDIO", &err);
        return;
    }
    sg_whisper_transcript t;
    st = a->asr->transcribe_full(a->asr->self, au.samples, au.n, &a->opts, &t, &err);
    sg_audio_free(&au);
    char *out = NULL;
    size_t len = 0;
    if (st == SG_OK) {
        sg_whisper *m = a->asr->whisper(a->asr->self);
        a->fopts.language = t.language >= 0 ? sg_whisper_language_code(m, t.language) : NULL;
        st = sg_transcript_format_write(&t, a->format, &a->fopts, &out, &len, &err);
    }
    sg_whisper_transcript_free(&t);
    if (st != SG_OK) {
        sg_req_fail(r, st, "INVALID_REQUEST", &err);
        return;
    }
    sg_metrics_record(srv->metrics, SG_STAGE_ASR, sg_now_ms() - t0);
    r->text = out;
    r->text_len = len;
    r->text_type = sg_transcript_format_content_type(a->format);
    r->status = 200;
    r->done = true;
}

/* temperature t: openai/whisper's fallback from t in steps of 0.2 up to 1.0 (0: the six). */
static void temperatures(sg_whisper_transcribe_opts *o, double t)
{
    o->n_temperatures = 0;
    for (int i = 0; i < SG_WHISPER_MAX_TEMPERATURES; i++) {
        double v = t + 0.2 * i;
        if (v > 1.0 + 1e-6)
            break;
        o->temperatures[o->n_temperatures++] = (float)v;
    }
}

bool sg_v1_transcription_parse(sg_req *r)
{
    const bool translate = strstr(r->route->path, "translations") != NULL;
    v1_audio *a = calloc(1, sizeof *a);
    if (!a) {
        sg_req_error(r, 503, "OVERLOADED", "out of memory");
        return false;
    }
    r->in.v1_audio = a;
    r->in.v1_audio_free = v1_audio_free;
    size_t blen = 0;
    sg_req_take_body(r, &a->body, &blen);
    sg_error err = {0};
    sg_status st = sg_multipart_parse(a->body, blen, r->content_type, NULL, &a->mp, &err);
    if (st != SG_OK) {
        sg_req_error(r, st == SG_ENOMEM ? 503 : 400, st == SG_ENOMEM ? "OVERLOADED" : "INVALID_REQUEST",
                     "%s (send multipart/form-data with a \"file\" part)", err.msg);
        return false;
    }
    a->file = sg_multipart_find(&a->mp, "file");
    if (!a->file || a->file->len == 0) {
        sg_req_error(r, 400, "INVALID_REQUEST", "the form has no \"file\" part with the audio");
        return false;
    }
    char model[128], language[64], fmt[32], temp[32];
    char *prompt = NULL;
    const sg_multipart_part *pp = sg_multipart_find(&a->mp, "prompt");
    if (!field(r, sg_multipart_find(&a->mp, "model"), model, sizeof model) ||
        !field(r, sg_multipart_find(&a->mp, "language"), language, sizeof language) ||
        !field(r, sg_multipart_find(&a->mp, "response_format"), fmt, sizeof fmt) ||
        !field(r, sg_multipart_find(&a->mp, "temperature"), temp, sizeof temp))
        return false;
    json_t *mj = model[0] ? json_string(model) : NULL;
    const void *backend = NULL;
    bool ok = sg_v1_pick_model(r, mj, SG_V1_TRANSCRIBE, &backend);
    json_decref(mj);
    if (!ok)
        return false;
    a->asr = backend;
    if (!a->asr->transcribe_full || !a->asr->whisper) {
        sg_req_error(r, 503, "MODEL_UNAVAILABLE", "this speech model has no transcribe()");
        return false;
    }
    sg_whisper *m = a->asr->whisper(a->asr->self);
    const sg_whisper_info *I = sg_whisper_get_info(m);
    sg_whisper_transcribe_opts_default(&a->opts);
    a->opts.translate = translate;
    if (translate && !I->multilingual) {
        sg_req_error(r, 400, "INVALID_REQUEST", "translation needs a multilingual model; '%s' is "
                     "English-only", r->in.v1_model);
        return false;
    }
    if (language[0] && I->multilingual) {
        const char *code = sg_whisper_language_lookup(language);
        a->opts.language = code ? sg_whisper_language_token(m, code) : -1;
        if (a->opts.language < 0) {
            sg_req_error(r, 400, "INVALID_REQUEST", "unknown language '%s' (an ISO-639-1 code such "
                         "as en, de, fr)", language);
            return false;
        }
    }
    if (fmt[0] && sg_transcript_format_parse(fmt, &a->format, &err) != SG_OK) {
        sg_req_error(r, 400, "INVALID_REQUEST", "%s", err.msg);
        return false;
    }
    if (!fmt[0])
        a->format = SG_TRANSCRIPT_JSON;
    if (temp[0]) {
        char *end;
        double t = strtod(temp, &end);
        if (*end || !(t >= 0 && t <= 1)) {
            sg_req_error(r, 400, "INVALID_REQUEST", "\"temperature\" must be a number in 0..1");
            return false;
        }
        temperatures(&a->opts, t);
    }
    for (const sg_multipart_part *g = sg_multipart_next(&a->mp, NULL, "timestamp_granularities[]"); g;
         g = sg_multipart_next(&a->mp, g, "timestamp_granularities[]")) {
        char v[16];
        unsigned bit;
        if (!field(r, g, v, sizeof v))
            return false;
        if (sg_transcript_granularity_parse(v, &bit, &err) != SG_OK) {
            sg_req_error(r, 400, "INVALID_REQUEST", "%s", err.msg);
            return false;
        }
        a->fopts.granularities |= bit;
    }
    if (a->fopts.granularities && a->format != SG_TRANSCRIPT_VERBOSE_JSON) {
        sg_req_error(r, 400, "INVALID_REQUEST", "timestamp_granularities[] needs response_format "
                     "verbose_json");
        return false;
    }
    a->opts.word_timestamps = (a->fopts.granularities & SG_TRANSCRIPT_GRAN_WORD) != 0;
    a->fopts.translate = translate;
    if (pp) {
        if (pp->filename || pp->len > 4096 || memchr(pp->data, 0, pp->len)) {
            sg_req_error(r, 400, "INVALID_REQUEST", "\"prompt\" must be text of at most 4096 bytes");
            return false;
        }
        if (!(prompt = malloc(pp->len + 1))) {
            sg_req_error(r, 503, "OVERLOADED", "out of memory");
            return false;
        }
        memcpy(prompt, pp->data, pp->len);
        prompt[pp->len] = 0;
        a->prompt = prompt;
        a->opts.initial_prompt = prompt;
    }
    return true;
}

void sg_handle_v1_transcriptions(sg_req *r)
{
    if (sg_v1_transcription_parse(r))
        sg_req_submit(r, work_transcribe);
}
