/* `sg stream`: a pair of smart glasses and their phone, simulated against a running sg-edge.
 *
 * A 30 fps camera plays still photos (a directory of JPEG/PNG, each held for --hold seconds while
 * the view pans slowly across it, so consecutive frames differ a little and a new photo is a scene
 * cut) or a Y4M clip (resampled in time to 30 fps, looped). Every camera frame gets a motion score;
 * the frame-rate controller (libsgclient) decides which frames to capture; captured frames are
 * fitted to the upload size (640x480), passed through the keyframe pre-filter, fitted into the
 * upload budget (JPEG quality from the policy, lowered down to 40 when the budget is short, else the
 * frame is skipped and the next one is due in its place) and queued; with the pre-filter on, frames
 * go up with the client-keyframe hint, so the server analyses each one. A microphone sends
 * one-second chunks of --audio (looped) as Ogg Opus (--audio-codec; every chunk is sent: the
 * server's VAD decides what is speech, and Opus VBR spends few bytes on silence), and a question is
 * asked every --question-every seconds (an interaction: it makes the user "active"). Audio and
 * questions are charged to the budget but never dropped. One uploader thread drains the bounded
 * queue (questions first, then audio, then frames; old frames are dropped when it is full, audio
 * never) through the HTTP client with its retry policy; what each upload really cost (headers,
 * retries) is charged to the budget afterwards, and a frame dropped from the queue is refunded.
 *
 * Time: the simulation runs on a clock that is real time x --speed (default 1). Camera ticks,
 * audio chunks, questions, retry waits and Retry-After are all on that clock, so at --speed 10 a
 * 60 s session takes 6 s and a Retry-After of 1 s waits 100 ms; network round trips and server work
 * stay real, so latencies are real milliseconds. KB/min and fps are per simulated minute/second.
 * If the machine cannot keep up with the speed, the camera falls behind (camera.max_lag_ms says
 * by how much) but no camera frame is skipped. The budget and the per-minute byte counts follow
 * the camera's own timeline (the tick being simulated, stream.tick_ms), not the wall clock: a
 * camera that lags has not lived the time the wall clock says, and a bucket refilled by the wall
 * clock would let it spend a budget for seconds it never simulated (under ASan, 20 simulated
 * seconds at 10x took 4 real seconds and spent 450 KB of a 240 KB budget).
 *
 * The code, in order: frame sources; the shared stream state and the uploader thread (uploader,
 * upload_one); options; set-up (glasses_open: camera, microphone, frame pipeline; stream_open:
 * queue, budget, client, session); one camera tick (tick_wait, tick_microphone, tick_question,
 * tick_camera -> tick_capture) and the loop over them (glasses_run); the report (report_json, one
 * function per section, and report_text); sg_cmd_stream ties them together. */
#include "sg_stream.h"

#include <dirent.h>
#include <getopt.h>
#include <math.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#include <jansson.h>

#include "media/audio.h"
#include "media/image.h"
#include "sgclient.h"

#define MAX_IMAGES 256
#define AUDIO_CHUNK_SAMPLES SG_AUDIO_RATE /* one second at 16 kHz */

typedef enum { PREFILTER_ON, PREFILTER_OFF, PREFILTER_SHADOW } prefilter_mode;

typedef struct opts {
    const char *server, *frames, *audio, *api_key, *cacert;
    const char *question;
    double battery, duration_s, speed, question_every_s, hold_s, timeout_s, pan;
    int cam_w, cam_h, up_w, up_h;
    int queue_cap, quality, audio_bitrate;
    double upload_budget; /* KB/min; < 0: the battery band's default; 0: unlimited */
    bool charging;         /* --charging: said in the telemetry */
    double telemetry_every_s; /* --telemetry-every: s between telemetry reports, 0 = none */
    sg_audio_codec audio_codec;
    prefilter_mode prefilter;
    bool json, frame_json, keep_session, insecure, http1;
    bool stream_answers;   /* --stream-answers: questions answered as events (SSE) */
    bool speak;            /* --speak: ... with their speech */
    const char *answer_dir;/* --answer-audio DIR: each answer's speech written there */
    const char *local_llm; /* --local-llm DIR: the on-device model for offline answers */
    const char *answers;   /* --answers FILE|-: every answer as a JSON line */
    double offline_probe_s;/* --offline-probe: simulated s between tries while the link is down */
    int offline_tokens;    /* --offline-tokens: the local model's answer length */
    unsigned long long seed;
} opts;

/* ---- time ----------------------------------------------------------------------------------- */

static double real_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6;
}

static void sleep_real_ms(double ms)
{
    if (!(ms > 0.0))
        return;
    struct timespec ts;
    ts.tv_sec = (time_t)(ms / 1000.0);
    ts.tv_nsec = (long)((ms - (double)ts.tv_sec * 1000.0) * 1e6);
    if (ts.tv_nsec >= 1000000000L)
        ts.tv_nsec = 999999999L;
    nanosleep(&ts, NULL);
}

/* ---- frame sources ----------------------------------------------------------------------------- */

typedef struct source {
    bool y4m;
    int w, h; /* camera frame size */
    /* photos: canvases 9/8 of the camera size, panned over */
    int nimg, cw, ch;
    uint8_t **canvas;
    long long hold_frames;
    /* y4m */
    FILE *f;
    sg_y4m_info info;
    uint8_t *planes, *rgb;
    long long read_count; /* y4m frames read so far (loops included) */
    long long file_frames;
    /* the current camera frame */
    const uint8_t *ptr;
    size_t stride;
} source;

static void source_free(source *s)
{
    for (int i = 0; i < s->nimg; i++)
        free(s->canvas[i]);
    free(s->canvas);
    if (s->f)
        fclose(s->f);
    free(s->planes);
    free(s->rgb);
    memset(s, 0, sizeof *s);
}

static int cmp_str(const void *a, const void *b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

static bool has_ext(const char *name, const char *ext)
{
    size_t n = strlen(name), e = strlen(ext);
    return n > e && strcasecmp(name + n - e, ext) == 0;
}

/* Reads the file at path whole and decodes it into *out. 0, or -1 with "cannot read PATH" or
 * "PATH: why" in err. */
typedef sg_status (*decode_fn)(const uint8_t *data, size_t len, void *out, sg_error *e);
static int read_decoded(const char *path, decode_fn decode, void *out, char *err, size_t errlen)
{
    size_t len;
    char *data = sg_tool_read_file(path, &len);
    if (!data) {
        snprintf(err, errlen, "cannot read %s", path);
        return -1;
    }
    sg_error e = {0};
    sg_status st = decode((const uint8_t *)data, len, out, &e);
    free(data);
    if (st != SG_OK) {
        snprintf(err, errlen, "%s: %s", path, e.msg);
        return -1;
    }
    return 0;
}

static sg_status decode_image(const uint8_t *data, size_t len, void *out, sg_error *e)
{
    return sg_image_decode(data, len, 0, out, e);
}

static sg_status decode_audio(const uint8_t *data, size_t len, void *out, sg_error *e)
{
    return sg_audio_decode(data, len, SG_AUDIO_AUTO, 0, 0, out, e);
}

static int add_photo(source *s, const char *path, char *err, size_t errlen)
{
    sg_image img;
    if (read_decoded(path, decode_image, &img, err, errlen) != 0)
        return -1;
    uint8_t *c = malloc((size_t)s->cw * (size_t)s->ch * 3);
    if (!c || sg_rgb_fit(img.rgb, img.width, img.height, c, s->cw, s->ch) != SG_CLIENT_OK) {
        free(c);
        sg_image_free(&img);
        snprintf(err, errlen, "%s: cannot scale the photo", path);
        return -1;
    }
    sg_image_free(&img);
    s->canvas[s->nimg++] = c;
    return 0;
}

static int source_open_photos(source *s, const char *path, int w, int h, double hold_s, double pan,
                              char *err, size_t errlen)
{
    /* the view pans `pan` camera pixels a second across a canvas just large enough for the hold */
    double margin = ceil(pan * hold_s);
    if (margin > w / 2)
        margin = w / 2;
    s->w = w;
    s->h = h;
    s->cw = w + (int)margin;
    s->ch = h + (int)(margin * h / w);
    s->hold_frames = (long long)llround(hold_s * SG_CAMERA_FPS);
    if (s->hold_frames < 1)
        s->hold_frames = 1;
    s->canvas = calloc(MAX_IMAGES, sizeof *s->canvas);
    if (!s->canvas) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    DIR *d = opendir(path);
    if (!d) /* a single photo */
        return add_photo(s, path, err, errlen);
    char *names[MAX_IMAGES];
    int n = 0;
    struct dirent *de;
    while ((de = readdir(d)) != NULL && n < MAX_IMAGES) {
        if (has_ext(de->d_name, ".jpg") || has_ext(de->d_name, ".jpeg") || has_ext(de->d_name, ".png")) {
            size_t l = strlen(path) + strlen(de->d_name) + 2;
            names[n] = malloc(l);
            if (names[n])
                snprintf(names[n++], l, "%s/%s", path, de->d_name);
        }
    }
    closedir(d);
    qsort(names, (size_t)n, sizeof names[0], cmp_str);
    int rc = 0;
    for (int i = 0; i < n; i++) {
        if (rc == 0)
            rc = add_photo(s, names[i], err, errlen);
        free(names[i]);
    }
    if (rc == 0 && s->nimg == 0) {
        snprintf(err, errlen, "%s has no .jpg, .jpeg or .png files", path);
        rc = -1;
    }
    return rc;
}

static int y4m_read_next(source *s, char *err, size_t errlen)
{
    for (int pass = 0; pass < 2; pass++) {
        char line[4096];
        if (fgets(line, sizeof line, s->f)) {
            size_t l = strlen(line);
            if (sg_y4m_frame_header_len((const uint8_t *)line, l) != l) {
                snprintf(err, errlen, "Y4M frame %lld: no FRAME header", s->file_frames);
                return -1;
            }
            size_t got = fread(s->planes, 1, s->info.frame_bytes, s->f);
            if (got == s->info.frame_bytes) {
                s->file_frames++;
                s->read_count++;
                return 0;
            }
            if (got != 0) {
                snprintf(err, errlen, "Y4M frame %lld is truncated", s->file_frames);
                return -1;
            }
        }
        if (ferror(s->f)) {
            snprintf(err, errlen, "cannot read the Y4M file");
            return -1;
        }
        if (s->file_frames == 0)
            break;
        /* end of the clip: loop */
        if (fseek(s->f, (long)s->info.header_len, SEEK_SET) != 0) {
            snprintf(err, errlen, "cannot rewind the Y4M file");
            return -1;
        }
        s->file_frames = 0;
    }
    snprintf(err, errlen, "the Y4M file has no frames");
    return -1;
}

static int source_open_y4m(source *s, const char *path, char *err, size_t errlen)
{
    s->y4m = true;
    s->f = fopen(path, "rb");
    if (!s->f) {
        snprintf(err, errlen, "cannot open %s", path);
        return -1;
    }
    uint8_t head[4096];
    size_t n = fread(head, 1, sizeof head, s->f);
    char e[SG_CLIENT_ERROR_SIZE];
    if (sg_y4m_parse_header(head, n, &s->info, e) != SG_CLIENT_OK) {
        snprintf(err, errlen, "%s: %s", path, e);
        return -1;
    }
    if (fseek(s->f, (long)s->info.header_len, SEEK_SET) != 0) {
        snprintf(err, errlen, "cannot seek in %s", path);
        return -1;
    }
    s->w = s->info.width;
    s->h = s->info.height;
    s->planes = malloc(s->info.frame_bytes);
    s->rgb = malloc((size_t)s->w * (size_t)s->h * 3);
    if (!s->planes || !s->rgb) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    if (y4m_read_next(s, err, errlen) != 0)
        return -1;
    sg_y4m_to_rgb(&s->info, s->planes, s->rgb);
    s->ptr = s->rgb;
    s->stride = (size_t)s->w * 3;
    return 0;
}

/* Points s->ptr at camera frame k. */
static int source_frame(source *s, long long k, char *err, size_t errlen)
{
    if (s->y4m) {
        /* the clip's frame on screen at t = k / 30 s */
        long long want = k * s->info.fps_num / ((long long)s->info.fps_den * SG_CAMERA_FPS);
        bool changed = false;
        while (s->read_count - 1 < want) {
            if (y4m_read_next(s, err, errlen) != 0)
                return -1;
            changed = true;
        }
        if (changed)
            sg_y4m_to_rgb(&s->info, s->planes, s->rgb);
        return 0;
    }
    long long img = (k / s->hold_frames) % s->nimg, f = k % s->hold_frames;
    int mx = s->cw - s->w, my = s->ch - s->h;
    double t = s->hold_frames > 1 ? (double)f / (double)(s->hold_frames - 1) : 0.0;
    if ((k / s->hold_frames) % 2) /* pan back on every other photo */
        t = 1.0 - t;
    int ox = (int)lround(t * mx), oy = (int)lround(t * my);
    s->stride = (size_t)s->cw * 3;
    s->ptr = s->canvas[img] + (size_t)oy * s->stride + (size_t)ox * 3;
    return 0;
}

static void source_render(const source *s, uint8_t *dst)
{
    for (int y = 0; y < s->h; y++)
        memcpy(dst + (size_t)y * s->w * 3, s->ptr + (size_t)y * s->stride, (size_t)s->w * 3);
}

/* ---- the stream ------------------------------------------------------------------------------- */

typedef struct dvec {
    double *v;
    size_t n, cap;
} dvec;

static void dvec_push(dvec *d, double x)
{
    if (d->n == d->cap) {
        size_t cap = d->cap ? d->cap * 2 : 256;
        double *p = realloc(d->v, cap * sizeof *p);
        if (!p)
            return; /* a lost sample, not a crash */
        d->v = p;
        d->cap = cap;
    }
    d->v[d->n++] = x;
}

typedef struct stream {
    opts o;
    double t0_real;
    sg_client *client;
    char sid[SG_CLIENT_SESSION_ID_SIZE];
    pthread_mutex_t mu;
    pthread_cond_t cv;
    bool mu_ready;
    pthread_t uploader_thread;
    bool uploader_running;
    double tick_ms; /* the simulated present: the camera tick being played (under mu) */
    sg_upload_queue *q;
    bool done;
    double drain_deadline_real;
    long long uploading_seq;
    sg_uplink *uplink;
    /* counters, under mu */
    long long frames_sent, frames_failed, frames_abandoned, frames_unsent, frames_hinted;
    long long server_keyframes, server_skipped, shadow_agree, shadow_total;
    long long audio_ok, audio_speech, audio_not_transcribed, audio_failed, audio_unsent;
    long long queries_answered, queries_failed, queries_unsent, gave_up;
    double jpeg_bytes_sum, quality_sum;
    long long jpeg_count;
    sg_budget *budget;
    double audio_bytes_sum;
    long long audio_encoded;
    dvec turn_ms, http_ms[SG_UPLOAD_KINDS];
    dvec first_token_ms, first_audio_ms; /* streamed answers: from asking, real ms */
    long long answer_sentences, answer_files, answer_audio_bytes, answers_streamed;
    uint64_t *minute_bytes; /* [minute][kind] */
    int nminutes;
    char last_error[384];
    /* the offline path (under mu): the link is down after an upload got no response at all;
     * questions are then answered on the phone (the local model or the rule-based responder over
     * the scene the server last described), frames and audio stay queued and one is tried again
     * every offline_probe_s; the first response brings the link back */
    bool offline;
    double probe_at_real;
    char *scene;            /* the last turn result's visual_context */
    sg_local_llm *llm;
    FILE *answers;
    long long answers_n, link_lost, link_back, offline_answers, offline_llm, offline_rules;
    long long requeued, resumed_frames, resumed_audio, sessions_renewed, held_frames_max;
    bool started_offline;   /* no answer at start (with --local-llm): no session yet */
    long long sessions_late; /* sessions opened when the link first came up (0 or 1) */
} stream;

static double sim_now(const stream *s) { return (real_ms() - s->t0_real) * s->o.speed; }

static double cb_now(void *ud) { return sim_now(ud); }

static void cb_sleep(void *ud, double ms)
{
    stream *s = ud;
    sleep_real_ms(ms / s->o.speed);
}

static bool cb_keep_trying(void *ud, sg_upload_kind kind, int attempts)
{
    (void)attempts;
    stream *s = ud;
    pthread_mutex_lock(&s->mu);
    bool keep = true;
    if (s->done && real_ms() > s->drain_deadline_real)
        keep = false;
    else if (kind == SG_UPLOAD_FRAME && sg_upload_queue_has_newer_frame(s->q, s->uploading_seq))
        keep = false; /* a newer frame is waiting: this one is stale */
    pthread_mutex_unlock(&s->mu);
    return keep;
}

static void account_bytes(stream *s, sg_upload_kind kind, uint64_t bytes)
{
    int m = (int)(s->tick_ms / 60000.0);
    if (m >= s->nminutes)
        m = s->nminutes - 1;
    if (m < 0)
        m = 0;
    s->minute_bytes[(size_t)m * SG_UPLOAD_KINDS + kind] += bytes;
}

/* sg_upload_item.tag of a frame: bit 0 the pre-filter's verdict, bit 1 sent with the hint */
#define TAG_PREFILTER_KEY 1
#define TAG_HINT 2

/* What the budget charged for an item when it was queued (frames: in sg_budget_fit_frame). */
static double charged_bytes(const sg_upload_item *it)
{
    return (double)it->len + SG_BUDGET_OVERHEAD_BYTES;
}

/* Under s->mu: an item that was queued but will never be sent gives its charge back. */
static void refund(stream *s, const sg_upload_item *it)
{
    sg_budget_spend(s->budget, s->tick_ms, it->kind, -charged_bytes(it));
}

static bool body_bool(const sg_client_result *r, const char *key, bool *out)
{
    json_t *j = r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
    json_t *v = json_object_get(j, key);
    bool ok = json_is_boolean(v);
    if (ok)
        *out = json_is_true(v);
    json_decref(j);
    return ok;
}

/* Under s->mu: what became of a frame upload (and what its round trip says about the uplink). */
static void count_frame(stream *s, const sg_upload_item *it, sg_client_status st, const sg_client_result *r)
{
    if (st == SG_CLIENT_ABANDONED) {
        s->frames_abandoned++;
        return;
    }
    if (st != SG_CLIENT_OK) {
        s->frames_failed++;
        return;
    }
    s->frames_sent++;
    bool key = false;
    if (body_bool(r, "keyframe", &key)) {
        if (key)
            s->server_keyframes++;
        else
            s->server_skipped++;
        if (s->o.prefilter == PREFILTER_SHADOW) {
            s->shadow_total++;
            s->shadow_agree += key == ((it->tag & TAG_PREFILTER_KEY) != 0);
        }
        s->frames_hinted += (it->tag & TAG_HINT) != 0;
    }
    double net = r->latency_ms - (r->server_ms > 0 ? r->server_ms : 0.0);
    sg_uplink_observe(s->uplink, (size_t)r->body_up / (size_t)(r->attempts > 0 ? r->attempts : 1), net);
}

/* Under s->mu: what became of an audio chunk. */
static void count_audio(stream *s, sg_client_status st, const sg_client_result *r)
{
    bool speech = false;
    if (st == SG_CLIENT_OK) {
        s->audio_ok++;
        if (body_bool(r, "speech", &speech) && speech)
            s->audio_speech++;
    } else if (r->status == 503 && strcmp(r->error, "MODEL_UNAVAILABLE") == 0) {
        s->audio_not_transcribed++; /* delivered and validated; no ASR model on the server */
    } else if (st == SG_CLIENT_ABANDONED) {
        s->audio_unsent++;
    } else {
        s->audio_failed++;
    }
}

/* Under s->mu: what became of a question (asked_real: when it was asked, real ms). */
static void count_query(stream *s, sg_client_status st, double asked_real, double done_real)
{
    if (st == SG_CLIENT_OK) {
        s->queries_answered++;
        dvec_push(&s->turn_ms, done_real - asked_real);
    } else if (st == SG_CLIENT_ABANDONED) {
        s->queries_unsent++;
    } else {
        s->queries_failed++;
    }
}

/* A streamed answer as it arrives: first text, first speech, the speech into files. */
typedef struct answer_cb {
    stream *s;
    long long n;            /* the answer's number in this run */
    double first_token, first_audio; /* ms from sending, -1 */
    long long sentences, files, bytes;
} answer_cb;

static bool on_answer(void *ud, const sg_answer_event *ev)
{
    answer_cb *a = ud;
    if (strcmp(ev->type, "token") == 0 && a->first_token < 0)
        a->first_token = ev->t_ms;
    if (strcmp(ev->type, "audio") != 0)
        return true;
    if (a->first_audio < 0)
        a->first_audio = ev->t_ms;
    a->sentences++;
    a->bytes += (long long)ev->audio_len;
    const char *dir = a->s->o.answer_dir;
    if (!dir)
        return true;
    char path[4096];
    snprintf(path, sizeof path, "%s/answer-%03lld-%02d.%s", dir, a->n, ev->sentence,
             ev->format && strcmp(ev->format, "wav") == 0 ? "wav" : "ogg");
    FILE *f = fopen(path, "wb");
    if (f) {
        a->files += fwrite(ev->audio, 1, ev->audio_len, f) == ev->audio_len;
        fclose(f);
    }
    return true;
}

/* Under s->mu: one answer as a JSON line on --answers. */
static void print_answer(stream *s, const char *question, const char *text, bool offline,
                         const char *from)
{
    s->answers_n++;
    if (!s->answers)
        return;
    json_t *j = json_pack("{s:I,s:f,s:s,s:s,s:b,s:s}", "answer", (json_int_t)s->answers_n, "t_s",
                          round(sim_now(s) / 10.0) / 100.0, "question", question, "text",
                          text ? text : "", "offline", offline, "source", from);
    if (j && json_dumpf(j, s->answers, JSON_COMPACT | JSON_REAL_PRECISION(6)) == 0) {
        fputc('\n', s->answers);
        fflush(s->answers);
    }
    json_decref(j);
}

/* A question answered on the phone (the link is down). */
static void answer_offline(stream *s, const char *question)
{
    pthread_mutex_lock(&s->mu);
    char *scene = s->scene ? strdup(s->scene) : NULL;
    pthread_mutex_unlock(&s->mu);
    char *text = NULL, err[SG_CLIENT_ERROR_SIZE] = "";
    sg_offline_source src = SG_OFFLINE_RULES;
    sg_client_status st = sg_offline_answer(s->llm, scene, question, s->o.offline_tokens, NULL, NULL,
                                            &text, &src, err);
    pthread_mutex_lock(&s->mu);
    if (st == SG_CLIENT_OK) {
        s->offline_answers++;
        if (src == SG_OFFLINE_LOCAL_LLM)
            s->offline_llm++;
        else
            s->offline_rules++;
        print_answer(s, question, text, true, sg_offline_source_name(src));
    } else {
        s->queries_failed++;
        snprintf(s->last_error, sizeof s->last_error, "offline answer: %s", err);
    }
    pthread_mutex_unlock(&s->mu);
    free(text);
    free(scene);
}

/* No response at all (refused, unreachable, timed out): the link is down. */
static bool link_down(sg_client_status st, const sg_client_result *r)
{
    return st != SG_CLIENT_OK && r->status == 0 && r->network_errors > 0;
}

/* Under s->mu: the turn result of an answered question: its scene is remembered, its answer
 * printed. */
static void remember_answer(stream *s, const char *question, const sg_client_result *r)
{
    json_t *j = r->body ? json_loadb(r->body, r->body_len, 0, NULL) : NULL;
    const char *scene = json_string_value(json_object_get(j, "visual_context"));
    if (scene && *scene) {
        free(s->scene);
        s->scene = strdup(scene);
    }
    print_answer(s, question, json_string_value(json_object_get(j, "response")), false, "server");
    json_decref(j);
}

/* A new session for the stream (r may be NULL), counted in *count (under mu). */
static sg_client_status open_session(stream *s, long long *count, sg_client_result *r)
{
    char sid[SG_CLIENT_SESSION_ID_SIZE];
    sg_client_status st = sg_client_create_session(s->client, sid, r);
    if (st != SG_CLIENT_OK)
        return st;
    pthread_mutex_lock(&s->mu);
    memcpy(s->sid, sid, sizeof sid);
    (*count)++;
    pthread_mutex_unlock(&s->mu);
    return SG_CLIENT_OK;
}

/* The server forgot the session (it restarted, or the session expired): a new one. */
static bool renew_session(stream *s)
{
    return open_session(s, &s->sessions_renewed, NULL) == SG_CLIENT_OK;
}

static sg_client_status send_one(stream *s, const sg_upload_item *it, answer_cb *ans,
                                 sg_client_result *r)
{
    if (!s->sid[0]) {
        /* started offline: the first upload the server can take opens the session */
        sg_client_status st = open_session(s, &s->sessions_late, r);
        if (st != SG_CLIENT_OK)
            return st;
        sg_client_result_clear(r);
    }
    if (it->kind == SG_UPLOAD_FRAME)
        return sg_client_upload_frame_hint(s->client, s->sid, it->data, it->len,
                                           (it->tag & TAG_HINT) != 0, r);
    if (it->kind == SG_UPLOAD_AUDIO)
        return sg_client_upload_audio(s->client, s->sid, it->data, it->len, r);
    if (s->o.stream_answers)
        return sg_client_query_stream(s->client, s->sid, (const char *)it->data, NULL, 0,
                                      s->o.speak, on_answer, ans, r);
    return sg_client_query(s->client, s->sid, (const char *)it->data, NULL, 0, r);
}

/* Sends an item, or answers a question on the phone while the link is down. Returns true when
 * the item was not delivered and goes back to the queue (the link is down). */
static bool upload_one(stream *s, const sg_upload_item *it)
{
    pthread_mutex_lock(&s->mu);
    bool offline = s->offline;
    pthread_mutex_unlock(&s->mu);
    if (it->kind == SG_UPLOAD_QUERY && offline) {
        answer_offline(s, (const char *)it->data);
        pthread_mutex_lock(&s->mu);
        refund(s, it); /* nothing went up */
        pthread_mutex_unlock(&s->mu);
        return false;
    }
    sg_client_result r;
    answer_cb ans = {s, 0, -1, -1, 0, 0, 0};
    if (it->kind == SG_UPLOAD_QUERY && s->o.stream_answers) {
        pthread_mutex_lock(&s->mu);
        ans.n = ++s->answers_streamed;
        pthread_mutex_unlock(&s->mu);
    }
    sg_client_status st = send_one(s, it, &ans, &r);
    if (st == SG_CLIENT_FAILED && r.status == 404 && strcmp(r.error, "INVALID_SESSION") == 0 &&
        renew_session(s)) {
        sg_client_result_clear(&r);
        st = send_one(s, it, &ans, &r);
    }
    double done_real = real_ms();
    bool down = link_down(st, &r);
    /* frames and audio wait for the link (a frame that a newer one made stale is dropped) */
    bool keep = down && it->kind != SG_UPLOAD_QUERY && st != SG_CLIENT_ABANDONED;
    pthread_mutex_lock(&s->mu);
    if (down) {
        if (!s->offline) {
            s->offline = true;
            s->link_lost++;
        }
        s->probe_at_real = real_ms() + s->o.offline_probe_s * 1000.0 / s->o.speed;
    } else if (r.status != 0 && s->offline) {
        s->offline = false;
        s->link_back++;
    }
    bool delivered = st == SG_CLIENT_OK || (it->kind == SG_UPLOAD_AUDIO && r.status == 503 &&
                                            strcmp(r.error, "MODEL_UNAVAILABLE") == 0);
    if (delivered && s->link_back > 0) {
        s->resumed_frames += it->kind == SG_UPLOAD_FRAME;
        s->resumed_audio += it->kind == SG_UPLOAD_AUDIO;
    }
    if (keep) {
        s->requeued++;
        pthread_mutex_unlock(&s->mu);
        sg_client_result_clear(&r);
        return true;
    }
    if (down && it->kind == SG_UPLOAD_QUERY) {
        refund(s, it);
        pthread_mutex_unlock(&s->mu);
        sg_client_result_clear(&r);
        answer_offline(s, (const char *)it->data);
        return false;
    }
    if (st == SG_CLIENT_OK && it->kind == SG_UPLOAD_QUERY)
        remember_answer(s, (const char *)it->data, &r);
    account_bytes(s, it->kind, r.bytes_up);
    /* the budget charged len + overhead when it was queued; now it knows what it really cost */
    sg_budget_spend(s->budget, s->tick_ms, it->kind, (double)r.bytes_up - charged_bytes(it));
    if (st == SG_CLIENT_GAVE_UP)
        s->gave_up++;
    if (st != SG_CLIENT_OK && r.detail[0])
        snprintf(s->last_error, sizeof s->last_error, "%s %d %s: %s", sg_upload_kind_name(it->kind),
                 r.status, r.error, r.detail);
    if (r.status != 0) /* any answer, 503 MODEL_UNAVAILABLE for audio included */
        dvec_push(&s->http_ms[it->kind], r.latency_ms);
    if (it->kind == SG_UPLOAD_FRAME)
        count_frame(s, it, st, &r);
    else if (it->kind == SG_UPLOAD_AUDIO)
        count_audio(s, st, &r);
    else
        count_query(s, st, it->t_ms /* queries: real ms when asked */, done_real);
    if (ans.first_token >= 0)
        dvec_push(&s->first_token_ms, ans.first_token);
    if (ans.first_audio >= 0)
        dvec_push(&s->first_audio_ms, ans.first_audio);
    s->answer_sentences += ans.sentences;
    s->answer_files += ans.files;
    s->answer_audio_bytes += ans.bytes;
    pthread_mutex_unlock(&s->mu);
    sg_client_result_clear(&r);
    return false;
}

/* Under s->mu: an item that was not delivered goes back to the queue (or, when newer frames
 * have taken its place, is dropped: the queue counts those frames as dropped). */
static void requeue(stream *s, sg_upload_item *it)
{
    sg_upload_item ev;
    sg_client_status st = sg_upload_queue_requeue(s->q, *it, &ev);
    if (st == SG_CLIENT_DROPPED_OLDEST) {
        refund(s, &ev);
        free(ev.data);
    } else if (st != SG_CLIENT_OK) {
        refund(s, it);
        if (it->kind == SG_UPLOAD_AUDIO)
            s->audio_unsent++; /* a queue full of questions and audio: SG_CLIENT_FULL */
        free(it->data);
    }
}

/* Under s->mu: waits while the link is down and nothing may go yet (no question to answer on the
 * phone, the next try not due, the drain deadline not reached). */
static void wait_for_probe(stream *s)
{
    while (s->offline && sg_upload_queue_count(s->q, SG_UPLOAD_QUERY) == 0) {
        double now = real_ms(), until = s->probe_at_real;
        if (s->done && s->drain_deadline_real < until)
            until = s->drain_deadline_real;
        if (now >= until)
            return;
        struct timespec ts;
        clock_gettime(CLOCK_REALTIME, &ts);
        double wake = (double)ts.tv_sec * 1000.0 + (double)ts.tv_nsec / 1e6 + (until - now);
        ts.tv_sec = (time_t)(wake / 1000.0);
        ts.tv_nsec = (long)((wake - (double)ts.tv_sec * 1000.0) * 1e6);
        if (ts.tv_nsec >= 1000000000L) {
            ts.tv_sec++;
            ts.tv_nsec -= 1000000000L;
        }
        pthread_cond_timedwait(&s->cv, &s->mu, &ts);
    }
}

static void *uploader(void *arg)
{
    stream *s = arg;
    pthread_mutex_lock(&s->mu);
    for (;;) {
        while (sg_upload_queue_count(s->q, SG_UPLOAD_KINDS) == 0 && !s->done)
            pthread_cond_wait(&s->cv, &s->mu);
        if (sg_upload_queue_count(s->q, SG_UPLOAD_KINDS) == 0 ||
            (s->done && real_ms() > s->drain_deadline_real))
            break;
        wait_for_probe(s);
        if (s->offline) {
            int held = sg_upload_queue_count(s->q, SG_UPLOAD_FRAME);
            if (held > s->held_frames_max)
                s->held_frames_max = held;
        }
        if (s->done && real_ms() > s->drain_deadline_real)
            break;
        sg_upload_item it;
        if (!sg_upload_queue_pop(s->q, &it))
            continue;
        s->uploading_seq = it.seq;
        pthread_cond_broadcast(&s->cv); /* room for a waiting producer */
        pthread_mutex_unlock(&s->mu);
        bool back = upload_one(s, &it);
        pthread_mutex_lock(&s->mu);
        if (back)
            requeue(s, &it);
        else
            free(it.data);
    }
    /* whatever is left after the drain deadline was never sent */
    sg_upload_item it;
    while (sg_upload_queue_pop(s->q, &it)) {
        refund(s, &it);
        if (it.kind == SG_UPLOAD_FRAME)
            s->frames_unsent++;
        else if (it.kind == SG_UPLOAD_AUDIO)
            s->audio_unsent++;
        else
            s->queries_unsent++;
        free(it.data);
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    return NULL;
}

/* Pushes audio or a question (never dropped): waits while the queue is full of such items. */
static void push_keep(stream *s, sg_upload_item it, long long *backpressure)
{
    pthread_mutex_lock(&s->mu);
    for (;;) {
        sg_upload_item ev;
        sg_client_status st = sg_upload_queue_push(s->q, it, &ev);
        if (st == SG_CLIENT_DROPPED_OLDEST) {
            refund(s, &ev);
            free(ev.data);
        }
        if (st == SG_CLIENT_OK || st == SG_CLIENT_DROPPED_OLDEST) {
            sg_budget_spend(s->budget, s->tick_ms, it.kind, charged_bytes(&it));
            pthread_cond_broadcast(&s->cv);
            pthread_mutex_unlock(&s->mu);
            return;
        }
        (*backpressure)++;
        pthread_cond_wait(&s->cv, &s->mu);
    }
}

static volatile sig_atomic_t g_stop;
static void on_sigint(int sig)
{
    (void)sig;
    g_stop = 1;
}

/* ---- options ------------------------------------------------------------------------------- */

static void stream_usage(FILE *f)
{
    fprintf(f,
            "usage: sg stream --server URL --frames DIR|IMAGE|FILE.y4m [--audio FILE.wav]\n"
            "                 [--battery PCT] [--duration S] [--speed X] [--json]\n"
            "                 [--question-every S] [--question TEXT] [--hold S] [--camera WxH]\n"
            "                 [--size WxH] [--prefilter on|off|shadow] [--quality Q] [--queue N]\n"
            "                 [--timeout S] [--pan PX] [--api-key KEY] [--frame-json] [--keep-session]\n"
            "                 [--seed N] [--audio-codec opus|flac|pcm] [--audio-bitrate BPS]\n"
            "                 [--upload-budget KB] [--cacert FILE] [--insecure] [--http1.1]\n"
            "                 [--charging] [--telemetry-every S]\n"
            "                 [--stream-answers] [--speak] [--answer-audio DIR]\n"
            "                 [--answers FILE|-] [--local-llm DIR] [--offline-probe S]\n"
            "                 [--offline-tokens N]\n"
            "  Simulates glasses + phone against sg-edge: a 30 fps camera through the adaptive\n"
            "  frame-rate controller, the keyframe pre-filter and the JPEG quality policy, 1 s audio\n"
            "  chunks (looped), a question every S seconds; prints upload KB/min, effective fps,\n"
            "  frames dropped/skipped, turn latency p50/p95 (JSON with --json).\n"
            "  --battery 100   --duration 60 (simulated s)   --speed 1 (x real time)\n"
            "  --question-every 15 (0: none)   --hold 4 (s per photo)   --pan 10 (px/s the view drifts\n"
            "  across a photo; 0 = still)   --camera 640x480 (photos; a Y4M has its own size)\n"
            "  --size 640x480 (upload size, 0 = camera size)   --seed 0 (retry jitter; 0 = clock)\n"
            "  --prefilter on (skip frames the server's keyframe gate would skip; shadow = decide\n"
            "  but upload all and compare with the server)   --quality 0 (0 = the policy)\n"
            "  --queue 16 (upload queue; at most half of it frames)   --timeout 10 (s per attempt)\n"
            "  --audio-codec opus (Ogg Opus chunks; flac, or pcm = WAV)   --audio-bitrate 24000 (Opus)\n"
            "  --upload-budget KB/min for frames + audio + questions (default by battery: 600 at\n"
            "  >= 50 %%, 450 at 20-50 %%, 300 below; 0 = none): frames that do not fit are sent at a\n"
            "  lower JPEG quality (>= 40) or skipped; audio is never dropped\n"
            "  https:// servers: HTTP/2 when the server offers it (the report's http_version);\n"
            "  --cacert FILE trusts that PEM certificate (e.g. scripts/cluster.sh's), --insecure\n"
            "  skips verification (testing only), --http1.1 never asks for HTTP/2\n"
            "  Telemetry: battery (--battery), --charging, the measured fps and upload KB/min and\n"
            "  the memory go to the server on an upload every --telemetry-every 30 s (0 = never)\n"
            "  Answers: --stream-answers asks with Accept: text/event-stream and reports time to\n"
            "  the first token; --speak also asks for speech (time to the first audio);\n"
            "  --answer-audio DIR writes each spoken sentence to DIR/answer-NNN-SS.ogg (implies both)\n"
            "  --answers FILE (- = stdout) gets every answer as a JSON line {\"answer\", \"t_s\",\n"
            "  \"question\", \"text\", \"offline\", \"source\": \"server\"|\"local-llm\"|\"rules\"}\n"
            "  Offline: when an upload gets no response the link is down: questions are answered on\n"
            "  the phone (--local-llm DIR: the SNN student, e.g. the int8 directory `sg quantize`\n"
            "  writes, --offline-tokens 32; else the rule-based responder) over the scene the server\n"
            "  last described; frames and audio stay queued and one is tried every --offline-probe\n"
            "  2 (simulated s) until the server answers again (a new session if it forgot ours);\n"
            "  with --local-llm, a server that does not answer at the start is the same: the\n"
            "  stream starts offline and opens its session when the server first answers\n");
}

static int parse_size(const char *v, int *w, int *h)
{
    if (strcmp(v, "0") == 0) {
        *w = *h = 0;
        return 0;
    }
    char *end;
    long a = strtol(v, &end, 10);
    if (*end != 'x' && *end != 'X')
        return -1;
    long b = strtol(end + 1, &end, 10);
    if (*end || a < 16 || b < 16 || a > 8192 || b > 8192)
        return -1;
    *w = (int)a;
    *h = (int)b;
    return 0;
}

static int parse_num(const char *name, const char *v, double lo, double hi, double *out)
{
    char *end;
    double x = strtod(v, &end);
    if (!*v || *end || !isfinite(x) || x < lo || x > hi) {
        fprintf(stderr, "sg stream: %s must be a number in %g..%g (got '%s')\n", name, lo, hi, v);
        return -1;
    }
    *out = x;
    return 0;
}

static int parse_int(const char *name, const char *v, double lo, double hi, int *out)
{
    double x;
    if (parse_num(name, v, lo, hi, &x) != 0)
        return -1;
    *out = (int)x;
    return 0;
}

static int parse_opts(int argc, char **argv, opts *o)
{
    static const struct option longopts[] = {
        {"server", required_argument, 0, 's'},        {"frames", required_argument, 0, 'f'},
        {"audio", required_argument, 0, 'a'},         {"battery", required_argument, 0, 'b'},
        {"duration", required_argument, 0, 'd'},      {"speed", required_argument, 0, 'x'},
        {"json", no_argument, 0, 'j'},                {"question-every", required_argument, 0, 'e'},
        {"question", required_argument, 0, 'Q'},      {"hold", required_argument, 0, 'H'},
        {"camera", required_argument, 0, 'c'},        {"size", required_argument, 0, 'z'},
        {"prefilter", required_argument, 0, 'p'},     {"quality", required_argument, 0, 'q'},
        {"queue", required_argument, 0, 'n'},         {"timeout", required_argument, 0, 't'},
        {"api-key", required_argument, 0, 'k'},       {"frame-json", no_argument, 0, 'J'},
        {"keep-session", no_argument, 0, 'K'},        {"seed", required_argument, 0, 'S'},
        {"pan", required_argument, 0, 'P'},           {"help", no_argument, 0, 'h'},
        {"audio-codec", required_argument, 0, 'C'},   {"audio-bitrate", required_argument, 0, 'B'},
        {"upload-budget", required_argument, 0, 'U'}, {"cacert", required_argument, 0, 'A'},
        {"insecure", no_argument, 0, 'I'},            {"http1.1", no_argument, 0, '1'},
        {"charging", no_argument, 0, 'G'},            {"telemetry-every", required_argument, 0, 'T'},
        {"stream-answers", no_argument, 0, 'E'},      {"speak", no_argument, 0, 'W'},
        {"answer-audio", required_argument, 0, 'O'},
        {"local-llm", required_argument, 0, 'L'},     {"answers", required_argument, 0, 'R'},
        {"offline-probe", required_argument, 0, 'o'}, {"offline-tokens", required_argument, 0, 'N'},
        {0, 0, 0, 0}};
    static const opts defaults = {
        .battery = 100, .duration_s = 60, .speed = 1, .question_every_s = 15, .hold_s = 4, .pan = 10,
        .timeout_s = 10, .cam_w = 640, .cam_h = 480, .up_w = 640, .up_h = 480, .queue_cap = 16,
        .prefilter = PREFILTER_ON, .seed = 0 /* jitter seeded from the clock */,
        .audio_codec = SG_AUDIO_CODEC_OPUS, .audio_bitrate = SG_OPUS_DEFAULT_BITRATE,
        .upload_budget = -1, .telemetry_every_s = SG_CLIENT_TELEMETRY_INTERVAL_MS / 1000.0,
        .offline_probe_s = 2, .offline_tokens = 32};
    *o = defaults;
    double v;
    optind = 1;
    int c;
    while ((c = getopt_long(argc, argv, "", longopts, NULL)) != -1) {
        switch (c) {
        case 's': o->server = optarg; break;
        case 'f': o->frames = optarg; break;
        case 'a': o->audio = optarg; break;
        case 'Q': o->question = optarg; break;
        case 'k': o->api_key = optarg; break;
        case 'A': o->cacert = optarg; break;
        case 'I': o->insecure = true; break;
        case 'G': o->charging = true; break;
        case 'E': o->stream_answers = true; break;
        case 'W': o->speak = o->stream_answers = true; break;
        case 'O': o->answer_dir = optarg; o->speak = o->stream_answers = true; break;
        case 'L': o->local_llm = optarg; break;
        case 'R': o->answers = optarg; break;
        case 'o': if (parse_num("--offline-probe", optarg, 0.01, 3600, &o->offline_probe_s)) return 2; break;
        case 'N': if (parse_int("--offline-tokens", optarg, 1, 1024, &o->offline_tokens)) return 2; break;
        case 'T': if (parse_num("--telemetry-every", optarg, 0, 86400, &o->telemetry_every_s)) return 2; break;
        case '1': o->http1 = true; break;
        case 'j': o->json = true; break;
        case 'J': o->frame_json = true; break;
        case 'K': o->keep_session = true; break;
        case 'b': if (parse_num("--battery", optarg, 0, 100, &o->battery)) return 2; break;
        case 'd': if (parse_num("--duration", optarg, 0.001, 86400, &o->duration_s)) return 2; break;
        case 'x': if (parse_num("--speed", optarg, 0.01, 1000, &o->speed)) return 2; break;
        case 'e': if (parse_num("--question-every", optarg, 0, 86400, &o->question_every_s)) return 2; break;
        case 'H': if (parse_num("--hold", optarg, 0.001, 3600, &o->hold_s)) return 2; break;
        case 'P': if (parse_num("--pan", optarg, 0, 10000, &o->pan)) return 2; break;
        case 't': if (parse_num("--timeout", optarg, 0.1, 600, &o->timeout_s)) return 2; break;
        case 'q': if (parse_int("--quality", optarg, 0, 100, &o->quality)) return 2; break;
        case 'n': if (parse_int("--queue", optarg, 2, 100000, &o->queue_cap)) return 2; break;
        case 'S':
            if (parse_num("--seed", optarg, 0, 1e15, &v)) return 2;
            o->seed = (unsigned long long)v;
            break;
        case 'c':
            if (parse_size(optarg, &o->cam_w, &o->cam_h) || o->cam_w == 0) {
                fprintf(stderr, "sg stream: --camera wants WxH (e.g. 1280x960), got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'z':
            if (parse_size(optarg, &o->up_w, &o->up_h)) {
                fprintf(stderr, "sg stream: --size wants WxH (e.g. 640x480) or 0, got '%s'\n", optarg);
                return 2;
            }
            break;
        case 'C':
            if (sg_audio_codec_parse(optarg, &o->audio_codec) != SG_CLIENT_OK) {
                fprintf(stderr, "sg stream: --audio-codec is opus, flac or pcm\n");
                return 2;
            }
            break;
        case 'B': if (parse_int("--audio-bitrate", optarg, 6000, 256000, &o->audio_bitrate)) return 2; break;
        case 'U':
            if (parse_num("--upload-budget", optarg, 0, 1e9, &o->upload_budget)) return 2;
            break;
        case 'p':
            if (strcmp(optarg, "on") == 0) o->prefilter = PREFILTER_ON;
            else if (strcmp(optarg, "off") == 0) o->prefilter = PREFILTER_OFF;
            else if (strcmp(optarg, "shadow") == 0) o->prefilter = PREFILTER_SHADOW;
            else {
                fprintf(stderr, "sg stream: --prefilter is on, off or shadow\n");
                return 2;
            }
            break;
        case 'h': stream_usage(stdout); return 0;
        default: stream_usage(stderr); return 2;
        }
    }
    if (optind < argc) {
        fprintf(stderr, "sg stream: unexpected argument '%s'\n", argv[optind]);
        return 2;
    }
    if (!o->server || !o->frames) {
        fprintf(stderr, "sg stream: --server URL and --frames DIR|FILE.y4m are required\n");
        stream_usage(stderr);
        return 2;
    }
    return -1; /* go on */
}

/* ---- audio ---------------------------------------------------------------------------------- */

static int load_audio(const char *path, int16_t **pcm, size_t *n, char *err, size_t errlen)
{
    sg_audio a;
    if (read_decoded(path, decode_audio, &a, err, errlen) != 0)
        return -1;
    *pcm = malloc(a.n * sizeof **pcm);
    if (!*pcm) {
        sg_audio_free(&a);
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    for (size_t i = 0; i < a.n; i++) {
        float x = a.samples[i] * 32768.0f;
        (*pcm)[i] = (int16_t)(x > 32767.0f ? 32767 : (x < -32768.0f ? -32768 : lrintf(x)));
    }
    *n = a.n;
    sg_audio_free(&a);
    return 0;
}

/* ---- the glasses: camera, microphone and the user ------------------------------------------ */

/* What the tick loop counted (it alone writes these; the report reads them after the join). */
typedef struct tick_counts {
    long long camera_frames, captured, boosted, active_frames;
    long long pf_skipped, budget_skipped, encoded, enc_errors;
    long long audio_chunks, audio_backpressure;
    long long asked, query_backpressure;
    double max_lag_ms; /* how far the camera fell behind the simulated clock */
} tick_counts;

/* The microphone: --audio, looped, cut into one-second chunks. */
typedef struct microphone {
    int16_t *pcm, *chunk; /* the whole recording, and the second being cut from it */
    size_t n, pos;
    double next_ms;       /* simulated time of the next chunk */
} microphone;

static int microphone_open(microphone *m, const char *path, char *err, size_t errlen)
{
    if (load_audio(path, &m->pcm, &m->n, err, errlen) != 0)
        return -1;
    m->chunk = malloc(2 * AUDIO_CHUNK_SAMPLES);
    if (!m->chunk) {
        snprintf(err, errlen, "out of memory");
        return -1;
    }
    m->next_ms = 1000.0;
    return 0;
}

/* The next second of the recording (looped). */
static const int16_t *microphone_cut(microphone *m)
{
    for (size_t i = 0; i < AUDIO_CHUNK_SAMPLES; i++) {
        m->chunk[i] = m->pcm[m->pos];
        m->pos = (m->pos + 1) % m->n;
    }
    return m->chunk;
}

static void microphone_free(microphone *m)
{
    free(m->pcm);
    free(m->chunk);
}

/* The phone's frame path: the captured frame's buffers, the frame-rate controller, the keyframe
 * pre-filter and the JPEG encoder. */
typedef struct frame_path {
    int up_w, up_h;          /* upload size */
    uint8_t *cam, *up;       /* one allocation: the camera frame, then it fitted to the upload size */
    sg_motion_tracker *motion;
    sg_rate_controller *rate;
    sg_prefilter *pf;
    sg_jpeg_encoder *enc;
} frame_path;

static int frame_path_open(frame_path *fp, int cam_w, int cam_h, int up_w, int up_h)
{
    size_t cam_bytes = (size_t)cam_w * (size_t)cam_h * 3;
    fp->up_w = up_w;
    fp->up_h = up_h;
    fp->cam = malloc(cam_bytes + (size_t)up_w * (size_t)up_h * 3);
    if (!fp->cam)
        return -1;
    fp->up = fp->cam + cam_bytes;
    if (sg_motion_tracker_new(10, &fp->motion) != SG_CLIENT_OK ||
        sg_rate_controller_new(NULL, &fp->rate) != SG_CLIENT_OK ||
        sg_prefilter_new(0, 0, &fp->pf) != SG_CLIENT_OK || sg_jpeg_encoder_new(&fp->enc) != SG_CLIENT_OK)
        return -1;
    return 0;
}

static void frame_path_free(frame_path *fp)
{
    free(fp->cam);
    sg_motion_tracker_free(fp->motion);
    sg_rate_controller_free(fp->rate);
    sg_prefilter_free(fp->pf);
    sg_jpeg_encoder_free(fp->enc);
}

/* Everything the tick loop works with besides the shared stream. */
typedef struct glasses {
    source src;              /* the camera */
    microphone mic;          /* pcm NULL: no --audio */
    frame_path fp;
    double next_question_ms;
    tick_counts n;
} glasses;

static const char *const default_questions[] = {"What am I looking at?", "Describe the scene.",
                                                "Is there any text in front of me?",
                                                "What colours do you see?"};

/* Opens the camera and the microphone and makes the frame path. 0, or the exit code (the message
 * printed). */
static int glasses_open(glasses *g, const opts *o)
{
    char err[512] = "";
    bool is_y4m = has_ext(o->frames, ".y4m");
    if ((is_y4m ? source_open_y4m(&g->src, o->frames, err, sizeof err)
                : source_open_photos(&g->src, o->frames, o->cam_w, o->cam_h, o->hold_s, o->pan, err,
                                     sizeof err)) != 0 ||
        (o->audio && microphone_open(&g->mic, o->audio, err, sizeof err) != 0)) {
        fprintf(stderr, "sg stream: %s\n", err);
        return 2;
    }
    if (frame_path_open(&g->fp, g->src.w, g->src.h, o->up_w ? o->up_w : g->src.w,
                        o->up_h ? o->up_h : g->src.h) != 0) {
        fprintf(stderr, "sg stream: out of memory\n");
        return 1;
    }
    g->next_question_ms = o->question_every_s > 0 ? o->question_every_s * 1000.0 : INFINITY;
    return 0;
}

static void glasses_free(glasses *g)
{
    source_free(&g->src);
    microphone_free(&g->mic);
    frame_path_free(&g->fp);
}

/* ---- the phone: queue, budget, client and the uploader thread ------------------------------- */

/* Makes the shared state and the HTTP client, and creates the session. 0, or the exit code. */
static int stream_open(stream *s, const opts *o)
{
    s->o = *o;
    s->nminutes = (int)ceil(o->duration_s / 60.0);
    if (s->nminutes < 1)
        s->nminutes = 1;
    s->minute_bytes = calloc((size_t)s->nminutes * SG_UPLOAD_KINDS, sizeof *s->minute_bytes);
    if (!s->minute_bytes ||
        sg_upload_queue_new(o->queue_cap, o->queue_cap / 2, &s->q) != SG_CLIENT_OK ||
        sg_uplink_new(&s->uplink) != SG_CLIENT_OK) {
        fprintf(stderr, "sg stream: out of memory\n");
        return 1;
    }
    pthread_mutex_init(&s->mu, NULL);
    pthread_cond_init(&s->cv, NULL);
    s->mu_ready = true;
    if (o->answers) {
        s->answers = strcmp(o->answers, "-") == 0 ? stdout : fopen(o->answers, "w");
        if (!s->answers) {
            fprintf(stderr, "sg stream: cannot write %s\n", o->answers);
            return 2;
        }
    }
    if (o->local_llm) {
        char lerr[SG_CLIENT_ERROR_SIZE];
        if (sg_local_llm_open(o->local_llm, NULL, &s->llm, lerr) != SG_CLIENT_OK) {
            fprintf(stderr, "sg stream: --local-llm %s: %s\n", o->local_llm, lerr);
            return 2;
        }
    }
    sg_budget_config bc;
    sg_budget_config_default(&bc, o->battery);
    if (o->upload_budget >= 0)
        bc.kb_per_min = o->upload_budget; /* 0: unlimited */
    if (sg_budget_new(&bc, &s->budget) != SG_CLIENT_OK) {
        fprintf(stderr, "sg stream: out of memory\n");
        return 1;
    }

    sg_client_config cc;
    sg_client_config_default(&cc, o->server);
    cc.api_key = o->api_key;
    cc.timeout_ms = (long)(o->timeout_s * 1000.0);
    cc.frame_json = o->frame_json;
    cc.now_ms = cb_now;
    cc.sleep_ms = cb_sleep;
    cc.keep_trying = cb_keep_trying;
    cc.ud = s;
    cc.rng_seed = o->seed;
    char cerr[SG_CLIENT_ERROR_SIZE];
    s->t0_real = real_ms();
    if (sg_client_new(&cc, &s->client, cerr) != SG_CLIENT_OK) {
        fprintf(stderr, "sg stream: %s\n", cerr);
        return 2;
    }
    if ((o->cacert || o->insecure) &&
        sg_client_set_tls(s->client, o->cacert, !o->insecure, cerr) != SG_CLIENT_OK) {
        fprintf(stderr, "sg stream: %s\n", cerr);
        return 2;
    }
    if (o->http1)
        sg_client_set_http(s->client, SG_CLIENT_HTTP_1_1);
    /* the device's state rides on the uploads (X-Client-Telemetry) on the simulated clock */
    sg_client_set_device(s->client, o->battery, o->charging ? 1 : 0);
    sg_client_set_telemetry_interval(s->client, o->telemetry_every_s * 1000.0);
    sg_client_result r;
    sg_client_status st = sg_client_create_session(s->client, s->sid, &r);
    if (st != SG_CLIENT_OK && o->local_llm && link_down(st, &r)) {
        /* the wearer is offline from the start: questions are answered on the phone and the
         * session is opened when the server first answers (send_one) */
        fprintf(stderr, "sg stream: no answer from %s (%s): starting offline\n", o->server,
                r.detail[0] ? r.detail : "no response");
        s->sid[0] = '\0';
        s->offline = true;
        s->link_lost++;
        s->started_offline = true;
        sg_client_result_clear(&r);
        return 0;
    }
    if (st != SG_CLIENT_OK)
        fprintf(stderr, "sg stream: cannot create a session at %s: HTTP %d %s%s\n", o->server, r.status,
                r.detail[0] ? r.detail : "(no answer)",
                r.status == 0 && (strstr(r.detail, "SSL") || strstr(r.detail, "certificate"))
                    ? " (a self-signed certificate? --cacert FILE trusts it, --insecure skips the check)"
                    : "");
    sg_client_result_clear(&r);
    return st == SG_CLIENT_OK ? 0 : 1;
}

/* The glasses start now (the session was created before): the clock and the uploader. */
static int stream_start(stream *s)
{
    s->t0_real = real_ms();
    if (pthread_create(&s->uploader_thread, NULL, uploader, s) != 0) {
        fprintf(stderr, "sg stream: cannot start the uploader thread\n");
        return 1;
    }
    s->uploader_running = true;
    return 0;
}

/* Lets the uploader send what is queued (for at most drain_ms more) and waits for it. */
static void stream_drain(stream *s, double drain_ms)
{
    if (!s->uploader_running)
        return;
    pthread_mutex_lock(&s->mu);
    s->done = true;
    s->drain_deadline_real = real_ms() + drain_ms;
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
    pthread_join(s->uploader_thread, NULL);
    s->uploader_running = false;
}

static void stream_free(stream *s)
{
    stream_drain(s, 0);
    if (s->q) {
        sg_upload_item it;
        while (sg_upload_queue_pop(s->q, &it))
            free(it.data);
        sg_upload_queue_free(s->q);
    }
    sg_uplink_free(s->uplink);
    sg_budget_free(s->budget);
    sg_local_llm_close(s->llm);
    free(s->scene);
    if (s->answers && s->answers != stdout)
        fclose(s->answers);
    if (s->mu_ready) {
        pthread_mutex_destroy(&s->mu);
        pthread_cond_destroy(&s->cv);
    }
    sg_client_free(s->client);
    for (int k = 0; k < SG_UPLOAD_KINDS; k++)
        free(s->http_ms[k].v);
    free(s->turn_ms.v);
    free(s->minute_bytes);
    free(s);
}

/* ---- one camera tick ---------------------------------------------------------------------- */

typedef struct frame_enc {
    sg_jpeg_encoder *enc;
    const uint8_t *rgb;
    int w, h;
    uint8_t *jpeg; /* the last encode */
    size_t len;
    char err[SG_CLIENT_ERROR_SIZE];
} frame_enc;

static sg_client_status encode_cb(void *ud, int quality, size_t *bytes)
{
    frame_enc *fe = ud;
    free(fe->jpeg);
    fe->jpeg = NULL;
    fe->len = 0;
    sg_client_status st =
        sg_jpeg_encode(fe->enc, fe->rgb, fe->w, fe->h, 0, 0, quality, &fe->jpeg, &fe->len, fe->err);
    *bytes = fe->len;
    return st;
}

/* Waits for the simulated time t of the tick (or notes how far behind it the camera is) and makes
 * it the simulation's present. */
static void tick_wait(stream *s, glasses *g, double t)
{
    double now = sim_now(s);
    if (now < t)
        sleep_real_ms((t - now) / s->o.speed);
    else if (now - t > g->n.max_lag_ms)
        g->n.max_lag_ms = now - t;
    pthread_mutex_lock(&s->mu);
    s->tick_ms = t;
    pthread_mutex_unlock(&s->mu);
}

/* The microphone: one chunk per simulated second, never dropped. */
static void tick_microphone(stream *s, glasses *g, double t)
{
    const opts *o = &s->o;
    while (g->mic.pcm && t >= g->mic.next_ms) {
        const int16_t *chunk = microphone_cut(&g->mic);
        uint8_t *copy;
        size_t wl;
        char aerr[SG_CLIENT_ERROR_SIZE];
        if (sg_audio_encode(o->audio_codec, chunk, AUDIO_CHUNK_SAMPLES, SG_AUDIO_RATE,
                            o->audio_bitrate, &copy, &wl, aerr) == SG_CLIENT_OK) {
            sg_upload_item it = {.kind = SG_UPLOAD_AUDIO, .data = copy, .len = wl, .t_ms = t};
            pthread_mutex_lock(&s->mu);
            s->audio_bytes_sum += (double)wl;
            s->audio_encoded++;
            pthread_mutex_unlock(&s->mu);
            push_keep(s, it, &g->n.audio_backpressure);
            g->n.audio_chunks++;
        } else {
            pthread_mutex_lock(&s->mu);
            snprintf(s->last_error, sizeof s->last_error, "%s", aerr);
            pthread_mutex_unlock(&s->mu);
        }
        g->mic.next_ms += 1000.0;
    }
}

/* The user asks something: a question on the queue, and an interaction for the controller. */
static void tick_question(stream *s, glasses *g, double t)
{
    const opts *o = &s->o;
    if (t < g->next_question_ms)
        return;
    const char *text = o->question ? o->question
                                   : default_questions[g->n.asked % (sizeof default_questions /
                                                                     sizeof default_questions[0])];
    char *copy = strdup(text);
    if (copy) {
        sg_upload_item it = {.kind = SG_UPLOAD_QUERY, .data = (uint8_t *)copy, .len = strlen(copy),
                             .t_ms = real_ms()};
        push_keep(s, it, &g->n.query_backpressure);
        g->n.asked++;
    }
    sg_rate_interaction(g->fp.rate, t);
    g->next_question_ms += o->question_every_s * 1000.0;
}

/* A captured frame: fitted to the upload size, through the pre-filter, then (when due) fitted into
 * the budget and queued. */
static void tick_capture(stream *s, glasses *g, double t)
{
    const opts *o = &s->o;
    frame_path *fp = &g->fp;
    source_render(&g->src, fp->cam);
    const uint8_t *frame = fp->cam;
    if (fp->up_w != g->src.w || fp->up_h != g->src.h) {
        sg_rgb_fit(fp->cam, g->src.w, g->src.h, fp->up, fp->up_w, fp->up_h);
        frame = fp->up;
    }
    bool key = true;
    if (o->prefilter != PREFILTER_OFF) {
        float thumb[64];
        sg_prefilter_thumb(frame, fp->up_w, fp->up_h, thumb);
        key = sg_prefilter_push(fp->pf, thumb);
    }
    pthread_mutex_lock(&s->mu);
    /* with the pre-filter on, a frame is due when it is a keyframe or stands in for one that the
     * budget skipped; off and shadow upload every captured frame */
    if (o->prefilter == PREFILTER_ON && !sg_budget_due(s->budget, key)) {
        pthread_mutex_unlock(&s->mu);
        g->n.pf_skipped++;
        return;
    }
    int quality = o->quality > 0 ? o->quality : sg_jpeg_quality_for(o->battery, sg_uplink_kbps(s->uplink));
    frame_enc fe = {fp->enc, frame, fp->up_w, fp->up_h, NULL, 0, ""};
    sg_budget_frame bf;
    bool encode_error = sg_budget_fit_frame(s->budget, t, quality, encode_cb, &fe, &bf) != SG_CLIENT_OK;
    if (encode_error || bf.quality == 0) {
        if (encode_error) {
            g->n.enc_errors++;
            snprintf(s->last_error, sizeof s->last_error, "JPEG: %s", fe.err);
        } else {
            g->n.budget_skipped++; /* the budget is short even at the lowest quality */
        }
        pthread_mutex_unlock(&s->mu);
        free(fe.jpeg);
        return;
    }
    g->n.encoded++;
    s->jpeg_bytes_sum += (double)fe.len;
    s->quality_sum += bf.quality;
    s->jpeg_count++;
    long long tag = (key ? TAG_PREFILTER_KEY : 0) | (o->prefilter == PREFILTER_ON ? TAG_HINT : 0);
    sg_upload_item it = {.kind = SG_UPLOAD_FRAME, .data = fe.jpeg, .len = fe.len, .t_ms = t, .tag = tag};
    sg_upload_item ev;
    sg_client_status qs = sg_upload_queue_push(s->q, it, &ev);
    if (qs == SG_CLIENT_DROPPED_OLDEST) {
        refund(s, &ev);
        free(ev.data);
    } else if (qs == SG_CLIENT_DROPPED_NEW) {
        refund(s, &it);
        free(fe.jpeg);
    }
    pthread_cond_broadcast(&s->cv);
    pthread_mutex_unlock(&s->mu);
}

/* The camera: frame k, its motion score and the controller's decision. -1 when the source fails. */
static int tick_camera(stream *s, glasses *g, long long k, double t)
{
    char err[512];
    if (source_frame(&g->src, k, err, sizeof err) != 0) {
        fprintf(stderr, "sg stream: %s\n", err);
        return -1;
    }
    g->n.camera_frames++;
    double m = sg_motion_tracker_push(g->fp.motion, g->src.ptr, g->src.w, g->src.h, g->src.stride, 3);
    sg_rate_decision d = sg_rate_on_frame(g->fp.rate, t, s->o.battery, m);
    g->n.boosted += d.boosted;
    g->n.active_frames += d.user_active;
    if (d.capture) {
        g->n.captured++;
        tick_capture(s, g, t);
    }
    return 0;
}

/* The tick loop: 30 camera ticks a simulated second until --duration or Ctrl-C. */
static void glasses_run(stream *s, glasses *g)
{
    const double dur_ms = s->o.duration_s * 1000.0;
    for (long long k = 0; !g_stop; k++) {
        double t = (double)k * 1000.0 / SG_CAMERA_FPS;
        if (t >= dur_ms)
            break;
        tick_wait(s, g, t);
        tick_microphone(s, g, t);
        tick_question(s, g, t);
        if (tick_camera(s, g, k, t) != 0)
            break;
    }
}

/* ---- the report ------------------------------------------------------------------------------- */

static json_t *pct_json(dvec *d)
{
    if (d->n == 0)
        return json_pack("{s:i,s:n,s:n,s:n}", "count", 0, "p50", "p95", "max");
    double p50 = sg_client_percentile(d->v, d->n, 50), p95 = sg_client_percentile(d->v, d->n, 95);
    return json_pack("{s:I,s:f,s:f,s:f}", "count", (json_int_t)d->n, "p50", round(p50 * 100) / 100,
                     "p95", round(p95 * 100) / 100, "max", round(d->v[d->n - 1] * 100) / 100);
}

static double r2(double x) { return round(x * 100.0) / 100.0; }

/* What the report is made of, gathered once after the uploader has stopped. */
typedef struct report {
    const opts *o;
    stream *s;
    const glasses *g;
    const tick_counts *n;
    double sim_s, elapsed_real_ms; /* the simulated time that really ran (less after Ctrl-C) */
    sg_client_stats http;
    sg_rate_stats rate;
    sg_upload_queue_stats queue;
    sg_budget_stats budget;
    sg_budget_config budget_cfg;
    double uplink_kbps;
    long long requests, attempts, retries, network_errors;
    uint64_t kind_bytes[SG_UPLOAD_KINDS], total_bytes;
    const char *prefilter_name;
} report;

static void report_gather(report *R, stream *s, const glasses *g, double elapsed_real_ms)
{
    memset(R, 0, sizeof *R);
    R->o = &s->o;
    R->s = s;
    R->g = g;
    R->n = &g->n;
    R->sim_s = (double)g->n.camera_frames / SG_CAMERA_FPS;
    if (R->sim_s <= 0)
        R->sim_s = 1.0 / SG_CAMERA_FPS;
    R->elapsed_real_ms = elapsed_real_ms;
    sg_client_get_stats(s->client, &R->http);
    sg_rate_get_stats(g->fp.rate, &R->rate);
    sg_upload_queue_get_stats(s->q, &R->queue);
    sg_budget_get_stats(s->budget, &R->budget);
    sg_budget_get_config(s->budget, &R->budget_cfg);
    R->uplink_kbps = sg_uplink_kbps(s->uplink);
    for (int m = 0; m < s->nminutes; m++)
        for (int k = 0; k < SG_UPLOAD_KINDS; k++)
            R->kind_bytes[k] += s->minute_bytes[(size_t)m * SG_UPLOAD_KINDS + k];
    for (int k = 0; k < SG_UPLOAD_KINDS; k++) {
        R->total_bytes += R->kind_bytes[k];
        R->requests += (long long)R->http.kind[k].requests;
        R->attempts += (long long)R->http.kind[k].attempts;
        R->retries += (long long)R->http.kind[k].retries;
        R->network_errors += (long long)R->http.kind[k].network_errors;
    }
    prefilter_mode pf = s->o.prefilter;
    R->prefilter_name = pf == PREFILTER_ON ? "on" : (pf == PREFILTER_OFF ? "off" : "shadow");
}

static json_t *report_controller(const report *R)
{
    const tick_counts *n = R->n;
    json_t *modes = json_object();
    for (int m = 0; m < SG_RATE_MODES; m++)
        json_object_set_new(modes, sg_rate_mode_name((sg_rate_mode)m),
                            json_real(r2((double)R->rate.frames_in_mode[m] / SG_CAMERA_FPS)));
    return json_pack("{s:I,s:f,s:o,s:I,s:I}", "captured", (json_int_t)n->captured, "effective_fps",
                     r2((double)n->captured / R->sim_s), "mode_seconds", modes, "boosted_frames",
                     (json_int_t)n->boosted, "active_frames", (json_int_t)n->active_frames);
}

static json_t *report_frames(const report *R)
{
    const stream *s = R->s;
    const tick_counts *n = R->n;
    json_t *frames = json_pack(
        "{s:s,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:f,s:f,s:f}", "prefilter",
        R->prefilter_name, "captured", (json_int_t)n->captured, "prefilter_skipped",
        (json_int_t)n->pf_skipped, "encoded", (json_int_t)n->encoded, "encode_errors",
        (json_int_t)n->enc_errors, "dropped", (json_int_t)(R->queue.evicted_frames + R->queue.dropped_new_frames),
        "sent", (json_int_t)s->frames_sent, "failed", (json_int_t)s->frames_failed, "abandoned",
        (json_int_t)s->frames_abandoned, "unsent", (json_int_t)s->frames_unsent, "server_keyframes",
        (json_int_t)s->server_keyframes, "server_skipped", (json_int_t)s->server_skipped, "upload_fps",
        r2((double)s->frames_sent / R->sim_s), "jpeg_quality_avg",
        r2(s->jpeg_count ? s->quality_sum / (double)s->jpeg_count : 0), "jpeg_kb_avg",
        r2(s->jpeg_count ? s->jpeg_bytes_sum / (double)s->jpeg_count / 1024.0 : 0));
    json_object_set_new(frames, "upload_width", json_integer(R->g->fp.up_w));
    json_object_set_new(frames, "upload_height", json_integer(R->g->fp.up_h));
    json_object_set_new(frames, "prefilter_agreement",
                        s->shadow_total ? json_real(r2((double)s->shadow_agree / (double)s->shadow_total))
                                        : json_null());
    json_object_set_new(frames, "budget_skipped", json_integer(n->budget_skipped));
    json_object_set_new(frames, "budget_lowered", json_integer(R->budget.frames_lowered));
    json_object_set_new(frames, "reencodes", json_integer(R->budget.reencodes));
    json_object_set_new(frames, "hinted", json_integer(s->frames_hinted));
    return frames;
}

static json_t *report_budget(const report *R)
{
    const sg_budget_config *c = &R->budget_cfg;
    if (sg_budget_unlimited(R->s->budget))
        return json_pack("{s:n,s:n,s:i}", "kb_per_min", "burst_kb", "min_quality", c->min_quality);
    return json_pack("{s:f,s:f,s:i}", "kb_per_min", r2(c->kb_per_min), "burst_kb", r2(c->burst_kb),
                     "min_quality", c->min_quality);
}

static json_t *report_audio(const report *R)
{
    const stream *s = R->s;
    const opts *o = R->o;
    json_t *audio = json_pack(
        "{s:I,s:I,s:I,s:I,s:I,s:I,s:i,s:I}", "chunks", (json_int_t)R->n->audio_chunks, "sent",
        (json_int_t)(s->audio_ok + s->audio_not_transcribed), "transcribed", (json_int_t)s->audio_ok,
        "speech", (json_int_t)s->audio_speech, "not_transcribed", (json_int_t)s->audio_not_transcribed,
        "failed", (json_int_t)s->audio_failed, "dropped", 0, "unsent", (json_int_t)s->audio_unsent);
    json_object_set_new(audio, "backpressure", json_integer(R->n->audio_backpressure));
    json_object_set_new(audio, "codec", json_string(sg_audio_codec_name(o->audio_codec)));
    json_object_set_new(audio, "bitrate",
                        o->audio_codec == SG_AUDIO_CODEC_OPUS ? json_integer(o->audio_bitrate) : json_null());
    json_object_set_new(audio, "kb_per_chunk",
                        json_real(r2(s->audio_encoded ? s->audio_bytes_sum / (double)s->audio_encoded / 1024.0 : 0)));
    return audio;
}

static json_t *report_upload(const report *R)
{
    const stream *s = R->s;
    json_t *per_min = json_array();
    for (int m = 0; m < s->nminutes; m++) {
        const uint64_t *b = s->minute_bytes + (size_t)m * SG_UPLOAD_KINDS;
        double span = fmin(60.0, R->sim_s - 60.0 * m);
        json_array_append_new(
            per_min, json_pack("{s:i,s:f,s:f,s:f,s:f,s:f}", "minute", m + 1, "seconds", r2(span > 0 ? span : 0),
                               "kb", r2((double)(b[0] + b[1] + b[2] + b[3]) / 1024.0),
                               "frames_kb", r2((double)b[SG_UPLOAD_FRAME] / 1024.0),
                               "audio_kb", r2((double)b[SG_UPLOAD_AUDIO] / 1024.0),
                               "query_kb", r2((double)(b[SG_UPLOAD_QUERY] + b[SG_UPLOAD_CONTROL]) / 1024.0)));
    }
    const double sim_ms = R->sim_s * 1000.0;
    return json_pack("{s:f,s:f,s:f,s:f,s:f,s:o}", "kb_total", r2((double)R->total_bytes / 1024.0),
                     "kb_per_min", r2(sg_client_kb_per_min(R->total_bytes, sim_ms)),
                     "frames_kb_per_min", r2(sg_client_kb_per_min(R->kind_bytes[SG_UPLOAD_FRAME], sim_ms)),
                     "audio_kb_per_min", r2(sg_client_kb_per_min(R->kind_bytes[SG_UPLOAD_AUDIO], sim_ms)),
                     "queries_kb_per_min", r2(sg_client_kb_per_min(R->kind_bytes[SG_UPLOAD_QUERY], sim_ms)),
                     "per_minute", per_min);
}

static json_t *report_http(const report *R)
{
    json_t *lat = json_object();
    for (int k = 0; k < SG_UPLOAD_CONTROL; k++)
        json_object_set_new(lat, sg_upload_kind_name((sg_upload_kind)k), pct_json(&R->s->http_ms[k]));
    const uint64_t *by = R->http.by_status;
    return json_pack("{s:I,s:I,s:I,s:I,s:I,s:{s:I,s:I,s:I,s:I},s:o}", "requests",
                     (json_int_t)R->requests, "attempts", (json_int_t)R->attempts, "retries",
                     (json_int_t)R->retries, "network_errors", (json_int_t)R->network_errors, "gave_up",
                     (json_int_t)R->s->gave_up, "responses", "2xx", (json_int_t)by[2], "4xx",
                     (json_int_t)by[4], "5xx", (json_int_t)by[5], "none", (json_int_t)by[0],
                     "latency_ms", lat);
}

/* The JSON report (--json prints it; the text report reads its rounded figures). */
static json_t *report_json(const report *R)
{
    const stream *s = R->s;
    const opts *o = R->o;
    const source *src = &R->g->src;
    json_t *out = json_object();
    json_object_set_new(out, "server", json_string(o->server));
    json_object_set_new(out, "session_id", json_string(s->sid));
    json_object_set_new(out, "duration_s", json_real(r2(R->sim_s)));
    json_object_set_new(out, "speed", json_real(o->speed));
    json_object_set_new(out, "elapsed_real_s", json_real(r2(R->elapsed_real_ms / 1000.0)));
    json_object_set_new(out, "battery_pct", json_real(o->battery));
    json_object_set_new(out, "camera", json_pack("{s:i,s:s,s:i,s:i,s:I,s:f}", "fps", SG_CAMERA_FPS,
                                                 "source", src->y4m ? "y4m" : "photos", "width", src->w,
                                                 "height", src->h, "frames",
                                                 (json_int_t)R->n->camera_frames, "max_lag_ms",
                                                 r2(R->n->max_lag_ms)));
    json_object_set_new(out, "controller", report_controller(R));
    json_object_set_new(out, "frames", report_frames(R));
    json_object_set_new(out, "budget", report_budget(R));
    json_object_set_new(out, "audio", report_audio(R));
    json_object_set_new(out, "queries",
                        json_pack("{s:I,s:I,s:I,s:I,s:I}", "asked", (json_int_t)R->n->asked, "answered",
                                  (json_int_t)s->queries_answered, "failed",
                                  (json_int_t)s->queries_failed, "unsent", (json_int_t)s->queries_unsent,
                                  "backpressure", (json_int_t)R->n->query_backpressure));
    json_object_set_new(out, "turn_latency_ms", pct_json(&R->s->turn_ms));
    if (R->o->stream_answers)
        json_object_set_new(out, "answers",
                            json_pack("{s:o,s:o,s:I,s:I,s:I}", "first_token_ms",
                                      pct_json(&R->s->first_token_ms), "first_audio_ms",
                                      pct_json(&R->s->first_audio_ms), "sentences_spoken",
                                      (json_int_t)s->answer_sentences, "audio_files",
                                      (json_int_t)s->answer_files, "audio_bytes",
                                      (json_int_t)s->answer_audio_bytes));
    json_object_set_new(out, "offline",
                        json_pack("{s:b,s:b,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:I,s:s?}",
                                  "offline_at_end", s->offline, "started_offline",
                                  s->started_offline, "link_lost", (json_int_t)s->link_lost, "link_back",
                                  (json_int_t)s->link_back, "answers", (json_int_t)s->offline_answers,
                                  "local_llm", (json_int_t)s->offline_llm, "rules",
                                  (json_int_t)s->offline_rules, "requeued", (json_int_t)s->requeued,
                                  "held_frames_max", (json_int_t)s->held_frames_max,
                                  "frames_after_reconnect", (json_int_t)s->resumed_frames,
                                  "audio_after_reconnect", (json_int_t)s->resumed_audio,
                                  "sessions_renewed", (json_int_t)s->sessions_renewed,
                                  "sessions_opened_late", (json_int_t)s->sessions_late,
                                  "local_llm_dir", o->local_llm));
    json_object_set_new(out, "upload", report_upload(R));
    json_object_set_new(out, "http", report_http(R));
    /* which HTTP the server spoke ("2" through nginx over TLS) and over how many connections */
    const char *hv = sg_client_http_version(s->client);
    json_object_set_new(out, "http_version", hv[0] ? json_string(hv) : json_null());
    json_object_set_new(out, "connections", json_integer((json_int_t)sg_client_connections(s->client)));
    json_object_set_new(out, "uplink_kbps", R->uplink_kbps > 0 ? json_real(round(R->uplink_kbps)) : json_null());
    json_object_set_new(out, "last_error", s->last_error[0] ? json_string(s->last_error) : json_null());
    return out;
}

static void report_text(const report *R, json_t *out)
{
    const stream *s = R->s;
    const opts *o = R->o;
    const tick_counts *n = R->n;
    const long long *in_mode = R->rate.frames_in_mode;
    const double sim_s = R->sim_s;
    json_t *fr = json_object_get(out, "frames");
    json_t *tl = json_object_get(out, "turn_latency_ms"), *ul = json_object_get(out, "upload");
    printf("sg stream: %.1f s of glasses at battery %.0f%% against %s (speed %gx, %.1f s real)\n",
           sim_s, o->battery, o->server, o->speed, R->elapsed_real_ms / 1000.0);
    printf("camera   %lld frames; captured %lld = %.2f fps effective (MINIMAL %.0f s, LOW %.0f s, "
           "MEDIUM %.0f s, HIGH %.0f s; motion boost on %lld frames)\n",
           n->camera_frames, n->captured, (double)n->captured / sim_s, (double)in_mode[0] / 30,
           (double)in_mode[1] / 30, (double)in_mode[2] / 30, (double)in_mode[3] / 30, n->boosted);
    printf("frames   pre-filter (%s) skipped %lld, budget skipped %lld, encoded %lld (q%.0f avg, "
           "%.1f KB avg), dropped %lld, sent %lld (%.2f fps), failed %lld; server: %lld keyframes, "
           "%lld skipped\n",
           R->prefilter_name, n->pf_skipped, n->budget_skipped, n->encoded,
           json_real_value(json_object_get(fr, "jpeg_quality_avg")),
           json_real_value(json_object_get(fr, "jpeg_kb_avg")),
           (long long)json_integer_value(json_object_get(fr, "dropped")), s->frames_sent,
           (double)s->frames_sent / sim_s, s->frames_failed + s->frames_abandoned, s->server_keyframes,
           s->server_skipped);
    printf("audio    %lld chunks (%s, %.1f KB avg): %lld transcribed, %lld not transcribed (no ASR "
           "model), %lld failed, 0 dropped\n",
           n->audio_chunks, sg_audio_codec_name(o->audio_codec),
           s->audio_encoded ? s->audio_bytes_sum / (double)s->audio_encoded / 1024.0 : 0.0,
           s->audio_ok, s->audio_not_transcribed, s->audio_failed);
    if (!sg_budget_unlimited(s->budget))
        printf("budget   %.0f KB/min (burst %.0f KB): %lld frames at a lower quality, %lld skipped, "
               "%lld re-encodes\n", R->budget_cfg.kb_per_min, R->budget_cfg.burst_kb,
               R->budget.frames_lowered, n->budget_skipped, R->budget.reencodes);
    printf("turns    %lld asked, %lld answered; latency p50 %.1f ms, p95 %.1f ms\n", n->asked,
           s->queries_answered, json_number_value(json_object_get(tl, "p50")),
           json_number_value(json_object_get(tl, "p95")));
    json_t *an = json_object_get(out, "answers");
    if (an) {
        json_t *ft = json_object_get(an, "first_token_ms"), *fa = json_object_get(an, "first_audio_ms");
        printf("answers  streamed; first token p50 %.1f ms, p95 %.1f ms; first audio p50 %.1f ms, "
               "p95 %.1f ms; %lld sentences spoken, %lld audio files\n",
               json_number_value(json_object_get(ft, "p50")),
               json_number_value(json_object_get(ft, "p95")),
               json_number_value(json_object_get(fa, "p50")),
               json_number_value(json_object_get(fa, "p95")),
               (long long)json_integer_value(json_object_get(an, "sentences_spoken")),
               (long long)json_integer_value(json_object_get(an, "audio_files")));
    }
    printf("upload   %.1f KB/min (frames %.1f, audio %.1f, questions %.1f); %lld requests, %lld "
           "retries, %lld network errors; HTTP/%s over %lld connection(s)\n",
           json_real_value(json_object_get(ul, "kb_per_min")),
           json_real_value(json_object_get(ul, "frames_kb_per_min")),
           json_real_value(json_object_get(ul, "audio_kb_per_min")),
           json_real_value(json_object_get(ul, "queries_kb_per_min")), R->requests, R->retries,
           R->network_errors, json_is_string(json_object_get(out, "http_version"))
                                  ? json_string_value(json_object_get(out, "http_version"))
                                  : "-",
           (long long)json_integer_value(json_object_get(out, "connections")));
    size_t mi;
    json_t *pm;
    json_array_foreach(json_object_get(ul, "per_minute"), mi, pm)
        printf("minute %zu: %.1f KB (frames %.1f, audio %.1f) over %.0f s\n", mi + 1,
               json_real_value(json_object_get(pm, "kb")),
               json_real_value(json_object_get(pm, "frames_kb")),
               json_real_value(json_object_get(pm, "audio_kb")),
               json_real_value(json_object_get(pm, "seconds")));
    if (s->link_lost > 0 || s->o.local_llm)
        printf("offline  link lost %lld, back %lld; %lld questions answered on the phone (%lld local "
               "model, %lld rules); %lld uploads held back, %lld frames and %lld audio chunks sent "
               "after the link came back; %lld new sessions%s\n",
               s->link_lost, s->link_back, s->offline_answers, s->offline_llm, s->offline_rules,
               s->requeued, s->resumed_frames, s->resumed_audio, s->sessions_renewed,
               !s->started_offline ? ""
               : s->sessions_late ? "; started offline, session opened when the link came up"
                                  : "; started offline, the server never answered");
    if (s->last_error[0])
        printf("last error: %s\n", s->last_error);
}

static void report_print(stream *s, const glasses *g, double elapsed_real_ms)
{
    report R;
    report_gather(&R, s, g, elapsed_real_ms);
    json_t *out = report_json(&R);
    if (s->o.json) {
        char *txt = json_dumps(out, JSON_COMPACT);
        if (txt)
            puts(txt);
        free(txt);
    } else {
        report_text(&R, out);
    }
    json_decref(out);
}

/* ---- sg stream ------------------------------------------------------------------------------ */

/* The glasses run until --duration or Ctrl-C, the uploader sends what is left (30 s at most), the
 * session goes (unless --keep-session). Returns the real milliseconds it all took. */
static double stream_run(stream *s, glasses *g)
{
    struct sigaction sa, old_sa;
    memset(&sa, 0, sizeof sa);
    sa.sa_handler = on_sigint;
    sigaction(SIGINT, &sa, &old_sa);
    g_stop = 0;
    glasses_run(s, g);
    stream_drain(s, 30000.0);
    sigaction(SIGINT, &old_sa, NULL);
    double elapsed_real_ms = real_ms() - s->t0_real;
    if (!s->o.keep_session && s->sid[0])
        sg_client_delete_session(s->client, s->sid, NULL);
    return elapsed_real_ms;
}

int sg_cmd_stream(int argc, char **argv)
{
    opts o;
    int rc = parse_opts(argc, argv, &o);
    if (rc >= 0)
        return rc;
    glasses g;
    memset(&g, 0, sizeof g);
    stream *s = calloc(1, sizeof *s);
    if (!s) {
        fprintf(stderr, "sg stream: out of memory\n");
        return 1;
    }
    rc = glasses_open(&g, &o);
    if (rc == 0)
        rc = stream_open(s, &o);
    if (rc == 0)
        rc = stream_start(s);
    if (rc == 0) {
        double elapsed_real_ms = stream_run(s, &g);
        report_print(s, &g, elapsed_real_ms);
    }
    stream_free(s);
    glasses_free(&g);
    return rc;
}
