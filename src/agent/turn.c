/* The turn and the frame ingest path. Each stage is timed; a stage that has no model uses the
 * honest fallback (pixel statistics, rule-based responder) and says so in metadata. */
#include "agent/turn.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "agent/actions.h"
#include "agent/cache.h"
#include "agent/ocr.h"
#include "agent/responder.h"
#include "agent/safety.h"
#include "base/clock.h"

void sg_visual_memory_init(sg_visual_memory *m)
{
    memset(m, 0, sizeof *m);
    sg_keyframe_gate_init(&m->gate, SG_KEYFRAME_DIFF_TAU, SG_KEYFRAME_MIN_GAP);
}

void sg_visual_memory_free(sg_visual_memory *m)
{
    json_decref(m->scene);
    m->scene = NULL;
    free(m->embedding);
    m->embedding = NULL;
    free(m->ocr_text);
    m->ocr_text = NULL;
}

static double round3(double x) { return (double)(long long)(x * 1000.0 + (x >= 0 ? 0.5 : -0.5)) / 1000.0; }

/* OCR on a keyframe (see sg_frame_ingest_ocr): the regions the describer's statistics show on img
 * (the decode the vision stage used), read on the frame at full size. Sets m->ocr_text and the
 * scene's "text"; never fails the frame. */
static void frame_ocr(const sg_backends *b, sg_visual_memory *m, const uint8_t *bytes, size_t len,
                      const sg_image *img, const sg_stroke_map *map, bool read_text, json_t *scene,
                      sg_frame_result *out)
{
    free(m->ocr_text); /* a new keyframe: what the last one said is no longer in view */
    m->ocr_text = NULL;
    sg_ocr_region regions[SG_OCR_MAX_REGIONS];
    int n = sg_ocr_find_regions(map, img, regions, SG_OCR_MAX_REGIONS);
    if (n == 0 && !read_text)
        return; /* a frame without text costs nothing more */
    const double t0 = sg_now_ms();
    sg_image full;
    sg_error err = {0};
    bool same = img->width == img->src_width && img->height == img->src_height;
    if (!same && sg_image_decode(bytes, len, 0, &full, &err) != SG_OK)
        return;
    sg_ocr_result r;
    /* asked to read but no region found at the describer's scale: look again at full size */
    sg_status st = b->ocr->read(b->ocr->self, same ? img : &full, n ? regions : NULL, n, &r, &err);
    if (!same)
        sg_image_free(&full);
    if (st != SG_OK)
        return;
    size_t tl = strlen(r.text);
    if (tl > SG_OCR_TEXT_MAX) { /* cut on a character boundary */
        tl = SG_OCR_TEXT_MAX;
        while (tl > 0 && ((unsigned char)r.text[tl] & 0xC0) == 0x80)
            tl--;
        r.text[tl] = '\0';
    }
    m->ocr_text = strdup(r.text);
    json_t *j = sg_ocr_result_to_json(&r);
    if (j && scene) {
        json_object_del(j, "timings_ms");
        json_object_set_new(scene, "text", j);
    } else {
        json_decref(j);
    }
    sg_ocr_result_free(&r);
    out->ocr_ms = sg_now_ms() - t0;
}

sg_status sg_frame_ingest(const sg_backends *b, sg_visual_memory *m, const uint8_t *bytes,
                          size_t len, bool force, sg_frame_result *out, sg_error *err)
{
    return sg_frame_ingest_ocr(b, m, bytes, len, force, false, out, err);
}

sg_status sg_frame_ingest_ocr(const sg_backends *b, sg_visual_memory *m, const uint8_t *bytes,
                              size_t len, bool force, bool read_text, sg_frame_result *out,
                              sg_error *err)
{
    memset(out, 0, sizeof *out);
    out->ocr_ms = -1;
    double t0 = sg_now_ms();
    int need = b->vision ? b->vision->min_short_side : SG_DESCRIBE_MIN_SIDE;
    sg_image img;
    sg_status st = sg_image_decode(bytes, len, need, &img, err);
    if (st != SG_OK)
        return st;
    float thumb[64];
    sg_image_thumb8(&img, thumb);
    float prev_key[64];
    bool had_key = m->gate.keyframes > 0;
    memcpy(prev_key, m->gate.key, sizeof prev_key);
    sg_keyframe_result kr = sg_keyframe_gate_push(&m->gate, thumb, force);
    m->frames++;
    out->width = img.src_width;
    out->height = img.src_height;
    out->decode_ms = sg_now_ms() - t0;
    out->keyframe = kr.keyframe;
    if (!kr.keyframe) {
        sg_image_free(&img);
        return SG_OK;
    }
    m->keyframes++;
    double t1 = sg_now_ms();
    json_t *scene = NULL;
    sg_stroke_map map = {0};
    if (b->vision) {
        sg_vision_result vr;
        memset(&vr, 0, sizeof vr);
        st = b->vision->analyze(b->vision->self, &img, &vr, err);
        if (st != SG_OK) {
            sg_image_free(&img);
            return st;
        }
        snprintf(m->visual_context, sizeof m->visual_context, "%s", vr.visual_context);
        scene = vr.scene ? vr.scene : json_object();
        m->pixels_valid = false;
        free(m->embedding);
        m->embedding = vr.embedding; /* kept so later text queries reuse it at no cost */
        m->embedding_dim = vr.embedding ? vr.embedding_dim : 0;
    } else {
        sg_describe_image_map(&img, had_key ? prev_key : NULL, &m->pixels, b->ocr ? &map : NULL);
        m->pixels_valid = true;
        snprintf(m->visual_context, sizeof m->visual_context, "%s", m->pixels.summary);
        scene = sg_scene_to_json(&m->pixels);
    }
    out->vision_ms = sg_now_ms() - t1;
    if (b->ocr && scene) {
        if (!map.cells) { /* a vision model ran: the describer's statistics for the text test */
            sg_scene pixels;
            sg_describe_image_map(&img, NULL, &pixels, &map);
        }
        frame_ocr(b, m, bytes, len, &img, &map, read_text, scene, out);
    }
    sg_stroke_map_free(&map);
    sg_image_free(&img);
    if (!scene)
        return sg_error_set(err, SG_ENOMEM, "out of memory building the scene");
    json_decref(m->scene);
    m->scene = scene;
    m->has_scene = true;
    out->scene = json_incref(scene);
    return SG_OK;
}

json_t *sg_backends_models_json(const sg_backends *b)
{
    return json_pack("{s:o,s:o,s:o,s:o,s:o}",
                     "vision", b->vision ? json_string(b->vision->name) : json_null(),
                     "asr", b->asr ? json_string(b->asr->name) : json_null(),
                     "vad", b->vad ? json_string(b->vad->name) : json_null(),
                     "llm", b->llm ? json_string(b->llm->name) : json_null(),
                     "ocr", b->ocr ? json_string(b->ocr->name) : json_null());
}

sg_status sg_turn_transcribe(const sg_backends *b, const sg_audio *audio, const char *language,
                             char **transcript, bool *speech, double *vad_ms, double *asr_ms,
                             sg_error *err)
{
    return sg_turn_transcribe_with(b, b->asr, audio, language, transcript, speech, vad_ms, asr_ms,
                                   err);
}

sg_status sg_turn_transcribe_with(const sg_backends *b, const sg_asr_backend *asr,
                                  const sg_audio *audio, const char *language, char **transcript,
                                  bool *speech, double *vad_ms, double *asr_ms, sg_error *err)
{
    *transcript = NULL;
    *speech = false;
    *vad_ms = -1;
    *asr_ms = -1;
    sg_speech_segment *segs = NULL;
    size_t nsegs = 0;
    if (b->vad) {
        double t0 = sg_now_ms();
        sg_status st = b->vad->segments(b->vad->self, audio->samples, audio->n, &segs, &nsegs, err);
        *vad_ms = sg_now_ms() - t0;
        if (st != SG_OK)
            return st;
        if (nsegs == 0) { /* no speech: no ASR work at all */
            free(segs);
            *transcript = strdup("");
            return *transcript ? SG_OK : sg_error_set(err, SG_ENOMEM, "out of memory");
        }
    }
    if (!asr) {
        free(segs);
        return sg_error_set(err, SG_EUNSUPPORTED,
                            "speech recognition is not available: no ASR model is loaded "
                            "(start sg-edge with --asr-model)");
    }
    *speech = true;
    double t1 = sg_now_ms();
    sg_status st;
    if (nsegs && asr->transcribe_segments) {
        /* the backend trims the silence and cuts windows at the pauses itself */
        st = asr->transcribe_segments(asr->self, audio->samples, audio->n, segs, nsegs,
                                         language, transcript, err);
    } else {
        /* a backend without segment support sees the span from the first speech start to the
         * last speech end (the whole audio without a VAD) */
        size_t from = 0, to = audio->n;
        if (nsegs) {
            double f = segs[0].start_s * SG_AUDIO_RATE, e = segs[nsegs - 1].end_s * SG_AUDIO_RATE;
            from = f > 0 ? (size_t)f : 0;
            to = e > 0 ? (size_t)e : 0;
            if (to > audio->n)
                to = audio->n;
            if (from >= to)
                from = 0;
        }
        st = asr->transcribe(asr->self, audio->samples + from, to - from, language,
                                transcript, err);
    }
    *asr_ms = sg_now_ms() - t1;
    free(segs);
    return st;
}

/* text with its line breaks as " / " (malloc'ed; NULL when out of memory) */
static char *one_line(const char *text)
{
    size_t n = 0;
    for (const char *p = text; *p; p++)
        n += *p == '\n' ? 3 : 1;
    char *o = malloc(n + 1), *q = o;
    if (!o)
        return NULL;
    for (const char *p = text; *p; p++) {
        if (*p == '\n') {
            memcpy(q, " / ", 3);
            q += 3;
        } else {
            *q++ = *p;
        }
    }
    *q = '\0';
    return o;
}

static json_t *latency_json(const sg_turn_timing *t, bool streamed)
{
    json_t *o = json_object();
    json_object_set_new(o, "vad", json_real(round3(t->vad > 0 ? t->vad : 0)));
    json_object_set_new(o, "asr", json_real(round3(t->asr > 0 ? t->asr : 0)));
    json_object_set_new(o, "vision", json_real(round3(t->vision > 0 ? t->vision : 0)));
    json_object_set_new(o, "llm", json_real(round3(t->llm > 0 ? t->llm : 0)));
    json_object_set_new(o, "ocr", json_real(round3(t->ocr > 0 ? t->ocr : 0)));
    json_object_set_new(o, "total", json_real(round3(t->total)));
    if (streamed) {
        json_object_set_new(o, "first_token",
                            t->first_token >= 0 ? json_real(round3(t->first_token)) : json_null());
        json_object_set_new(o, "first_audio",
                            t->first_audio >= 0 ? json_real(round3(t->first_audio)) : json_null());
    }
    return o;
}

static bool blank(const char *s)
{
    if (!s)
        return true;
    for (; *s; s++)
        if (*s != ' ' && *s != '\t' && *s != '\n' && *s != '\r')
            return false;
    return true;
}

/* 1. The user's words: audio wins over text. *words is in->text or out->transcript. */
static sg_status hear(const sg_backends *b, const sg_turn_input *in, sg_turn_output *out,
                      json_t *warnings, const char **words, sg_error *err)
{
    *words = in->text;
    if (!in->audio)
        return SG_OK;
    const bool fallback = in->degrade && in->degrade->asr_fallback && b->asr && b->asr_fallback;
    sg_status st = sg_turn_transcribe_with(b, fallback ? b->asr_fallback : b->asr, in->audio,
                                           in->language, &out->transcript, &out->speech,
                                           &out->t.vad, &out->t.asr, err);
    out->degraded.asr_fallback = fallback && out->t.asr >= 0;
    if (st == SG_EUNSUPPORTED && !blank(in->text)) {
        /* Degrade honestly: answer the typed words and say the audio was not used. */
        json_array_append_new(warnings, json_string("audio ignored: no ASR model is loaded"));
        return SG_OK;
    }
    if (st != SG_OK)
        return st;
    if (out->speech && !blank(out->transcript))
        *words = out->transcript;
    else if (!out->speech)
        json_array_append_new(warnings, json_string("no speech detected in the audio"));
    return SG_OK;
}

/* 4. The language backend (through the cache) or, without one, the rule-based responder: the
 * answer into out->response. *intent: the responder's intent; *cached: the cache answered. */
static sg_status answer(const sg_backends *b, const sg_turn_input *in, const char *prompt,
                        const char *visual, const sg_scene *pixels, const char *ocr_text,
                        sg_answer_stream *as,
                        sg_turn_output *out, const char **intent, bool *cached, sg_error *err)
{
    double t1 = sg_now_ms();
    const sg_turn_degrade *dg = in->degrade;
    out->degraded.llm_rule_based = b->llm && dg && dg->llm_rule_based;
    if (b->llm && !out->degraded.llm_rule_based) {
        int max_tokens = in->max_tokens > 0 ? in->max_tokens : SG_DEFAULT_MAX_TOKENS;
        if (dg && dg->llm_max_tokens > 0 && dg->llm_max_tokens < max_tokens)
            max_tokens = out->degraded.llm_max_tokens = dg->llm_max_tokens;
        const char *system = in->system ? in->system : SG_SYSTEM_PROMPT;
        /* a sampled answer is never the cache's: asked again, it may differ */
        const bool sampled = in->temperature > 0 || in->no_cache;
        out->response = sampled ? NULL : sg_cache_get(b->cache, system, prompt, max_tokens);
        *cached = out->response != NULL;
        if (!*cached) {
            const sg_llm_params lp = {max_tokens, in->temperature, in->top_p, in->seed};
            sg_status st = b->llm->generate(b->llm->self, system, prompt, &lp,
                                            as ? sg_answer_stream_piece : NULL, as,
                                            &out->response, &out->usage, err);
            if (st != SG_OK)
                return st;
            if (!sampled && (!as || !sg_answer_stream_stopped(as))) /* never an answer cut short */
                sg_cache_put(b->cache, system, prompt, max_tokens, out->response);
        }
    } else {
        sg_responder_input ri = {out->query, visual, pixels, time(NULL), b->ocr != NULL, ocr_text};
        sg_intent it;
        out->response = sg_responder_answer(&ri, &it);
        *intent = sg_intent_name(it);
        if (!out->response)
            return sg_error_set(err, SG_ENOMEM, "out of memory");
    }
    out->t.llm = sg_now_ms() - t1;
    return SG_OK;
}

/* metadata.degraded: {"stage": "step"} for each step taken to keep within the latency budget;
 * NULL when none was. */
static json_t *degraded_json(const sg_turn_degrade *d)
{
    if (!d->asr_fallback && !d->llm_rule_based && d->llm_max_tokens <= 0 && !d->vision_remembered)
        return NULL;
    json_t *o = json_object();
    if (d->asr_fallback)
        json_object_set_new(o, "asr", json_string("fallback-model"));
    if (d->llm_rule_based)
        json_object_set_new(o, "llm", json_string("rule-based"));
    else if (d->llm_max_tokens > 0)
        json_object_set_new(o, "llm", json_string("fewer-tokens"));
    if (d->vision_remembered)
        json_object_set_new(o, "vision", json_string("remembered-scene"));
    return o;
}

static json_t *metadata_json(const sg_backends *b, const sg_turn_output *out,
                             const sg_safety_result *safety, bool cached, const char *intent,
                             json_t *warnings, bool streamed)
{
    json_t *meta = json_object();
    json_object_set_new(meta, "cloud_offload", json_false());
    json_object_set_new(meta, "safety_blocked", json_boolean(safety->blocked));
    if (safety->blocked) {
        json_object_set_new(meta, "safety_reason", json_string(safety->reason));
        json_object_set_new(meta, "safety_category", json_string(safety->category));
    }
    json_object_set_new(meta, "cached", json_boolean(cached));
    json_object_set_new(meta, "latency_ms", latency_json(&out->t, streamed));
    json_t *models = sg_backends_models_json(b);
    if (out->degraded.asr_fallback) /* the model that transcribed this turn */
        json_object_set_new(models, "asr", json_string(b->asr_fallback->name));
    json_object_set_new(meta, "models", models);
    const bool rules = !b->llm || out->degraded.llm_rule_based;
    json_object_set_new(meta, "fallbacks",
                        json_pack("{s:s?,s:s?}", "vision", b->vision ? NULL : "pixel-stats",
                                  "llm", rules ? "rule-based" : NULL));
    json_t *degraded = degraded_json(&out->degraded);
    if (degraded)
        json_object_set_new(meta, "degraded", degraded);
    if (intent)
        json_object_set_new(meta, "intent", json_string(intent));
    if (json_array_size(warnings))
        json_object_set(meta, "warnings", warnings);
    return meta;
}

sg_status sg_turn_run(const sg_backends *b, sg_visual_memory *m, const sg_turn_input *in,
                      sg_turn_output *out, sg_error *err)
{
    memset(out, 0, sizeof *out);
    out->t.vad = out->t.asr = out->t.vision = out->t.llm = out->t.ocr = -1;
    out->t.first_token = out->t.first_audio = -1;
    const double t0 = sg_now_ms();
    json_t *warnings = json_array();
    char *prompt = NULL;
    const char *words;
    const sg_turn_stream *stream = in->stream;
    sg_answer_stream *as = NULL;
    if (stream && !(as = sg_answer_stream_new(stream))) {
        json_decref(warnings);
        return sg_error_set(err, SG_ENOMEM, "out of memory");
    }

    /* 1. The user's words. */
    sg_status st = hear(b, in, out, warnings, &words, err);
    if (st != SG_OK)
        goto done;
    if (stream && stream->on_stage && out->transcript) {
        json_t *d = json_pack("{s:s,s:b}", "text", out->transcript, "speech", out->speech);
        if (d)
            stream->on_stage(stream->ud, "transcript", d);
        json_decref(d);
    }

    /* 2. Vision: an image in the request wins over the remembered scene, unless the turn is
     * degraded to the remembered scene (only when there is one). */
    out->degraded.vision_remembered = in->image && in->degrade && in->degrade->vision_remembered &&
                                      m->has_scene;
    if (in->image && !out->degraded.vision_remembered) {
        /* a question that asks to read has the frame read even where the describer saw no
         * text-like area */
        sg_intent it = sg_intent_detect(words);
        bool read_text = b->ocr && (it == SG_INTENT_READ || it == SG_INTENT_TRANSLATE);
        sg_frame_result fr;
        st = sg_frame_ingest_ocr(b, m, in->image, in->image_len, true, read_text, &fr, err);
        if (st != SG_OK)
            goto done;
        json_decref(fr.scene);
        out->t.vision = fr.decode_ms + fr.vision_ms + (fr.ocr_ms > 0 ? fr.ocr_ms : 0);
        out->t.ocr = fr.ocr_ms;
    }
    const char *visual = m->has_scene ? m->visual_context : SG_NO_VISUAL_INPUT;
    const sg_scene *pixels = m->has_scene && m->pixels_valid ? &m->pixels : NULL;
    if (stream && stream->on_stage) {
        json_t *d = json_pack("{s:s,s:b,s:O?}", "visual_context", visual, "new_frame",
                              in->image != NULL, "scene", m->has_scene ? m->scene : NULL);
        if (d)
            stream->on_stage(stream->ud, "vision", d);
        json_decref(d);
    }
    if (blank(words) && !m->has_scene) {
        st = in->audio && !out->speech
                 ? sg_error_set(err, SG_EINVAL, "no speech was detected in the audio and there is "
                                "no text, image or earlier frame to answer from")
                 : sg_error_set(err, SG_EINVAL, "a query needs text_query, audio_base64, "
                                "image_base64 or an earlier frame in this session");
        goto done;
    }
    out->query = strdup(blank(words) ? "What am I looking at?" : words);
    if (!out->query) {
        st = sg_error_set(err, SG_ENOMEM, "out of memory");
        goto done;
    }

    /* 3. Safety on the way in: a blocked request never reaches the language model. */
    sg_safety_result safety;
    sg_safety_check(out->query, &safety);

    /* 4. Prompt and language backend; 5. safety on the way out. */
    /* what OCR read in view goes to the language model as its own line, its lines joined */
    char *seen = m->has_scene && m->ocr_text && m->ocr_text[0] ? one_line(m->ocr_text) : NULL;
    const char *hist = in->history && in->history[0] ? in->history : NULL;
    int pn = asprintf(&prompt, "Visual context: %s\n%s%s%s%s%sUser query: %s", visual,
                      seen ? "Text in view: " : "", seen ? seen : "", seen ? "\n" : "",
                      hist ? hist : "", hist && hist[strlen(hist) - 1] != '\n' ? "\n" : "",
                      out->query);
    free(seen);
    if (pn < 0) {
        prompt = NULL;
        st = sg_error_set(err, SG_ENOMEM, "out of memory");
        goto done;
    }
    const char *intent = NULL;
    bool cached = false;
    if (!safety.blocked) {
        st = answer(b, in, prompt, visual, pixels, m->has_scene ? m->ocr_text : NULL, as, out,
                    &intent, &cached, err);
        if (st != SG_OK)
            goto done;
        sg_safety_check(out->response, &safety);
    }

    /* 6. Actions (none when blocked: the category's fallback sentence answers). */
    json_t *actions;
    if (safety.blocked) {
        free(out->response);
        out->response = strdup(sg_safety_fallback_for(safety.category));
        if (!out->response) {
            st = sg_error_set(err, SG_ENOMEM, "out of memory");
            goto done;
        }
        actions = json_array();
    } else {
        actions = sg_actions_parse(b->skills, out->response);
        if (!actions)
            actions = json_array();
    }
    out->blocked = safety.blocked;
    if (as) {
        /* the rest of the answer (or, when the moderation replaced it, a reset and the fallback) */
        st = sg_answer_stream_end(as, out->response, &out->stopped, err);
        if (st != SG_OK || out->stopped) {
            json_decref(actions);
            goto done;
        }
        const double ft = sg_answer_stream_first_text_ms(as);
        out->t.first_token = ft >= 0 ? ft - t0 : -1;
        if (in->first_audio_at && *in->first_audio_at >= 0)
            out->t.first_audio = *in->first_audio_at - t0;
    }
    out->t.total = sg_now_ms() - t0;
    if (in->cloud_offload)
        json_array_append_new(warnings, json_string("cloud_offload requested but no cloud backend "
                                                    "is configured; answered on device"));
    json_t *meta = metadata_json(b, out, &safety, cached, intent, warnings, as != NULL);
    out->result = json_pack("{s:s,s:o,s:s,s:s,s:o,s:o,s:{s:s,s:s,s:s}}",
                            "query", out->query,
                            "transcript", out->transcript ? json_string(out->transcript) : json_null(),
                            "visual_context", visual,
                            "response", out->response ? out->response : "",
                            "actions", actions,
                            "metadata", meta,
                            "raw", "query", out->query, "visual_context", visual, "prompt", prompt);
    if (!out->result)
        st = sg_error_set(err, SG_ENOMEM, "out of memory building the result");
done:
    sg_answer_stream_free(as);
    free(prompt);
    json_decref(warnings);
    return st;
}

void sg_turn_output_free(sg_turn_output *o)
{
    json_decref(o->result);
    free(o->transcript);
    free(o->query);
    free(o->response);
    memset(o, 0, sizeof *o);
}
