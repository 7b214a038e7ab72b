/* Sessions in Redis through the real binary: two sg-edge instances on one redis-server (started
 * by the test) serve one session as one - a frame on A, the query on B sees its scene; transcripts,
 * DAT chunks split across both, the listing, 36 concurrent frames numbered 1..36 exactly, DELETE
 * removing every key, TTL expiry, a rate limit shared by both, a corrupt value answered with a
 * clear error - and the --session-store / SG_SESSION_STORE settings refused with exit 2. */
#include <fcntl.h>
#include <pthread.h>
#include <stdarg.h>

#include "base/base64.h"
#include "sgtest_http.h"
#include "sgtest_proc.h"
#include "sgtest_redis.h"
#include "sgtest_ws.h"

static char *image_b64;

static void load_image(void)
{
    size_t len = 0;
    uint8_t *img = check_read_file("../shared/data/images/coffee.jpg", &len);
    CHECK(img != NULL);
    if (img)
        image_b64 = sg_base64_encode(img, len, NULL);
    free(img);
}

/* POST a JSON text; the response. */
static sgt_resp post(const sgt_server *s, const char *path, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
static sgt_resp post(const sgt_server *s, const char *path, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    char *body = NULL;
    if (vasprintf(&body, fmt, ap) < 0)
        body = NULL;
    va_end(ap);
    sgt_resp r = sgt_request(s, "POST", path, NULL, body, body ? strlen(body) : 0);
    free(body);
    return r;
}

static sgt_resp frame(const sgt_server *s, const char *id)
{
    char path[96];
    snprintf(path, sizeof path, "/sessions/%s/frame", id);
    return post(s, path, "{\"image_base64\":\"%s\"}", image_b64);
}

static sgt_resp query(const sgt_server *s, const char *id, const char *text)
{
    char path[96];
    snprintf(path, sizeof path, "/sessions/%s/query", id);
    return post(s, path, "{\"text\":\"%s\"}", text);
}

static long long jint(json_t *o, const char *k) { return json_integer_value(json_object_get(o, k)); }

/* ---- the settings ---------------------------------------------------------------------------- */

/* Runs sg-edge with args (and SG_SESSION_STORE=env when env is set); its exit status and what it
 * printed to stderr. */
static int run_edge(const char *env, const char **args, char *out, size_t cap)
{
    int p[2];
    if (pipe(p) != 0)
        return -1;
    pid_t pid = fork();
    if (pid == 0) {
        dup2(p[1], 2);
        close(p[0]);
        if (env)
            setenv("SG_SESSION_STORE", env, 1);
        alarm(10); /* a server that starts instead of refusing is stopped (and fails the test) */
        const char *argv[16] = {SG_EDGE_BIN, "--host", "127.0.0.1", "--port", "0"};
        int n = 5;
        for (int i = 0; args && args[i]; i++)
            argv[n++] = args[i];
        argv[n] = NULL;
        execv(SG_EDGE_BIN, (char **)argv);
        _exit(127);
    }
    close(p[1]);
    size_t n = 0;
    ssize_t k;
    while (n + 1 < cap && (k = read(p[0], out + n, cap - 1 - n)) > 0)
        n += (size_t)k;
    out[n] = 0;
    close(p[0]);
    int st = 0;
    waitpid(pid, &st, 0);
    return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
}

static void test_settings(void)
{
    static const struct {
        const char *url, *says;
    } bad[] = {
        {"redis://:hunter2@127.0.0.1:99999", "port"},
        {"redis://:hunter2@/0", "no host"},
        {"rediss://127.0.0.1:6379", "is not memory"},
        {"redis://127.0.0.1:6379/x", "database"},
        {"redis://hunter2@127.0.0.1", ":password"},
        {"unix://relative.sock", "absolute path"},
        {"unix:///tmp/r.sock?database=1", "?db=N"},
        {"redis://[::1:6379", "without ']'"},
    };
    char out[4096];
    for (size_t i = 0; i < sizeof bad / sizeof *bad; i++) {
        const char *args[] = {"--session-store", bad[i].url, NULL};
        int rc = run_edge(NULL, args, out, sizeof out);
        CHECK_MSG(rc == 2, "--session-store %s: exit %d", bad[i].url, rc);
        CHECK_MSG(strstr(out, bad[i].says) && strstr(out, "--session-store"),
                  "--session-store %s: %s", bad[i].url, out);
        CHECK_MSG(!strstr(out, "hunter2"), "the password is printed: %s", out);
        rc = run_edge(bad[i].url, NULL, out, sizeof out);
        CHECK_MSG(rc == 2 && strstr(out, "SG_SESSION_STORE") && strstr(out, bad[i].says),
                  "SG_SESSION_STORE=%s: exit %d, %s", bad[i].url, rc, out);
        CHECK_MSG(!strstr(out, "hunter2"), "the password is printed: %s", out);
    }
    /* the store's bounds are range-checked like every limit */
    static const char *const bad_env[] = {"SG_SESSION_LOCK_TTL_MS=5", "SG_SESSION_STORE_TIMEOUT_MS=0",
                                          "SG_SESSION_LOCK_WAIT_MS=-1",
                                          "SG_SESSION_STORE_CONNECTIONS=x"};
    for (size_t i = 0; i < sizeof bad_env / sizeof *bad_env; i++) {
        pid_t pid = fork();
        if (pid == 0) {
            int devnull = open("/dev/null", O_WRONLY);
            dup2(devnull, 2);
            putenv((char *)bad_env[i]);
            alarm(10);
            execl(SG_EDGE_BIN, SG_EDGE_BIN, "--port", "0", (char *)NULL);
            _exit(127);
        }
        int st = 0;
        waitpid(pid, &st, 0);
        CHECK_MSG(WIFEXITED(st) && WEXITSTATUS(st) == 2, "%s: exit %d", bad_env[i],
                  WIFEXITED(st) ? WEXITSTATUS(st) : -1);
    }
}

/* ---- one session, two instances -------------------------------------------------------------- */

static void test_shared(const sgt_server *a, const sgt_server *b, const sgt_redis *r)
{
    const char *hdr[] = {"X-Privacy-Store-Transcripts: true", NULL};
    char *id = sgt_new_session(a, hdr);
    /* a frame on A; the query on B answers from A's scene */
    sgt_resp f = frame(a, id);
    CHECK_EQ_INT(f.status, 200);
    const char *summary = sgt_str(json_object_get(f.json, "scene"), "summary");
    CHECK(summary[0]);
    sgt_resp q = query(b, id, "what do I see");
    CHECK_EQ_INT(q.status, 200);
    CHECK_MSG(strcmp(sgt_str(q.json, "visual_context"), summary) == 0,
              "B's visual_context \"%s\" is not A's scene \"%s\"", sgt_str(q.json, "visual_context"),
              summary);
    sgt_resp_free(&q);
    sgt_resp_free(&f);
    /* a transcript made on B (the fixture's Whisper transcribes everything) is counted on A */
    size_t wav_len = 0;
    uint8_t *wav = check_read_file("../shared/data/audio/jfk.wav", &wav_len);
    char path[96];
    snprintf(path, sizeof path, "/sessions/%s/audio", id);
    const char *wh[] = {"Content-Type: audio/wav", NULL};
    sgt_resp au = sgt_request(b, "POST", path, wh, wav, wav_len);
    CHECK_EQ_INT(au.status, 200);
    CHECK(json_is_true(json_object_get(au.json, "speech")));
    sgt_resp_free(&au);
    free(wav);
    json_t *e = sgt_session_entry(a, id);
    CHECK_MSG(e != NULL, "GET /sessions on A does not list the session");
    CHECK_EQ_INT(jint(e, "transcript_count"), 1);
    CHECK_EQ_INT(jint(e, "query_count"), 1);
    CHECK_EQ_INT(jint(e, "frame_count"), 1);
    CHECK(json_is_true(json_object_get(e, "has_frame")));
    json_decref(e);
    /* a session made on B is listed on A */
    char *id2 = sgt_new_session(b, NULL);
    e = sgt_session_entry(a, id2);
    CHECK_MSG(e != NULL, "a session made on B is not listed on A");
    json_decref(e);
    /* DAT: audio chunks streamed to both, the turn on A sees all of them once */
    sgt_resp d = post(b, "/dat/session", "{\"device_id\":\"g\",\"client_version\":\"1\"}");
    CHECK_EQ_INT(d.status, 200);
    char *did = strdup(sgt_str(d.json, "session_id"));
    sgt_resp_free(&d);
    char payload[1400];
    memset(payload, 'A', 1280); /* 960 bytes of silence: 480 samples */
    payload[1280] = 0;
    for (int seq = 1; seq <= 6; seq++) {
        sgt_resp c = post(seq % 2 ? a : b, "/dat/stream",
                          "{\"session_id\":\"%s\",\"chunk_type\":\"audio\",\"sequence_number\":%d,"
                          "\"timestamp_ms\":%d,\"payload\":\"%s\"}", did, seq, seq * 30, payload);
        CHECK_EQ_INT(c.status, 200);
        CHECK(strcmp(sgt_str(c.json, "status"), "buffered") == 0);
        sgt_resp_free(&c);
    }
    sgt_resp dup = post(b, "/dat/stream", "{\"session_id\":\"%s\",\"chunk_type\":\"audio\","
                        "\"sequence_number\":3,\"timestamp_ms\":90,\"payload\":\"%s\"}", did, payload);
    CHECK(strcmp(sgt_str(dup.json, "status"), "duplicate") == 0);
    sgt_resp_free(&dup);
    sgt_resp t = post(a, "/dat/turn/complete", "{\"session_id\":\"%s\",\"turn_id\":\"t1\"}", did);
    CHECK_EQ_INT(t.status, 200);
    json_t *dat = json_object_get(json_object_get(t.json, "metadata"), "dat");
    CHECK_EQ_INT(jint(dat, "audio_chunks"), 6);
    CHECK_EQ_INT(jint(dat, "audio_bytes"), 6 * 960);
    CHECK_EQ_INT(jint(dat, "duplicates"), 1);
    sgt_resp_free(&t);
    /* what the turn took is gone: a late chunk of it is a duplicate on the other instance */
    sgt_resp late = post(b, "/dat/stream", "{\"session_id\":\"%s\",\"chunk_type\":\"audio\","
                         "\"sequence_number\":5,\"timestamp_ms\":150,\"payload\":\"%s\"}", did,
                         payload);
    CHECK(strcmp(sgt_str(late.json, "status"), "duplicate") == 0);
    sgt_resp_free(&late);

    /* DELETE on A removes every key of the session, whatever made them */
    char pattern[96];
    snprintf(pattern, sizeof pattern, "sg:v1:{%s}*", id);
    CHECK(sgt_redis_count_keys(r, pattern) >= 2);
    snprintf(path, sizeof path, "/sessions/%s", id);
    sgt_resp del = sgt_request(a, "DELETE", path, NULL, NULL, 0);
    CHECK_EQ_INT(del.status, 200);
    sgt_resp_free(&del);
    CHECK_EQ_INT(sgt_redis_count_keys(r, pattern), 0);
    redisReply *rep = sgt_redis_cmd(r, "ZSCORE sg:v1:sessions %s", id);
    CHECK(rep && rep->type == REDIS_REPLY_NIL);
    freeReplyObject(rep);
    q = query(b, id, "hello");
    CHECK_EQ_INT(q.status, 404);
    sgt_resp_free(&q);
    snprintf(pattern, sizeof pattern, "sg:v1:{%s}*", did);
    CHECK(sgt_redis_count_keys(r, pattern) >= 3); /* meta, state, dat, datw */
    snprintf(path, sizeof path, "/sessions/%s", did);
    del = sgt_request(b, "DELETE", path, NULL, NULL, 0);
    CHECK_EQ_INT(del.status, 200);
    sgt_resp_free(&del);
    CHECK_EQ_INT(sgt_redis_count_keys(r, pattern), 0);
    free(did);
    free(id2);
    free(id);
}

/* ---- a WebSocket stays on its instance; what it adds is seen by the other at once ------------- */

static void test_websocket(const sgt_server *a, const sgt_server *b)
{
    char *id = sgt_new_session(b, NULL);
    sgt_ws w;
    CHECK_EQ_INT(sgt_ws_connect(a->port, &w, "frame", id), 101);
    size_t len = 0;
    uint8_t *img = check_read_file("../shared/data/images/coffee.jpg", &len);
    CHECK(img && sgt_ws_send(&w, 2, img, len) == 0);
    free(img);
    json_t *m = sgt_ws_recv_json(&w, 30000, NULL);
    const char *summary = sgt_str(json_object_get(m, "scene"), "summary");
    CHECK(summary[0]);
    /* the socket is still open: B answers from the scene it made on A */
    sgt_resp q = query(b, id, "what do I see");
    CHECK_EQ_INT(q.status, 200);
    CHECK_MSG(strcmp(sgt_str(q.json, "visual_context"), summary) == 0, "B sees \"%s\"",
              sgt_str(q.json, "visual_context"));
    sgt_resp_free(&q);
    json_decref(m);
    sgt_ws_send_close(&w, 1000, "bye");
    sgt_ws_free(&w);
    free(id);
}

/* ---- 36 concurrent frames over two instances -------------------------------------------------- */

typedef struct frame_job {
    const sgt_server *s;
    const char *id;
    long index, status;
} frame_job;

static void *frame_thread(void *p)
{
    frame_job *j = p;
    sgt_resp r = frame(j->s, j->id);
    j->status = r.status;
    j->index = (long)jint(r.json, "frame_index");
    sgt_resp_free(&r);
    return NULL;
}

static void test_concurrent_frames(const sgt_server *a, const sgt_server *b)
{
    enum { N = 36 };
    char *id = sgt_new_session(a, NULL);
    frame_job jobs[N];
    pthread_t th[N];
    for (int i = 0; i < N; i++) {
        jobs[i] = (frame_job){i % 2 ? a : b, id, 0, 0};
        pthread_create(&th[i], NULL, frame_thread, &jobs[i]);
    }
    bool seen[N + 1] = {false};
    for (int i = 0; i < N; i++) {
        pthread_join(th[i], NULL);
        CHECK_EQ_INT(jobs[i].status, 200);
        if (jobs[i].index >= 1 && jobs[i].index <= N) {
            CHECK_MSG(!seen[jobs[i].index], "frame_index %ld given twice", jobs[i].index);
            seen[jobs[i].index] = true;
        } else {
            CHECK_MSG(false, "frame_index %ld out of 1..%d", jobs[i].index, N);
        }
    }
    json_t *e = sgt_session_entry(b, id);
    CHECK_EQ_INT(jint(e, "frame_count"), N);
    json_decref(e);
    free(id);
}

/* ---- a rate limit the instances share ---------------------------------------------------------- */

static void test_rate_limit(const sgt_redis *r)
{
    char store[160];
    snprintf(store, sizeof store, "SG_SESSION_STORE=%s", r->url);
    const char *env[] = {store, "SG_RATE_LIMIT_RPS=0.2", NULL}; /* burst 1: one request, then 5 s */
    sgt_server c, d;
    CHECK(sgt_start(&c, env, NULL) == 0);
    CHECK(sgt_start(&d, env, NULL) == 0);
    char *id = sgt_new_session(&c, NULL);
    sgt_resp q1 = query(&c, id, "hello");
    CHECK_EQ_INT(q1.status, 200);
    sgt_resp q2 = query(&d, id, "hello"); /* the other instance: the same bucket, now empty */
    CHECK_EQ_INT(q2.status, 429);
    char ra[16] = "";
    CHECK(sgt_header(&q2, "Retry-After", ra, sizeof ra) && atoi(ra) >= 1);
    sgt_resp_free(&q1);
    sgt_resp_free(&q2);
    free(id);
    sgt_stop(&c, SIGTERM);
    sgt_stop(&d, SIGTERM);
}

/* ---- TTL: keys expire with the session, on its own database and over the unix socket --------- */

static void test_ttl(const sgt_redis *r)
{
    char tcp[160], local[200];
    snprintf(tcp, sizeof tcp, "SG_SESSION_STORE=%s/3", r->url);
    snprintf(local, sizeof local, "SG_SESSION_STORE=%s?db=3", r->unix_url);
    const char *ea[] = {tcp, "SG_SESSION_TTL_S=1", "SG_MAX_SESSIONS=2", NULL},
               *eb[] = {local, "SG_SESSION_TTL_S=1", "SG_MAX_SESSIONS=2", NULL};
    sgt_server a, b;
    CHECK(sgt_start(&a, ea, NULL) == 0);
    CHECK(sgt_start(&b, eb, NULL) == 0);
    char *id = sgt_new_session(&a, NULL);
    sgt_resp f = frame(&b, id); /* over the unix socket, same database */
    CHECK_EQ_INT(f.status, 200);
    sgt_resp_free(&f);
    /* SG_MAX_SESSIONS counts the store's sessions, whichever instance made them */
    char *id2 = sgt_new_session(&b, NULL);
    sgt_resp full = sgt_request(&a, "POST", "/sessions", NULL, "{}", 2);
    char ra[16] = "";
    CHECK_MSG(full.status == 503 && strstr(sgt_str(full.json, "detail"), "SG_MAX_SESSIONS") &&
                  sgt_header(&full, "Retry-After", ra, sizeof ra),
              "a third session over a cap of 2: %ld %s", full.status, full.body ? full.body : "");
    sgt_resp_free(&full);
    free(id2);
    redisContext *c = sgt_redis_connect(r);
    redisReply *rep = c ? redisCommand(c, "SELECT 3") : NULL;
    freeReplyObject(rep);
    rep = c ? redisCommand(c, "PTTL sg:v1:{%s}:state", id) : NULL;
    CHECK_MSG(rep && rep->type == REDIS_REPLY_INTEGER && rep->integer > 0 && rep->integer <= 1000,
              "the state key's TTL is %lld ms, not the session's 1 s",
              rep && rep->type == REDIS_REPLY_INTEGER ? rep->integer : -99);
    freeReplyObject(rep);
    sgt_sleep_ms(2500);
    sgt_resp q = query(&a, id, "hello");
    CHECK_EQ_INT(q.status, 404);
    sgt_resp_free(&q);
    char pattern[96];
    snprintf(pattern, sizeof pattern, "sg:v1:{%s}*", id);
    rep = c ? redisCommand(c, "KEYS %s", pattern) : NULL;
    CHECK(rep && rep->type == REDIS_REPLY_ARRAY && rep->elements == 0);
    freeReplyObject(rep);
    sgt_sleep_ms(1500); /* the reaper sweeps the index at least every TTL/4 */
    rep = c ? redisCommand(c, "ZCARD sg:v1:sessions") : NULL;
    CHECK(rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 0);
    freeReplyObject(rep);
    redisFree(c);
    /* nothing of it went to database 0 */
    CHECK_EQ_INT(sgt_redis_count_keys(r, pattern), 0);
    /* the expired ones no longer count */
    char *id3 = sgt_new_session(&a, NULL);
    free(id3);
    free(id);
    sgt_stop(&a, SIGTERM);
    sgt_stop(&b, SIGTERM);
}

/* ---- a value in the store that is not one of ours ---------------------------------------------- */

static void test_corrupt(const sgt_server *a, const sgt_server *b, const sgt_redis *r)
{
    char *bad = sgt_new_session(a, NULL), *good = sgt_new_session(a, NULL);
    sgt_resp f = frame(a, bad);
    CHECK_EQ_INT(f.status, 200);
    sgt_resp_free(&f);
    static const struct {
        const char *key, *value, *says;
        long status;
    } cases[] = {
        {"state", "not a session at all", "not in this server's format", 404},
        {"state", "SGSS\x02\x02", "format version 2", 404},
        {"meta", "SGSS\x01\x01\x01\xff\xff\xff\x7f", "cut short", 404},
    };
    for (size_t i = 0; i < sizeof cases / sizeof *cases; i++) {
        redisReply *rep = sgt_redis_cmd(r, "SET sg:v1:{%s}:%s %b KEEPTTL", bad, cases[i].key,
                                        cases[i].value, strlen(cases[i].value));
        CHECK(rep && rep->type == REDIS_REPLY_STATUS);
        freeReplyObject(rep);
        sgt_resp q = query(b, bad, "hello");
        CHECK_MSG(q.status == cases[i].status && strstr(sgt_str(q.json, "detail"), cases[i].says) &&
                      strcmp(sgt_str(q.json, "error"), "INVALID_SESSION") == 0,
                  "%s = \"%s\": %ld %s", cases[i].key, cases[i].value, q.status, q.body);
        sgt_resp_free(&q);
        /* the other session is served, the instance is fine */
        q = query(b, good, "hello");
        CHECK_EQ_INT(q.status, 200);
        sgt_resp_free(&q);
    }
    /* the listing leaves the unreadable one out; DELETE still removes it */
    json_t *e = sgt_session_entry(a, bad);
    CHECK(e == NULL);
    json_decref(e);
    char path[96];
    snprintf(path, sizeof path, "/sessions/%s", bad);
    sgt_resp del = sgt_request(b, "DELETE", path, NULL, NULL, 0);
    CHECK_EQ_INT(del.status, 200);
    sgt_resp_free(&del);
    sgt_resp m = sgt_get(a, "/metrics");
    json_t *st = json_object_get(m.json, "session_store");
    CHECK(strcmp(sgt_str(st, "backend"), "redis") == 0);
    sgt_resp_free(&m);
    free(bad);
    free(good);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    signal(SIGPIPE, SIG_IGN);
    load_image();
    test_settings();
    sgt_redis r;
    if (sgt_redis_start(&r, false) != 0 || !image_b64) {
        sgt_redis_cleanup(&r);
        return check_report("test_server_store");
    }
    char store[160];
    snprintf(store, sizeof store, "SG_SESSION_STORE=%s", r.url);
    const char *env[] = {store, "STORE_TRANSCRIPTS=true", NULL};
    const char *args[] = {"--asr-model", "tests/fixtures/whisper_tiny", NULL};
    sgt_server a, b;
    bool up = sgt_start(&a, env, args) == 0 && sgt_wait_ready(&a);
    up = up && sgt_start(&b, env, args) == 0 && sgt_wait_ready(&b);
    CHECK_MSG(up, "two instances on %s did not start", r.url);
    if (up) {
        test_shared(&a, &b, &r);
        test_websocket(&a, &b);
        test_concurrent_frames(&a, &b);
        test_corrupt(&a, &b, &r);
    }
    sgt_stop(&a, SIGTERM);
    sgt_stop(&b, SIGTERM);
    test_rate_limit(&r);
    test_ttl(&r);
    sgt_redis_cleanup(&r);
    free(image_b64);
    curl_global_cleanup();
    return check_report("test_server_store");
}
