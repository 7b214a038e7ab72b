/* The handlers of the API's own routes (../shared/API.md; the DAT routes are dat.c's, the
 * WebSocket ones ws_conn.c's): health, readiness, sessions, metrics, and the session work - frame
 * ingest, audio transcription and turns - parsed on the HTTP thread and run on the work queue. */
#include "server/internal.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "agent/tts.h"
#include "agent/turn.h"
#include "base/clock.h"

static double ms3(double x) { return (double)(long long)(x * 1000 + 0.5) / 1000; }

/* ---- health, readiness, sessions, metrics: answered on the HTTP thread ---------------------- */

static json_t *models_bools(const sg_backends *b)
{
    return json_pack("{s:b,s:b,s:b,s:b,s:b,s:b}", "vision", b->vision != NULL, "asr", b->asr != NULL,
                     "vad", b->vad != NULL, "llm", b->llm != NULL, "tts", b->tts != NULL, "ocr",
                     b->ocr != NULL);
}

/* model_names with the synthesiser's ("tts": null when SG_TTS=off). */
static json_t *model_names(const sg_backends *b)
{
    json_t *o = sg_backends_models_json(b);
    if (o)
        json_object_set_new(o, "tts", b->tts ? json_string(b->tts->name) : json_null());
    return o;
}

void sg_handle_health(sg_req *r)
{
    /* open to all for probes; what the server runs is told to key holders only */
    if (!sg_req_has_key(r)) {
        sg_req_json(r, 200, json_pack("{s:s}", "status", "ok"));
        return;
    }
    const sg_backends *b = r->srv->b;
    json_t *o = json_pack("{s:s,s:o,s:s,s:o,s:o,s:I,s:f}", "status", "ok", "models",
                          models_bools(b), "version", SG_VERSION, "model_names",
                          model_names(b), "fallbacks",
                          json_pack("{s:s?,s:s?}", "vision", b->vision ? NULL : "pixel-stats", "llm",
                                    b->llm ? NULL : "rule-based"),
                          "active_sessions", (json_int_t)sg_session_count(r->srv->sessions),
                          "uptime_s", ms3((sg_now_ms() - r->srv->started_ms) / 1000.0));
    sg_req_json(r, 200, o);
}

void sg_handle_ready(sg_req *r)
{
    sg_error err = {0};
    if (atomic_load(&r->srv->ready) && sg_session_store_ping(r->srv->sessions, &err) != SG_OK) {
        /* a load balancer takes the instance out while its session store is unreachable; the
         * ping reconnects, so it comes back by itself */
        sg_req_json(r, 503, json_pack("{s:s,s:s,s:s}", "status", "store_unavailable", "detail",
                                      err.msg, "error", "STORE_UNAVAILABLE"));
        r->retry_after = r->srv->cfg->retry_after_s;
    } else if (atomic_load(&r->srv->ready)) {
        sg_req_json(r, 200, json_pack("{s:s}", "status", "ready"));
    } else {
        sg_req_json(r, 503, json_pack("{s:s,s:s,s:s}", "status", "loading", "detail",
                                      "models are still loading", "error", "MODEL_UNAVAILABLE"));
        r->retry_after = 1;
    }
}

void sg_handle_sessions_create(sg_req *r)
{
    json_t *body;
    if (!sg_req_body(r, &body))
        return;
    json_decref(body);
    sg_privacy p;
    sg_session *s;
    if (!sg_req_new_session(r, &s, &p))
        return;
    sg_req_json(r, 200, json_pack("{s:s,s:{s:b,s:b,s:b}}", "session_id", s->id, "privacy",
                                  "store_raw_audio", p.store_raw_audio, "store_raw_frames",
                                  p.store_raw_frames, "store_transcripts", p.store_transcripts));
    sg_session_release(s);
}

void sg_handle_sessions_list(sg_req *r)
{
    sg_error err = {0};
    json_t *list = sg_session_list_json(r->srv->sessions, &err);
    if (!list) {
        sg_req_fail(r, err.code, "INVALID_REQUEST", &err);
        return;
    }
    sg_req_json(r, 200, json_pack("{s:o,s:I}", "sessions", list, "count",
                                  (json_int_t)json_array_size(list)));
}

void sg_handle_session_delete(sg_req *r)
{
    sg_error err = {0};
    if (!sg_session_delete(r->srv->sessions, r->session_id, &err)) {
        if (err.code == SG_OK)
            sg_req_unknown_session(r);
        else
            sg_req_fail(r, err.code, "INVALID_REQUEST", &err);
        return;
    }
    sg_ws_session_deleted(r->srv, r->session_id); /* its WebSockets close with 1000 */
    sg_telemetry_forget(r->srv->telemetry, r->session_id);
    sg_req_json(r, 200, json_pack("{s:s,s:s}", "status", "deleted", "session_id", r->session_id));
}

static json_t *stage_brief(sg_metrics *m, sg_stage st)
{
    sg_stage_stats s;
    sg_metrics_stage(m, st, &s);
    return json_pack("{s:I,s:f,s:f}", "count", (json_int_t)s.count, "avg_ms", ms3(s.avg), "max_ms",
                     ms3(s.max));
}

void sg_handle_metrics(sg_req *r)
{
    sg_server *s = r->srv;
    json_t *o = sg_metrics_json(s->metrics);
    json_object_set_new(o, "sessions",
                        json_pack("{s:I,s:I}", "created", (json_int_t)sg_session_created(s->sessions),
                                  "active", (json_int_t)sg_session_count(s->sessions)));
    json_object_set_new(o, "session_store", sg_session_store_stats_json(s->sessions));
    json_object_set_new(o, "websockets", json_pack("{s:i,s:i}", "open", sg_ws_open_count(s->ws),
                                                   "max", s->cfg->max_websockets));
    json_object_set_new(o, "queue", json_pack("{s:i,s:i,s:i}", "workers", s->cfg->workers, "depth",
                                              s->cfg->queue_depth, "pending",
                                              sg_workq_pending(s->workq)));
    json_object_set_new(o, "uptime_s", json_real(ms3((sg_now_ms() - s->started_ms) / 1000.0)));
    /* the Python runtime's key (its provider's display): a server drives no display */
    json_object_set_new(o, "display_available", json_false());
    sg_req_json(r, 200, o);
}

void sg_handle_metrics_summary(sg_req *r)
{
    sg_server *s = r->srv;
    sg_stage_stats fa, ff, e2e;
    sg_metrics_stage(s->metrics, SG_STAGE_INGEST_AUDIO, &fa);
    sg_metrics_stage(s->metrics, SG_STAGE_INGEST_FRAME, &ff);
    sg_metrics_stage(s->metrics, SG_STAGE_E2E, &e2e);
    bool degraded = (fa.count && fa.avg > 100.0) || (ff.count && ff.avg > 100.0) ||
                    (e2e.count && e2e.avg > 2000.0);
    json_t *o = json_pack(
        "{s:s,s:{s:o,s:o,s:o},s:{s:I,s:I,s:I}}", "health", degraded ? "degraded" : "ok",
        "dat_metrics", "ingest_audio", stage_brief(s->metrics, SG_STAGE_INGEST_AUDIO),
        "ingest_frame", stage_brief(s->metrics, SG_STAGE_INGEST_FRAME), "end_to_end_turn",
        stage_brief(s->metrics, SG_STAGE_E2E), "summary", "total_sessions",
        (json_int_t)sg_session_created(s->sessions), "active_sessions",
        (json_int_t)sg_session_count(s->sessions), "total_queries",
        (json_int_t)sg_metrics_counter(s->metrics, SG_COUNTER_QUERIES));
    sg_req_json(r, 200, o);
}

void sg_handle_metrics_prometheus(sg_req *r)
{
    sg_server *s = r->srv;
    sg_telemetry_snapshot clients;
    sg_telemetry_snapshot_at(s->telemetry, sg_now_ms() / 1000.0, &clients);
    sg_metrics_live live = {
        .active_sessions = sg_session_count(s->sessions),
        .created_sessions = sg_session_created(s->sessions),
        .open_websockets = sg_ws_open_count(s->ws),
        .uptime_s = (sg_now_ms() - s->started_ms) / 1000.0,
        .queue_jobs = sg_workq_pending(s->workq),
        .queue_capacity = s->cfg->workers + s->cfg->queue_depth,
        .clients = &clients,
    };
    sg_degrade_levels_now(s->degrade, sg_now_ms(), live.degraded_level);
    char *text = sg_metrics_prometheus(s->metrics, &live);
    if (!text) {
        sg_req_error(r, 503, "OVERLOADED", "out of memory");
        return;
    }
    r->text = text;
    r->text_type = "text/plain; version=0.0.4; charset=utf-8";
    r->status = 200;
    r->done = true;
}

/* ---- session work (runs on the work queue) ------------------------------------------------ */

double sg_frame_recorded(sg_server *srv, const sg_frame_result *fr, double t_start)
{
    sg_metrics_count(srv->metrics, SG_COUNTER_FRAMES, 1);
    if (fr->keyframe) {
        sg_metrics_count(srv->metrics, SG_COUNTER_KEYFRAMES, 1);
        sg_metrics_record(srv->metrics, SG_STAGE_VISION, fr->vision_ms);
    }
    double total = sg_now_ms() - t_start;
    sg_metrics_record(srv->metrics, SG_STAGE_INGEST_FRAME, total);
    return total;
}

/* A frame with the client-keyframe hint is forced through the gate: the client ran the same gate
 * (src/agent/keyframe.c) over every frame it captured, while this server only sees the uploads, so
 * re-checking min_gap would count uploads instead of camera frames (skipping ~2/3 of them) and a
 * diff to the previous upload would miss the change accumulated over the frames held back on the
 * phone. The gate still updates its thumbnails, so unhinted frames after it compare against it.
 * A client could hint every frame; that buys it no more than sending every frame as a query
 * image, and the per-session rate limit and the work queue bound both. */
json_t *sg_frame_work(sg_server *srv, sg_session *s, const uint8_t *image, size_t len,
                      bool client_keyframe, double t_start, sg_status *status, sg_error *err)
{
    sg_frame_result fr = {0};
    long index = 0;
    sg_status st = sg_session_lock(s, err);
    if (st == SG_OK) {
        st = sg_frame_ingest(srv->b, &s->vision, image, len, client_keyframe, &fr, err);
        if (st == SG_OK)
            st = sg_session_keep_frame(s, srv->cfg, image, len, err);
        if (st == SG_OK)
            sg_session_frame_counted(s);
        index = s->vision.frames;
        sg_session_unlock(s);
    }
    *status = st;
    if (st != SG_OK) {
        json_decref(fr.scene);
        return NULL;
    }
    double total = sg_frame_recorded(srv, &fr, t_start);
    json_t *o = json_pack("{s:s,s:s,s:b,s:b,s:o,s:I,s:{s:f,s:f,s:f}}", "session_id", s->id,
                          "status", fr.keyframe ? "processed" : "skipped", "keyframe", fr.keyframe,
                          "client_keyframe", client_keyframe, "scene",
                          fr.scene ? fr.scene : json_null(), "frame_index", (json_int_t)index,
                          "latency_ms", "decode", ms3(fr.decode_ms), "vision", ms3(fr.vision_ms),
                          "total", ms3(total));
    if (o && fr.ocr_ms >= 0) /* OCR ran on this keyframe (its text is in the scene) */
        json_object_set_new(json_object_get(o, "latency_ms"), "ocr", json_real(ms3(fr.ocr_ms)));
    if (!o) {
        *status = sg_error_set(err, SG_ENOMEM, "out of memory building the response");
        return NULL;
    }
    return o;
}

static void work_frame(sg_req *r)
{
    sg_status st = SG_OK;
    sg_error err = {0};
    json_t *o = sg_frame_work(r->srv, r->session, r->in.image, r->in.image_len,
                              r->in.client_keyframe, r->t_start, &st, &err);
    if (!o) {
        sg_req_fail(r, st, "INVALID_IMAGE", &err);
        return;
    }
    sg_req_json(r, 200, o);
}

/* Decodes the request's audio and applies AUDIO_BUFFER_MAX_SECONDS with the configured policy:
 * reject refuses longer audio, trim keeps its most recent seconds (cut before resampling). */
static sg_status decode_request_audio(sg_req *r, sg_audio *a, sg_error *err)
{
    const sg_config *cfg = r->srv->cfg;
    if (cfg->audio_policy == SG_POLICY_TRIM)
        return sg_audio_decode_tail(r->in.audio, r->in.audio_len, r->in.audio_format,
                                    r->in.sample_rate, cfg->audio_max_seconds, a, err);
    sg_status st = sg_audio_decode(r->in.audio, r->in.audio_len, r->in.audio_format,
                                   r->in.sample_rate, cfg->audio_max_seconds, a, err);
    if (st == SG_ETOOBIG)
        return sg_error_set(err, SG_ETOOBIG, "Audio payload exceeds configured maximum buffer "
                            "duration: audio is longer than AUDIO_BUFFER_MAX_SECONDS=%g s "
                            "(AUDIO_BUFFER_POLICY=reject)", cfg->audio_max_seconds);
    return st;
}

static void work_audio(sg_req *r)
{
    sg_server *srv = r->srv;
    sg_session *s = r->session;
    sg_error err = {0};
    sg_audio a;
    sg_status st = decode_request_audio(r, &a, &err);
    if (st != SG_OK) {
        sg_req_fail(r, st, "INVALID_AUDIO", &err);
        return;
    }
    char *transcript = NULL;
    bool speech = false;
    double vad_ms = -1, asr_ms = -1;
    st = sg_session_lock(s, &err);
    if (st == SG_OK) {
        st = sg_turn_transcribe(srv->b, &a, r->in.language, &transcript, &speech, &vad_ms,
                                &asr_ms, &err);
        if (st == SG_OK)
            st = sg_session_keep_audio(s, srv->cfg, a.samples, a.n, &err);
        if (st == SG_OK && speech)
            sg_session_add_transcript(s, transcript);
        sg_session_unlock(s);
    }
    double dur = a.duration_s;
    sg_audio_free(&a);
    if (st != SG_OK) {
        free(transcript);
        sg_req_fail(r, st, "INVALID_AUDIO", &err);
        return;
    }
    sg_metrics_record(srv->metrics, SG_STAGE_VAD, vad_ms);
    sg_metrics_record(srv->metrics, SG_STAGE_ASR, asr_ms);
    double total = sg_now_ms() - r->t_start;
    sg_metrics_record(srv->metrics, SG_STAGE_INGEST_AUDIO, total);
    json_t *o = json_pack("{s:s,s:s,s:b,s:f,s:{s:f,s:f,s:f}}", "session_id", s->id, "transcript",
                          transcript ? transcript : "", "speech", speech, "duration_s", ms3(dur),
                          "latency_ms", "vad", ms3(vad_ms > 0 ? vad_ms : 0), "asr",
                          ms3(asr_ms > 0 ? asr_ms : 0), "total", ms3(total));
    free(transcript);
    sg_req_json(r, 200, o);
}

/* The latency budget's steps for this turn, decided once it holds its session: what it has waited
 * (queue and lock) is known then. */
static sg_degrade_plan plan_turn(sg_req *r, const sg_turn_input *ti, sg_turn_degrade *td)
{
    const sg_server *srv = r->srv;
    const sg_backends *b = srv->b;
    const double now = sg_now_ms();
    const sg_turn_load load = {
        .uses = {[SG_DEG_ASR] = ti->audio && b->asr, [SG_DEG_LLM] = b->llm != NULL,
                 [SG_DEG_VISION] = ti->image != NULL},
        .has_scene = r->session->vision.has_scene,
        .waited_ms = now - r->t_start,
        .queued = sg_workq_queued(srv->workq),
        .now_ms = now,
    };
    sg_degrade_plan p = sg_degrade_plan_turn(srv->degrade, &load);
    memset(td, 0, sizeof *td);
    td->asr_fallback = p.level[SG_DEG_ASR] >= 1;
    if (p.level[SG_DEG_LLM] >= 2) {
        td->llm_rule_based = true;
    } else if (p.level[SG_DEG_LLM] == 1) {
        int full = ti->max_tokens > 0 ? ti->max_tokens : SG_DEFAULT_MAX_TOKENS;
        td->llm_max_tokens = full / 2 > SG_DEGRADE_MIN_TOKENS ? full / 2 : SG_DEGRADE_MIN_TOKENS;
    }
    td->vision_remembered = p.level[SG_DEG_VISION] >= 1;
    return p;
}

/* After the turn: the estimates learn what each stage cost at the step it ran, and every step
 * taken is counted. */
static void turn_degrade_done(sg_server *srv, const sg_turn_output *out, double service_ms)
{
    const sg_turn_degrade *d = &out->degraded;
    sg_degrade_sample smp = {
        .ms = {[SG_DEG_ASR] = out->t.asr, [SG_DEG_LLM] = out->t.llm, [SG_DEG_VISION] = out->t.vision},
        .level = {[SG_DEG_ASR] = d->asr_fallback ? 1 : 0,
                  [SG_DEG_LLM] = d->llm_rule_based ? 2 : d->llm_max_tokens > 0 ? 1 : 0,
                  [SG_DEG_VISION] = 0},
        .service_ms = service_ms,
    };
    if (!srv->b->llm) /* the responder is no step down then: nothing to learn */
        smp.ms[SG_DEG_LLM] = -1;
    if (d->vision_remembered) { /* the remembered scene costs nothing */
        smp.ms[SG_DEG_VISION] = 0;
        smp.level[SG_DEG_VISION] = 1;
    }
    sg_degrade_observe_turn(srv->degrade, &smp);
    for (int k = 0; k < SG_DEG_STAGES; k++)
        if (smp.level[k] > 0 && smp.ms[k] >= 0)
            sg_metrics_degraded(srv->metrics, k, "budget");
}

json_t *sg_req_run_turn(sg_req *r, const sg_turn_input *ti, bool *speech)
{
    sg_server *srv = r->srv;
    sg_session *s = r->session;
    sg_error err = {0};
    sg_turn_output out = {0};
    sg_turn_input dti = *ti;
    sg_turn_degrade td;
    double t_service = 0;
    sg_status st = sg_session_lock(s, &err);
    if (st == SG_OK) {
        t_service = sg_now_ms();
        if (sg_degrade_enabled(srv->degrade)) {
            plan_turn(r, ti, &td);
            dti.degrade = &td;
        }
        st = sg_turn_run(srv->b, &s->vision, &dti, &out, &err);
        if (st == SG_OK && out.stopped) {
            /* a streamed answer its client stopped: nothing of it is kept */
            sg_session_unlock(s);
            sg_turn_output_free(&out);
            return NULL;
        }
        if (st == SG_OK)
            turn_degrade_done(srv, &out, sg_now_ms() - t_service);
        if (st == SG_OK && ti->image)
            st = sg_session_keep_frame(s, srv->cfg, ti->image, ti->image_len, &err);
        if (st == SG_OK && ti->audio)
            st = sg_session_keep_audio(s, srv->cfg, ti->audio->samples, ti->audio->n, &err);
        if (st == SG_OK) {
            if (out.transcript && out.speech)
                sg_session_add_transcript(s, out.transcript);
            sg_session_add_turn(s, out.query, out.response);
            atomic_fetch_add(&s->query_count, 1);
            if (ti->image)
                sg_session_frame_counted(s);
        }
        sg_session_unlock(s);
    }
    if (st != SG_OK) {
        sg_turn_output_free(&out);
        sg_req_fail(r, st, "INVALID_REQUEST", &err);
        return NULL;
    }
    if (speech)
        *speech = out.speech;
    if (ti->image) {
        sg_metrics_count(srv->metrics, SG_COUNTER_FRAMES, 1);
        if (!out.degraded.vision_remembered) /* analysed, not answered from the remembered scene */
            sg_metrics_count(srv->metrics, SG_COUNTER_KEYFRAMES, 1);
    }
    sg_metrics_count(srv->metrics, SG_COUNTER_QUERIES, 1);
    sg_metrics_record(srv->metrics, SG_STAGE_VAD, out.t.vad);
    sg_metrics_record(srv->metrics, SG_STAGE_ASR, out.t.asr);
    sg_metrics_record(srv->metrics, SG_STAGE_VISION, out.t.vision);
    sg_metrics_record(srv->metrics, SG_STAGE_LLM, out.t.llm);
    sg_metrics_record(srv->metrics, SG_STAGE_E2E, sg_now_ms() - r->t_start);
    json_t *o = json_pack("{s:s}", "session_id", s->id);
    json_object_update(o, out.result);
    sg_turn_output_free(&out);
    if (!o)
        sg_req_error(r, 503, "OVERLOADED", "out of memory");
    return o;
}

/* "speak": true on a query: the whole answer's speech as one file in "audio" (additive; an SSE
 * answer streams it sentence by sentence instead). A server without a synthesiser, or an answer
 * with nothing to speak, gets {"error", "detail"} there and the answer still stands. */
static void add_speech(sg_req *r, json_t *o)
{
    const sg_tts_backend *tts = r->srv->b->tts;
    json_t *audio;
    if (!tts) {
        audio = json_pack("{s:s,s:s}", "error", "MODEL_UNAVAILABLE", "detail",
                          "speech synthesis is off on this server (SG_TTS=off)");
    } else {
        const char *text = json_string_value(json_object_get(o, "response"));
        sg_tts_audio a;
        sg_error err = {0};
        double t0 = sg_now_ms();
        sg_status st = sg_tts_speak(tts, text ? text : "", 0, 0,
                                    (sg_tts_format)r->in.speak_format, &a, &err);
        audio = st == SG_OK ? sg_tts_audio_json(&a)
                            : json_pack("{s:s,s:s}", "error", st == SG_ENOMEM ? "OVERLOADED"
                                        : "NOTHING_TO_SPEAK", "detail", err.msg);
        if (st == SG_OK && audio)
            json_object_set_new(audio, "synthesis_ms", json_real(ms3(sg_now_ms() - t0)));
        sg_tts_audio_free(&a);
    }
    json_object_set_new(o, "audio", audio ? audio : json_null());
}

/* ---- a streamed answer (Accept: text/event-stream; server/sse.h) ------------------------- */

typedef struct answer_sink {
    sg_req *r;
    sg_sse *sse;
    bool speak;
    sg_tts_format format;
    sg_tts_budget budget;
    double first_audio_at; /* sg_now_ms of the first audio event, -1 */
} answer_sink;

static void sink_stage(void *ud, const char *event, json_t *data)
{
    answer_sink *k = ud;
    sg_sse_event(k->sse, event, data);
}

static bool sink_text(void *ud, const char *piece, size_t len)
{
    answer_sink *k = ud;
    json_t *d = json_pack("{s:s%}", "text", piece, len);
    bool ok = d && sg_sse_event(k->sse, "token", d);
    json_decref(d);
    return ok;
}

static bool sink_reset(void *ud)
{
    answer_sink *k = ud;
    json_t *d = json_pack("{s:s}", "reason", "moderation");
    bool ok = d && sg_sse_event(k->sse, "reset", d);
    json_decref(d);
    return ok;
}

static bool sink_audio(void *ud, json_t *event)
{
    answer_sink *k = ud;
    bool ok = sg_sse_event(k->sse, "audio", event);
    json_decref(event);
    if (ok && k->first_audio_at < 0)
        k->first_audio_at = sg_now_ms();
    return ok;
}

/* A complete sentence: spoken and sent before the next one is generated (agent/tts.h). */
static bool sink_sentence(void *ud, int n, const char *sentence)
{
    answer_sink *k = ud;
    if (!k->speak)
        return !sg_sse_broken(k->sse);
    return sg_tts_speak_streamed(k->r->srv->b->tts, n, sentence, k->format, &k->budget,
                                 sink_audio, k);
}

/* The turn with its answer streamed; the result goes out as the `done` event, an error after the
 * stream started as an `error` event (before it, as the JSON error response). */
static void stream_turn(sg_req *r, sg_turn_input *ti)
{
    answer_sink k = {r, r->sse, r->in.speak, (sg_tts_format)r->in.speak_format, {0}, -1};
    sg_tts_budget_init(&k.budget, 0);
    const sg_turn_stream cb = {sink_stage, sink_text, sink_reset, sink_sentence, &k};
    ti->stream = &cb;
    ti->first_audio_at = &k.first_audio_at;
    json_t *o = sg_req_run_turn(r, ti, NULL);
    if (o) {
        if (k.budget.truncated)
            json_object_set_new(o, "speech_truncated", json_true());
        sg_sse_event(r->sse, "done", o);
        json_decref(o);
    } else if (r->done && sg_sse_started(r->sse)) {
        json_t *e = json_deep_copy(r->json);
        if (e) {
            json_object_set_new(e, "status", json_integer(r->status));
            sg_sse_event(r->sse, "error", e);
        }
        json_decref(e);
    } else if (!r->done) {
        /* stopped: the client went away or stopped reading; nothing more to send */
        r->done = true;
        r->status = 200;
    }
}

static void work_query(sg_req *r)
{
    sg_error err = {0};
    sg_audio a;
    bool have_audio = false;
    if (r->in.audio) {
        sg_status st = decode_request_audio(r, &a, &err);
        if (st != SG_OK) {
            sg_req_fail(r, st, "INVALID_AUDIO", &err);
            return;
        }
        have_audio = true;
    }
    sg_turn_input ti = {.text = r->in.text, .audio = have_audio ? &a : NULL, .image = r->in.image,
                        .image_len = r->in.image_len, .language = r->in.language,
                        .cloud_offload = r->in.cloud_offload, .max_tokens = r->in.max_tokens};
    if (r->sse) {
        stream_turn(r, &ti);
        if (have_audio)
            sg_audio_free(&a);
        return;
    }
    json_t *o = sg_req_run_turn(r, &ti, NULL);
    if (have_audio)
        sg_audio_free(&a);
    if (o && r->in.speak)
        add_speech(r, o);
    if (o)
        sg_req_json(r, 200, o);
}

/* ---- session routes: parse on the HTTP thread, work on the queue ------------------------- */

/* Audio fields shared by /audio and /query: format, sample_rate, the payload. */
static bool parse_audio_fields(sg_req *r, json_t *obj, const char *b64)
{
    const sg_config *cfg = r->srv->cfg;
    const char *fmt = NULL;
    if (!sg_req_opt_string(r, obj, "format", NULL, &fmt))
        return false;
    sg_error err = {0};
    if (sg_audio_format_parse(fmt, &r->in.audio_format, &err) != SG_OK) {
        sg_req_error(r, 422, "INVALID_REQUEST",
                     "field \"format\": %s (use wav, pcm_s16le, pcm_f32le, flac or ogg)", err.msg);
        return false;
    }
    bool have_rate;
    long rate = 0;
    if (!sg_req_opt_int(r, obj, "sample_rate", 8000, 192000, &have_rate, &rate))
        return false;
    r->in.sample_rate = have_rate ? (int)rate : SG_AUDIO_RATE;
    if (!sg_req_b64(r, "audio_base64", b64, "INVALID_AUDIO", cfg->audio_max_bytes,
                    "AUDIO_BUFFER_MAX_BYTES", &r->in.audio, &r->in.audio_len))
        return false;
    if (r->in.audio_format == SG_AUDIO_AUTO) {
        sg_audio_format sniffed = sg_audio_sniff(r->in.audio, r->in.audio_len);
        if (sniffed != SG_AUDIO_AUTO) {
            r->in.audio_format = sniffed; /* WAV, FLAC or Ogg by their magic */
        } else if (have_rate) {
            r->in.audio_format = SG_AUDIO_PCM_S16LE; /* the Android client's headerless PCM */
        } else {
            sg_req_error(r, 400, "INVALID_AUDIO",
                         "audio_base64 is not a WAV, FLAC or Ogg file; for headerless PCM give "
                         "\"format\" (pcm_s16le or pcm_f32le) and \"sample_rate\"");
            return false;
        }
    }
    return true;
}

/* The client-keyframe hint: header X-Client-Keyframe (any body) or the JSON field
 * "client_keyframe" (a JSON body; it wins over the header when both are given). */
void sg_handle_frame(sg_req *r)
{
    const sg_config *cfg = r->srv->cfg;
    json_t *body;
    if (!sg_req_client_keyframe_header(r, &r->in.client_keyframe) || !sg_req_body(r, &body))
        return;
    if (!body) { /* a raw image */
        if (!sg_req_take_body(r, &r->in.image, &r->in.image_len)) {
            sg_req_error(r, 400, "INVALID_IMAGE", "empty image body");
            return;
        }
        if (r->in.image_len > cfg->frame_max_bytes) {
            sg_req_error(r, 413, "PAYLOAD_TOO_LARGE", "Frame payload exceeds configured maximum "
                         "buffer size: frame of %zu bytes is over FRAME_BUFFER_MAX_BYTES=%zu",
                         r->in.image_len, cfg->frame_max_bytes);
            return;
        }
    } else {
        const char *b64;
        bool ok = sg_req_opt_string(r, body, "image_base64", "image", &b64) &&
                  sg_req_opt_bool(r, body, "client_keyframe", &r->in.client_keyframe);
        if (ok && !b64) {
            sg_req_error(r, 400, "INVALID_REQUEST", "missing \"image_base64\" (a base64 JPEG or PNG)");
            ok = false;
        }
        if (ok)
            ok = sg_req_b64(r, "image_base64", b64, "INVALID_IMAGE", cfg->frame_max_bytes,
                            "FRAME_BUFFER_MAX_BYTES", &r->in.image, &r->in.image_len);
        json_decref(body);
        if (!ok)
            return;
    }
    sg_req_submit(r, work_frame);
}

void sg_handle_audio(sg_req *r)
{
    json_t *body;
    if (!sg_req_body(r, &body))
        return;
    if (!body) { /* a raw WAV, FLAC or Ogg file */
        if (!sg_req_take_body(r, &r->in.audio, &r->in.audio_len)) {
            sg_req_error(r, 400, "INVALID_AUDIO", "empty audio body");
            return;
        }
        if (r->in.audio_len > r->srv->cfg->audio_max_bytes) {
            sg_req_error(r, 413, "PAYLOAD_TOO_LARGE", "Audio payload exceeds configured maximum "
                         "buffer size: audio of %zu bytes is over AUDIO_BUFFER_MAX_BYTES=%zu",
                         r->in.audio_len, r->srv->cfg->audio_max_bytes);
            return;
        }
        r->in.audio_format = sg_req_raw_audio_format(r);
        r->in.sample_rate = SG_AUDIO_RATE;
    } else {
        const char *b64, *lang;
        bool ok = sg_req_opt_string(r, body, "audio_base64", "audio", &b64) &&
                  sg_req_opt_string(r, body, "language", NULL, &lang);
        if (ok && !b64) {
            sg_req_error(r, 400, "INVALID_REQUEST", "missing \"audio_base64\" (WAV, FLAC, Ogg or headerless PCM)");
            ok = false;
        }
        if (ok && lang && !(r->in.language = strdup(lang)))
            ok = false;
        if (ok)
            ok = parse_audio_fields(r, body, b64);
        json_decref(body);
        if (!ok) {
            if (!r->done)
                sg_req_error(r, 503, "OVERLOADED", "out of memory");
            return;
        }
    }
    sg_req_submit(r, work_audio);
}

void sg_handle_query(sg_req *r)
{
    const sg_config *cfg = r->srv->cfg;
    json_t *body;
    if (!sg_req_body(r, &body))
        return;
    const char *text, *audio, *image, *lang, *speak_format = NULL;
    bool have_max;
    long max_tokens = 0;
    bool ok = sg_req_opt_string(r, body, "text_query", "text", &text) &&
              sg_req_opt_string(r, body, "audio_base64", "audio", &audio) &&
              sg_req_opt_string(r, body, "image_base64", "image", &image) &&
              sg_req_opt_string(r, body, "language", NULL, &lang) &&
              sg_req_opt_bool(r, body, "cloud_offload", &r->in.cloud_offload) &&
              sg_req_opt_int(r, body, "max_tokens", 1, 4096, &have_max, &max_tokens) &&
              sg_req_opt_bool(r, body, "speak", &r->in.speak) &&
              sg_req_opt_string(r, body, "speak_format", NULL, &speak_format);
    if (ok && r->in.speak) {
        sg_tts_format f = SG_TTS_OGG;
        sg_error ferr = {0};
        if (sg_tts_format_parse(speak_format, &f, &ferr) != SG_OK) {
            sg_req_fail(r, SG_EINVAL, "INVALID_REQUEST", &ferr);
            ok = false;
        }
        r->in.speak_format = (int)f;
    }
    if (ok) {
        r->in.max_tokens = have_max ? (int)max_tokens : 0;
        if (text && text[0] && !(r->in.text = strdup(text)))
            ok = false;
        if (ok && lang && !(r->in.language = strdup(lang)))
            ok = false;
        if (!ok)
            sg_req_error(r, 503, "OVERLOADED", "out of memory");
    }
    if (ok && image && image[0])
        ok = sg_req_b64(r, "image_base64", image, "INVALID_IMAGE", cfg->frame_max_bytes,
                        "FRAME_BUFFER_MAX_BYTES", &r->in.image, &r->in.image_len);
    if (ok && audio && audio[0])
        ok = parse_audio_fields(r, body, audio);
    json_decref(body);
    if (!ok)
        return;
    if (sg_req_wants_events(r)) {
        if (r->in.speak && !r->srv->b->tts) {
            sg_req_error(r, 503, "MODEL_UNAVAILABLE",
                         "speech synthesis is off on this server (SG_TTS=off): ask without "
                         "\"speak\", or turn it on");
            return;
        }
        if (!(r->sse = sg_sse_new(r->conn, r->srv->cfg->sse_buffer_bytes, r->srv->cfg->sse_stall_ms))) {
            sg_req_error(r, 503, "OVERLOADED", "out of memory");
            return;
        }
    }
    sg_req_submit(r, work_query);
}
