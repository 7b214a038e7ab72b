/* Defect 2 of issue 11 against the real binary: 60 clients each sending a 15 MiB body and holding
 * back its last byte must not take the server's memory with them (SG_MAX_INFLIGHT_BODY_BYTES: a
 * body that would pass the budget gets 503 OVERLOADED + Retry-After before it is read), and the
 * budget comes back on every path: completion, disconnect, 413, a chunked body outgrowing it,
 * suspended work, the watchdog's cut. */
#include <pthread.h>
#include <stdatomic.h>

#include "sgtest_raw.h"
#include "sgtest_server.h"

enum { ATTACKERS = 60, ATTACK_BODY = 15 << 20 };

typedef struct attacker {
    int port;
    sgt_conn *c;
    bool refused;       /* got 503 OVERLOADED with Retry-After */
    bool reset;         /* the server closed while the body was being sent */
    atomic_bool *done;
} attacker;

static void *attack_main(void *p)
{
    attacker *a = p;
    a->c = sgt_raw_open(a->port, NULL);
    if (a->c) {
        struct timeval tv = {20, 0};
        setsockopt(a->c->fd, SOL_SOCKET, SO_SNDTIMEO, &tv, sizeof tv);
        char head[256];
        snprintf(head, sizeof head, "POST /sessions HTTP/1.1\r\nHost: t\r\nContent-Type: "
                 "application/json\r\nContent-Length: %d\r\n\r\n", ATTACK_BODY);
        static char chunk[1 << 20];
        memset(chunk, ' ', sizeof chunk);
        bool ok = sgt_raw_send_str(a->c, head);
        /* everything but the last byte */
        for (size_t left = ATTACK_BODY - 1; ok && left;) {
            size_t n = left < sizeof chunk ? left : sizeof chunk;
            ok = sgt_raw_send(a->c, chunk, n);
            left -= n;
        }
        a->reset = !ok;
        sgt_raw r = sgt_raw_response(a->c, ok ? 200 : 1000);
        char ra[16];
        a->refused = r.status == 503 && sgt_raw_header(&r, "Retry-After", ra, sizeof ra) &&
                     r.json && strcmp(sgt_str(r.json, "error"), "OVERLOADED") == 0;
        sgt_raw_free(&r);
    }
    atomic_store(a->done, true);
    return NULL;
}

/* The 60 x 15 MiB attack on the defaults: RSS growth stays under 300 MB. */
static void test_attack(void)
{
    sgt_server s;
    if (sgt_start(&s, NULL, NULL) != 0) {
        CHECK_MSG(0, "sg-edge did not start");
        return;
    }
    size_t before = sgt_rss_bytes(s.pid);
    static attacker a[ATTACKERS];
    static atomic_bool done[ATTACKERS];
    pthread_t th[ATTACKERS];
    for (int i = 0; i < ATTACKERS; i++) {
        a[i] = (attacker){.port = s.port, .done = &done[i]};
        atomic_store(&done[i], false);
        pthread_create(&th[i], NULL, attack_main, &a[i]);
    }
    /* all of them sent their body (or were turned away), the server holds what it holds */
    for (int k = 0; k < 600; k++) {
        int n = 0;
        for (int i = 0; i < ATTACKERS; i++)
            n += atomic_load(&done[i]);
        if (n == ATTACKERS)
            break;
        struct timespec ts = {0, 50 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    struct timespec ts = {0, 300 * 1000 * 1000};
    nanosleep(&ts, NULL);
    size_t during = sgt_rss_bytes(s.pid);
    int refused = 0, reset = 0;
    for (int i = 0; i < ATTACKERS; i++) {
        pthread_join(th[i], NULL);
        refused += a[i].refused;
        reset += a[i].reset && !a[i].refused;
    }
    double growth_mb = ((double)during - (double)before) / 1e6;
    printf("60 x 15 MiB held: VmRSS %.0f MB before, %.0f MB during (+%.0f MB); %d answered 503 "
           "OVERLOADED + Retry-After, %d more cut off while sending, %d holding a body\n",
           (double)before / 1e6, (double)during / 1e6, growth_mb, refused, reset,
           ATTACKERS - refused - reset);
    CHECK_MSG(during > 0 && growth_mb < 300, "RSS grew %.0f MB", growth_mb);
    CHECK_MSG(refused + reset >= 40, "only %d of 60 bodies turned away", refused + reset);
    CHECK_MSG(refused >= 1, "no 503 OVERLOADED with Retry-After was read");
    for (int i = 0; i < ATTACKERS; i++)
        sgt_raw_close(a[i].c);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

/* ---- the budget given back on every path (a 1 MB budget, 600 kB bodies, 900 kB at most) ------- */

enum { BODY = 600000 };

/* Sends the head of a BODY-byte JSON POST; 503 when turned away before the body, else sends the
 * body and returns the answer's status. */
static int probe(int port)
{
    sgt_conn *c = sgt_raw_open(port, NULL);
    if (!c)
        return -1;
    char head[160];
    snprintf(head, sizeof head, "POST /sessions HTTP/1.1\r\nHost: t\r\nContent-Type: "
             "application/json\r\nContent-Length: %d\r\n\r\n", BODY);
    sgt_raw_send_str(c, head);
    sgt_raw r = sgt_raw_response(c, 300);
    if (r.status == 503) {
        char ra[16];
        CHECK(sgt_raw_header(&r, "Retry-After", ra, sizeof ra));
        CHECK(r.json && strcmp(sgt_str(r.json, "error"), "OVERLOADED") == 0);
    }
    if (r.status == 0) {
        char *body = malloc(BODY);
        memset(body, ' ', BODY);
        body[0] = '{';
        body[BODY - 1] = '}';
        sgt_raw_send(c, body, BODY);
        free(body);
        r = sgt_raw_response(c, 5000);
    }
    int st = r.status;
    sgt_raw_free(&r);
    sgt_raw_close(c);
    return st;
}

/* probe until it is not 503, for up to a second (a release may lag the client's view a little) */
static int probe_settled(int port)
{
    int st = 503;
    for (int i = 0; i < 20 && st == 503; i++) {
        st = probe(port);
        if (st == 503) {
            struct timespec ts = {0, 50 * 1000 * 1000};
            nanosleep(&ts, NULL);
        }
    }
    return st;
}

/* A connection holding BODY bytes of budget: its head and a few body bytes, then nothing. */
static sgt_conn *hold(int port, const char *path, const char *type)
{
    sgt_conn *c = sgt_raw_open(port, NULL);
    char head[256];
    snprintf(head, sizeof head, "POST %s HTTP/1.1\r\nHost: t\r\nContent-Type: %s\r\n"
             "Content-Length: %d\r\n\r\n{\"a\":", path, type, BODY);
    if (c)
        sgt_raw_send_str(c, head);
    struct timespec ts = {0, 100 * 1000 * 1000}; /* let the server take it in */
    nanosleep(&ts, NULL);
    return c;
}

/* POST /sessions with a chunked body of len spaces in one chunk: the answer's status. */
static int chunked_post(int port, size_t len)
{
    char *req = malloc(len + 256);
    size_t n = (size_t)sprintf(req, "POST /sessions HTTP/1.1\r\nHost: t\r\nTransfer-Encoding: "
                               "chunked\r\n\r\n%zx\r\n", len);
    memset(req + n, ' ', len);
    n += len;
    n += (size_t)sprintf(req + n, "\r\n0\r\n\r\n");
    sgt_raw r = sgt_raw_exchange(port, req, n, 5000);
    int st = r.status;
    sgt_raw_free(&r);
    free(req);
    return st;
}

static void test_release(void)
{
    sgt_server s;
    const char *env[] = {"SG_MAX_INFLIGHT_BODY_BYTES=1000000", "SG_MAX_BODY_BYTES=900000",
                         "SG_HTTP_BODY_GRACE_S=1", "SG_DEBUG_WORK_DELAY_MS=800", NULL};
    if (sgt_start(&s, env, NULL) != 0) {
        CHECK_MSG(0, "sg-edge did not start");
        return;
    }
    int port = s.port;
    /* completion: one after the other, each gives its share back */
    for (int i = 0; i < 8; i++)
        CHECK_EQ_INT(probe(port), 200);

    /* disconnect */
    sgt_conn *a = hold(port, "/sessions", "application/json");
    CHECK_EQ_INT(probe(port), 503);
    sgt_raw_close(a);
    CHECK_EQ_INT(probe_settled(port), 200);

    /* 413: announced (nothing taken) and chunked (taken as it grew, given back) */
    const char *too_big = "POST /sessions HTTP/1.1\r\nHost: t\r\nContent-Length: 2000000\r\n\r\n";
    sgt_raw r = sgt_raw_exchange(port, too_big, strlen(too_big), 3000);
    CHECK_EQ_INT(r.status, 413);
    sgt_raw_free(&r);
    CHECK_EQ_INT(chunked_post(port, 1100000), 413);
    CHECK_EQ_INT(probe(port), 200);

    /* a chunked body outgrowing the budget while another holds part of it: 503 once read */
    a = hold(port, "/sessions", "application/json");
    CHECK_EQ_INT(chunked_post(port, BODY), 503);
    sgt_raw_close(a);
    CHECK_EQ_INT(probe_settled(port), 200);

    /* suspended work: a frame waiting on the work queue (800 ms) keeps its body's share */
    char *id = sgt_new_session(&s, NULL);
    char path[128];
    snprintf(path, sizeof path, "/sessions/%s/frame", id);
    a = hold(port, path, "image/jpeg");
    char *rest = calloc(1, BODY);
    sgt_raw_send(a, rest, BODY - 5);
    free(rest);
    struct timespec ts = {0, 200 * 1000 * 1000};
    nanosleep(&ts, NULL);
    CHECK_EQ_INT(probe(port), 503);
    r = sgt_raw_response(a, 5000);
    CHECK_EQ_INT(r.status, 400); /* not an image */
    sgt_raw_free(&r);
    sgt_raw_close(a);
    CHECK_EQ_INT(probe_settled(port), 200);
    free(id);

    /* the watchdog cuts a stalled body after the grace (1 s); its share comes back */
    a = hold(port, "/sessions", "application/json");
    CHECK(sgt_raw_closed(a, 4000));
    sgt_raw_close(a);
    CHECK_EQ_INT(probe_settled(port), 200);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

int main(void)
{
    test_attack();
    test_release();
    return check_report("test_server_edge_body");
}
