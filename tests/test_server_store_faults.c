/* Faults of the Redis session store through the real binary: an instance killed with SIGKILL while
 * it holds a session's work lock (only its request is lost, the lock expires and the other
 * instance goes on), a lock that expires under a slow turn (that turn is answered, not saved),
 * every instance restarted (no session lost), Redis stopped or hung (503 STORE_UNAVAILABLE with
 * Retry-After within 2 s, /ready says so, /health answers) and started again (service resumes by
 * itself), and a Redis restart with AOF (appendfsync everysec) keeping the sessions. */
#include <pthread.h>
#include <stdarg.h>

#include "sgtest_http.h"
#include "sgtest_proc.h"
#include "sgtest_redis.h"

static sgt_resp query(const sgt_server *s, const char *id, const char *text)
{
    char path[96], body[160];
    snprintf(path, sizeof path, "/sessions/%s/query", id);
    snprintf(body, sizeof body, "{\"text\":\"%s\"}", text);
    return sgt_request(s, "POST", path, NULL, body, strlen(body));
}

static sgt_resp frame(const sgt_server *s, const char *id)
{
    size_t len = 0;
    uint8_t *img = check_read_file("../shared/data/images/coffee.jpg", &len);
    char path[96];
    snprintf(path, sizeof path, "/sessions/%s/frame", id);
    const char *h[] = {"Content-Type: image/jpeg", NULL};
    sgt_resp r = sgt_request(s, "POST", path, h, img, len);
    free(img);
    return r;
}

static long long listed_count(const sgt_server *s, const char *id, const char *field)
{
    sgt_resp r = sgt_get(s, "/sessions");
    long long v = -1;
    json_t *e;
    size_t i;
    json_array_foreach(json_object_get(r.json, "sessions"), i, e)
        if (strcmp(sgt_str(e, "session_id"), id) == 0)
            v = json_integer_value(json_object_get(e, field));
    sgt_resp_free(&r);
    return v;
}

static bool start_on(sgt_server *s, const char *url, const char **more)
{
    char store[200];
    snprintf(store, sizeof store, "SG_SESSION_STORE=%s", url);
    const char *env[8] = {store};
    int n = 1;
    for (int i = 0; more && more[i] && n < 7; i++)
        env[n++] = more[i];
    env[n] = NULL;
    bool ok = sgt_start(s, env, NULL) == 0;
    CHECK_MSG(ok, "sg-edge on %s did not start", url);
    return ok;
}

typedef struct bg_query {
    const sgt_server *s;
    const char *id;
    long status;
} bg_query;

static void *bg_query_main(void *p)
{
    bg_query *q = p;
    sgt_resp r = query(q->s, q->id, "slow");
    q->status = r.status;
    sgt_resp_free(&r);
    return NULL;
}

/* ---- an instance killed while it holds the lock; a lock lost under a slow turn ----------------- */

static void test_kill_holder(const sgt_redis *r)
{
    /* A holds every work lock 20 s (a slow turn); the lock expires after 1.5 s */
    const char *ea[] = {"SG_DEBUG_LOCK_HOLD_MS=20000", "SG_SESSION_LOCK_TTL_MS=1500", NULL};
    const char *eb[] = {"SG_SESSION_LOCK_TTL_MS=1500", NULL};
    sgt_server a, b;
    if (!start_on(&a, r->url, ea) || !start_on(&b, r->url, eb))
        return;
    char *id = sgt_new_session(&b, NULL);
    sgt_resp f = frame(&b, id);
    CHECK_EQ_INT(f.status, 200);
    sgt_resp_free(&f);
    bg_query q = {&a, id, 0};
    pthread_t th;
    pthread_create(&th, NULL, bg_query_main, &q);
    char lock[96];
    snprintf(lock, sizeof lock, "sg:v1:{%s}:lock", id);
    bool held = false;
    for (int i = 0; i < 200 && !held; i++) { /* until A has the lock */
        redisReply *rep = sgt_redis_cmd(r, "EXISTS %s", lock);
        held = rep && rep->type == REDIS_REPLY_INTEGER && rep->integer == 1;
        freeReplyObject(rep);
        if (!held)
            sgt_sleep_ms(10);
    }
    CHECK_MSG(held, "A never took the lock");
    sgt_stop(&a, SIGKILL);
    pthread_join(th, NULL);
    CHECK_EQ_INT(q.status, 0); /* the request in flight is lost: no answer */
    /* B waits for the dead holder's lock to expire, then serves the session with its scene */
    double t0 = sgt_now_ms();
    sgt_resp qb = query(&b, id, "what do I see");
    double took = sgt_now_ms() - t0;
    CHECK_EQ_INT(qb.status, 200);
    CHECK_MSG(took < 3000, "B took %.0f ms", took);
    CHECK(strstr(sgt_str(qb.json, "visual_context"), "image") != NULL);
    sgt_resp_free(&qb);
    CHECK_EQ_INT(listed_count(&b, id, "query_count"), 1); /* A's turn was never saved */

    /* a lock that expires under a slow turn: that turn is answered but not saved, and the turn
     * that took the lock meanwhile is not overwritten */
    const char *ec[] = {"SG_DEBUG_LOCK_HOLD_MS=2500", "SG_SESSION_LOCK_TTL_MS=500", NULL};
    sgt_server c;
    if (start_on(&c, r->url, ec)) {
        bg_query slow = {&c, id, 0};
        pthread_create(&th, NULL, bg_query_main, &slow);
        sgt_sleep_ms(1000); /* C's lock has expired: B takes it */
        sgt_resp q2 = query(&b, id, "hello");
        CHECK_EQ_INT(q2.status, 200);
        sgt_resp_free(&q2);
        pthread_join(th, NULL);
        CHECK_EQ_INT(slow.status, 200);
        CHECK_EQ_INT(listed_count(&b, id, "query_count"), 2); /* B's, not C's */
        sgt_resp m = sgt_get(&c, "/metrics");
        CHECK_EQ_INT(json_integer_value(json_object_get(json_object_get(m.json, "session_store"),
                                                        "lost_locks")), 1);
        sgt_resp_free(&m);
        sgt_stop(&c, SIGTERM);
    }
    free(id);
    sgt_stop(&b, SIGTERM);
}

/* ---- every instance restarted ------------------------------------------------------------------ */

static void test_restart_instances(const sgt_redis *r)
{
    sgt_server a, b;
    if (!start_on(&a, r->url, NULL) || !start_on(&b, r->url, NULL))
        return;
    char *ids[4];
    for (int i = 0; i < 4; i++) {
        ids[i] = sgt_new_session(i % 2 ? &a : &b, NULL);
        sgt_resp f = frame(i % 2 ? &b : &a, ids[i]);
        CHECK_EQ_INT(f.status, 200);
        sgt_resp_free(&f);
    }
    CHECK_EQ_INT(sgt_stop(&a, SIGTERM), 0);
    CHECK_EQ_INT(sgt_stop(&b, SIGTERM), 0);
    if (!start_on(&a, r->url, NULL) || !start_on(&b, r->url, NULL))
        return;
    for (int i = 0; i < 4; i++) {
        sgt_resp q = query(i % 2 ? &a : &b, ids[i], "what do I see");
        CHECK_EQ_INT(q.status, 200);
        CHECK_MSG(strstr(sgt_str(q.json, "visual_context"), "image") != NULL,
                  "session %d lost its scene: %s", i, sgt_str(q.json, "visual_context"));
        sgt_resp_free(&q);
        free(ids[i]);
    }
    sgt_stop(&a, SIGTERM);
    sgt_stop(&b, SIGTERM);
}

/* ---- Redis down, hung, back --------------------------------------------------------------------- */

/* The value of an unlabelled series in GET /metrics/prometheus, -1 when absent. */
static double prom_value(const sgt_server *s, const char *name)
{
    sgt_resp r = sgt_get(s, "/metrics/prometheus");
    double v = -1;
    size_t n = strlen(name);
    for (const char *p = r.body; p && *p; p = strchr(p, '\n') ? strchr(p, '\n') + 1 : NULL)
        if (strncmp(p, name, n) == 0 && p[n] == ' ') {
            v = strtod(p + n + 1, NULL);
            break;
        }
    sgt_resp_free(&r);
    return v;
}

/* A session route answers 503 STORE_UNAVAILABLE with Retry-After, within 2 s. */
static void check_unavailable(const sgt_server *s, const char *id, const char *when)
{
    double t0 = sgt_now_ms();
    sgt_resp q = query(s, id, "hello");
    double took = sgt_now_ms() - t0;
    char ra[16] = "";
    CHECK_MSG(q.status == 503 && strcmp(sgt_str(q.json, "error"), "STORE_UNAVAILABLE") == 0 &&
                  sgt_header(&q, "Retry-After", ra, sizeof ra),
              "%s: %ld %s", when, q.status, q.body ? q.body : "");
    CHECK_MSG(took <= 2000, "%s: the answer took %.0f ms (> 2 s)", when, took);
    printf("%s: 503 STORE_UNAVAILABLE in %.1f ms\n", when, took);
    sgt_resp_free(&q);
}

static void test_redis_down(sgt_redis *r)
{
    sgt_server a;
    if (!start_on(&a, r->url, NULL))
        return;
    char *id = sgt_new_session(&a, NULL);
    /* hung: the process stopped, its socket still accepting */
    kill(r->pid, SIGSTOP);
    check_unavailable(&a, id, "Redis hung (SIGSTOP)");
    check_unavailable(&a, id, "Redis hung, again");
    kill(r->pid, SIGCONT);
    bool back = false;
    for (int i = 0; i < 250 && !back; i++) {
        sgt_resp q = query(&a, id, "hello");
        back = q.status == 200;
        sgt_resp_free(&q);
        if (!back)
            sgt_sleep_ms(20);
    }
    CHECK_MSG(back, "no service within 5 s of Redis continuing");
    /* stopped */
    sgt_redis_stop(r, SIGKILL);
    check_unavailable(&a, id, "Redis stopped");
    const char *routes[][2] = {{"GET", "/sessions"}, {"POST", "/sessions"}, {"DELETE", "/sessions/x"}};
    for (int i = 0; i < 3; i++) {
        char path[96];
        snprintf(path, sizeof path, "%s", routes[i][1]);
        if (i == 2)
            snprintf(path, sizeof path, "/sessions/%s", id);
        sgt_resp x = sgt_request(&a, routes[i][0], path, NULL, i == 1 ? "{}" : NULL, i == 1 ? 2 : 0);
        CHECK_MSG(x.status == 503 && strcmp(sgt_str(x.json, "error"), "STORE_UNAVAILABLE") == 0,
                  "%s %s: %ld", routes[i][0], routes[i][1], x.status);
        sgt_resp_free(&x);
    }
    sgt_resp ready = sgt_get(&a, "/ready");
    CHECK_EQ_INT(ready.status, 503);
    CHECK(strcmp(sgt_str(ready.json, "error"), "STORE_UNAVAILABLE") == 0);
    sgt_resp_free(&ready);
    sgt_resp health = sgt_get(&a, "/health");
    CHECK_EQ_INT(health.status, 200);
    sgt_resp_free(&health);
    /* what the store alert reads: down, and the failures counted */
    CHECK_MSG(prom_value(&a, "smartglass_store_up") == 0, "store_up %g with Redis stopped",
              prom_value(&a, "smartglass_store_up"));
    CHECK(prom_value(&a, "smartglass_store_errors_total") >= 1);
    /* back on the same port (no AOF: the session is gone, the service is not) */
    CHECK(sgt_redis_run(r) == 0);
    double t0 = sgt_now_ms();
    bool ready_again = false;
    while (!ready_again && sgt_now_ms() - t0 < 5000) {
        sgt_resp x = sgt_get(&a, "/ready");
        ready_again = x.status == 200;
        sgt_resp_free(&x);
        if (!ready_again)
            sgt_sleep_ms(20);
    }
    CHECK_MSG(ready_again, "/ready did not recover within 5 s of Redis");
    printf("service resumed %.0f ms after Redis was back\n", sgt_now_ms() - t0);
    /* smartglass_store_up comes back at the reaper's next sweep (every 5 s at most) */
    bool up_again = false;
    for (int i = 0; i < 400 && !up_again; i++) {
        up_again = prom_value(&a, "smartglass_store_up") == 1;
        if (!up_again)
            sgt_sleep_ms(20);
    }
    CHECK_MSG(up_again, "smartglass_store_up not 1 within 8 s of Redis");
    sgt_resp q = query(&a, id, "hello");
    CHECK_EQ_INT(q.status, 404);
    sgt_resp_free(&q);
    char *id2 = sgt_new_session(&a, NULL);
    q = query(&a, id2, "hello");
    CHECK_EQ_INT(q.status, 200);
    sgt_resp_free(&q);
    free(id2);
    free(id);
    CHECK_EQ_INT(sgt_stop(&a, SIGTERM), 0);
}

/* An instance started while Redis is down answers /health, says why on /ready, and serves once
 * Redis comes. */
static void test_start_without_redis(void)
{
    char url[64];
    int port = sgt_free_port();
    snprintf(url, sizeof url, "redis://127.0.0.1:%d", port);
    char store[96];
    snprintf(store, sizeof store, "SG_SESSION_STORE=%s", url);
    const char *env[] = {store, NULL};
    sgt_server a;
    /* sgt_start waits for /ready: probe /health ourselves */
    a.port = sgt_free_port();
    snprintf(a.base, sizeof a.base, "http://127.0.0.1:%d", a.port);
    a.pid = fork();
    if (a.pid == 0) {
        putenv((char *)env[0]);
        char p[16];
        snprintf(p, sizeof p, "%d", a.port);
        execl(SG_EDGE_BIN, SG_EDGE_BIN, "--host", "127.0.0.1", "--port", p, "--log-level", "error",
              (char *)NULL);
        _exit(127);
    }
    bool health = false;
    for (int i = 0; i < 500 && !health; i++) {
        sgt_resp h = sgt_get(&a, "/health");
        health = h.status == 200;
        sgt_resp_free(&h);
        if (!health)
            sgt_sleep_ms(20);
    }
    CHECK(health);
    /* once loading is over (OCR and the voice load beside the listening server), /ready says the
     * store is unreachable and names it */
    sgt_resp ready = sgt_get(&a, "/ready");
    for (int i = 0; i < 500 && sgt_str(ready.json, "status") &&
                    strcmp(sgt_str(ready.json, "status"), "loading") == 0; i++) {
        sgt_resp_free(&ready);
        sgt_sleep_ms(20);
        ready = sgt_get(&a, "/ready");
    }
    CHECK_EQ_INT(ready.status, 503);
    CHECK_MSG(strstr(sgt_str(ready.json, "detail"), url) != NULL, "/ready: %s",
              ready.body ? ready.body : "");
    sgt_resp_free(&ready);
    sgt_stop(&a, SIGTERM);
}

/* ---- persistence: AOF keeps sessions across a Redis restart ----------------------------------- */

static void test_aof(void)
{
    sgt_redis r;
    if (sgt_redis_start(&r, true) != 0) {
        sgt_redis_cleanup(&r);
        return;
    }
    sgt_server a;
    if (start_on(&a, r.url, NULL)) {
        char *id = sgt_new_session(&a, NULL);
        sgt_resp f = frame(&a, id);
        CHECK_EQ_INT(f.status, 200);
        sgt_resp_free(&f);
        sgt_sleep_ms(1500); /* appendfsync everysec: on disk within a second */
        sgt_redis_stop(&r, SIGKILL); /* a crash, not a clean shutdown */
        CHECK(sgt_redis_run(&r) == 0);
        bool ok = false;
        for (int i = 0; i < 250 && !ok; i++) {
            sgt_resp q = query(&a, id, "what do I see");
            ok = q.status == 200 && strstr(sgt_str(q.json, "visual_context"), "image");
            CHECK_MSG(q.status != 404, "the session was lost by the Redis restart");
            sgt_resp_free(&q);
            if (!ok && q.status == 404)
                break;
            if (!ok)
                sgt_sleep_ms(20);
        }
        CHECK_MSG(ok, "the session did not come back with its scene after an AOF restart");
        free(id);
        sgt_stop(&a, SIGTERM);
    }
    sgt_redis_cleanup(&r);
}

int main(void)
{
    curl_global_init(CURL_GLOBAL_ALL);
    signal(SIGPIPE, SIG_IGN);
    sgt_redis r;
    if (sgt_redis_start(&r, false) == 0) {
        test_kill_holder(&r);
        test_restart_instances(&r);
        test_redis_down(&r);
    }
    sgt_redis_cleanup(&r);
    test_start_without_redis();
    test_aof();
    curl_global_cleanup();
    return check_report("test_server_store_faults");
}
