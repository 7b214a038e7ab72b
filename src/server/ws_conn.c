/* WebSockets on libmicrohttpd's connection upgrade: /ws/frame/{id} and /ws/audio/{id}.
 *
 * Before the upgrade (an HTTP thread, sg_ws_dispatch): auth, method, readiness and the session
 * were checked by http.c / routes.c like any session route; here the handshake (400, 426 with
 * Sec-WebSocket-Version: 13), the ASR model for /ws/audio (503 MODEL_UNAVAILABLE) and the cap of
 * SG_MAX_WEBSOCKETS open sockets (503 OVERLOADED) are checked, and the session's reference moves
 * to the connection. After the 101 the connection has its own I/O thread: it reads frames
 * (server/ws.h), answers pings, keeps the close handshake and writes what the jobs produce. It
 * never runs model work: each socket has at most one job on the work queue that processes its
 * messages in order (frames: the same ingest as POST /frame; audio: server/ws_audio.h) plus at
 * most one partial transcription beside it. While the socket's inbox is full the thread stops
 * reading (TCP pushes back on the client) and WebSocket jobs together may hold at most
 * SG_WORKERS + SG_QUEUE_DEPTH / 2 places of the queue, so sockets cannot crowd out HTTP requests.
 *
 * Closing: the client's close frame is answered with the same code (1000 when it had none) after
 * its pending messages (for audio: a final for the open utterance, whose transcript is kept like
 * POST /audio's); a protocol error closes with 1002/1007/1009; no message or ping for
 * SG_WS_IDLE_S (default: the session TTL) closes with 1001 "idle timeout"; DELETE of the session
 * closes its sockets with 1000 "session deleted"; a graceful server stop closes every socket with
 * 1001 "server shutting down" and waits for the threads. Closing a socket only drops its
 * reference: it never deletes the session (which cannot expire while a socket holds it). */
#include "server/internal.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/eventfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "agent/tts.h"
#include "agent/turn.h"
#include "base/clock.h"
#include "base/log.h"
#include "base/uuid.h"
#include "server/ws.h"
#include "server/ws_audio.h"

#define AUDIO_MAX_MESSAGE ((size_t)1 << 20) /* 32 s of s16 16 kHz in one message at most */
#define CLOSE_WAIT_MS 2000.0                /* for the peer's close frame after ours */
#define RETRY_MS 20                         /* work queue full: try again */
#define WBUF_PAUSE ((size_t)1 << 20)        /* stop reading while this much waits to be sent */
#define JOB_BATCH 16                        /* messages per job at most ... */
#define JOB_SLICE_MS 10.0                   /* ... and no new one after this long: the worker goes
                                               back to the queue (HTTP jobs wait behind one slice) */
#define RECV_CHUNK 65536
#define INBOX_MAX_MESSAGES 256              /* also stop reading with this many waiting */
#define STOP_REASON_MAX 64                  /* a close reason we send, with its NUL */

typedef struct ws_msg {
    struct ws_msg *next;
    int kind; /* MSG_TEXT, MSG_BINARY, MSG_FLUSH */
    uint8_t *data;
    size_t len;
    double t_recv;
} ws_msg;

enum { MSG_TEXT, MSG_BINARY, MSG_FLUSH };

struct sg_ws_conn {
    sg_server *srv;
    sg_session *session;
    bool audio;             /* /ws/audio, else /ws/frame */
    bool client_keyframe;   /* /ws/frame opened with X-Client-Keyframe: true (or ?client_keyframe=
                               true): every frame on it passed the client's keyframe pre-filter */
    char request_id[130];
    size_t max_message;
    /* the socket (the I/O thread's) */
    int fd;
    struct MHD_UpgradeResponseHandle *urh;
    uint8_t *extra;         /* bytes libmicrohttpd read past the request */
    size_t extra_len;
    pthread_t thread;
    int wake_fd;
    /* shared with the jobs, under lock */
    pthread_mutex_t lock;
    pthread_cond_t cond;
    ws_msg *in_head, *in_tail;
    size_t in_bytes, in_n;
    json_t *out;            /* messages for the I/O thread to send */
    bool job_active, partial_active;
    long long finalized;    /* audio: utterances given their final (their partials are stale) */
    /* the answer to a final (sg_ws_audio_set_answer): one at a time; barge-in cancels it */
    bool answer_active, answer_cancel;
    char *answer_pending;   /* a final that came while an answer was being cancelled */
    long long answers;      /* answers started (the running one's number) */
    int stop_code;          /* set: close with it, drop pending work */
    char stop_reason[STOP_REASON_MAX];
    /* the process job's */
    sg_ws_audio *sa;
    bool kept_audio_error;
    sg_ws_conn *next;       /* in the hub's lists */
};

struct sg_ws_hub {
    pthread_mutex_t lock;
    pthread_cond_t changed;
    sg_ws_conn *live;   /* upgraded, thread running */
    sg_ws_conn *dead;   /* thread finished, to be joined */
    int slots;          /* reserved: upgrades under way + live */
    bool stopping;
    atomic_int jobs;    /* WebSocket jobs queued or running */
};

sg_ws_hub *sg_ws_hub_new(void)
{
    sg_ws_hub *h = calloc(1, sizeof *h);
    if (!h)
        return NULL;
    pthread_mutex_init(&h->lock, NULL);
    pthread_cond_init(&h->changed, NULL);
    atomic_init(&h->jobs, 0);
    return h;
}

/* ---- connection objects ----------------------------------------------------------------------- */

static void msgs_free(ws_msg *m)
{
    while (m) {
        ws_msg *next = m->next;
        free(m->data);
        free(m);
        m = next;
    }
}

static void conn_free(sg_ws_conn *c)
{
    if (c)
        free(c->answer_pending);
    if (!c)
        return;
    sg_session_release(c->session);
    sg_ws_audio_free(c->sa);
    msgs_free(c->in_head);
    json_decref(c->out);
    free(c->extra);
    if (c->wake_fd >= 0)
        close(c->wake_fd);
    pthread_mutex_destroy(&c->lock);
    pthread_cond_destroy(&c->cond);
    free(c);
}

/* Joins and frees the connections whose threads have ended. */
static void reap_dead(sg_ws_hub *h)
{
    pthread_mutex_lock(&h->lock);
    sg_ws_conn *d = h->dead;
    h->dead = NULL;
    pthread_mutex_unlock(&h->lock);
    while (d) {
        sg_ws_conn *next = d->next;
        pthread_join(d->thread, NULL);
        conn_free(d);
        d = next;
    }
}

void sg_ws_hub_free(sg_ws_hub *h)
{
    if (!h)
        return;
    reap_dead(h);
    pthread_mutex_destroy(&h->lock);
    pthread_cond_destroy(&h->changed);
    free(h);
}

int sg_ws_open_count(sg_ws_hub *h)
{
    if (!h)
        return 0;
    pthread_mutex_lock(&h->lock);
    int n = h->slots;
    pthread_mutex_unlock(&h->lock);
    return n;
}

static void release_slot(sg_ws_hub *h)
{
    pthread_mutex_lock(&h->lock);
    h->slots--;
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->lock);
}

static void wake(sg_ws_conn *c)
{
    uint64_t one = 1;
    ssize_t n = write(c->wake_fd, &one, sizeof one);
    (void)n; /* a full counter still wakes the thread */
}

/* Under c->lock: a message for the I/O thread. */
static void post(sg_ws_conn *c, json_t *msg)
{
    if (!msg)
        return;
    if (!c->out)
        c->out = json_array();
    json_array_append_new(c->out, msg);
}

/* ---- jobs (work-queue threads) ---------------------------------------------------------------- */

static int job_cap(const sg_server *s) { return s->cfg->workers + s->cfg->queue_depth / 2; }

static bool job_reserve(sg_server *s)
{
    if (atomic_fetch_add(&s->ws->jobs, 1) >= job_cap(s)) {
        atomic_fetch_sub(&s->ws->jobs, 1);
        return false;
    }
    return true;
}

/* status: what HTTP would answer, for the detail's wording (sg_error_detail). */
static json_t *error_msg(bool typed, int status, const char *code, const char *detail)
{
    char text[600];
    sg_error_detail(text, sizeof text, status, code, detail);
    json_t *d = json_string(text);
    json_t *o = json_pack("{s:s,s:o}", "error", code, "detail", d ? d : json_string("error"));
    if (typed)
        json_object_set_new(o, "type", json_string("error"));
    return o;
}

static json_t *frame_message(sg_ws_conn *c, const ws_msg *m)
{
    if (m->kind != MSG_BINARY)
        return error_msg(false, 400, "INVALID_REQUEST",
                         "send each frame as a binary message holding one JPEG or PNG");
    if (!m->len)
        return error_msg(false, 400, "INVALID_IMAGE", "empty message: expected a JPEG or PNG");
    sg_status st = SG_OK;
    sg_error err = {0};
    json_t *o = sg_frame_work(c->srv, c->session, m->data, m->len, c->client_keyframe, m->t_recv,
                              &st, &err);
    if (o)
        return o;
    const char *code; /* as POST /frame would answer */
    int status = sg_http_status_of(st, "INVALID_IMAGE", &code);
    if (status == 500)
        sg_log(SG_LOG_ERROR, "ws %s: frame: internal error: %s", c->request_id, err.msg);
    return error_msg(false, status, code, err.msg[0] ? err.msg : sg_status_name(st));
}

typedef struct partial_job {
    sg_ws_conn *c;
    sg_ws_partial *p;
} partial_job;

static void run_partial(void *arg)
{
    partial_job *j = arg;
    sg_ws_conn *c = j->c;
    sg_server *s = c->srv;
    double ms = 0;
    json_t *msg = sg_ws_partial_run(s->b->asr, j->p, &ms);
    sg_metrics_record(s->metrics, SG_STAGE_ASR, ms);
    pthread_mutex_lock(&c->lock);
    if (!c->stop_code && j->p->utt > c->finalized)
        post(c, msg);      /* a partial of an utterance already final is stale: dropped */
    else
        json_decref(msg);
    c->partial_active = false;
    wake(c);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock); /* the last touch of c: the I/O thread may free it now */
    sg_ws_partial_free(j->p);
    free(j);
    atomic_fetch_sub(&s->ws->jobs, 1);
}

/* Under c->lock: starts the partial the audio logic asked for, unless one runs or the queue has
 * no place for it (then it is skipped, never queued). */
static void start_partial(sg_ws_conn *c, sg_ws_partial *p)
{
    if (c->partial_active || c->stop_code || !job_reserve(c->srv)) {
        sg_ws_partial_free(p);
        return;
    }
    partial_job *j = malloc(sizeof *j);
    if (!j) {
        atomic_fetch_sub(&c->srv->ws->jobs, 1);
        sg_ws_partial_free(p);
        return;
    }
    j->c = c;
    j->p = p;
    c->partial_active = true;
    if (!sg_workq_submit(c->srv->workq, run_partial, j)) {
        c->partial_active = false;
        atomic_fetch_sub(&c->srv->ws->jobs, 1);
        sg_ws_partial_free(p);
        free(j);
    }
}

/* ---- the answer to a final (sg_ws_audio_set_answer) --------------------------------------------
 * A job of its own beside the socket's: it runs the turn on the final's text against a copy of
 * the session's scene (taken under the session's lock, which the turn then does not hold, so the
 * socket's audio keeps flowing and the VAD can hear the wearer barge in), and posts the answer as
 * it is made: vision, token, reset, audio, then done (or error). Speech heard while it runs sets
 * answer_cancel: the job posts nothing more and stops at its next token or sentence, and the
 * socket gets {"type":"answer_cancelled"} at once. */

typedef struct answer_job {
    sg_ws_conn *c;
    long long seq;          /* the socket's answers are numbered from 1: "answer" in each message */
    bool waited;            /* SG_DEBUG_ANSWER_DELAY_MS done */
    char *text;
    bool speak;
    sg_tts_format format;
    sg_tts_budget budget;
    double first_audio_at;
} answer_job;

static void start_answer(sg_ws_conn *c, char *text);

/* Posts msg (with the answer's number) unless the answer was cancelled or the socket is closing;
 * false then (stop). */
static bool answer_post(answer_job *j, json_t *msg)
{
    sg_ws_conn *c = j->c;
    if (msg)
        json_object_set_new(msg, "answer", json_integer(j->seq));
    pthread_mutex_lock(&c->lock);
    const bool live = !c->stop_code && !c->answer_cancel;
    if (live && msg) {
        post(c, msg);
        wake(c);
    } else {
        json_decref(msg);
    }
    pthread_mutex_unlock(&c->lock);
    return live && msg;
}

static json_t *typed(const char *type, json_t *data)
{
    json_t *m = json_pack("{s:s}", "type", type);
    if (m && data)
        json_object_update(m, data);
    return m;
}

static void answer_stage(void *ud, const char *event, json_t *data)
{
    answer_post(ud, typed(event, data));
}

static bool answer_live(answer_job *j)
{
    pthread_mutex_lock(&j->c->lock);
    const bool live = !j->c->stop_code && !j->c->answer_cancel;
    pthread_mutex_unlock(&j->c->lock);
    return live;
}

static bool answer_text(void *ud, const char *piece, size_t len)
{
    answer_job *j = ud;
    const int delay = j->c->srv->cfg->debug_answer_delay_ms;
    if (delay > 0 && !j->waited) { /* tests: a window for barge-in, cut short by it */
        j->waited = true;
        const double until = sg_now_ms() + delay;
        while (sg_now_ms() < until && answer_live(j)) {
            struct timespec ts = {0, 5000000L};
            nanosleep(&ts, NULL);
        }
    }
    return answer_post(j, json_pack("{s:s,s:s%}", "type", "token", "text", piece, len));
}

static bool answer_reset(void *ud) { return answer_post(ud, typed("reset", NULL)); }

static bool answer_audio(void *ud, json_t *event)
{
    answer_job *j = ud;
    json_t *m = typed("audio", event);
    json_decref(event);
    const bool ok = answer_post(j, m);
    if (ok && j->first_audio_at < 0)
        j->first_audio_at = sg_now_ms();
    return ok;
}

static bool answer_sentence(void *ud, int n, const char *sentence)
{
    answer_job *j = ud;
    if (!j->speak || !answer_live(j)) /* (barge-in: no synthesis for an answer cut short) */
        return answer_live(j);
    return sg_tts_speak_streamed(j->c->srv->b->tts, n, sentence, j->format, &j->budget,
                                 answer_audio, j);
}

static void run_answer(void *arg)
{
    answer_job *j = arg;
    sg_ws_conn *c = j->c;
    sg_server *s = c->srv;
    sg_session *ses = c->session;
    const double t0 = sg_now_ms();
    sg_error err = {0};
    /* the scene as it is now: the turn reads it without the session's lock */
    sg_visual_memory scene;
    sg_status st = sg_session_lock(ses, &err);
    const bool scene_taken = st == SG_OK;
    if (st == SG_OK) {
        scene = ses->vision; /* its owned parts copied: a frame may replace them meanwhile */
        json_incref(scene.scene);
        scene.embedding = NULL;
        scene.embedding_dim = 0;
        if (scene.ocr_text && !(scene.ocr_text = strdup(scene.ocr_text)))
            st = sg_error_set(&err, SG_ENOMEM, "out of memory");
        sg_session_unlock(ses);
    }
    sg_turn_output out = {0};
    if (st == SG_OK) {
        const sg_turn_stream cb = {answer_stage, answer_text, answer_reset, answer_sentence, j};
        sg_turn_input ti = {.text = j->text, .stream = &cb, .first_audio_at = &j->first_audio_at};
        st = sg_turn_run(s->b, &scene, &ti, &out, &err);
    }
    if (scene_taken) {
        json_decref(scene.scene);
        free(scene.ocr_text);
    }
    if (st == SG_OK && !out.stopped) {
        if (sg_session_lock(ses, &err) == SG_OK) {
            sg_session_add_turn(ses, out.query, out.response);
            atomic_fetch_add(&ses->query_count, 1);
            sg_session_unlock(ses);
        }
        sg_metrics_count(s->metrics, SG_COUNTER_QUERIES, 1);
        sg_metrics_record(s->metrics, SG_STAGE_LLM, out.t.llm);
        sg_metrics_record(s->metrics, SG_STAGE_E2E, sg_now_ms() - t0);
        json_t *result = json_pack("{s:s}", "session_id", ses->id);
        json_object_update(result, out.result);
        answer_post(j, json_pack("{s:s,s:o}", "type", "done", "result", result));
    } else if (st != SG_OK) {
        const char *code;
        int status = sg_http_status_of(st, "INVALID_REQUEST", &code);
        answer_post(j, error_msg(true, status, code, err.msg[0] ? err.msg : sg_status_name(st)));
    }
    sg_turn_output_free(&out);
    free(j->text);
    free(j);
    pthread_mutex_lock(&c->lock);
    c->answer_active = false;
    c->answer_cancel = false;
    char *next = c->answer_pending;
    c->answer_pending = NULL;
    if (next && !c->stop_code)
        start_answer(c, next); /* the final that came while this one was cancelled */
    else
        free(next);
    wake(c);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock); /* the last touch of c (unless a new answer runs) */
    atomic_fetch_sub(&s->ws->jobs, 1);
}

/* Under c->lock: answers text (taken), or says why it cannot. */
static void start_answer(sg_ws_conn *c, char *text)
{
    answer_job *j = calloc(1, sizeof *j);
    bool answer, speak;
    int fmt;
    sg_ws_audio_answer_mode(c->sa, &answer, &speak, &fmt);
    if (!j || !job_reserve(c->srv)) {
        free(j);
        free(text);
        post(c, error_msg(true, 503, "OVERLOADED", "no worker is free to answer; the transcript "
                          "stands"));
        return;
    }
    j->c = c;
    j->seq = ++c->answers;
    j->text = text;
    j->speak = speak && c->srv->b->tts;
    j->format = (sg_tts_format)fmt;
    j->first_audio_at = -1;
    sg_tts_budget_init(&j->budget, 0);
    if (speak && !c->srv->b->tts)
        post(c, error_msg(true, 503, "MODEL_UNAVAILABLE", "speech synthesis is off on this server "
                          "(SG_TTS=off): the answer comes as text"));
    c->answer_active = true;
    c->answer_cancel = false;
    if (!sg_workq_submit(c->srv->workq, run_answer, j)) {
        c->answer_active = false;
        atomic_fetch_sub(&c->srv->ws->jobs, 1);
        free(j->text);
        free(j);
        post(c, error_msg(true, 503, "OVERLOADED", "no worker is free to answer; the transcript "
                          "stands"));
    }
}

/* Under c->lock: what the audio logic's result means for the answer: speech cancels a running
 * one (barge-in); each non-empty final is answered when the socket asked for answers. */
static void answer_follow(sg_ws_conn *c, const sg_ws_audio_result *res)
{
    bool answer, speak;
    int fmt;
    sg_ws_audio_answer_mode(c->sa, &answer, &speak, &fmt);
    if (res->speech_started && c->answer_active && !c->answer_cancel) {
        c->answer_cancel = true;
        post(c, json_pack("{s:s,s:s,s:I}", "type", "answer_cancelled", "reason", "barge_in",
                          "answer", (json_int_t)c->answers));
    }
    if (!answer || c->stop_code)
        return;
    size_t i;
    json_t *msg;
    json_array_foreach(res->msgs, i, msg) {
        const char *type = json_string_value(json_object_get(msg, "type"));
        const char *text = json_string_value(json_object_get(msg, "text"));
        bool words = false;
        for (const char *p = text; p && *p && !words; p++)
            words = *p != ' ' && *p != '\t' && *p != '\n';
        if (!type || strcmp(type, "final") != 0 || !words)
            continue;
        char *copy = strdup(text);
        if (!copy)
            continue;
        if (c->answer_active) { /* being cancelled (or not yet): this final goes next */
            if (!c->answer_cancel) {
                c->answer_cancel = true;
                post(c, json_pack("{s:s,s:s,s:I}", "type", "answer_cancelled", "reason",
                                  "new_utterance", "answer", (json_int_t)c->answers));
            }
            free(c->answer_pending);
            c->answer_pending = copy;
        } else {
            start_answer(c, copy);
        }
    }
}

static void audio_message(sg_ws_conn *c, const ws_msg *m, bool partial_busy)
{
    sg_server *s = c->srv;
    sg_ws_audio_result res;
    if (m->kind == MSG_FLUSH)
        sg_ws_audio_flush(c->sa, &res);
    else if (m->kind == MSG_TEXT)
        sg_ws_audio_text(c->sa, (const char *)m->data, m->len, partial_busy, &res);
    else
        sg_ws_audio_binary(c->sa, m->data, m->len, partial_busy, &res);
    /* what POST /audio keeps: raw audio and transcripts as far as privacy allows */
    sg_session *ses = c->session;
    size_t i;
    json_t *msg;
    if (res.n16k || res.finals) {
        sg_error err = {0};
        sg_status st = sg_session_lock(ses, &err);
        if (st == SG_OK) {
            if (res.n16k)
                st = sg_session_keep_audio(ses, s->cfg, res.pcm16k, res.n16k, &err);
            json_array_foreach(res.msgs, i, msg) {
                const char *type = json_string_value(json_object_get(msg, "type"));
                const char *text = json_string_value(json_object_get(msg, "text"));
                if (type && strcmp(type, "final") == 0 && text)
                    sg_session_add_transcript(ses, text); /* as POST /audio: only when STORE_TRANSCRIPTS */
            }
            sg_session_unlock(ses);
        }
        if (st != SG_OK && !c->kept_audio_error) {
            c->kept_audio_error = true; /* once: the stream itself goes on */
            json_array_append_new(res.msgs,
                                  error_msg(true, st == SG_ETOOBIG ? 413 : 503,
                                            st == SG_ETOOBIG ? "PAYLOAD_TOO_LARGE" : "OVERLOADED",
                                            "the session's raw-audio buffer is full: audio is still "
                                            "transcribed but no longer kept"));
        }
    }
    if (res.finals)
        sg_metrics_record(s->metrics, SG_STAGE_ASR, res.asr_ms / res.finals);
    pthread_mutex_lock(&c->lock);
    if (res.finalized > c->finalized)
        c->finalized = res.finalized;
    if (!c->stop_code) {
        json_array_foreach(res.msgs, i, msg) post(c, json_incref(msg));
        answer_follow(c, &res);
        wake(c);
    }
    if (res.partial)
        start_partial(c, res.partial);
    pthread_mutex_unlock(&c->lock);
    json_decref(res.msgs);
}

/* The socket's job: its pending messages in order (a batch, then the worker is given back). */
static void run_process(void *arg)
{
    sg_ws_conn *c = arg;
    sg_server *s = c->srv;
    const double t0 = sg_now_ms();
    for (int k = 0; k < JOB_BATCH && (k == 0 || sg_now_ms() - t0 < JOB_SLICE_MS); k++) {
        pthread_mutex_lock(&c->lock);
        ws_msg *m = c->in_head;
        if (m) {
            c->in_head = m->next;
            if (!c->in_head)
                c->in_tail = NULL;
            c->in_bytes -= m->len;
            c->in_n--;
        }
        const bool stop = c->stop_code != 0, pbusy = c->partial_active;
        pthread_mutex_unlock(&c->lock);
        if (!m)
            break;
        if (!stop) {
            if (s->cfg->debug_work_delay_ms > 0) {
                struct timespec ts = {s->cfg->debug_work_delay_ms / 1000,
                                      (long)(s->cfg->debug_work_delay_ms % 1000) * 1000000L};
                nanosleep(&ts, NULL);
            }
            sg_session_touch(c->session);
            if (c->audio) {
                audio_message(c, m, pbusy);
            } else {
                json_t *o = frame_message(c, m);
                pthread_mutex_lock(&c->lock);
                if (!c->stop_code)
                    post(c, o);
                else
                    json_decref(o);
                wake(c);
                pthread_mutex_unlock(&c->lock);
            }
        }
        free(m->data);
        free(m);
    }
    sg_degrade_observe_job(s->degrade, sg_now_ms() - t0); /* the queue's wait estimate */
    pthread_mutex_lock(&c->lock);
    c->job_active = false;
    wake(c);
    pthread_cond_broadcast(&c->cond);
    pthread_mutex_unlock(&c->lock); /* the last touch of c */
    atomic_fetch_sub(&s->ws->jobs, 1);
}

/* Queues the socket's job if it has messages and none is queued; false when the queue is full. */
static bool submit_process(sg_ws_conn *c)
{
    pthread_mutex_lock(&c->lock);
    bool need = c->in_head && !c->job_active && !c->stop_code;
    if (need)
        c->job_active = true;
    pthread_mutex_unlock(&c->lock);
    if (!need)
        return true;
    if (job_reserve(c->srv)) {
        if (sg_workq_submit(c->srv->workq, run_process, c))
            return true;
        atomic_fetch_sub(&c->srv->ws->jobs, 1);
    }
    pthread_mutex_lock(&c->lock);
    c->job_active = false;
    pthread_mutex_unlock(&c->lock);
    return false;
}

static void ask_close(sg_ws_conn *c, int code, const char *reason);

/* ---- the I/O thread --------------------------------------------------------------------------- */

typedef struct io {
    sg_ws_parser parser;
    uint8_t *wbuf;
    size_t wlen, wcap, woff;
    bool close_sent, close_recv;
    bool eof;    /* the peer is gone (EOF, reset, a failed send): nothing more is sent */
    bool broken; /* out of memory for the write buffer: give up at once */
    bool failed, shut;  /* a protocol error: close frame, then shut our side, no handshake */
    bool reply_pending; /* the peer closed: answer once its pending messages are processed */
    int reply_code;
    double close_deadline, last_rx;
    double idle_ms;     /* no message or ping for this long: close 1001 "idle timeout" */
    double retry_at;    /* the work queue was full: submit the job again then (0: not waiting) */
    /* received bytes not parsed yet because the inbox filled up (into rbuf or c->extra) */
    const uint8_t *stash;
    size_t stash_n;
    uint8_t rbuf[RECV_CHUNK];
} io;

static bool wbuf_add(io *o, const uint8_t *d, size_t n)
{
    if (o->woff && o->woff == o->wlen)
        o->wlen = o->woff = 0;
    if (o->wlen + n > o->wcap) {
        size_t cap = o->wcap ? o->wcap : 16384;
        while (cap < o->wlen + n)
            cap *= 2;
        uint8_t *p = realloc(o->wbuf, cap);
        if (!p)
            return false;
        o->wbuf = p;
        o->wcap = cap;
    }
    memcpy(o->wbuf + o->wlen, d, n);
    o->wlen += n;
    return true;
}

static void send_frame(io *o, int opcode, const void *payload, size_t n)
{
    if (o->eof)
        return; /* nobody to send to */
    uint8_t h[SG_WS_MAX_HEADER];
    size_t hl = sg_ws_frame_header(h, opcode, true, n, NULL);
    if (!wbuf_add(o, h, hl) || (n && !wbuf_add(o, payload, n)))
        o->broken = true;
}

static void send_close(sg_ws_conn *c, io *o, int code, const char *reason)
{
    if (o->close_sent)
        return;
    uint8_t p[SG_WS_MAX_CONTROL];
    size_t n = sg_ws_close_payload(p, code, reason);
    send_frame(o, SG_WS_OP_CLOSE, p, n);
    o->close_sent = true;
    o->close_deadline = sg_now_ms() + CLOSE_WAIT_MS;
    sg_log(SG_LOG_DEBUG, "ws %s: close %d %s", c->request_id, code, reason ? reason : "");
}

static bool inbox_full(const sg_ws_conn *c, size_t in_bytes, size_t in_n)
{
    return in_bytes >= c->max_message || in_n >= INBOX_MAX_MESSAGES;
}

/* Appends a message; true when the inbox is full now (stop parsing). */
static bool inbox_push(sg_ws_conn *c, int kind, uint8_t *data, size_t len)
{
    ws_msg *m = calloc(1, sizeof *m);
    if (!m) {
        free(data);
        return false;
    }
    m->kind = kind;
    m->data = data;
    m->len = len;
    m->t_recv = sg_now_ms();
    pthread_mutex_lock(&c->lock);
    if (c->in_tail)
        c->in_tail->next = m;
    else
        c->in_head = m;
    c->in_tail = m;
    c->in_bytes += len;
    c->in_n++;
    const bool full = inbox_full(c, c->in_bytes, c->in_n);
    pthread_mutex_unlock(&c->lock);
    return full;
}

static void inbox_drop(sg_ws_conn *c)
{
    pthread_mutex_lock(&c->lock);
    ws_msg *m = c->in_head;
    c->in_head = c->in_tail = NULL;
    c->in_bytes = c->in_n = 0;
    pthread_mutex_unlock(&c->lock);
    msgs_free(m);
}

/* Parses received bytes and acts on each event. Returns how many were used: all of them, unless
 * a message filled the inbox (the rest waits in o->stash, so a burst of tiny messages cannot be
 * parsed into more than INBOX_MAX_MESSAGES queued ones). */
static size_t on_bytes(sg_ws_conn *c, io *o, const uint8_t *d, size_t n)
{
    size_t done = 0;
    while (done < n) {
        sg_ws_event ev;
        size_t used = sg_ws_parse(&o->parser, d + done, n - done, &ev);
        done += used;
        switch (ev.type) {
        case SG_WS_EV_NONE:
            if (!used)
                return n; /* after a close or an error the rest is ignored */
            break;
        case SG_WS_EV_TEXT:
        case SG_WS_EV_BINARY: {
            o->last_rx = sg_now_ms();
            if (o->close_sent || o->reply_pending)
                break; /* closing: no new work */
            size_t len;
            uint8_t *m = sg_ws_parser_take(&o->parser, &len);
            if (inbox_push(c, ev.type == SG_WS_EV_TEXT ? MSG_TEXT : MSG_BINARY, m, len))
                return done;
            break;
        }
        case SG_WS_EV_PING:
            o->last_rx = sg_now_ms();
            if (!o->close_sent)
                send_frame(o, SG_WS_OP_PONG, ev.data, ev.len);
            break;
        case SG_WS_EV_PONG:
            o->last_rx = sg_now_ms();
            break;
        case SG_WS_EV_CLOSE:
            o->close_recv = true;
            o->reply_code = ev.close_code == SG_WS_CLOSE_NO_STATUS ? SG_WS_CLOSE_NORMAL : ev.close_code;
            if (!o->close_sent) {
                if (c->audio)
                    inbox_push(c, MSG_FLUSH, NULL, 0); /* the open utterance's final first */
                o->reply_pending = true;            /* after the messages already received */
            }
            return n;
        case SG_WS_EV_ERROR:
            sg_log(SG_LOG_INFO, "ws %s: protocol error, closing with %d: %s", c->request_id,
                   ev.close_code, ev.reason);
            inbox_drop(c);
            send_close(c, o, ev.close_code, ev.reason);
            o->failed = true; /* RFC 6455 7.1.7: fail the connection, no closing handshake */
            return n;
        }
    }
    return done;
}

/* Parses what waits in the stash (the inbox has room again). */
static void stash_parse(sg_ws_conn *c, io *o)
{
    size_t used = on_bytes(c, o, o->stash, o->stash_n);
    o->stash += used;
    o->stash_n -= used;
}

/* The peer went away without the closing handshake: for audio, the open utterance still gets
 * its final (and the session its transcript) before the thread ends. */
static void peer_gone(sg_ws_conn *c, io *o)
{
    if (o->eof)
        return;
    o->eof = true;
    o->wlen = o->woff = 0;
    o->stash_n = 0; /* (only a failed send can end a connection with bytes still stashed) */
    sg_log(SG_LOG_DEBUG, "ws %s: the peer went away without a close frame", c->request_id);
    if (c->audio && !o->close_recv && !o->close_sent)
        inbox_push(c, MSG_FLUSH, NULL, 0);
}

static void flush_wbuf(sg_ws_conn *c, io *o)
{
    const int fd = c->fd;
    while (o->woff < o->wlen) {
        ssize_t k = send(fd, o->wbuf + o->woff, o->wlen - o->woff, MSG_NOSIGNAL);
        if (k > 0) {
            o->woff += (size_t)k;
            continue;
        }
        if (k < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        peer_gone(c, o); /* EPIPE, ECONNRESET */
        return;
    }
    o->woff = o->wlen = 0;
}

/* What the jobs left for the I/O thread, taken under c->lock once a turn of its loop. */
typedef struct io_view {
    json_t *out;              /* messages to send (owned until sent) */
    int stop;                 /* set: close with this code */
    char stop_reason[STOP_REASON_MAX];
    bool busy;                /* a job or a partial transcription is running */
    bool pending;             /* messages wait in the inbox */
    size_t in_bytes, in_n;    /* the inbox's fill */
} io_view;

static void inbox_view(sg_ws_conn *c, io_view *v)
{
    v->pending = c->in_head != NULL;
    v->in_bytes = c->in_bytes;
    v->in_n = c->in_n;
}

static bool unsent(const io *o) { return o->wlen > o->woff && !o->eof; }

/* Start: a non-blocking socket, the parser, a DELETE that raced the upgrade, and the bytes
 * libmicrohttpd read past the request. */
static void io_start(sg_ws_conn *c, io *o)
{
    const sg_config *cfg = c->srv->cfg;
    memset(o, 0, sizeof *o);
    sg_ws_parser_init(&o->parser, c->max_message, true);
    o->idle_ms = 1000.0 * (cfg->ws_idle_s > 0 ? cfg->ws_idle_s : cfg->session_ttl_s);
    o->last_rx = sg_now_ms();
    int fl = fcntl(c->fd, F_GETFL);
    if (fl >= 0)
        fcntl(c->fd, F_SETFL, fl | O_NONBLOCK);
    /* a DELETE that came between the session lookup and on_upgrade putting c on the live list
     * did not see this socket: the session is no longer in the store, so close as it would have */
    sg_error gone = {0};
    sg_session *still = sg_session_get(c->srv->sessions, c->session->id, &gone);
    if (still)
        sg_session_release(still);
    else if (gone.code == SG_OK) { /* unknown now; a store that cannot answer leaves it open */
        sg_log(SG_LOG_DEBUG, "ws %s: the session was deleted during the upgrade", c->request_id);
        ask_close(c, SG_WS_CLOSE_NORMAL, "session deleted");
    }
    o->stash = c->extra;
    o->stash_n = c->extra_len;
    stash_parse(c, o);
}

/* Drain: takes what the jobs produced into the write buffer and meets what this moment asks for:
 * a requested stop, the answer to the peer's close once everything before it is answered, the
 * job for waiting messages, the idle timeout. *v is left describing the inbox and the jobs. */
static void io_drain(sg_ws_conn *c, io *o, io_view *v, double now)
{
    pthread_mutex_lock(&c->lock);
    v->out = c->out;
    c->out = NULL;
    v->stop = c->stop_code;
    memcpy(v->stop_reason, c->stop_reason, sizeof v->stop_reason);
    v->busy = c->job_active || c->partial_active;
    inbox_view(c, v);
    pthread_mutex_unlock(&c->lock);
    if (o->stash_n && !inbox_full(c, v->in_bytes, v->in_n)) {
        stash_parse(c, o);
        pthread_mutex_lock(&c->lock);
        inbox_view(c, v);
        pthread_mutex_unlock(&c->lock);
    }
    if (v->out) {
        size_t i;
        json_t *m;
        json_array_foreach(v->out, i, m) {
            if (o->close_sent)
                break;
            char *txt = json_dumps(m, JSON_COMPACT | JSON_REAL_PRECISION(9));
            if (txt)
                send_frame(o, SG_WS_OP_TEXT, txt, strlen(txt));
            free(txt);
        }
        json_decref(v->out);
        v->out = NULL;
    }
    if (v->stop && !o->close_sent) {
        inbox_drop(c);
        send_close(c, o, v->stop, v->stop_reason);
    }
    if (o->reply_pending && !o->close_sent && !v->busy && !v->pending)
        send_close(c, o, o->reply_code, NULL); /* everything before the peer's close is answered */
    if (v->pending && !o->close_sent && (o->retry_at == 0 || now >= o->retry_at)) {
        o->retry_at = 0;
        if (!submit_process(c))
            o->retry_at = now + RETRY_MS; /* queue full: the inbox waits, reading pauses */
    }
    if (!o->close_sent && now - o->last_rx >= o->idle_ms)
        send_close(c, o, SG_WS_CLOSE_GOING_AWAY, "idle timeout");
}

/* Whether the thread is done with the socket. After a protocol error our side is shut once the
 * close frame is out (the peer follows; no closing handshake). */
static bool io_done(sg_ws_conn *c, io *o, const io_view *v, double now)
{
    if (o->broken)
        return true;
    if (o->failed && !unsent(o) && !o->shut) {
        shutdown(c->fd, SHUT_WR);
        o->shut = true;
    }
    /* after our close: the peer's answer once ours is out, or give up at the deadline - also
     * when ours could not be sent (a peer that stopped reading would otherwise be polled with
     * a zero timeout for ever) */
    if (o->close_sent && ((!unsent(o) && o->close_recv) || now >= o->close_deadline))
        return true;
    return o->eof && !v->busy && !v->pending; /* the peer is gone; what it sent was processed */
}

/* Wait: polls the socket - for reading only while the inbox, the stash and the write buffer have
 * room, for writing while bytes wait - and the wake-up fd, until the next deadline (the close,
 * the idle timeout, a retry of the queue; at most a second). *can_read: reading was asked for. */
static int io_wait(sg_ws_conn *c, const io *o, const io_view *v, double now, struct pollfd pf[2],
                   bool *can_read)
{
    *can_read = !o->close_recv && !o->eof && !o->stash_n && !inbox_full(c, v->in_bytes, v->in_n) &&
                o->wlen - o->woff < WBUF_PAUSE;
    /* once the peer is gone the socket is left out (it would report POLLHUP for ever) while the
     * jobs finish */
    pf[0] = (struct pollfd){o->eof ? -1 : c->fd,
                            (short)((*can_read ? POLLIN : 0) | (unsent(o) ? POLLOUT : 0)), 0};
    pf[1] = (struct pollfd){c->wake_fd, POLLIN, 0};
    double until = o->close_sent ? o->close_deadline : o->last_rx + o->idle_ms;
    if (o->retry_at && o->retry_at < until)
        until = o->retry_at;
    int timeout = until <= now ? 0 : until - now > 1000.0 ? 1000 : (int)(until - now) + 1;
    return poll(pf, 2, timeout);
}

/* Read: clears the wake-up, flushes the write buffer, reads and parses what came (up to 256 KiB,
 * then the loop looks around again). */
static void io_read(sg_ws_conn *c, io *o, const struct pollfd pf[2], bool can_read)
{
    if (pf[1].revents & POLLIN) {
        uint64_t v;
        ssize_t k = read(c->wake_fd, &v, sizeof v);
        (void)k;
    }
    if (pf[0].revents & POLLOUT)
        flush_wbuf(c, o);
    if (!can_read || !(pf[0].revents & (POLLIN | POLLHUP | POLLERR))) {
        if (pf[0].revents & (POLLHUP | POLLERR | POLLNVAL))
            peer_gone(c, o);
        return;
    }
    for (int k = 0; k < 4 && !o->eof; k++) {
        ssize_t got = recv(c->fd, o->rbuf, sizeof o->rbuf, 0);
        if (got > 0) {
            o->stash = o->rbuf;
            o->stash_n = (size_t)got;
            stash_parse(c, o);
            if (o->stash_n || (size_t)got < sizeof o->rbuf)
                break; /* the inbox is full, or the socket had no more */
        } else if (got == 0) {
            peer_gone(c, o);
        } else {
            if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR)
                peer_gone(c, o); /* ECONNRESET: a client that closed with unread data */
            break;
        }
    }
}

/* Close: no new work, wait for the jobs that reference c, free the socket's state, give the slot
 * back, close the TCP connection and hand c to the hub to be joined and freed. */
static void io_close(sg_ws_conn *c, io *o)
{
    pthread_mutex_lock(&c->lock);
    if (!c->stop_code)
        c->stop_code = SG_WS_CLOSE_ABNORMAL; /* tells jobs still running to post nothing */
    while (c->job_active || c->partial_active || c->answer_active)
        pthread_cond_wait(&c->cond, &c->lock);
    pthread_mutex_unlock(&c->lock);
    inbox_drop(c);
    sg_ws_parser_free(&o->parser);
    free(o->wbuf);
    sg_ws_audio_free(c->sa); /* the audio state (up to ~1 min of samples) goes now, not at reaping */
    c->sa = NULL;
    /* the slot is free before the TCP connection closes, so a client that sees the close and
     * reconnects at once is not refused; c stays on the live list until the close is done (a
     * server stop waits for that list to empty before it stops the daemon) */
    sg_ws_hub *h = c->srv->ws;
    pthread_mutex_lock(&h->lock);
    h->slots--;
    pthread_mutex_unlock(&h->lock);
    MHD_upgrade_action(c->urh, MHD_UPGRADE_ACTION_CLOSE);
    sg_log(SG_LOG_DEBUG, "ws %s: closed", c->request_id);
    pthread_mutex_lock(&h->lock);
    for (sg_ws_conn **p = &h->live; *p; p = &(*p)->next)
        if (*p == c) {
            *p = c->next;
            break;
        }
    /* taken under h->lock: sg_ws_session_deleted reads c->session->id under it, and after a
     * DELETE this reference may be the session's last */
    sg_session *ses = c->session;
    c->session = NULL;
    c->next = h->dead;
    h->dead = c;
    pthread_cond_broadcast(&h->changed);
    pthread_mutex_unlock(&h->lock);
    sg_session_release(ses); /* never deletes the session: only this reference goes */
}

/* The socket's thread: drain, wait, read, until done; then close. */
static void *io_main(void *arg)
{
    sg_ws_conn *c = arg;
    io o;
    io_start(c, &o);
    for (;;) {
        const double now = sg_now_ms();
        io_view v;
        io_drain(c, &o, &v, now);
        if (io_done(c, &o, &v, now))
            break;
        struct pollfd pf[2];
        bool can_read;
        int rc = io_wait(c, &o, &v, now, pf, &can_read);
        if (rc < 0 && errno != EINTR)
            break;
        if (rc > 0)
            io_read(c, &o, pf, can_read);
    }
    io_close(c, &o);
    return NULL;
}

/* ---- the upgrade (libmicrohttpd threads) ------------------------------------------------------- */

static void on_upgrade(void *cls, struct MHD_Connection *connection, void *con_cls,
                       const char *extra_in, size_t extra_in_size, MHD_socket sock,
                       struct MHD_UpgradeResponseHandle *urh)
{
    (void)connection;
    sg_ws_conn *c = cls;
    sg_req *r = con_cls;
    if (r && r->ws == c)
        r->ws = NULL; /* the connection is the thread's from now on */
    sg_ws_hub *h = c->srv->ws;
    c->fd = sock;
    c->urh = urh;
    if (extra_in_size && (c->extra = malloc(extra_in_size)) != NULL) {
        memcpy(c->extra, extra_in, extra_in_size);
        c->extra_len = extra_in_size;
    }
    pthread_mutex_lock(&h->lock);
    bool ok = !h->stopping && pthread_create(&c->thread, NULL, io_main, c) == 0;
    if (ok) {
        c->next = h->live;
        h->live = c;
    }
    pthread_mutex_unlock(&h->lock);
    if (ok)
        return;
    /* stopping (or no thread): say so in one frame and hang up */
    uint8_t frame[64], p[SG_WS_MAX_CONTROL];
    size_t pn = sg_ws_close_payload(p, SG_WS_CLOSE_GOING_AWAY, "server shutting down");
    size_t hl = sg_ws_frame_header(frame, SG_WS_OP_CLOSE, true, pn, NULL);
    memcpy(frame + hl, p, pn);
    ssize_t k = send(sock, frame, hl + pn, MSG_NOSIGNAL | MSG_DONTWAIT);
    (void)k;
    MHD_upgrade_action(urh, MHD_UPGRADE_ACTION_CLOSE);
    conn_free(c);
    release_slot(h);
}

enum MHD_Result sg_ws_send_upgrade(sg_req *r)
{
    sg_ws_conn *c = r->ws;
    struct MHD_Response *resp = MHD_create_response_for_upgrade(on_upgrade, c);
    if (!resp)
        return MHD_NO;
    MHD_add_response_header(resp, MHD_HTTP_HEADER_UPGRADE, "websocket");
    MHD_add_response_header(resp, "Sec-WebSocket-Accept", r->ws_accept);
    MHD_add_response_header(resp, "X-Request-ID", r->request_id);
    MHD_add_response_header(resp, "X-Session-ID", c->session->id);
    MHD_add_response_header(resp, "Cache-Control", "no-store");
    enum MHD_Result ret = MHD_queue_response(r->conn, MHD_HTTP_SWITCHING_PROTOCOLS, resp);
    MHD_destroy_response(resp);
    sg_metrics_request(r->srv->metrics, r->route_name, 101);
    return ret;
}

void sg_ws_request_done(sg_req *r)
{
    if (!r->ws)
        return;
    sg_ws_hub *h = r->srv->ws;
    conn_free(r->ws); /* never upgraded (the client left before the 101 went out) */
    r->ws = NULL;
    release_slot(h);
}

/* The upgrade of GET /ws/audio|frame/{id} (the dispatcher checked method, readiness and the
 * session). */
static void ws_open(sg_req *r, bool audio)
{
    sg_server *s = r->srv;
    reap_dead(s->ws);
    sg_ws_request hs = {
        r->method,
        r->http_version,
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_UPGRADE),
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, MHD_HTTP_HEADER_CONNECTION),
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Sec-WebSocket-Version"),
        MHD_lookup_connection_value(r->conn, MHD_HEADER_KIND, "Sec-WebSocket-Key"),
    };
    sg_error err = {0};
    int code = sg_ws_handshake_check(&hs, r->ws_accept, &err);
    if (code == 426) {
        r->ws_version_header = true;
        sg_req_error(r, 426, "INVALID_REQUEST", "%s", err.msg);
        return;
    }
    if (code) {
        sg_req_error(r, code == 503 ? 503 : 400, code == 503 ? "OVERLOADED" : "INVALID_REQUEST",
                     "%s", err.msg);
        return;
    }
    if (audio && !s->b->asr) {
        sg_req_error(r, 503, "MODEL_UNAVAILABLE", "speech recognition is not available: no ASR "
                     "model is loaded (start sg-edge with --asr-model)");
        return;
    }
    /* /ws/frame: the client-keyframe hint holds for the whole socket (binary messages carry only
     * the image). The header, or the query parameter for clients that cannot set headers on a
     * WebSocket (browsers); either must be a boolean (422). */
    bool client_keyframe = false;
    if (!audio) {
        if (!sg_req_client_keyframe_header(r, &client_keyframe))
            return;
        const char *q = NULL;
        size_t qn = 0;
        if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, "client_keyframe",
                                          strlen("client_keyframe"), &q, &qn) != MHD_YES)
            q = NULL;
        bool qv = false;
        /* the decoded value carries its length: "true%00x" is not "true" */
        if (q && (strlen(q) != qn || !sg_parse_bool(q, &qv))) {
            sg_req_error(r, 422, "INVALID_REQUEST", "query parameter client_keyframe must be true "
                         "or false");
            return;
        }
        client_keyframe = client_keyframe || qv;
    }
    /* /ws/audio?answer=true&speak=true: answer each final (and speak the answers) */
    bool want[2] = {false, false};
    static const char *const answer_args[2] = {"answer", "speak"};
    for (int k = 0; audio && k < 2; k++) {
        const char *q = NULL;
        size_t qn = 0;
        if (MHD_lookup_connection_value_n(r->conn, MHD_GET_ARGUMENT_KIND, answer_args[k],
                                          strlen(answer_args[k]), &q, &qn) != MHD_YES)
            q = NULL;
        if (q && (strlen(q) != qn || !sg_parse_bool(q, &want[k]))) {
            sg_req_error(r, 422, "INVALID_REQUEST", "query parameter %s must be true or false",
                         answer_args[k]);
            return;
        }
    }
    sg_ws_hub *h = s->ws;
    pthread_mutex_lock(&h->lock);
    const bool room = !h->stopping && h->slots < s->cfg->max_websockets;
    if (room)
        h->slots++;
    pthread_mutex_unlock(&h->lock);
    if (!room) {
        sg_req_error(r, 503, "OVERLOADED", "%d WebSockets are open (SG_MAX_WEBSOCKETS); retry "
                     "shortly", s->cfg->max_websockets);
        r->retry_after = s->cfg->retry_after_s;
        return;
    }
    sg_ws_conn *c = calloc(1, sizeof *c);
    if (c) {
        c->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
        pthread_mutex_init(&c->lock, NULL);
        pthread_cond_init(&c->cond, NULL);
    }
    if (c && audio && (c->sa = sg_ws_audio_new(s->b, &err)))
        sg_ws_audio_set_answer(c->sa, want[0], want[1]);
    if (!c || c->wake_fd < 0 || (audio && !c->sa)) {
        conn_free(c);
        release_slot(h);
        if (audio && c && err.code == SG_EUNSUPPORTED)
            sg_req_error(r, 503, "MODEL_UNAVAILABLE", "%s", err.msg);
        else
            sg_req_error(r, 503, "OVERLOADED", "could not set up the WebSocket: %s",
                         err.msg[0] ? err.msg : "out of memory");
        return;
    }
    c->srv = s;
    c->audio = audio;
    c->client_keyframe = client_keyframe;
    c->max_message = audio ? AUDIO_MAX_MESSAGE : s->cfg->frame_max_bytes;
    memcpy(c->request_id, r->request_id, sizeof c->request_id);
    c->session = r->session; /* the request's reference is the socket's now */
    r->session = NULL;
    c->fd = -1;
    r->ws = c;
    r->status = 101;
    r->done = true;
    sg_log(SG_LOG_DEBUG, "ws %s: upgrading %s for session %s", c->request_id, r->route_name,
           c->session->id);
}

void sg_handle_ws_audio(sg_req *r) { ws_open(r, true); }
void sg_handle_ws_frame(sg_req *r) { ws_open(r, false); }

/* ---- stop and session deletion ---------------------------------------------------------------- */

/* Asks a socket to close (under h->lock for a live one, or from its own thread). */
static void ask_close(sg_ws_conn *c, int code, const char *reason)
{
    pthread_mutex_lock(&c->lock);
    if (!c->stop_code) {
        c->stop_code = code;
        snprintf(c->stop_reason, sizeof c->stop_reason, "%s", reason);
    }
    wake(c);
    pthread_mutex_unlock(&c->lock);
}

void sg_ws_session_deleted(sg_server *s, const char *session_id)
{
    if (!s->ws || !session_id)
        return;
    sg_ws_hub *h = s->ws;
    pthread_mutex_lock(&h->lock);
    for (sg_ws_conn *c = h->live; c; c = c->next)
        if (c->session && strcasecmp(c->session->id, session_id) == 0)
            ask_close(c, SG_WS_CLOSE_NORMAL, "session deleted");
    pthread_mutex_unlock(&h->lock);
}

void sg_ws_stop_all(sg_server *s, double grace_s)
{
    sg_ws_hub *h = s->ws;
    if (!h)
        return;
    pthread_mutex_lock(&h->lock);
    h->stopping = true;
    int n = 0;
    for (sg_ws_conn *c = h->live; c; c = c->next, n++)
        ask_close(c, SG_WS_CLOSE_GOING_AWAY, "server shutting down");
    if (n)
        sg_log(SG_LOG_INFO, "closing %d WebSocket(s)", n);
    /* each thread waits for its job, sends the close, waits <= 2 s for the answer, ends; upgrades
     * still under way are refused by on_upgrade */
    double deadline = sg_now_ms() + grace_s * 1000.0;
    while (h->live && sg_now_ms() < deadline) {
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        ts.tv_nsec += 50 * 1000000L;
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&h->changed, &h->lock, &ts);
    }
    const bool left = h->live != NULL;
    pthread_mutex_unlock(&h->lock);
    if (left) {
        /* a job that outlives the grace period: force the sockets shut so the threads end */
        sg_log(SG_LOG_WARN, "WebSockets still open after %.0f s; shutting their sockets", grace_s);
        pthread_mutex_lock(&h->lock);
        for (sg_ws_conn *c = h->live; c; c = c->next)
            shutdown(c->fd, SHUT_RDWR);
        while (h->live)
            pthread_cond_wait(&h->changed, &h->lock);
        pthread_mutex_unlock(&h->lock);
    }
    reap_dead(h);
}
