/* Tests of libsgclient's HTTP client: against the real sg-edge (sessions, raw and JSON frame
 * uploads, queries, audio without an ASR model, unknown sessions, retries on 503 OVERLOADED and 429
 * from a deliberately small or rate-limited server) and against a scripted in-process HTTP server
 * that counts every byte on the wire (byte accounting, Retry-After, no retry on 4xx, giving up,
 * connections closed without an answer), plus a port nobody listens on (network errors), with a fake
 * clock where waiting for real would only slow the test down; the JPEG encoder (resize to the
 * upload size, quality vs size, bad arguments); the client-keyframe hint on the wire and at the
 * server (a frame inside the gate's min_gap is analysed with it); and the audio chunk encoder
 * (Opus / FLAC / WAV chunks decoded again by the server's decoder, the Opus header padding cut,
 * the media type chosen by the magic, sg-edge accepting the chunks). */
#include <arpa/inet.h>
#include <math.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "media/audio.h"
#include "media/image.h"
#include "sgclient.h"
#include "sgtest_http.h"

/* ---- a scripted HTTP/1.1 server that counts bytes ------------------------------------------ */

typedef struct step {
    int status;           /* 0: close the connection without answering */
    const char *retry_after;
    const char *body;
} step;

typedef struct fake_server {
    int fd, port;
    const step *script;
    int nsteps, served;
    uint64_t received, sent;
    char last_request[512];
    pthread_t th;
} fake_server;

static int read_request(int c, char *buf, size_t cap, size_t *got)
{
    size_t n = 0;
    for (;;) {
        struct pollfd p = {c, POLLIN, 0};
        if (poll(&p, 1, 5000) <= 0)
            return -1;
        ssize_t r = recv(c, buf + n, cap - n - 1, 0);
        if (r <= 0)
            return -1;
        n += (size_t)r;
        buf[n] = 0;
        char *end = strstr(buf, "\r\n\r\n");
        if (end) {
            size_t head = (size_t)(end - buf) + 4, clen = 0;
            char *cl = strcasestr(buf, "\r\nContent-Length:");
            if (cl && cl < end)
                clen = strtoul(cl + 17, NULL, 10);
            while (n < head + clen) {
                if (poll(&p, 1, 5000) <= 0)
                    return -1;
                r = recv(c, buf + n, cap - n - 1, 0);
                if (r <= 0)
                    return -1;
                n += (size_t)r;
            }
            *got = n;
            return 0;
        }
        if (n + 1 >= cap)
            return -1;
    }
}

static void *fake_main(void *arg)
{
    fake_server *s = arg;
    static char buf[1 << 20];
    while (s->served < s->nsteps) {
        struct pollfd p = {s->fd, POLLIN, 0};
        if (poll(&p, 1, 10000) <= 0)
            break;
        int c = accept(s->fd, NULL, NULL);
        if (c < 0)
            break;
        while (s->served < s->nsteps) {
            size_t got;
            if (read_request(c, buf, sizeof buf, &got) != 0)
                break;
            s->received += got;
            snprintf(s->last_request, sizeof s->last_request, "%.*s", (int)(got < 511 ? got : 511), buf);
            const step *st = &s->script[s->served++];
            if (st->status == 0)
                break; /* hang up: the client sees no response */
            char resp[2048];
            const char *body = st->body ? st->body : "{}";
            /* before a hang-up, close this connection: the hang-up then happens on a fresh one,
             * which libcurl reports (on a reused one it would quietly resend the request) */
            bool last_here = s->served < s->nsteps && s->script[s->served].status == 0;
            char ra[96] = "";
            if (st->retry_after)
                snprintf(ra, sizeof ra, "Retry-After: %s\r\n", st->retry_after);
            if (last_here)
                strcat(ra, "Connection: close\r\n");
            int n = snprintf(resp, sizeof resp,
                             "HTTP/1.1 %d X\r\nContent-Type: application/json\r\nContent-Length: %zu\r\n%s\r\n%s",
                             st->status, strlen(body), ra, body);
            if (send(c, resp, (size_t)n, MSG_NOSIGNAL) != n)
                break;
            s->sent += (uint64_t)n;
            if (last_here)
                break;
        }
        close(c);
    }
    return NULL;
}

static int fake_start(fake_server *s, const step *script, int n)
{
    memset(s, 0, sizeof *s);
    s->script = script;
    s->nsteps = n;
    s->fd = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(s->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(s->fd, (struct sockaddr *)&a, sizeof a) != 0 || listen(s->fd, 8) != 0)
        return -1;
    socklen_t l = sizeof a;
    getsockname(s->fd, (struct sockaddr *)&a, &l);
    s->port = ntohs(a.sin_port);
    return pthread_create(&s->th, NULL, fake_main, s);
}

static void fake_stop(fake_server *s)
{
    pthread_join(s->th, NULL);
    close(s->fd);
}

/* ---- a fake clock: sleeping advances it at once -------------------------------------------- */

typedef struct fake_clock {
    double now;
    double slept[16];
    int nslept;
    int keep_until; /* keep_trying says yes while attempts < keep_until (0 = always) */
} fake_clock;

static double fc_now(void *ud) { return ((fake_clock *)ud)->now; }
static void fc_sleep(void *ud, double ms)
{
    fake_clock *c = ud;
    if (c->nslept < 16)
        c->slept[c->nslept++] = ms;
    c->now += ms;
}
static bool fc_keep(void *ud, sg_upload_kind kind, int attempts)
{
    (void)kind;
    fake_clock *c = ud;
    return c->keep_until == 0 || attempts < c->keep_until;
}

/* A client of url; with fc, on the fake clock (and 5 s per attempt). */
static sg_client *make_client(const char *url, fake_clock *fc, bool frame_json)
{
    char err[SG_CLIENT_ERROR_SIZE];
    sg_client_config cfg;
    sg_client_config_default(&cfg, url);
    if (fc) {
        cfg.now_ms = fc_now;
        cfg.sleep_ms = fc_sleep;
        cfg.keep_trying = fc_keep;
        cfg.ud = fc;
        cfg.timeout_ms = 5000;
    }
    cfg.frame_json = frame_json;
    sg_client *c = NULL;
    CHECK_MSG(sg_client_new(&cfg, &c, err) == SG_CLIENT_OK, "%s", err);
    return c;
}

static sg_client *fake_client(int port, fake_clock *fc, bool frame_json)
{
    char url[64];
    snprintf(url, sizeof url, "http://127.0.0.1:%d", port);
    return make_client(url, fc, frame_json);
}

static const char *SID = "0b7c3f5e-1d2a-4c6b-9e8f-001122334455";

/* One frame upload against a scripted server, on the fake clock *fc (which the caller set up). */
static sg_client_status scripted_upload(fake_server *fs, const step *script, int n, fake_clock *fc,
                                        bool frame_json, const uint8_t *jpeg, size_t len,
                                        sg_client_result *r)
{
    CHECK(fake_start(fs, script, n) == 0);
    sg_client *c = fake_client(fs->port, fc, frame_json);
    sg_client_status st = sg_client_upload_frame(c, SID, jpeg, len, r);
    fake_stop(fs);
    sg_client_free(c);
    return st;
}

static void test_scripted(void)
{
    static uint8_t jpeg[3000];
    for (size_t i = 0; i < sizeof jpeg; i++)
        jpeg[i] = (uint8_t)(i * 7);

    /* 503 + Retry-After 2, 429 + Retry-After 1, hang-up, then 200: four attempts, every byte
     * accounted for, every wait at least the Retry-After */
    static const step s1[] = {{503, "2", "{\"detail\":\"busy\",\"error\":\"OVERLOADED\"}"},
                              {429, "1", "{\"detail\":\"slow down\",\"error\":\"RATE_LIMITED\"}"},
                              {0, NULL, NULL},
                              {200, NULL, "{\"status\":\"processed\",\"keyframe\":true,\"latency_ms\":{\"total\":1.5}}"}};
    fake_server fs;
    CHECK(fake_start(&fs, s1, 4) == 0);
    fake_clock fc = {0};
    sg_client *c = fake_client(fs.port, &fc, false);
    sg_client_result r;
    sg_client_status st = sg_client_upload_frame(c, SID, jpeg, sizeof jpeg, &r);
    fake_stop(&fs);
    CHECK(st == SG_CLIENT_OK);
    CHECK_EQ_INT(r.status, 200);
    CHECK_EQ_INT(r.attempts, 4);
    CHECK_EQ_INT(r.retries, 3);
    CHECK_EQ_INT(r.network_errors, 1);
    CHECK_EQ_INT(fc.nslept, 3);
    CHECK(fc.slept[0] >= 2000 && fc.slept[1] >= 1000);
    CHECK(fc.slept[2] >= 1000 * 0.5 && fc.slept[2] <= 1000); /* third failure: 1000 ms, jittered */
    CHECK_NEAR(r.total_ms, fc.slept[0] + fc.slept[1] + fc.slept[2], 1e-6);
    CHECK_NEAR(r.server_ms, 1.5, 1e-9);
    CHECK_MSG(r.bytes_up == fs.received, "client counted %llu bytes sent, server received %llu",
              (unsigned long long)r.bytes_up, (unsigned long long)fs.received);
    CHECK_MSG(r.bytes_down == fs.sent, "client counted %llu bytes received, server sent %llu",
              (unsigned long long)r.bytes_down, (unsigned long long)fs.sent);
    CHECK_EQ_INT(r.body_up, 4 * sizeof jpeg);
    CHECK(strstr(fs.last_request, "POST /sessions/0b7c3f5e-1d2a-4c6b-9e8f-001122334455/frame HTTP/1.1") != NULL);
    CHECK(strcasestr(fs.last_request, "Content-Type: image/jpeg") != NULL);
    sg_client_stats stats;
    sg_client_get_stats(c, &stats);
    CHECK_EQ_INT(stats.kind[SG_UPLOAD_FRAME].requests, 1);
    CHECK_EQ_INT(stats.kind[SG_UPLOAD_FRAME].attempts, 4);
    CHECK_EQ_INT(stats.kind[SG_UPLOAD_FRAME].bytes_up, fs.received);
    CHECK_EQ_INT(stats.by_status[5], 1);
    CHECK_EQ_INT(stats.by_status[4], 1);
    CHECK_EQ_INT(stats.by_status[0], 1);
    CHECK_EQ_INT(stats.by_status[2], 1);
    sg_client_result_clear(&r);
    sg_client_free(c);

    /* no retry on other 4xx */
    static const int codes[] = {400, 404, 413, 422};
    for (size_t i = 0; i < 4; i++) {
        step s2[2] = {{codes[i], NULL, "{\"detail\":\"no\",\"error\":\"INVALID_REQUEST\"}"}, {200, NULL, NULL}};
        fc = (fake_clock){0};
        st = scripted_upload(&fs, s2, 1, &fc, false, jpeg, 100, &r);
        CHECK(st == SG_CLIENT_FAILED);
        CHECK_EQ_INT(r.status, codes[i]);
        CHECK_EQ_INT(r.attempts, 1);
        CHECK_EQ_INT(fc.nslept, 0);
        CHECK(strcmp(r.error, "INVALID_REQUEST") == 0 && strcmp(r.detail, "no") == 0);
        CHECK_EQ_INT(r.bytes_up, fs.received);
        sg_client_result_clear(&r);
    }

    /* 500 five times: gives up after max_attempts with growing waits; JSON frame body */
    static const step s3[] = {{500, NULL, NULL}, {500, NULL, NULL}, {500, NULL, NULL}, {500, NULL, NULL}, {500, NULL, NULL}};
    fc = (fake_clock){0};
    st = scripted_upload(&fs, s3, 5, &fc, true, jpeg, 3, &r);
    CHECK(st == SG_CLIENT_GAVE_UP);
    CHECK_EQ_INT(r.attempts, 5);
    CHECK_EQ_INT(fc.nslept, 4);
    for (int i = 0; i < 4; i++) {
        double d = 250.0 * (1 << i);
        CHECK_MSG(fc.slept[i] >= d * 0.5 && fc.slept[i] <= d, "wait %d: %g not in [%g, %g]", i, fc.slept[i], d / 2, d);
    }
    /* 3 bytes -> "AAcO" + the JSON around it */
    CHECK_EQ_INT(r.body_up, 5 * strlen("{\"image_base64\":\"AAcO\"}"));
    CHECK(strstr(fs.last_request, "{\"image_base64\":\"AAcO\"}") != NULL);
    CHECK_EQ_INT(r.bytes_up, fs.received);
    sg_client_result_clear(&r);

    /* 503 MODEL_UNAVAILABLE without Retry-After is final; with it, it is retried */
    static const step s4[] = {{503, NULL, "{\"detail\":\"no ASR model\",\"error\":\"MODEL_UNAVAILABLE\"}"},
                              {503, "1", "{\"detail\":\"loading\",\"error\":\"MODEL_UNAVAILABLE\"}"},
                              {200, NULL, "{\"transcript\":\"x\",\"speech\":true}"}};
    CHECK(fake_start(&fs, s4, 3) == 0);
    fc = (fake_clock){0};
    c = fake_client(fs.port, &fc, false);
    static uint8_t wav[44 + 320];
    int16_t pcm[160] = {0};
    CHECK_EQ_INT(sg_wav_pcm16(pcm, 160, 16000, wav), sizeof wav);
    st = sg_client_upload_audio(c, SID, wav, sizeof wav, &r);
    CHECK(st == SG_CLIENT_FAILED && r.attempts == 1 && strcmp(r.error, "MODEL_UNAVAILABLE") == 0);
    sg_client_result_clear(&r);
    st = sg_client_upload_audio(c, SID, wav, sizeof wav, &r);
    fake_stop(&fs);
    CHECK(st == SG_CLIENT_OK && r.attempts == 2 && fc.slept[0] >= 1000);
    CHECK(strcasestr(fs.last_request, "Content-Type: audio/wav") != NULL);
    sg_client_result_clear(&r);
    sg_client_free(c);

    /* keep_trying says no after the first attempt: abandoned */
    static const step s5[] = {{503, "1", NULL}};
    fc = (fake_clock){.keep_until = 1};
    st = scripted_upload(&fs, s5, 1, &fc, false, jpeg, 10, &r);
    CHECK(st == SG_CLIENT_ABANDONED && r.attempts == 1);
    sg_client_result_clear(&r);

    /* nobody listening: network errors, retried, then given up */
    fc = (fake_clock){0};
    c = fake_client(sgt_free_port(), &fc, false);
    st = sg_client_upload_frame(c, SID, jpeg, 10, &r);
    CHECK(st == SG_CLIENT_GAVE_UP);
    CHECK_EQ_INT(r.status, 0);
    CHECK_EQ_INT(r.attempts, 5);
    CHECK_EQ_INT(r.network_errors, 5);
    CHECK(r.detail[0] != 0);
    CHECK(r.total_ms >= 125 + 250 + 500 + 1000 && r.total_ms <= 250 + 500 + 1000 + 2000);
    sg_client_result_clear(&r);
    /* bad arguments never reach the network */
    CHECK(sg_client_upload_frame(c, "../etc", jpeg, 10, &r) == SG_CLIENT_EINVAL);
    CHECK(sg_client_upload_frame(c, SID, NULL, 10, &r) == SG_CLIENT_EINVAL);
    CHECK(sg_client_query(c, SID, NULL, NULL, 0, &r) == SG_CLIENT_EINVAL);
    CHECK(sg_client_query(c, SID, "\xff\xfe", NULL, 0, &r) == SG_CLIENT_EINVAL);
    sg_client_free(c);
    char err[SG_CLIENT_ERROR_SIZE];
    sg_client_config cfg;
    sg_client_config_default(&cfg, "ftp://x");
    CHECK(sg_client_new(&cfg, &c, err) == SG_CLIENT_EINVAL && c == NULL && err[0]);
    sg_client_config_default(&cfg, "");
    CHECK(sg_client_new(&cfg, &c, err) == SG_CLIENT_EINVAL && c == NULL);
}

/* ---- JPEG encoding ----------------------------------------------------------------------------- */

static void test_jpeg(void)
{
    enum { W = 1280, H = 960 };
    uint8_t *rgb = malloc((size_t)W * H * 3), *ref = malloc(640 * 480 * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = rgb + ((size_t)y * W + x) * 3;
            p[0] = (uint8_t)(x / 5);
            p[1] = (uint8_t)(y / 4);
            p[2] = (uint8_t)(((x / 40) + (y / 40)) % 2 ? 200 : 40);
        }
    CHECK(sg_rgb_fit(rgb, W, H, ref, 640, 480) == SG_CLIENT_OK);
    sg_jpeg_encoder *e;
    CHECK(sg_jpeg_encoder_new(&e) == SG_CLIENT_OK);
    size_t prev = 0;
    double prev_mae = 1e9;
    char err[SG_CLIENT_ERROR_SIZE];
    static const int qs[] = {40, 60, 85, 95};
    for (size_t i = 0; i < 4; i++) {
        uint8_t *out;
        size_t len;
        CHECK(sg_jpeg_encode(e, rgb, W, H, 640, 480, qs[i], &out, &len, err) == SG_CLIENT_OK);
        CHECK(len > prev); /* higher quality, more bytes */
        prev = len;
        sg_image img;
        sg_error se = {0};
        CHECK(sg_image_decode(out, len, 0, &img, &se) == SG_OK);
        CHECK(img.width == 640 && img.height == 480);
        double sum = 0;
        for (size_t k = 0; k < 640 * 480 * 3; k++)
            sum += fabs((double)img.rgb[k] - ref[k]);
        double mae = sum / (640 * 480 * 3); /* sharp chroma edges + 4:2:0: a few levels */
        CHECK_MSG(mae < prev_mae && mae < 9.0, "q%d: mean abs error %g (previous %g)", qs[i], mae, prev_mae);
        prev_mae = mae;
        sg_image_free(&img);
        free(out);
    }
    uint8_t *out;
    size_t len;
    CHECK(sg_jpeg_encode(e, rgb, W, H, 0, 0, 0, &out, &len, err) == SG_CLIENT_EINVAL && strstr(err, "quality"));
    CHECK(sg_jpeg_encode(e, rgb, W, H, 0, 0, 101, &out, &len, err) == SG_CLIENT_EINVAL);
    CHECK(sg_jpeg_encode(e, rgb, 0, H, 0, 0, 80, &out, &len, err) == SG_CLIENT_EINVAL && out == NULL);
    CHECK(sg_jpeg_encode(e, rgb, W, H, 0, 0, 80, &out, &len, err) == SG_CLIENT_OK); /* no resize */
    sg_image img;
    sg_error se = {0};
    CHECK(sg_image_decode(out, len, 0, &img, &se) == SG_OK && img.width == W && img.height == H);
    sg_image_free(&img);
    free(out);
    sg_jpeg_encoder_free(e);
    free(rgb);
    free(ref);
}

/* ---- against sg-edge --------------------------------------------------------------------------- */

static uint8_t *make_jpeg(int seed, size_t *len)
{
    enum { W = 640, H = 480 };
    uint8_t *rgb = malloc(W * H * 3);
    for (int y = 0; y < H; y++)
        for (int x = 0; x < W; x++) {
            uint8_t *p = rgb + ((size_t)y * W + x) * 3;
            p[0] = (uint8_t)(x / 3 + seed * 50);
            p[1] = (uint8_t)(y / 2 + seed * 90);
            p[2] = (uint8_t)((x ^ y) + seed * 20);
        }
    sg_jpeg_encoder *e;
    CHECK(sg_jpeg_encoder_new(&e) == SG_CLIENT_OK);
    uint8_t *out = NULL;
    char err[SG_CLIENT_ERROR_SIZE];
    CHECK(sg_jpeg_encode(e, rgb, W, H, 0, 0, 85, &out, len, err) == SG_CLIENT_OK);
    sg_jpeg_encoder_free(e);
    free(rgb);
    return out;
}

static sg_client *real_client(const sgt_server *s) { return make_client(s->base, NULL, false); }

/* A fresh sg-edge (extra environment and arguments, or NULL), a client of it and a session on it. */
static sg_client *edge_session(sgt_server *srv, const char **env, const char **args,
                               char sid[SG_CLIENT_SESSION_ID_SIZE])
{
    CHECK(sgt_start(srv, env, args) == 0);
    sg_client *c = real_client(srv);
    CHECK(sg_client_create_session(c, sid, NULL) == SG_CLIENT_OK);
    return c;
}

static bool body_has(const sg_client_result *r, const char *s) { return r->body && strstr(r->body, s); }

static void test_sg_edge(void)
{
    sgt_server srv;
    char sid[SG_CLIENT_SESSION_ID_SIZE];
    sg_client *c = edge_session(&srv, NULL, NULL, sid);
    CHECK(strlen(sid) == 36);
    sg_client_result r;

    size_t n1, n2;
    uint8_t *f1 = make_jpeg(0, &n1), *f2 = make_jpeg(1, &n2);
    CHECK(sg_client_upload_frame(c, sid, f1, n1, &r) == SG_CLIENT_OK);
    CHECK(body_has(&r, "\"status\":\"processed\"") && body_has(&r, "\"keyframe\":true"));
    CHECK_EQ_INT(r.body_up, n1);
    CHECK(r.server_ms >= 0 && r.latency_ms >= r.server_ms);
    uint64_t frame_bytes = r.bytes_up;
    sg_client_result_clear(&r);
    /* the same frame again: the gate skips it */
    CHECK(sg_client_upload_frame(c, sid, f1, n1, &r) == SG_CLIENT_OK);
    CHECK(body_has(&r, "\"status\":\"skipped\""));
    frame_bytes += r.bytes_up;
    sg_client_result_clear(&r);
    /* as JSON: base64 + 19 bytes of JSON; a different picture, but only 2 frames after the
     * keyframe, so the gate (min_gap 3) still skips it */
    sg_client *cj = make_client(srv.base, NULL, true);
    CHECK(sg_client_upload_frame(cj, sid, f2, n2, &r) == SG_CLIENT_OK);
    CHECK_EQ_INT(r.body_up, 4 * ((n2 + 2) / 3) + 19);
    CHECK(body_has(&r, "\"keyframe\":false"));
    sg_client_result_clear(&r);
    sg_client_free(cj);

    CHECK(sg_client_query(c, sid, "what am I looking at?", NULL, 0, &r) == SG_CLIENT_OK);
    CHECK(body_has(&r, "\"response\""));
    CHECK(r.server_ms >= 0);
    sg_client_result_clear(&r);
    CHECK(sg_client_query(c, sid, "and this?", f2, n2, &r) == SG_CLIENT_OK);
    CHECK(body_has(&r, "\"visual_context\""));
    sg_client_result_clear(&r);

    /* audio: without an ASR model the server validates it and answers 503 MODEL_UNAVAILABLE with no
     * Retry-After: final, not retried (with a model: 200) */
    size_t wl;
    char *wav = check_read_file("../shared/data/audio/jfk.wav", &wl);
    CHECK(wav != NULL);
    sg_client_status st = sg_client_upload_audio(c, sid, (const uint8_t *)wav, wl, &r);
    CHECK_EQ_INT(r.attempts, 1);
    CHECK(st == SG_CLIENT_OK || (st == SG_CLIENT_FAILED && r.status == 503 &&
                                 strcmp(r.error, "MODEL_UNAVAILABLE") == 0));
    CHECK_EQ_INT(r.body_up, wl);
    sg_client_result_clear(&r);
    free(wav);

    /* an unknown session: 404, final */
    CHECK(sg_client_upload_frame(c, "00000000-0000-4000-8000-000000000000", f1, n1, &r) == SG_CLIENT_FAILED);
    CHECK(r.status == 404 && r.attempts == 1 && strcmp(r.error, "INVALID_SESSION") == 0);
    sg_client_result_clear(&r);
    /* garbage is a 400, final */
    CHECK(sg_client_upload_frame(c, sid, (const uint8_t *)"not a jpeg", 10, &r) == SG_CLIENT_FAILED);
    CHECK(r.status == 400 && r.attempts == 1);
    sg_client_result_clear(&r);

    sg_client_stats stats;
    sg_client_get_stats(c, &stats);
    CHECK_EQ_INT(stats.kind[SG_UPLOAD_FRAME].requests, 4);
    CHECK_EQ_INT(stats.kind[SG_UPLOAD_FRAME].ok, 2);
    CHECK_EQ_INT(stats.kind[SG_UPLOAD_FRAME].retries, 0);
    CHECK_EQ_INT(stats.kind[SG_UPLOAD_QUERY].ok, 2);
    CHECK_EQ_INT(stats.kind[SG_UPLOAD_CONTROL].requests, 1);
    CHECK(stats.kind[SG_UPLOAD_FRAME].bytes_up > frame_bytes);
    CHECK(stats.kind[SG_UPLOAD_FRAME].body_up == 2 * n1 + n1 + 10);
    CHECK(sg_client_delete_session(c, sid, &r) == SG_CLIENT_OK);
    sg_client_result_clear(&r);
    CHECK(sg_client_upload_frame(c, sid, f1, n1, &r) == SG_CLIENT_FAILED && r.status == 404);
    sg_client_result_clear(&r);
    sg_client_free(c);
    sgt_stop(&srv, SIGTERM);
    free(f1);
    free(f2);
}

/* Three phones upload at once to a server with one worker and no queue, whose every job takes
 * 400 ms: the others get 503 OVERLOADED + Retry-After and get through on a retry. "At once": each
 * makes its client first and waits for the others at a barrier, so on a slow machine (ASan, a
 * loaded CI box) a phone still starting up cannot miss the 400 ms in which the worker is busy. */
typedef struct uploader_arg {
    pthread_barrier_t *ready;
    const sgt_server *srv;
    const char *sid;
    const uint8_t *jpeg;
    size_t len;
    sg_client_status st;
    int retries;
    double total_ms;
    char error[32];
} uploader_arg;

static void *upload_thread(void *p)
{
    uploader_arg *a = p;
    sg_client *c = real_client(a->srv);
    sg_client_result r;
    pthread_barrier_wait(a->ready);
    a->st = sg_client_upload_frame(c, a->sid, a->jpeg, a->len, &r);
    a->retries = r.retries;
    a->total_ms = r.total_ms;
    sg_client_result_clear(&r);
    sg_client_free(c);
    return NULL;
}

static void test_sg_edge_overloaded(void)
{
    sgt_server srv;
    const char *env[] = {"SG_DEBUG_WORK_DELAY_MS=400", NULL};
    const char *args[] = {"--workers", "1", "--queue-depth", "0", NULL};
    char sid[SG_CLIENT_SESSION_ID_SIZE];
    sg_client *c = edge_session(&srv, env, args, sid);
    size_t n;
    uint8_t *f = make_jpeg(2, &n);
    uploader_arg a[3];
    pthread_t th[3];
    pthread_barrier_t ready;
    pthread_barrier_init(&ready, NULL, 3);
    for (int i = 0; i < 3; i++) {
        a[i] = (uploader_arg){.ready = &ready, .srv = &srv, .sid = sid, .jpeg = f, .len = n};
        pthread_create(&th[i], NULL, upload_thread, &a[i]);
    }
    int retries = 0;
    for (int i = 0; i < 3; i++) {
        pthread_join(th[i], NULL);
        CHECK_MSG(a[i].st == SG_CLIENT_OK, "upload %d: %s", i, sg_client_status_name(a[i].st));
        retries += a[i].retries;
        if (a[i].retries > 0)
            CHECK(a[i].total_ms >= 1000.0); /* waited for Retry-After: 1 */
    }
    pthread_barrier_destroy(&ready);
    CHECK_MSG(retries >= 2, "only %d retries", retries);
    sg_client_free(c);
    sgt_stop(&srv, SIGTERM);
    free(f);
}

/* A per-session rate limit of 1 request/s (burst 2): the third quick upload gets 429 and goes
 * through after its Retry-After. */
static void test_sg_edge_rate_limited(void)
{
    sgt_server srv;
    const char *env[] = {"SG_RATE_LIMIT_RPS=1", NULL};
    char sid[SG_CLIENT_SESSION_ID_SIZE];
    sg_client *c = edge_session(&srv, env, NULL, sid);
    size_t n;
    uint8_t *f = make_jpeg(3, &n);
    int retries = 0, ok = 0;
    for (int i = 0; i < 4; i++) {
        sg_client_result r;
        ok += sg_client_upload_frame(c, sid, f, n, &r) == SG_CLIENT_OK;
        retries += r.retries;
        if (r.retries)
            CHECK(r.total_ms >= 1000.0 * r.retries * 0.99);
        sg_client_result_clear(&r);
    }
    CHECK_EQ_INT(ok, 4);
    CHECK(retries >= 1);
    sg_client_stats stats;
    sg_client_get_stats(c, &stats);
    CHECK(stats.by_status[4] >= 1);
    sg_client_free(c);
    sgt_stop(&srv, SIGTERM);
    free(f);
}

/* ---- the client-keyframe hint and audio chunks ------------------------------------------------ */

static double corr(const float *a, const float *b, size_t n)
{
    double ab = 0, aa = 0, bb = 0;
    for (size_t i = 0; i < n; i++) {
        ab += (double)a[i] * b[i];
        aa += (double)a[i] * a[i];
        bb += (double)b[i] * b[i];
    }
    return aa > 0 && bb > 0 ? ab / sqrt(aa * bb) : 0;
}

/* jfk.wav's first `seconds` as 16 kHz s16 (malloc'ed) */
static int16_t *jfk_pcm(double seconds, size_t *n)
{
    size_t len;
    char *wav = check_read_file("../shared/data/audio/jfk.wav", &len);
    CHECK(wav != NULL);
    if (!wav)
        return NULL;
    sg_audio a;
    sg_error err = {0};
    CHECK(sg_audio_decode((const uint8_t *)wav, len, SG_AUDIO_AUTO, 0, 0, &a, &err) == SG_OK);
    free(wav);
    *n = (size_t)(seconds * 16000);
    if (*n > a.n)
        *n = a.n;
    int16_t *p = malloc(*n * 2);
    for (size_t i = 0; i < *n; i++)
        p[i] = (int16_t)lrintf(a.samples[i] * 32768.0f);
    sg_audio_free(&a);
    return p;
}

static void test_audio_codec(void)
{
    sg_audio_codec c;
    CHECK(sg_audio_codec_parse("opus", &c) == SG_CLIENT_OK && c == SG_AUDIO_CODEC_OPUS);
    CHECK(sg_audio_codec_parse("flac", &c) == SG_CLIENT_OK && c == SG_AUDIO_CODEC_FLAC);
    CHECK(sg_audio_codec_parse("pcm", &c) == SG_CLIENT_OK && c == SG_AUDIO_CODEC_PCM);
    CHECK(sg_audio_codec_parse("wav", &c) == SG_CLIENT_OK && c == SG_AUDIO_CODEC_PCM);
    CHECK(sg_audio_codec_parse("mp3", &c) == SG_CLIENT_EINVAL);
    CHECK(sg_audio_codec_parse(NULL, &c) == SG_CLIENT_EINVAL);
    CHECK(strcmp(sg_audio_codec_content_type(SG_AUDIO_CODEC_OPUS), "audio/ogg") == 0);

    size_t n;
    int16_t *pcm = jfk_pcm(3.0, &n); /* 0-3 s: speech from 0.3 s */
    if (!pcm)
        return;
    float *ref = malloc(n * sizeof *ref);
    for (size_t i = 0; i < n; i++)
        ref[i] = pcm[i] / 32768.0f;
    char err[SG_CLIENT_ERROR_SIZE];
    for (int k = 0; k < 3; k++) {
        sg_audio_codec codec = (sg_audio_codec)k;
        uint8_t *out = NULL;
        size_t len = 0;
        CHECK_MSG(sg_audio_encode(codec, pcm, n, 16000, 0, &out, &len, err) == SG_CLIENT_OK, "%s", err);
        if (!out)
            continue;
        sg_audio a;
        sg_error e = {0};
        sg_status st = sg_audio_decode(out, len, SG_AUDIO_AUTO, 0, 0, &a, &e);
        CHECK_MSG(st == SG_OK, "%s: %s", sg_audio_codec_name(codec), e.msg);
        printf("audio chunk %s: 3 s -> %zu bytes\n", sg_audio_codec_name(codec), len);
        if (st == SG_OK) {
            if (codec == SG_AUDIO_CODEC_OPUS) {
                CHECK(memcmp(out, "OggS", 4) == 0);
                CHECK_MSG(len < 3 * 3300, "%zu bytes for 3 s at 24 kbit/s", len);
                CHECK_NEAR((double)a.n, (double)n, 8);
                double r = corr(ref, a.samples, a.n < n ? a.n : n);
                CHECK_MSG(r > 0.98, "Opus correlation %g", r);
                /* the OpusTags page lost its padding: the next page follows within 100 bytes */
                uint8_t *tags = memmem(out, len, "OpusTags", 8);
                uint8_t *next = tags ? memmem(tags, len - (size_t)(tags - out), "OggS", 4) : NULL;
                CHECK(tags && next && next - tags < 100);
            } else {
                CHECK(memcmp(out, codec == SG_AUDIO_CODEC_FLAC ? "fLaC" : "RIFF", 4) == 0);
                CHECK_EQ_INT(a.n, n);
                size_t diff = 0;
                for (size_t i = 0; i < n && i < a.n; i++)
                    diff += a.samples[i] != ref[i];
                CHECK_EQ_INT(diff, 0); /* lossless */
                if (codec == SG_AUDIO_CODEC_FLAC)
                    CHECK(len < n * 2);
                else
                    CHECK_EQ_INT(len, 44 + 2 * n);
            }
            sg_audio_free(&a);
        }
        free(out);
    }
    /* a bitrate changes the size; bad arguments are errors */
    uint8_t *lo = NULL, *hi = NULL;
    size_t nlo = 0, nhi = 0;
    CHECK(sg_audio_encode(SG_AUDIO_CODEC_OPUS, pcm, n, 16000, 12000, &lo, &nlo, err) == SG_CLIENT_OK);
    CHECK(sg_audio_encode(SG_AUDIO_CODEC_OPUS, pcm, n, 16000, 64000, &hi, &nhi, err) == SG_CLIENT_OK);
    CHECK_MSG(nlo < nhi, "%zu vs %zu", nlo, nhi);
    free(lo);
    free(hi);
    uint8_t *o = NULL;
    size_t ol = 0;
    CHECK(sg_audio_encode(SG_AUDIO_CODEC_OPUS, pcm, n, 44100, 0, &o, &ol, err) == SG_CLIENT_EINVAL && !o);
    CHECK(strstr(err, "44100") != NULL);
    CHECK(sg_audio_encode(SG_AUDIO_CODEC_OPUS, pcm, n, 16000, 1000, &o, &ol, err) == SG_CLIENT_EINVAL && !o);
    CHECK(sg_audio_encode(SG_AUDIO_CODEC_FLAC, NULL, n, 16000, 0, &o, &ol, err) == SG_CLIENT_EINVAL && !o);
    CHECK(sg_audio_encode(SG_AUDIO_CODEC_FLAC, pcm, 0, 16000, 0, &o, &ol, err) == SG_CLIENT_EINVAL && !o);
    CHECK(sg_audio_encode((sg_audio_codec)9, pcm, n, 16000, 0, &o, &ol, err) == SG_CLIENT_EINVAL && !o);
    free(ref);
    free(pcm);
}

static void test_hint_on_the_wire(void)
{
    static const step ok[] = {{200, NULL, "{}"}, {200, NULL, "{}"}, {200, NULL, "{}"},
                              {200, NULL, "{}"}, {200, NULL, "{}"}};
    fake_server fs;
    fake_clock fc = {0};
    CHECK(fake_start(&fs, ok, 5) == 0);
    sg_client *c = fake_client(fs.port, &fc, false);
    sg_client_result r;
    static const uint8_t jpeg[4] = {0xFF, 0xD8, 0xFF, 0xD9};
    CHECK(sg_client_upload_frame_hint(c, SID, jpeg, 4, true, &r) == SG_CLIENT_OK);
    CHECK(strcasestr(fs.last_request, "X-Client-Keyframe: true") != NULL);
    sg_client_result_clear(&r);
    CHECK(sg_client_upload_frame_hint(c, SID, jpeg, 4, false, &r) == SG_CLIENT_OK);
    CHECK(strcasestr(fs.last_request, "X-Client-Keyframe") == NULL);
    sg_client_result_clear(&r);
    /* the audio media type follows the magic */
    static const uint8_t ogg[8] = {'O', 'g', 'g', 'S', 0, 2, 0, 0};
    static const uint8_t flac[8] = {'f', 'L', 'a', 'C', 0, 0, 0, 34};
    CHECK(sg_client_upload_audio(c, SID, ogg, 8, &r) == SG_CLIENT_OK);
    CHECK(strcasestr(fs.last_request, "Content-Type: audio/ogg") != NULL);
    sg_client_result_clear(&r);
    CHECK(sg_client_upload_audio(c, SID, flac, 8, &r) == SG_CLIENT_OK);
    CHECK(strcasestr(fs.last_request, "Content-Type: audio/flac") != NULL);
    sg_client_result_clear(&r);
    sg_client_free(c);
    /* JSON frames carry it as a field */
    fc = (fake_clock){0};
    c = fake_client(fs.port, &fc, true);
    CHECK(sg_client_upload_frame_hint(c, SID, jpeg, 3, true, &r) == SG_CLIENT_OK);
    CHECK(strstr(fs.last_request, "{\"image_base64\":\"/9j/\",\"client_keyframe\":true}") != NULL);
    CHECK_EQ_INT(r.body_up, strlen("{\"image_base64\":\"/9j/\",\"client_keyframe\":true}"));
    sg_client_result_clear(&r);
    fake_stop(&fs);
    sg_client_free(c);
}

static void test_hint_at_sg_edge(void)
{
    sgt_server srv;
    char sid[SG_CLIENT_SESSION_ID_SIZE];
    sg_client *c = edge_session(&srv, NULL, NULL, sid);
    sg_client_result r;
    size_t n1, n2;
    uint8_t *f1 = make_jpeg(0, &n1), *f2 = make_jpeg(1, &n2);
    CHECK(sg_client_upload_frame(c, sid, f1, n1, &r) == SG_CLIENT_OK);
    CHECK(body_has(&r, "\"keyframe\":true"));
    sg_client_result_clear(&r);
    /* one frame later the gate's min_gap would skip anything; with the hint it is analysed */
    CHECK(sg_client_upload_frame(c, sid, f2, n2, &r) == SG_CLIENT_OK);
    CHECK(body_has(&r, "\"keyframe\":false"));
    sg_client_result_clear(&r);
    CHECK(sg_client_upload_frame_hint(c, sid, f1, n1, true, &r) == SG_CLIENT_OK);
    CHECK(body_has(&r, "\"keyframe\":true") && body_has(&r, "\"client_keyframe\":true"));
    sg_client_result_clear(&r);
    sg_client *cj = make_client(srv.base, NULL, true);
    CHECK(sg_client_upload_frame_hint(cj, sid, f2, n2, true, &r) == SG_CLIENT_OK);
    CHECK(body_has(&r, "\"keyframe\":true"));
    sg_client_result_clear(&r);
    sg_client_free(cj);
    /* an Opus chunk is decoded by the server (no ASR model: 503 MODEL_UNAVAILABLE after the
     * decode, final); garbage behind OggS is a 400 */
    size_t n;
    int16_t *pcm = jfk_pcm(1.0, &n);
    uint8_t *opus = NULL;
    size_t ol = 0;
    if (pcm && sg_audio_encode(SG_AUDIO_CODEC_OPUS, pcm, n, 16000, 0, &opus, &ol, NULL) == SG_CLIENT_OK) {
        sg_client_status st = sg_client_upload_audio(c, sid, opus, ol, &r);
        CHECK_MSG(st == SG_CLIENT_OK || (r.status == 503 && strcmp(r.error, "MODEL_UNAVAILABLE") == 0),
                  "HTTP %d %s %s", r.status, r.error, r.detail);
        CHECK_EQ_INT(r.body_up, ol);
        sg_client_result_clear(&r);
        memset(opus + 30, 0x55, ol - 30);
        CHECK(sg_client_upload_audio(c, sid, opus, ol, &r) == SG_CLIENT_FAILED);
        CHECK(r.status == 400 && strcmp(r.error, "INVALID_AUDIO") == 0 && r.attempts == 1);
        sg_client_result_clear(&r);
    }
    free(opus);
    free(pcm);
    sg_client_free(c);
    sgt_stop(&srv, SIGTERM);
    free(f1);
    free(f2);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_DEFAULT);
    test_jpeg();
    test_scripted();
    test_sg_edge();
    test_sg_edge_overloaded();
    test_sg_edge_rate_limited();
    test_audio_codec();
    test_hint_on_the_wire();
    test_hint_at_sg_edge();
    curl_global_cleanup();
    return check_report("test_client_http");
}
