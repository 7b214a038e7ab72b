/* Defect 1 of issue 11 against the real binary: 2,100 connections from 127.0.0.1 trickling a
 * request head a byte a second (reconnecting once a second when refused or cut, as an attacker
 * would) while an innocent client on 127.0.0.2 makes fresh requests. Three runs: the defaults
 * (the per-address limit stops the flood), the per-address limit off (the reserve keeps room for
 * the innocent; the header deadline cuts the tricklers), and the reserve off too (the header
 * deadline alone frees the server). */
#include <pthread.h>
#include <stdatomic.h>

#include "sgtest_raw.h"
#include "sgtest_server.h"

enum { N_TRICKLE = 2100, N_INNOCENT = 200, SLICES = 10 };

#if defined(__SANITIZE_ADDRESS__)
#define P99_BOUND_MS 500.0 /* the sanitizers slow every request several-fold */
#else
#define P99_BOUND_MS 100.0
#endif

typedef struct trickle {
    int port;
    double min_life_ms;      /* a close after this long counts as a cut at the deadline */
    atomic_bool stop;
    int fd[N_TRICKLE];
    double opened[N_TRICKLE];
    size_t pos[N_TRICKLE];
    /* results, read after the thread ends */
    long closed, cut, answered, held;
    double max_cut_life_ms;
} trickle;

static const char trickle_head[] = "GET /health HTTP/1.1\r\nHost: t\r\nX-Pad: ";

static void trickle_connect(trickle *t, int i)
{
    t->fd[i] = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    struct sockaddr_in a;
    memset(&a, 0, sizeof a);
    a.sin_family = AF_INET;
    a.sin_port = htons((uint16_t)t->port);
    inet_pton(AF_INET, "127.0.0.1", &a.sin_addr);
    if (t->fd[i] < 0 ||
        (connect(t->fd[i], (struct sockaddr *)&a, sizeof a) != 0 && errno != EINPROGRESS)) {
        if (t->fd[i] >= 0)
            close(t->fd[i]);
        t->fd[i] = -1;
        return;
    }
    t->opened[i] = sgt_raw_now_ms();
    t->pos[i] = 0;
}

/* One byte more of a head that never ends; notes a close by the server. */
static void trickle_step(trickle *t, int i)
{
    if (t->fd[i] < 0) {
        trickle_connect(t, i);
        return;
    }
    char buf[256];
    ssize_t k = recv(t->fd[i], buf, sizeof buf, MSG_DONTWAIT);
    bool dead = k == 0 || (k < 0 && errno != EAGAIN && errno != EWOULDBLOCK);
    if (k > 0)
        t->answered++;
    if (!dead) {
        char byte = t->pos[i] < sizeof trickle_head - 1 ? trickle_head[t->pos[i]] : 'a';
        k = send(t->fd[i], &byte, 1, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (k == 1)
            t->pos[i]++;
        else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != ENOTCONN)
            dead = true;
    }
    if (dead) {
        double life = sgt_raw_now_ms() - t->opened[i];
        t->closed++;
        if (life >= t->min_life_ms) {
            t->cut++;
            if (life > t->max_cut_life_ms)
                t->max_cut_life_ms = life;
        }
        close(t->fd[i]);
        t->fd[i] = -1;
    }
}

static void *trickle_main(void *p)
{
    trickle *t = p;
    for (int i = 0; i < N_TRICKLE; i++)
        trickle_connect(t, i);
    /* every socket gets a byte a second, a tenth of them every 100 ms */
    for (int slice = 0; !atomic_load(&t->stop); slice = (slice + 1) % SLICES) {
        double t0 = sgt_raw_now_ms();
        for (int i = slice; i < N_TRICKLE; i += SLICES)
            trickle_step(t, i);
        double left = 100 - (sgt_raw_now_ms() - t0);
        if (left > 0) {
            struct timespec ts = {0, (long)(left * 1e6)};
            nanosleep(&ts, NULL);
        }
    }
    /* the ones that lived a second and a half were admitted: a refused one is closed at once */
    double now = sgt_raw_now_ms();
    for (int i = 0; i < N_TRICKLE; i++)
        if (t->fd[i] >= 0) {
            t->held += now - t->opened[i] > 1500;
            close(t->fd[i]);
        }
    return NULL;
}

/* A fresh connection from 127.0.0.2 for GET /health: milliseconds until the whole answer (a 200),
 * or -1. */
static double innocent_request(int port, int timeout_ms)
{
    double t0 = sgt_raw_now_ms();
    sgt_conn *c = sgt_raw_open(port, "127.0.0.2");
    if (!c)
        return -1;
    sgt_raw_send_str(c, "GET /health HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
    sgt_raw r = sgt_raw_response(c, timeout_ms);
    double ms = r.status == 200 ? sgt_raw_now_ms() - t0 : -1;
    sgt_raw_free(&r);
    sgt_raw_close(c);
    return ms;
}

static int cmp_double(const void *a, const void *b)
{
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

/* N_INNOCENT requests, one every 10 ms; their p99 in ms (a failure counts as 1e9), -1 when five
 * failed (the server starves them: stop early). */
static double innocent_p99(int port, double *median)
{
    static double ms[N_INNOCENT];
    int failed = 0;
    for (int i = 0; i < N_INNOCENT; i++) {
        ms[i] = innocent_request(port, 2000);
        if (ms[i] < 0) {
            ms[i] = 1e9;
            if (++failed == 5)
                return -1;
        }
        struct timespec ts = {0, 10 * 1000 * 1000};
        nanosleep(&ts, NULL);
    }
    qsort(ms, N_INNOCENT, sizeof *ms, cmp_double);
    *median = ms[N_INNOCENT / 2];
    return ms[(N_INNOCENT * 99 + 99) / 100 - 1];
}

static void sleep_ms(int ms)
{
    struct timespec ts = {ms / 1000, (long)(ms % 1000) * 1000000L};
    nanosleep(&ts, NULL);
}

static bool start_with(sgt_server *s, const char **env)
{
    if (sgt_start(s, env, NULL) == 0)
        return true;
    CHECK_MSG(0, "sg-edge did not start");
    return false;
}

static trickle *trickle_start(int port, double min_life_ms, pthread_t *th)
{
    trickle *t = calloc(1, sizeof *t);
    t->port = port;
    t->min_life_ms = min_life_ms;
    pthread_create(th, NULL, trickle_main, t);
    return t;
}

static void trickle_stop(trickle *t, pthread_t th)
{
    atomic_store(&t->stop, true);
    pthread_join(th, NULL);
}

/* Run 1, the defaults: 127.0.0.1 gets SG_MAX_CONNECTIONS_PER_IP (256); the rest are refused at
 * accept and keep reconnecting; 127.0.0.2 is served at once. */
static void run_defaults(void)
{
    sgt_server s;
    if (!start_with(&s, NULL))
        return;
    pthread_t th;
    trickle *t = trickle_start(s.port, 1e12, &th);
    sleep_ms(1500);
    double median = 0, p99 = innocent_p99(s.port, &median);
    trickle_stop(t, th);
    printf("defaults: %ld trickling connections held by the server, %ld refused at accept, "
           "innocent p50 %.2f ms p99 %.2f ms\n", t->held, t->closed, median, p99);
    CHECK_MSG(t->held >= 200 && t->held <= 270, "%ld trickling connections held", t->held);
    CHECK_MSG(p99 >= 0 && p99 < P99_BOUND_MS, "innocent p99 %.1f ms under 2,100 tricklers", p99);
    CHECK_MSG(t->closed > 1000, "the per-address limit refused only %ld", t->closed);
    CHECK_EQ_INT(t->answered, 0);
    free(t);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

/* Run 2, no per-address limit (as behind a proxy): 127.0.0.1 fills all but the reserve (2,048
 * of 2,112 slots); the innocent still gets in; every trickler is cut at the 2 s header deadline
 * (and reconnects). */
static void run_no_per_ip(void)
{
    sgt_server s;
    const char *env[] = {"SG_MAX_CONNECTIONS_PER_IP=0", "SG_MAX_CONNECTIONS=2112",
                         "SG_HTTP_HEADER_TIMEOUT_S=2", NULL};
    if (!start_with(&s, env))
        return;
    pthread_t th;
    trickle *t = trickle_start(s.port, 1900, &th);
    sleep_ms(1000);
    double median = 0, p99 = innocent_p99(s.port, &median);
    sleep_ms(2500);
    trickle_stop(t, th);
    printf("per-address limit off: %ld closed by the server, %ld of them cut at the header "
           "deadline (longest life %.0f ms), innocent p50 %.2f ms p99 %.2f ms\n", t->closed,
           t->cut, t->max_cut_life_ms, median, p99);
    CHECK_MSG(p99 >= 0 && p99 < P99_BOUND_MS, "innocent p99 %.1f ms under 2,100 tricklers", p99);
    /* the first wave alone: 2,048 held at once, every one cut */
    CHECK_MSG(t->cut >= 2000, "%ld tricklers cut at the header deadline", t->cut);
    CHECK_MSG(t->max_cut_life_ms < 4500, "a trickler lived %.0f ms", t->max_cut_life_ms);
    CHECK_EQ_INT(t->answered, 0);
    free(t);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

/* Run 3, no per-address limit and no reserve: the tricklers take every slot and the innocent
 * waits in the listen queue — until the header deadline cuts them. */
static void run_deadline_alone(void)
{
    sgt_server s;
    const char *env[] = {"SG_MAX_CONNECTIONS_PER_IP=0", "SG_CONNECTION_RESERVE=0",
                         "SG_HTTP_HEADER_TIMEOUT_S=2", NULL};
    if (!start_with(&s, env))
        return;
    pthread_t th;
    trickle *t = trickle_start(s.port, 1900, &th);
    sleep_ms(500);
    double ms = innocent_request(s.port, 6000);
    trickle_stop(t, th);
    printf("header deadline alone: the innocent request took %.0f ms (deadline 2000 ms)\n", ms);
    CHECK_MSG(ms >= 0 && ms < 3500, "innocent request with every slot trickled: %.0f ms", ms);
    free(t);
    CHECK_EQ_INT(sgt_stop(&s, SIGTERM), 0);
}

int main(void)
{
    /* the tricklers, the innocent and the server (which inherits the limit) */
    if (!sgt_raise_nofile(8192))
        return 0;
    run_defaults();
    run_no_per_ip();
    run_deadline_alone();
    return check_report("test_server_edge_slow");
}
